"""Tables of a ``lor-scaling`` result: the smallest certified fit beside the floors.

Pure functions of a result table: input is a DataFrame or a list of dicts (what
:func:`robustlaw.experiments.load` returns), one row per network with the columns of
:data:`COLUMNS`. Outputs are DataFrames when pandas is installed, else lists of dicts.

Only fits below the noise enter any median (``THEORY.md`` §7.1). Only a certified upper bound
(``lip_certified``) of such a fit that lies under its floor contradicts a theorem: the
``contradicts`` columns test exactly that. Lower estimates (``lip_lower``, ``lip_support``)
bound their own network only, never the smallest constant :math:`L^\\star`, so a lower estimate
under a floor contradicts nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from robustlaw.compare._select import (
    COLUMNS,
    CONSTRUCTION,
    CONTROLS,
    GROUP_KEYS,
    SEARCH,
    chosen_per_dataset,
    floor,
    floor_name,
    group,
    is_fit,
    load_rows,
    median,
    method_order,
)
from robustlaw.io import rows_of, to_frame

__all__ = [
    "COLUMNS",
    "LAW_SLOPE",
    "construction_table",
    "fit_slope",
    "format_table",
    "smallest_fit_table",
]

LAW_SLOPE = -0.5
"""The log-log slope of the smallest Lipschitz constant against p for p < nd that the law
predicts."""


def smallest_fit_table(results: Any, *, as_frame: bool | None = None):
    """Per search group: the smallest certified fit over datasets, its controls and floors.

    A group is one ``(n, d, method, density, width, p)``; its rows are the search members of
    every dataset. For each dataset the chosen member (the smallest certified upper bound
    among search members that fit below the noise) brackets :math:`L^\\star` from above.

    Parameters
    ----------
    results : DataFrame or list of dict
        A ``lor-scaling`` result table.
    as_frame : bool, optional
        True: a DataFrame; False: a list of dicts; None: a DataFrame when pandas is installed.

    Returns
    -------
    DataFrame or list of dict
        One row per group (dense first), with columns

        - ``n, d, method, density, width, p``; ``kept``, ``p_eff`` (bits) and
          ``p_eff_informal`` (kept + mask bits);
        - ``datasets``: datasets with search members; ``fit_datasets``: those with a chosen
          fit below the noise; ``fit_share``: share of search members that fit below the noise;
        - ``lip_certified`` (median over datasets of the chosen member's certified upper
          bound), ``lip_certified_min``, ``lip_certified_max``;
        - ``lip_lower``, ``lip_support``: medians of the chosen members' lower estimates (each
          bounds that network only, not :math:`L^\\star`);
        - ``first_fit_certified``, ``interpolation_certified``: median certified upper bound of
          each control over its fits below the noise;
        - ``bound_bs`` (floor at ``p``), ``bound_nfp`` (floor at ``p_eff``),
          ``k_condition_bs``, ``k_condition_nfp`` (whether each holds for every row);
        - ``floor``: which floor the group is held to (BS at p when dense, NFP at p_eff when
          pruned); ``ratio``: median over datasets of chosen certified value / that floor;
        - ``contradicts``: whether any dataset's chosen certified value lies under its floor
          (the only finding that would contradict the theorem).

    Raises
    ------
    ValidationError
        If ``results`` is empty or lacks a column.

    Examples
    --------
    >>> from robustlaw.compare.synthetic import synthetic_results
    >>> table = smallest_fit_table(synthetic_results(), as_frame=False)
    >>> row = table[0]
    >>> row["n"], row["p"], row["fit_datasets"], row["lip_certified"], row["contradicts"]
    (16, 8, 3, 5.656854249492381, False)
    >>> row["first_fit_certified"], row["floor"]
    (4.0, 'BS at p')
    """
    rows = load_rows(results)
    groups = group((r for r in rows if r["role"] != CONSTRUCTION), GROUP_KEYS)
    out = []
    for key in sorted(groups, key=_group_order):
        members = groups[key]
        search = [r for r in members if r["role"] == SEARCH]
        if not search:
            continue
        chosen = list(chosen_per_dataset(search).values())
        certified = [r["lip_certified"] for r in chosen]
        ratios = [r["lip_certified"] / floor(r) for r in chosen]
        row = dict(zip(GROUP_KEYS, key, strict=True))
        for col in ("kept", "p_eff", "p_eff_informal"):
            row[col] = median(r[col] for r in search)
        row["datasets"] = len({r["dataset"] for r in search})
        row["fit_datasets"] = len(chosen)
        row["fit_share"] = sum(is_fit(r) for r in search) / len(search)
        row["lip_certified"] = median(certified)
        row["lip_certified_min"] = min(certified, default=None)
        row["lip_certified_max"] = max(certified, default=None)
        row["lip_lower"] = median(r["lip_lower"] for r in chosen)
        row["lip_support"] = median(r["lip_support"] for r in chosen)
        for role in CONTROLS:
            fits = [r["lip_certified"] for r in members if r["role"] == role and is_fit(r)]
            row[f"{role.replace('-', '_')}_certified"] = median(fits)
        row["bound_bs"] = median(r["bound_bs"] for r in search)
        row["bound_nfp"] = median(r["bound_nfp"] for r in search)
        row["k_condition_bs"] = all(bool(r["k_condition_bs"]) for r in search)
        row["k_condition_nfp"] = all(bool(r["k_condition_nfp"]) for r in search)
        row["floor"] = floor_name(row["method"])
        row["ratio"] = median(ratios)
        row["contradicts"] = any(v < 1 for v in ratios)
        out.append(row)
    return to_frame(out, as_frame=as_frame)


def _group_order(key: tuple) -> tuple:
    n, d, method, density, width, p = key
    return (n, d, method_order(method), -density, width, p)


def construction_table(results: Any, *, as_frame: bool | None = None):
    """Per construction, ``(n, d)`` and architecture: its fits, conditions and constants.

    Each explicit interpolator of [BLN] §3 that fits below the noise brackets
    :math:`L^\\star` from above at its own ``p``, whatever its stated conditions.

    Parameters
    ----------
    results : DataFrame or list of dict
        A ``lor-scaling`` result table.
    as_frame : bool, optional
        True: a DataFrame; False: a list of dicts; None: a DataFrame when pandas is installed.

    Returns
    -------
    DataFrame or list of dict
        One row per ``(method, n, d, width, p)``: ``datasets``; ``fit_share`` (share of
        datasets where it fits below the noise) and ``conditions_share`` (where its conditions
        hold); ``stated`` (median stated constant where given); medians over its fits below
        the noise of ``lip_certified``, ``lip_lower`` and ``lip_support``; ``bound_bs`` (the
        BS floor at its ``p``); ``ratio`` (median certified / BS floor) and ``contradicts``
        (any fit's certified value under the floor). Empty when there are no constructions.

    Examples
    --------
    >>> from robustlaw.compare.synthetic import synthetic_results
    >>> rows = synthetic_results(sizes=((16, 4),), constructions=("caps",))
    >>> row = construction_table(rows, as_frame=False)[0]
    >>> row["method"], row["p"], row["fit_share"], row["stated"], row["ratio"]
    ('caps', 256, 1.0, 2.0, 6000.0)
    """
    rows = load_rows(results)
    keys = ("method", "n", "d", "width", "p")
    groups = group((r for r in rows if r["role"] == CONSTRUCTION), keys)
    out = []
    for key in sorted(groups, key=lambda k: (k[1], k[2], k[0], k[4], k[3])):
        members = groups[key]
        fits = [r for r in members if is_fit(r)]
        ratios = [r["lip_certified"] / r["bound_bs"] for r in fits]
        row = dict(zip(keys, key, strict=True))
        row["datasets"] = len({r["dataset"] for r in members})
        row["fit_share"] = sum(bool(r["fit_below_noise"]) for r in members) / len(members)
        row["conditions_share"] = sum(bool(r["conditions_hold"]) for r in members) / len(members)
        row["stated"] = median(r["stated_lipschitz"] for r in members)
        for col in ("lip_certified", "lip_lower", "lip_support"):
            row[col] = median(r[col] for r in fits)
        row["bound_bs"] = median(r["bound_bs"] for r in members)
        row["ratio"] = median(ratios)
        row["contradicts"] = any(v < 1 for v in ratios)
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
