"""The figure of ``nfp-memorization-images``: train accuracy against sparsity (NFP Fig. 1b)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robustlaw.experiments.summary import mean_se

__all__ = ["LABELS", "accuracy_figure", "accuracy_table"]

LABELS = {"imp": "IMP", "magnitude-after": "MagAfter", "random": "Random", "snip": "SNIP",
          "synflow": "SynFlow", "grasp": "GraSP"}  # fmt: skip
"""The paper's names of the methods."""


def accuracy_table(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """Per method and target density: mean sparsity, and train accuracy mean ± SE over seeds.

    Parameters
    ----------
    rows : sequence of mappings
        Loaded records of ``nfp-memorization-images``.

    Returns
    -------
    dict
        ``method -> [{"sparsity", "accuracy", "se", "n_seeds"}, ...]`` by increasing sparsity;
        accuracy and SE in percent (SE = sample standard deviation / sqrt(seeds), 0 for one
        seed).

    Examples
    --------
    >>> rows = [{"method": "imp", "target_density": 0.5, "sparsity": 0.5, "train_accuracy": a}
    ...         for a in (0.8, 1.0)]
    >>> accuracy_table(rows)["imp"][0]["accuracy"], round(accuracy_table(rows)["imp"][0]["se"], 6)
    (90.0, 10.0)
    """
    groups: dict[tuple[str, float], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["method"], r["target_density"]].append(r)
    table: dict[str, list[dict[str, float]]] = defaultdict(list)
    for (method, _), members in groups.items():
        accuracy, se = mean_se(100 * r["train_accuracy"] for r in members)
        table[method].append({
            "sparsity": float(np.mean([r["sparsity"] for r in members])),
            "accuracy": accuracy, "se": se, "n_seeds": len(members),
        })  # fmt: skip
    return {m: sorted(points, key=lambda p: p["sparsity"]) for m, points in table.items()}


def accuracy_figure(rows: Sequence[Mapping[str, Any]], ax=None):
    """Train accuracy (%) against sparsity, one line per method with SE bars, chance marked.

    The x axis is logarithmic in the density ``1 - sparsity`` (so 0.99 and 0.997 are apart),
    labelled with the sparsity, which grows to the right as in No Free Prune Fig. 1b.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    if ax is None:
        fig = Figure(figsize=(6.4, 4.4), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    table = accuracy_table(rows)
    for method, points in table.items():
        density = 1 - np.array([p["sparsity"] for p in points])
        ax.errorbar(
            density,
            [p["accuracy"] for p in points],
            yerr=[p["se"] for p in points],
            marker="o",
            markersize=4,
            capsize=3,
            label=LABELS.get(method, method),
        )
    first = rows[0]
    chance = 100 / first["n_classes"]
    ax.axhline(chance, color="gray", linestyle="--", linewidth=1, label=f"chance ({chance:g}%)")
    grid = sorted({round(p["sparsity"], 3) for points in table.values() for p in points})
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([1 - s for s in grid]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{s:.3f}" for s in grid], rotation=45)
    ax.invert_xaxis()
    seeds = max(p["n_seeds"] for points in table.values() for p in points)
    ax.set(xlabel="sparsity (fraction of weights pruned; log scale in 1 - sparsity)",
           ylabel="train accuracy (%)", ylim=(0, 102),
           title=f"{first['dataset']}, n = {first['n_samples']}, pixel noise variance "
                 f"{first['noise_variance']:g}, width {first['width']}\n"
                 f"mean ± SE over {seeds} seeds")  # fmt: skip
    ax.legend(fontsize="small")
    return fig
