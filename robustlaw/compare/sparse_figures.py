"""Figures of pruned nets and of the certified-to-floor ratio.

Same conventions as :mod:`robustlaw.compare.figures`: pure functions of a ``lor-scaling``
result table, optional axes, a returned Figure, fits below the noise only, and only a
certified upper bound under its floor would contradict a theorem.
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
    SEARCH,
    chosen_per_dataset,
    floor,
    group,
    load_rows,
    median,
    nd_label,
)

__all__ = ["SPARSE_AXES", "ratio_figure", "sparse_figure"]

SPARSE_AXES = (
    ("kept", "kept / (n d)   (kept weights + biases)", "kept"),
    ("p_eff_informal", "(kept + mask bits) / (n d)   (informal p_eff, bits)", "kept + mask bits"),
    ("p_eff", "p_eff / (n d)   (No Free Prune Theorem 4, bits)", "p_eff (Theorem 4)"),
)
"""The columns of :func:`sparse_figure`, their axis labels (each divided by n d) and names."""

_GRAY = "0.3"


def _chosen_curve(rows: list[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Per group of ``keys`` among search rows: the chosen fits' medians over datasets."""
    out = []
    for key, members in group((r for r in rows if r["role"] == SEARCH), keys).items():
        chosen = list(chosen_per_dataset(members).values())
        point = dict(zip(keys, key, strict=True))
        for col in ("kept", "p_eff", "p_eff_informal", "bound_bs", "bound_nfp"):
            point[col] = median(r[col] for r in members)
        point["certified"] = median(r["lip_certified"] for r in chosen)
        point["k_bs"] = all(bool(r["k_condition_bs"]) for r in members)
        point["k_nfp"] = all(bool(r["k_condition_nfp"]) for r in members)
        out.append(point)
    return out


def _arrays(points: list[dict[str, Any]], x: str, nd: int) -> dict[str, np.ndarray]:
    points = sorted(points, key=lambda q: q[x])
    get = {k: [q[k] for q in points] for k in points[0]} if points else {}
    out = {k: np.array([np.nan if v is None else v for v in vs], dtype=float)
           for k, vs in get.items() if k in ("kept", "p_eff", "p_eff_informal", "bound_bs",
                                               "bound_nfp", "certified")}  # fmt: skip
    out["x"] = out[x] / nd if points else np.array([])
    out["k_bs"] = np.array([q["k_bs"] for q in points], dtype=bool)
    out["k_nfp"] = np.array([q["k_nfp"] for q in points], dtype=bool)
    return out


def sparse_figure(results: Any, *, axes: Any = None):
    """Pruned nets' smallest certified fit against kept, informal p_eff and p_eff (per n d).

    One row of three panels per ``(n, d)`` with pruned nets. In each, one line per pruning
    method: the chosen search member's certified upper bound per density (median over datasets;
    fits below the noise only); data-dependent methods are drawn with hollow squares,
    data-independent ones with filled circles; the legend says where each method's mask bits
    come from (0, measured, or the ``log2 binom`` ceiling). The dense curve (chosen dense fits)
    is drawn at its own value of each panel's x (``p`` for the first two, its theorem ``p_eff``
    for the third), so every panel keeps one unit. Floors: the Bubeck–Sellke floor of dense nets
    at ``p = kept`` on the kept panel; each method's No Free Prune floor at its ``p_eff`` on the
    two p_eff panels (dashed; dotted where the k-condition fails). [NFP] predicts that pruned
    nets lie on or above the dense curve at their informal ``p_eff`` (``THEORY.md`` §7.4).

    Examples
    --------
    >>> from robustlaw.compare.synthetic import synthetic_results
    >>> fig = sparse_figure(synthetic_results(sizes=((16, 4),), methods=("random", "imp")))
    >>> [ax.get_xlabel().split()[0] for ax in fig.axes]
    ['kept', '(kept', 'p_eff']
    """
    import matplotlib as mpl

    rows = [r for r in load_rows(results) if r["role"] != CONSTRUCTION]
    pruned = [r for r in rows if r["method"] != DENSE]
    sizes = sorted({(r["n"], r["d"]) for r in pruned})
    methods = sorted({r["method"] for r in pruned})
    dependent = {r["method"] for r in pruned if r["data_dependent"]}
    with mpl.rc_context(STYLE):
        fig, axs = new_axes(max(len(sizes), 1), len(SPARSE_AXES), axes, panel=(3.6, 3.0))
        entries = []
        for i, method in enumerate(methods):
            style = _method_style(i, method in dependent)
            tag = "data-dependent" if method in dependent else "data-independent"
            info = _information_label([r for r in pruned if r["method"] == method])
            entries.append((proxy(**style), f"{method} ({tag}; {info})"))
        entries += [
            (proxy(color="k", marker=".", ls="-"), "dense (chosen fits, at its own x)"),
            (proxy(color="k", ls="--", lw=1.1), "BS floor at p = kept (dense nets)"),
            (proxy(color=_GRAY, ls="--", lw=1.1), "NFP floor at p_eff (method color)"),
        ]
        for row, (n, d) in enumerate(sizes):
            at = [r for r in rows if (r["n"], r["d"]) == (n, d)]
            dense = _chosen_curve([r for r in at if r["method"] == DENSE], ("p",))
            curves = {m: _chosen_curve([r for r in at if r["method"] == m], ("density",))
                      for m in methods}  # fmt: skip
            for col, (x, label, name) in enumerate(SPARSE_AXES):
                ax = axs[row * len(SPARSE_AXES) + col]
                ref = _arrays(dense, x, n * d)
                if dense:
                    ax.plot(ref["x"], ref["certified"], ".-", color="k", lw=1.2, label="dense")
                if dense and x == "kept":
                    floor_line(ax, ref["x"], ref["bound_bs"], ref["k_bs"], color="k",
                               label="BS floor at p = kept")  # fmt: skip
                for i, method in enumerate(methods):
                    c = _arrays(curves[method], x, n * d)
                    if not c["x"].size:
                        continue
                    ax.plot(c["x"], c["certified"], label=method,
                            **_method_style(i, method in dependent))  # fmt: skip
                    if x != "kept":
                        floor_line(ax, c["x"], c["bound_nfp"], c["k_nfp"], color=f"C{i % 10}",
                                   label=f"{method}: NFP floor at p_eff")  # fmt: skip
                log_ticks(ax)
                ax.set_xlabel(label)
                ax.set_title(f"{nd_label(n, d)}: against {name}")
                if col == 0:
                    ax.set_ylabel("certified upper bound\n(smallest over the search)")
        if any(ln.get_linestyle() == ":" for ax in axs for ln in ax.get_lines()):
            entries.append((proxy(color=_GRAY, ls=":", alpha=0.55), "floor where its "
                            "k-condition fails"))  # fmt: skip
        if not sizes:
            axs[0].text(0.5, 0.5, "no pruned nets in these results", ha="center",
                        transform=axs[0].transAxes)  # fmt: skip
        fig.suptitle("Pruned nets: smallest certified Lipschitz upper bound over the search "
                     "(fits below the noise only; medians over datasets)")  # fmt: skip
        legend_outside(fig, axs, entries)
    return fig


_SOURCE_WORDS = {"zero": "0", "measured": "measured",
                 "entropy-bound": "log2 binom bound"}  # fmt: skip


def _information_label(rows: list[dict[str, Any]]) -> str:
    """Where a method's mask bits come from, e.g. ``"mask bits: measured at 2 of 3 points"``.

    Examples
    --------
    >>> _information_label([{"mask_info_source": "zero", "density": 0.1}])
    'mask bits: 0'
    >>> rows = [{"mask_info_source": s, "density": x}
    ...         for s, x in (("measured", 0.1), ("entropy-bound", 0.3))]
    >>> _information_label(rows)
    'mask bits: measured at 1 of 2 densities, else log2 binom bound'
    """
    by_density = {r["density"]: r["mask_info_source"] for r in rows}
    sources = set(by_density.values())
    if len(sources) == 1:
        return f"mask bits: {_SOURCE_WORDS[sources.pop()]}"
    n_measured = sum(v == "measured" for v in by_density.values())
    return (f"mask bits: measured at {n_measured} of {len(by_density)} densities, else "
            f"{_SOURCE_WORDS['entropy-bound']}")  # fmt: skip


def _method_style(i: int, dependent: bool) -> dict[str, Any]:
    color = f"C{i % 10}"
    if dependent:
        return dict(color=color, marker="s", mfc="none", mew=1.3, ms=5, ls="-", lw=1.3)
    return dict(color=color, marker="o", ms=4, ls="-", lw=1.3)


def ratio_figure(results: Any, *, axes: Any = None):
    """Chosen certified upper bound divided by its floor, per dataset; below 1 contradicts.

    Left panel: dense nets against ``p/(nd)``, held to the Bubeck–Sellke floor at ``p``; right
    panel (when there are pruned nets): pruned nets against ``p_eff/(nd)`` in bits, held to the
    No Free Prune floor at ``p_eff``. Each point is one dataset's chosen search member (the
    smallest certified upper bound among members that fit below the noise). A point below 1
    would be a certified fit below the noise under the floor: a contradiction of the theorem
    (or of its assumptions). The title counts such points.

    Examples
    --------
    >>> from robustlaw.compare.synthetic import synthetic_results
    >>> fig = ratio_figure(synthetic_results())
    >>> fig.get_suptitle()[:40]
    'Certified upper bound / floor: 0 of 36 c'
    """
    import matplotlib as mpl

    rows = [r for r in load_rows(results) if r["role"] == SEARCH]
    keys = ("n", "d", "method", "density", "width", "p")
    points = [(r, r["lip_certified"] / floor(r)) for members in group(rows, keys).values()
              for r in chosen_per_dataset(members).values()]  # fmt: skip
    panels = [("dense", "p", "p / (n d)   (dense: floor BS at p)")]
    if any(r["method"] != DENSE for r, _ in points):
        panels.append(("pruned", "p_eff", "p_eff / (n d)   (bits; pruned: floor NFP at p_eff)"))
    colors = nd_colors([(r["n"], r["d"]) for r, _ in points])
    below = sum(v < 1 for _, v in points)
    with mpl.rc_context(STYLE):
        fig, axs = new_axes(1, len(panels), axes, panel=(4.2, 3.4))
        entries = [(proxy(color=c, marker="o", ls=""), nd_label(*nd)) for nd, c in colors.items()]
        for ax, (kind, x, label) in zip(axs, panels, strict=True):
            sel = [(r, v) for r, v in points if (r["method"] == DENSE) == (kind == "dense")]
            for nd, color in colors.items():
                pts = [(r[x] / (r["n"] * r["d"]), v) for r, v in sel if (r["n"], r["d"]) == nd]
                if pts:
                    xs, ys = np.array(pts).T
                    ax.plot(xs, ys, ls="", marker="o" if kind == "dense" else "s", ms=4,
                            color=color, mfc=color if kind == "dense" else "none",
                            label=f"{nd_label(*nd)}: {kind}")  # fmt: skip
            ax.axhline(1.0, color="k", ls="--", lw=1, label="ratio 1")
            ax.text(0.02, 1.0, "below: a certified fit under the floor (would contradict)",
                    transform=ax.get_yaxis_transform(), va="bottom", fontsize=7)  # fmt: skip
            log_ticks(ax)
            ax.set(xlabel=label, title=f"{kind} nets: each point one dataset's chosen fit")
        axs[0].set_ylabel("chosen certified upper bound / floor")
        entries.append((proxy(color=_GRAY, marker="o", ls=""), "dense, against BS floor at p"))
        if len(panels) > 1:
            entries.append((proxy(color=_GRAY, marker="s", mfc="none", ls=""),
                            "pruned, against NFP floor at p_eff"))  # fmt: skip
        entries.append((proxy(color="k", ls="--", lw=1), "ratio 1: a certified fit below "
                        "would contradict the theorem"))  # fmt: skip
        fig.suptitle(f"Certified upper bound / floor: {below} of {len(points)} chosen fits "
                     "below 1 (fits below the noise only)")  # fmt: skip
        legend_outside(fig, axs, entries)
    return fig
