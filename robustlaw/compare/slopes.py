"""How the smallest certified fit scales with p: slopes below ``p = nd``, the plateau beyond.

The law says :math:`L^\\star(n, d, p) \\gtrsim \\sqrt{nd/p}` for :math:`p \\lesssim nd` and that
:math:`O(1)` is reachable beyond (``THEORY.md`` §7.1, §7.4). These functions read the dense
nets of a ``lor-scaling`` result table: per ``(n, d, dataset, p)`` one value (the chosen search
member's certified upper bound, or a control's median over its fits below the noise), then a
log-log slope for ``p < nd`` with a bootstrap interval over datasets, and the level beyond.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from robustlaw._validation import check_choice, check_integer, check_interval, check_seed
from robustlaw.compare._select import (
    CONTROLS,
    DENSE,
    SEARCH,
    chosen_per_dataset,
    group,
    is_fit,
    load_rows,
    median,
)
from robustlaw.compare.tables import LAW_SLOPE, fit_slope
from robustlaw.io import to_frame

__all__ = ["SLOPE_ROLES", "fit_law_constant", "scaling_points", "scaling_slopes"]

SLOPE_ROLES = (SEARCH, *CONTROLS)
"""Roles :func:`scaling_slopes` can fit: the search (chosen members) and the two controls."""

_TOL = 1e-9
"""Slack of ``law_in_ci``: an interval of exact power laws is -1/2 up to rounding."""

Points = dict[tuple[int, int], dict[Any, list[tuple[float, float]]]]


def scaling_points(results: Any, *, role: str = SEARCH) -> Points:
    """Dense points ``(p, value)`` per ``(n, d)`` and dataset, sorted by p.

    For ``role="search"`` the value is the chosen member's ``lip_certified`` (the group's
    smallest certified upper bound among fits below the noise); for a control, the median
    ``lip_certified`` of its members that fit below the noise. Points without such a fit are
    left out.

    Examples
    --------
    >>> from robustlaw.compare.synthetic import synthetic_results
    >>> pts = scaling_points(synthetic_results(sizes=((16, 4),), datasets=(0,)))
    >>> pts[(16, 4)][0][:2]
    [(8.0, 5.656854249492381), (16.0, 4.0)]
    """
    check_choice(role, "role", SLOPE_ROLES)
    rows = [r for r in load_rows(results) if r["method"] == DENSE and r["role"] == role]
    out: Points = defaultdict(lambda: defaultdict(list))
    for (n, d, data, p), members in group(rows, ("n", "d", "dataset", "p")).items():
        if role == SEARCH:
            chosen = chosen_per_dataset(members).get(data)
            value = None if chosen is None else chosen["lip_certified"]
        else:
            value = median(r["lip_certified"] for r in members if is_fit(r))
        if value is not None:
            out[(n, d)][data].append((float(p), float(value)))
    return {
        nd: {data: sorted(pts) for data, pts in sorted(by_data.items())}
        for nd, by_data in sorted(out.items())
    }


def fit_law_constant(results: Any) -> float | None:
    """The ``c`` of ``c * sqrt(nd/p)`` that fits the chosen dense fits with ``p < nd`` best.

    Least squares in log space with the slope fixed at -1/2:
    ``log c = mean(log L + log(p / (nd)) / 2)`` over every chosen point (each ``(n, d)``,
    dataset and ``p < nd``). None when there is no such point.

    Examples
    --------
    >>> from robustlaw.compare.synthetic import synthetic_results
    >>> round(fit_law_constant(synthetic_results(scale=3.0)), 12)
    3.0
    """
    logs = [
        np.log(v) + 0.5 * np.log(p / (n * d))
        for (n, d), by_data in scaling_points(results).items()
        for pts in by_data.values()
        for p, v in pts
        if p < n * d
    ]
    return float(np.exp(np.mean(logs))) if logs else None


def _moments(pts: list[tuple[float, float]], center: tuple[float, float]) -> np.ndarray:
    """Count and sums of x, y, x^2 and x y of one dataset's points (x, y: logs less center)."""
    lx = np.log([p for p, _ in pts]) - center[0]
    ly = np.log([v for _, v in pts]) - center[1]
    return np.array([lx.size, lx.sum(), ly.sum(), lx @ lx, lx @ ly])


def _centered(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centered Sxx and Sxy from summed moments (last axis: count, sx, sy, sxx, sxy)."""
    count = np.maximum(m[..., 0], 1)
    return m[..., 3] - m[..., 1] ** 2 / count, m[..., 4] - m[..., 1] * m[..., 2] / count


def _interval(cxx: np.ndarray, cxy: np.ndarray, level: float) -> tuple[float, float] | None:
    """Percentile interval of the replicate slopes ``cxy / cxx`` (degenerate ones dropped)."""
    ok = cxx > 1e-12
    if not ok.any():
        return None
    low, high = np.quantile(cxy[ok] / cxx[ok], [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _plateau(by_data: dict[Any, list[tuple[float, float]]], nd: int) -> list[float]:
    """Per dataset, the median value at ``p >= nd``."""
    levels = (median(v for p, v in pts if p >= nd) for pts in by_data.values())
    return [v for v in levels if v is not None]


def scaling_slopes(
    results: Any,
    *,
    role: str = SEARCH,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    as_frame: bool | None = None,
):
    """Log-log slope of the smallest certified fit against p below ``p = nd``; the plateau.

    Per ``(n, d)``, the points of :func:`scaling_points` with ``p < nd`` give a least-squares
    slope of ``log L`` on ``log p``; pooled over all ``(n, d)``, the slope has one intercept
    per ``(n, d)`` (fixed effects, as :func:`fit_slope`). The interval is a bootstrap
    percentile interval over datasets: each replicate resamples the dataset seeds with
    replacement within each ``(n, d)`` (NumPy generator seeded with ``seed``, so the result is
    reproducible). The plateau is the median over datasets of each dataset's median value at
    ``p >= nd``, with the smallest and largest of those.

    Parameters
    ----------
    results : DataFrame or list of dict
        A ``lor-scaling`` result table (dense rows are read).
    role : {"search", "first-fit", "interpolation"}
        Whose constants: the chosen search members, or one control (median per dataset).
    n_boot : int
        Bootstrap replicates (>= 1).
    level : float
        Coverage of the interval, in (0, 1).
    seed : int
        Seed of the bootstrap's generator.
    as_frame : bool, optional
        True: a DataFrame; False: a list of dicts; None: a DataFrame when pandas is installed.

    Returns
    -------
    DataFrame or list of dict
        One row per ``(n, d)``, then the pooled row (``n`` and ``d`` are ``"all"``): ``role``,
        ``slope``, ``ci_low``, ``ci_high``, ``law_in_ci`` (whether the interval holds -1/2),
        ``points`` and ``datasets`` (below ``nd``), ``plateau``, ``plateau_low``,
        ``plateau_high`` and ``status`` ("ok", or why a number is missing).

    Examples
    --------
    >>> from robustlaw.compare.synthetic import synthetic_results
    >>> table = scaling_slopes(synthetic_results(), n_boot=50, as_frame=False)
    >>> [(r["n"], round(r["slope"], 12), r["plateau"]) for r in table]
    [(16, -0.5, 2.0), (32, -0.5, 2.0), ('all', -0.5, 2.0)]
    """
    check_choice(role, "role", SLOPE_ROLES)
    n_boot = check_integer(n_boot, "n_boot", minimum=1)
    level = float(check_interval(level, "level", 0, 1, scalar=True))
    rng = np.random.default_rng(check_seed(seed))
    points = scaling_points(results, role=role)
    out, boot, pooled = [], [], {"x": [], "y": [], "g": [], "data": 0, "plateau": []}
    resampled = False
    for (n, d), by_data in points.items():
        below = [[(p, v) for p, v in pts if p < n * d] for pts in by_data.values()]
        below = [pts for pts in below if pts]
        xs = [p for pts in below for p, _ in pts]
        ys = [v for pts in below for _, v in pts]
        reps = None
        if below:  # replicate moments; a lone dataset enters the pooled replicates unchanged
            counts = rng.multinomial(len(below), np.full(len(below), 1 / len(below)), n_boot)
            center = (float(np.mean(np.log(xs))), float(np.mean(np.log(ys))))
            reps = _centered(counts @ np.array([_moments(pts, center) for pts in below]))
            boot.append(reps)
            resampled |= len(below) > 1
        levels = _plateau(by_data, n * d)
        fit = fit_slope(xs, ys, [0] * len(xs), level=level)
        reps = reps if len(below) > 1 else None
        out.append(_slope_row(n, d, role, fit, reps, level, len(below), levels))
        pooled["x"] += xs
        pooled["y"] += ys
        pooled["g"] += [(n, d)] * len(xs)
        pooled["data"] += len(below)
        pooled["plateau"] += levels
    fit = fit_slope(pooled["x"], pooled["y"], pooled["g"], level=level)
    reps = tuple(map(sum, zip(*boot, strict=True))) if resampled else None
    out.append(_slope_row("all", "all", role, fit, reps, level, pooled["data"], pooled["plateau"]))
    return to_frame(out, as_frame=as_frame)


def _slope_row(n, d, role, fit, reps, level, datasets, levels) -> dict[str, Any]:
    """One row of :func:`scaling_slopes`."""
    interval = _interval(*reps, level) if reps is not None and fit["slope"] is not None else None
    status = fit["status"] if fit["slope"] is None else "ok"
    if fit["points"] == 0:
        status = "no fits below the noise with p < nd"
    elif status == "ok" and interval is None:
        status = "one dataset: no bootstrap interval"
    low, high = interval if interval is not None else (None, None)
    return {
        "n": n,
        "d": d,
        "role": role,
        "slope": fit["slope"],
        "ci_low": low,
        "ci_high": high,
        "law_in_ci": interval is not None and low - _TOL <= LAW_SLOPE <= high + _TOL,
        "points": fit["points"],
        "datasets": datasets,
        "plateau": median(levels),
        "plateau_low": min(levels, default=None),
        "plateau_high": max(levels, default=None),
        "status": status,
    }
