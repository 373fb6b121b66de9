"""Figures and tables of ``mtm-ablations`` (Missing the Mark Figs. 2-6, in our setting).

Two figures: test accuracy against sparsity for every method, unablated, with the dense baseline
(:func:`accuracy_figure`); and, per method, the change in test accuracy that each ablation
causes (:func:`ablation_figure`). Error bars are the standard error over seeds (sample standard
deviation / sqrt(seeds)); an ablation's change is paired, ablated minus unablated member of the
same seed, so its error bar is the SE of those per-seed differences.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robustlaw.experiments.mtm_ablations.record import DENSE, NO_ABLATION
from robustlaw.experiments.summary import mean_se

__all__ = ["LABELS", "ablation_figure", "ablation_table", "accuracy_figure", "accuracy_table",
           "dense_accuracy"]  # fmt: skip

LABELS = {"random": "Random", "magnitude": "Magnitude", "snip": "SNIP", "grasp": "GraSP",
          "grasp-abs": "|GraSP|", "synflow": "SynFlow", "magnitude-after": "MagAfter",
          "imp": "IMP", DENSE: "dense"}  # fmt: skip
"""The paper's names of the methods."""

_AFTER_TRAINING = ("magnitude-after", "imp")
_ABLATION_STYLE = {"shuffle": ("tab:blue", "o"), "reinit": ("tab:orange", "s"),
                   "invert": ("tab:red", "v")}  # fmt: skip

Rows = Sequence[Mapping[str, Any]]


def dense_accuracy(rows: Rows) -> tuple[float, float]:
    """The dense baselines' test accuracy (%), mean and SE over seeds."""
    return mean_se([100 * r["test_accuracy"] for r in rows if r["method"] == DENSE])


def accuracy_table(rows: Rows, ablation: str = NO_ABLATION) -> dict[str, list[dict[str, float]]]:
    """Per method and level: mean sparsity, and test accuracy (%) mean ± SE over seeds.

    Returns
    -------
    dict
        ``method -> [{"level", "sparsity", "accuracy", "se", "n_seeds"}, ...]`` by increasing
        sparsity, for the members with this ``ablation`` (the dense baseline left out).

    Examples
    --------
    >>> rows = [{"method": "imp", "ablation": "none", "level": 3, "sparsity": 0.488,
    ...          "test_accuracy": a} for a in (0.9, 0.8)]
    >>> accuracy_table(rows)["imp"][0]["accuracy"]
    85.0
    """
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["method"] != DENSE and r["ablation"] == ablation:
            groups[r["method"], r["level"]].append(r)
    table: dict[str, list[dict[str, float]]] = defaultdict(list)
    for (method, level), members in sorted(groups.items(), key=lambda kv: kv[0][1]):
        acc, se = mean_se([100 * r["test_accuracy"] for r in members])
        table[method].append({"level": level, "accuracy": acc, "se": se,
                              "sparsity": float(np.mean([r["sparsity"] for r in members])),
                              "n_seeds": len(members)})  # fmt: skip
    return dict(table)


def ablation_table(rows: Rows) -> dict[tuple[str, str], list[dict[str, float]]]:
    """Per method, ablation and level: the paired change in test accuracy (points), mean ± SE.

    The change of seed ``s`` is the ablated member's test accuracy minus the unablated member's
    of the same method, level and seed.

    Returns
    -------
    dict
        ``(method, ablation) -> [{"level", "sparsity", "delta", "se", "n_seeds"}, ...]``.

    Examples
    --------
    >>> rows = [{"method": "snip", "ablation": a, "level": 5, "seed": s, "sparsity": 0.67,
    ...          "test_accuracy": acc} for a, s, acc in
    ...         [("none", 0, 0.9), ("none", 1, 0.8), ("shuffle", 0, 0.7), ("shuffle", 1, 0.8)]]
    >>> point = ablation_table(rows)["snip", "shuffle"][0]
    >>> round(point["delta"], 6), round(point["se"], 6)
    (-10.0, 10.0)
    """
    base = {(r["method"], r["level"], r["seed"]): r["test_accuracy"] for r in rows
            if r["ablation"] == NO_ABLATION}  # fmt: skip
    groups: dict[tuple[str, str, int], list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        key = (r["method"], r["level"], r["seed"])
        if r["ablation"] != NO_ABLATION and key in base:
            change = 100 * (r["test_accuracy"] - base[key])
            groups[r["method"], r["ablation"], r["level"]].append((change, r["sparsity"]))
    table: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    for (method, ablation, level), points in sorted(groups.items(), key=lambda kv: kv[0][2]):
        delta, se = mean_se([p[0] for p in points])
        table[method, ablation].append({"level": level, "delta": delta, "se": se,
                                        "sparsity": float(np.mean([p[1] for p in points])),
                                        "n_seeds": len(points)})  # fmt: skip
    return dict(table)


def _sparsity_axis(ax, sparsities: Sequence[float]) -> None:
    """Log scale in the density, labelled with the sparsity (%), growing to the right."""
    from matplotlib.ticker import FixedLocator, NullLocator

    grid = sorted({round(s, 4) for s in sparsities})
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([1 - s for s in grid]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{100 * s:.1f}" for s in grid], rotation=90)
    ax.invert_xaxis()


def _title(rows: Rows, what: str) -> str:
    first = rows[0]
    seeds = len({r["seed"] for r in rows})
    return (f"{first['configuration']} ({first['architecture']}), {first['n_train']} train / "
            f"{first['n_test']} test images\n{what}, mean ± SE over {seeds} seeds")  # fmt: skip


def accuracy_figure(rows: Rows, ax=None):
    """Test accuracy (%) against sparsity, one line per method, the dense baseline as a band.

    Methods at initialization are solid, those after training dashed. The x axis is logarithmic
    in the density ``1 - sparsity`` and labelled with the sparsity (%).
    """
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(7.5, 5.0), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    table = accuracy_table(rows)
    for method in [m for m in LABELS if m in table]:
        points = table[method]
        ax.errorbar([1 - p["sparsity"] for p in points], [p["accuracy"] for p in points],
                    yerr=[p["se"] for p in points], marker="o", markersize=3.5, capsize=2.5,
                    linestyle="--" if method in _AFTER_TRAINING else "-",
                    label=LABELS[method])  # fmt: skip
    dense, se = dense_accuracy(rows)
    ax.axhline(dense, color="black", linewidth=1, label=f"dense ({dense:.1f} ± {se:.1f}%)")
    ax.axhspan(dense - se, dense + se, color="black", alpha=0.1)
    _sparsity_axis(ax, [p["sparsity"] for points in table.values() for p in points])
    ax.set(xlabel="sparsity (%; log scale in the density)", ylabel="test accuracy (%)",
           ylim=(0, 100), title=_title(rows, "test accuracy against sparsity"))  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    return fig


def ablation_figure(rows: Rows, axes=None):
    """Per method, the test-accuracy change (points) each ablation causes, against sparsity.

    One panel per method; the zero line is the unablated method. Error bars: SE over seeds of the
    paired per-seed changes.
    """
    from matplotlib.figure import Figure

    table = ablation_table(rows)
    methods = [m for m in LABELS if any(k[0] == m for k in table)]
    if axes is None:
        ncols = min(4, len(methods))
        nrows = math.ceil(len(methods) / ncols)
        fig = Figure(figsize=(3.1 * ncols, 2.9 * nrows + 0.6), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    else:
        axes = np.atleast_1d(axes).ravel()
        fig = axes[0].figure
    sparsities = [p["sparsity"] for points in table.values() for p in points]
    for ax, method in zip(axes, methods, strict=False):
        for ablation, (color, marker) in _ABLATION_STYLE.items():
            points = table.get((method, ablation))
            if points:
                ax.errorbar([1 - p["sparsity"] for p in points], [p["delta"] for p in points],
                            yerr=[p["se"] for p in points], color=color, marker=marker,
                            markersize=3.5, capsize=2.5, label=ablation)  # fmt: skip
        ax.axhline(0, color="black", linewidth=1)
        _sparsity_axis(ax, sparsities)
        ax.set_title(LABELS[method])
        ax.grid(alpha=0.3)
    for ax in axes[len(methods) :]:
        ax.set_visible(False)
    fig.supxlabel("sparsity (%; log scale in the density)")
    fig.supylabel("test accuracy change (points): ablated - original")
    handles = {h.get_label(): h for ax in axes for h in ax.get_legend_handles_labels()[0]}
    fig.legend(list(handles.values()), list(handles), loc="outside upper right", ncols=3)
    fig.suptitle(_title(rows, "test accuracy change under each ablation (paired by seed)"))
    return fig
