"""Measured-versus-bound tables of ``lor-scaling``-style results.

Pure functions of a result table: input is a DataFrame or a list of dicts (what
:func:`robustlaw.experiments.load` returns), one row per trained member with at least
``method``, ``density``, ``n``, ``d``, ``width``, ``kept``, ``p_eff``, ``lip_lower``,
``lip_upper``, ``bound_bs``, ``bound_nfp`` and ``fit_below_noise``. Outputs are DataFrames
when pandas is installed, else lists of dicts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from robustlaw.errors import ValidationError
from robustlaw.io import rows_of, to_frame

__all__ = ["LAW_SLOPE", "band_table", "fit_slope", "format_table", "slope_table"]

LAW_SLOPE = -0.5
"""The log-log slope of the minimal Lipschitz constant against p (or p_eff) the law predicts."""

GROUP_KEYS = ("method", "density", "width", "n", "d")


def _require(rows: list[dict[str, Any]], columns: Iterable[str]) -> None:
    if not rows:
        raise ValidationError("results are empty: run the experiment first")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise ValidationError(f"results lack the columns {missing}")


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.median(values)) if values else None


def band_table(results: Any, *, as_frame: bool | None = None):
    """Per method, density, width and (n, d): the measured band, the bounds and their ratios.

    Medians over the members of each group (seeds). ``lip_lower`` to ``lip_upper`` is the
    measured Lipschitz band (sound lower estimate to certified upper bound); ``ratio_bs`` and
    ``ratio_nfp`` are ``lip_lower`` divided by each bound (a ratio below 1 would contradict the
    theorem, or its assumptions, for a member that fits below the noise level). ``fit_share``
    is the fraction of members that fit below the noise level.

    Examples
    --------
    >>> rows = [dict(method="dense", density=1.0, width=8, n=4, d=2, kept=10, p_eff=50.0,
    ...              lip_lower=2.0, lip_upper=3.0, bound_bs=0.01, bound_nfp=0.001,
    ...              fit_below_noise=True)]
    >>> band_table(rows, as_frame=False)[0]["ratio_nfp"]
    2000.0
    """
    rows = rows_of(results)
    cols = ("kept", "p_eff", "lip_lower", "lip_upper", "bound_bs", "bound_nfp", "fit_below_noise")
    _require(rows, GROUP_KEYS + cols)
    groups: dict[tuple, list] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in GROUP_KEYS)].append(r)
    out = []
    for key in sorted(groups, key=lambda k: (k[0], -k[1], k[2], k[3], k[4])):
        g = groups[key]
        row = dict(zip(GROUP_KEYS, key, strict=True))
        row["members"] = len(g)
        row["fit_share"] = sum(bool(r["fit_below_noise"]) for r in g) / len(g)
        for c in cols[:-1]:
            row[c] = _median(g, c)
        low = row["lip_lower"]
        row["ratio_bs"] = low / row["bound_bs"] if low is not None else None
        row["ratio_nfp"] = low / row["bound_nfp"] if low is not None else None
        out.append(row)
    return to_frame(out, as_frame=as_frame)


def fit_slope(
    x: Sequence[float], y: Sequence[float], groups: Sequence[Any], *, level: float = 0.95
) -> dict[str, Any]:
    """Least-squares slope of ``log y`` on ``log x`` with one intercept per group.

    Fixed effects per group (e.g. per ``(n, d)``) remove the dependence on n and d, so the slope
    measures how the Lipschitz constant moves with the parameter count alone.

    Returns
    -------
    dict
        ``slope``, ``stderr``, ``ci_low``, ``ci_high`` (two-sided ``level`` interval from the
        t distribution), ``points``, ``groups`` and ``status`` ("ok", or why there is no fit,
        in which case the numbers are None).

    Examples
    --------
    >>> x = [1, 10, 100, 1, 10, 100]
    >>> y = [10 * v ** -0.5 for v in x[:3]] + [3 * v ** -0.5 for v in x[3:]]
    >>> round(fit_slope(x, y, ["a"] * 3 + ["b"] * 3)["slope"], 12)
    -0.5
    """
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    labels = np.unique(np.asarray([repr(g) for g in groups]), return_inverse=True)[1]
    n_groups = int(labels.max()) + 1 if labels.size else 0
    result = {"points": int(lx.size), "groups": n_groups}
    dx, dy = lx.copy(), ly.copy()
    for g in range(n_groups):
        sel = labels == g
        dx[sel] -= lx[sel].mean()
        dy[sel] -= ly[sel].mean()
    sxx = float(dx @ dx)
    dof = lx.size - n_groups - 1
    none = dict.fromkeys(("slope", "stderr", "ci_low", "ci_high"))
    if sxx <= 1e-12 * max(1.0, float(lx @ lx)):
        return {**result, **none, "status": "x does not vary within any group"}
    slope = float(dx @ dy) / sxx
    if dof < 1:
        return {**result, **none, "slope": slope, "status": "too few points for an interval"}
    resid = dy - slope * dx
    stderr = math.sqrt(float(resid @ resid) / dof / sxx)
    from scipy.special import stdtrit  # the t quantile; scipy.stats takes seconds to import

    half = float(stdtrit(dof, 0.5 + level / 2)) * stderr
    return {
        **result,
        "slope": slope,
        "stderr": stderr,
        "ci_low": slope - half,
        "ci_high": slope + half,
        "status": "ok",
    }


def slope_table(
    results: Any,
    *,
    xs: Sequence[str] = ("kept", "p_eff"),
    ys: Sequence[str] = ("lip_lower", "lip_upper"),
    level: float = 0.95,
    fitted_only: bool = True,
    as_frame: bool | None = None,
):
    """Per method: log-log slopes of measured Lipschitz constants against ``kept`` and ``p_eff``.

    Each member is a point; intercepts are free per ``(n, d)``. With ``fitted_only`` only
    members that fit below the noise level (the theorems' condition) enter. ``law_in_ci`` says
    whether the interval contains the law's slope -1/2.
    """
    rows = [r for r in rows_of(results) if r.get("fit_below_noise") or not fitted_only]
    _require(rows, ("method", "n", "d", *xs, *ys))
    by_method: dict[str, list] = defaultdict(list)
    for r in rows:
        by_method[r["method"]].append(r)
    out = []
    for method in sorted(by_method):
        for x in xs:
            for y in ys:
                pts = [r for r in by_method[method] if r[x] and r[y]]
                fit = fit_slope(
                    [r[x] for r in pts],
                    [r[y] for r in pts],
                    [(r["n"], r["d"]) for r in pts],
                    level=level,
                )
                ok = fit["status"] == "ok"
                out.append(
                    {
                        "method": method,
                        "x": x,
                        "y": y,
                        **fit,
                        "law_slope": LAW_SLOPE,
                        "law_in_ci": ok and fit["ci_low"] <= LAW_SLOPE <= fit["ci_high"],
                    }
                )
    return to_frame(out, as_frame=as_frame)


def format_table(results: Any, columns: Sequence[str]) -> str:
    """Plain-text table of ``columns`` (floats to 4 significant digits, None as ``-``).

    Examples
    --------
    >>> print(format_table([{"a": 1, "b": 0.123456}, {"a": 22, "b": None}], ["a", "b"]))
    a   b
    1   0.1235
    22  -
    """
    rows = rows_of(results)

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    body = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    lines = [list(columns), *body]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(ln, widths, strict=True)).rstrip() for ln in lines
    )
