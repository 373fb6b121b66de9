"""Figures of the smallest certified fit against p: the law's curve, its slopes, its plateau.

Every function takes a ``lor-scaling`` result table (a DataFrame or a list of dicts, as
:func:`robustlaw.experiments.load` returns) and optionally the axes to draw on, and returns
the :class:`matplotlib.figure.Figure`. Only fits below the noise are drawn or enter a median.
What brackets the smallest constant :math:`L^\\star` from above is a *certified upper bound*;
lower estimates are drawn as brackets of their own network, which bound that network only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from robustlaw.compare._plot import (
    STYLE,
    floor_line,
    legend_outside,
    log_ticks,
    nd_colors,
    new_axes,
    proxy,
)
from robustlaw.compare._select import (
    CONSTRUCTION,
    DENSE,
    FIRST_FIT,
    INTERPOLATION,
    SEARCH,
    chosen_per_dataset,
    group,
    is_fit,
    load_rows,
    lower_estimate,
    median,
    nd_label,
)
from robustlaw.compare.slopes import fit_law_constant, scaling_slopes
from robustlaw.compare.tables import LAW_SLOPE

__all__ = ["CONSTRUCTION_MARKERS", "STYLE", "slope_figure", "smallest_fit_figure"]

CONSTRUCTION_MARKERS = {"min-norm-linear": "s", "caps": "D", "grouped-min-norm": "P"}
"""Marker per construction name (others take ``X``, ``*``, ``h`` in turn)."""

_CONTROLS = {FIRST_FIT: ("^", "first fit (Adam stopped at the first fit)"),
             INTERPOLATION: ("v", "full interpolation (Adam)")}  # fmt: skip
_GRAY = "0.3"
P_AXIS = "p / (n d)   (parameters per sample and input dimension)"
LIP_AXIS = "Lipschitz constant (output per unit input)"


def _nan(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _dense_curves(rows: list[dict[str, Any]]) -> dict[tuple[int, int], dict[str, np.ndarray]]:
    """Per (n, d), over p: medians over datasets of the chosen fit, its lower estimate, each
    control (its fits below the noise), the BS floor and whether its k-condition holds."""
    dense = [r for r in rows if r["method"] == DENSE and r["role"] != CONSTRUCTION]
    out = {}
    for (n, d), members in sorted(group(dense, ("n", "d")).items()):
        cols: dict[str, list] = {k: [] for k in ("p", "certified", "lower", "bound_bs", "k_bs")}
        cols |= {role: [] for role in _CONTROLS}
        for (p,), at_p in sorted(group(members, ("p",)).items()):
            search = [r for r in at_p if r["role"] == SEARCH]
            if not search:
                continue
            chosen = list(chosen_per_dataset(search).values())
            cols["p"].append(p)
            cols["certified"].append(median(r["lip_certified"] for r in chosen))
            cols["lower"].append(median(lower_estimate(r) for r in chosen))
            cols["bound_bs"].append(median(r["bound_bs"] for r in search))
            cols["k_bs"].append(all(bool(r["k_condition_bs"]) for r in search))
            for role in _CONTROLS:
                fits = (r["lip_certified"] for r in at_p if r["role"] == role and is_fit(r))
                cols[role].append(median(fits))
        if cols["p"]:
            arrays = {k: _nan(v) for k, v in cols.items() if k != "k_bs"}
            out[(n, d)] = arrays | {"x": arrays["p"] / (n * d), "k_bs": np.array(cols["k_bs"])}
    return out


def _constructions(ax: Any, rows: list[dict[str, Any]], colors: dict) -> list[tuple]:
    """Construction markers at their own p/(nd); hollow when not fit or conditions fail."""
    built = [r for r in rows if r["role"] == CONSTRUCTION and r["lip_certified"] is not None]
    entries, spare = [], iter(("X", "*", "h", "p", "8"))
    markers = dict(CONSTRUCTION_MARKERS)
    for name in sorted({r["method"] for r in built}):
        markers.setdefault(name, next(spare, "o"))
        entries.append((proxy(ls="", marker=markers[name], color=_GRAY), f"construction: {name}"))
    keys = ("method", "n", "d", "p")
    groups = group(({**r, "valid": is_fit(r) and bool(r["conditions_hold"])} for r in built),
                   (*keys, "valid"))  # fmt: skip
    supported = False
    for (name, n, d, p, ok), members in sorted(groups.items()):
        y = median(r["lip_certified"] for r in members)
        color = colors.get((n, d), _GRAY)
        ax.plot([p / (n * d)], [y], ls="", marker=markers[name], ms=7, color=color,
                mfc=color if ok else "none", mew=1.3,
                label=f"{nd_label(n, d)}: {name}" + ("" if ok else " (hollow)"))  # fmt: skip
        low = median(lower_estimate(r) for r in members)
        if low is not None and low < y:
            ax.vlines([p / (n * d)], low, y, color=color, lw=0.7, ls=(0, (1, 1)))
            ax.plot([p / (n * d)], [low], "_", color=color, ms=7, mew=1.2)
            supported = True
    if supported:
        text = "construction: down to its lower estimate (sphere, where measured)"
        entries.append((proxy(color=_GRAY, marker="_", ms=7, mew=1.2, ls=(0, (1, 1))), text))
    if any(not (is_fit(r) and r["conditions_hold"]) for r in built):
        entries.append((proxy(ls="", marker="o", color=_GRAY, mfc="none"),
                        "hollow: no fit below the noise, or conditions fail"))  # fmt: skip
    return entries


def smallest_fit_figure(results: Any, *, ax: Any = None):
    """The smallest certified fit over the search against ``p/(nd)``, every ``(n, d)`` at once.

    One log-log panel, one color per ``(n, d)``:

    - line and markers: the median over datasets of the chosen search member's certified upper
      bound (the smallest among the search members that fit below the noise): an upper
      bracket of :math:`L^\\star`;
    - a vertical bracket down to the chosen nets' median lower estimate (on the sphere when
      measured there): it bounds that network only, not :math:`L^\\star`;
    - fainter triangles: the two controls (first fit, full interpolation), median certified
      upper bound over their fits below the noise;
    - larger markers: the explicit constructions at their own ``p/(nd)``;
    - dashed: the Bubeck–Sellke floor at ``p``, dotted and faded where its k-condition fails;
    - dash-dotted: ``c sqrt(nd/p)`` with ``c`` from :func:`fit_law_constant`; a vertical line
      at ``p = nd``, beyond which the law predicts a plateau.

    Only a certified value under the floor would contradict the theorem.

    Examples
    --------
    >>> from robustlaw.compare.synthetic import synthetic_results
    >>> fig = smallest_fit_figure(synthetic_results(constructions=("caps",)))
    >>> fig.axes[0].get_xscale(), len(fig.legends)
    ('log', 1)
    """
    import matplotlib as mpl

    rows = load_rows(results)
    curves = _dense_curves(rows)
    colors = nd_colors([*curves, *((r["n"], r["d"]) for r in rows if r["role"] == CONSTRUCTION)])
    with mpl.rc_context(STYLE):
        fig, (ax,) = new_axes(1, 1, None if ax is None else [ax], panel=(6.0, 4.6))
        entries = [(proxy(color=colors[nd], marker="o"), nd_label(*nd)) for nd in colors]
        for (n, d), c in curves.items():
            color, label = colors[(n, d)], nd_label(n, d)
            ax.plot(c["x"], c["certified"], "o-", color=color, ms=4,
                    label=f"{label}: smallest certified upper bound")  # fmt: skip
            has = ~np.isnan(c["lower"]) & ~np.isnan(c["certified"])
            ax.vlines(c["x"][has], c["lower"][has], c["certified"][has], color=color, lw=1.0,
                      label=f"{label}: lower estimate of the chosen net")  # fmt: skip
            ax.plot(c["x"][has], c["lower"][has], "_", color=color, ms=8, mew=1.2)
            for role, (marker, text) in _CONTROLS.items():
                ax.plot(c["x"], c[role], marker=marker, ls=":", lw=0.8, ms=4, color=color,
                        alpha=0.6, label=f"{label}: control, {text}")  # fmt: skip
            floor_line(ax, c["x"], c["bound_bs"], c["k_bs"], color=color,
                       label=f"{label}: BS floor at p")  # fmt: skip
        entries += [
            (proxy(color=_GRAY, marker="o", ms=4), "smallest certified upper bound over the "
             "search (median over datasets)"),
            (proxy(color=_GRAY, marker="|", ms=12, mew=1.2, ls=""), "bracket down to the lower "
             "estimate of that net "
             "(bounds that net only, not L*)"),
        ]  # fmt: skip
        for marker, text in _CONTROLS.values():
            entries.append((proxy(color=_GRAY, marker=marker, ls=":", alpha=0.6),
                            f"control: {text}, certified upper bound"))  # fmt: skip
        entries += _constructions(ax, rows, colors)
        bs = "Bubeck–Sellke floor at p (Theorem 3)"
        if any(c["k_bs"].any() for c in curves.values()):
            entries.append((proxy(color=_GRAY, ls="--"), bs))
        if any(not c["k_bs"].all() for c in curves.values()):
            entries.append((proxy(color=_GRAY, ls=":", alpha=0.55), f"{bs}, k-condition fails"))
        const = fit_law_constant(rows)
        if const is not None:
            xmin = min(float(np.nanmin(c["x"])) for c in curves.values())
            xs = np.geomspace(min(xmin, 1.0), 1.0, 50)
            text = f"c·sqrt(nd/p), c = {const:.3g} (fit at p < nd, slope -1/2)"
            ax.plot(xs, const / np.sqrt(xs), "-.", color="k", lw=1.0, label=text)
            entries.append((proxy(color="k", ls="-.", lw=1.0), text))
        ax.axvline(1.0, color=_GRAY, lw=0.9, ls=(0, (4, 2, 1, 2)), label="p = nd")
        entries.append((proxy(color=_GRAY, lw=0.9, ls=(0, (4, 2, 1, 2))), "p = nd"))
        if not curves:
            ax.text(0.5, 0.5, "no dense search nets in these results", ha="center",
                    transform=ax.transAxes)  # fmt: skip
        log_ticks(ax)
        ax.set(xlabel=P_AXIS, ylabel=LIP_AXIS)
        ax.set_title("Smallest certified Lipschitz upper bound over the search\n"
                     "(dense nets; fits below the noise only; medians over datasets)")  # fmt: skip
        legend_outside(fig, [ax], entries)
    return fig


def slope_figure(
    results: Any,
    *,
    roles: Sequence[str] = (SEARCH, FIRST_FIT),
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    axes: Sequence[Any] | None = None,
):
    """Left: the log-log slope below ``p = nd`` per ``(n, d)`` and pooled; right: the plateau.

    The slopes and intervals are :func:`scaling_slopes`'s (bootstrap over datasets) for each
    role: the search's smallest certified fit and, by default, the first-fit control. The law
    predicts a slope near -1/2 for the smallest fit; an arbitrary fit may show 0. The right
    panel shows the median certified constant at ``p >= nd`` with its range over datasets.

    Examples
    --------
    >>> from robustlaw.compare.synthetic import synthetic_results
    >>> fig = slope_figure(synthetic_results(), n_boot=20)
    >>> [ax.get_ylabel()[:14] for ax in fig.axes]
    ['log-log slope ', 'plateau: media']
    """
    import matplotlib as mpl

    rows = load_rows(results)
    tables = {r: scaling_slopes(rows, role=r, n_boot=n_boot, level=level, seed=seed,
                                as_frame=False) for r in roles}  # fmt: skip
    cats = [(t["n"], t["d"]) for t in next(iter(tables.values()), [])]
    with mpl.rc_context(STYLE):
        fig, (left, right) = new_axes(1, 2, axes, panel=(4.0, 3.4))
        entries, width = [], 0.5 / max(len(roles), 1)
        for j, role in enumerate(roles):
            style = {"color": f"C{j}", "marker": "os^v"[j % 4], "ls": "", "ms": 5, "capsize": 3}
            pos = np.arange(len(cats)) + (j - (len(roles) - 1) / 2) * width
            for ax, (mid, low, high) in (
                (left, ("slope", "ci_low", "ci_high")),
                (right, ("plateau", "plateau_low", "plateau_high")),
            ):
                t = tables[role]
                y = _nan([r[mid] for r in t])
                lo, hi = _nan([r[low] for r in t]), _nan([r[high] for r in t])
                err = np.clip(np.nan_to_num(np.vstack([y - lo, hi - y]), nan=0.0), 0, None)
                ax.errorbar(pos, y, yerr=err, label=role, **style)  # fmt: skip
            entries.append((proxy(**{k: v for k, v in style.items() if k != "capsize"}),
                            "search (smallest certified fit)" if role == SEARCH
                            else f"control: {role}"))  # fmt: skip
        drawn = [v for t in tables.values() for r in t for v in (r["ci_low"], r["ci_high"],
                 r["slope"]) if v is not None]  # fmt: skip
        low, high = min([LAW_SLOPE, *drawn]), max([0.0, *drawn])
        left.set_ylim(low - 0.08 * (high - low), high + 0.08 * (high - low))
        left.axhline(LAW_SLOPE, color="k", ls="--", lw=1, label="law: -1/2")
        left.axhline(0.0, color=_GRAY, ls=":", lw=1, label="slope 0")
        entries += [(proxy(color="k", ls="--", lw=1), "law: slope -1/2 (p < nd)"),
                    (proxy(color=_GRAY, ls=":", lw=1), "slope 0: no dependence on p")]  # fmt: skip
        names = [f"n={n}\nd={d}" if n != "all" else "pooled" for n, d in cats]
        for ax in (left, right):
            ax.set_xticks(range(len(cats)), names)
            ax.set_xlim(-0.6, len(cats) - 0.4)
        left.set(ylabel=f"log-log slope of certified L vs p ({level:.0%} interval)")
        left.set_title("Slope below p = nd\n(bootstrap over datasets; fits below the noise)")
        right.set(ylabel="plateau: median certified L at p ≥ nd")
        right.set_title("Plateau at p ≥ nd\n(median and range over datasets)")
        log_ticks(right, x=False)
        entries.append((proxy(color=_GRAY, marker="|", ls="", ms=10), "bar: interval / range"))
        legend_outside(fig, [left, right], entries)
    return fig
