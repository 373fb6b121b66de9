"""Figures of ``random-pruning-generalization`` (Yang et al., arXiv:2301.00335).

``accuracy``: test and train accuracy, and the final training loss, against the pruning
fraction ``p`` (mean ± SE over seeds, chance marked). ``coefficients``: the signal-learning
and noise-memorization coefficients along training for a few ``p``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robustlaw.experiments.summary import mean_se

__all__ = ["accuracy_figure", "accuracy_table", "coefficient_curves", "coefficients_figure",
           "shown_fractions"]  # fmt: skip

_TICKS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998)


def accuracy_table(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Per pruning fraction, from each member's final row: means ± SE over seeds.

    Returns
    -------
    list of dict
        By increasing ``p``: ``p``, ``n_seeds``, ``test`` and ``test_se``, ``train`` and
        ``train_se`` (accuracies in percent), ``loss`` and ``loss_se`` (final training loss,
        nats), ``signal_neurons`` (mean over seeds), ``no_signal`` (share of seeds with no
        signal-keeping filter in any class) and ``density`` (mean kept fraction).

    Examples
    --------
    >>> rows = [{"final": True, "pruning_fraction": 0.5, "test_accuracy": a, "train_accuracy": 1.0,
    ...          "train_loss": 0.01, "signal_neurons": 20, "classes_without_signal": 0,
    ...          "n_classes": 2, "density": 0.5} for a in (0.8, 1.0)]
    >>> t = accuracy_table(rows)[0]
    >>> t["p"], t["test"], round(t["test_se"], 6), t["no_signal"]
    (0.5, 90.0, 10.0, 0.0)
    """
    groups: dict[float, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["final"]:
            groups[r["pruning_fraction"]].append(r)
    table = []
    for p in sorted(groups):
        g = groups[p]
        test, test_se = mean_se([100 * r["test_accuracy"] for r in g])
        train, train_se = mean_se([100 * r["train_accuracy"] for r in g])
        loss, loss_se = mean_se([r["train_loss"] for r in g])
        table.append({
            "p": p, "n_seeds": len(g), "test": test, "test_se": test_se, "train": train,
            "train_se": train_se, "loss": loss, "loss_se": loss_se,
            "signal_neurons": float(np.mean([r["signal_neurons"] for r in g])),
            "no_signal": float(np.mean([r["classes_without_signal"] == r["n_classes"]
                                        for r in g])),
            "density": float(np.mean([r["density"] for r in g])),
        })  # fmt: skip
    return table


def _density_axis(ax, fractions) -> None:
    """Log scale in the density ``1 - p``, inverted, ticks labelled with ``p``."""
    from matplotlib.ticker import FixedLocator, NullLocator

    low = 1 - max(fractions)
    ticks = [p for p in _TICKS if 1 - p >= low * 0.999]
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([1 - p for p in ticks]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{p:g}" for p in ticks], rotation=45)
    ax.set_xlim(1.3, low / 1.3)
    ax.set_xlabel("pruning fraction p (log scale in 1 - p)")


def accuracy_figure(rows: Sequence[Mapping[str, Any]]):
    """Test and train accuracy (left) and final training loss (right) against ``p``.

    Mean ± SE over seeds. The left panel also shows every member's test accuracy, marked by
    whether any of its classes kept a signal filter, the chance level and ``p = 1 - 1/m``.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.4), layout="constrained")
    acc_ax, loss_ax = fig.subplots(1, 2)
    table = accuracy_table(rows)
    first = next(r for r in rows if r["final"])
    density = np.array([1 - t["p"] for t in table])
    for key, label, color in (("test", "test", "C0"), ("train", "train", "C1")):
        acc_ax.errorbar(density, [t[key] for t in table], yerr=[t[f"{key}_se"] for t in table],
                        marker="o", markersize=4, capsize=3, color=color,
                        label=f"{label} accuracy (mean ± SE)")  # fmt: skip
    final = [r for r in rows if r["final"]]
    none = [r["classes_without_signal"] == r["n_classes"] for r in final]
    for flag, style in ((False, dict(marker=".", color="0.55", label="one net: a class kept "
                                     "a signal filter")),
                        (True, dict(marker="x", color="C3", label="one net: no class kept "
                                    "a signal filter"))):  # fmt: skip
        pts = [r for r, f in zip(final, none, strict=True) if f == flag]
        if pts:
            acc_ax.plot([1 - r["pruning_fraction"] for r in pts],
                        [100 * r["test_accuracy"] for r in pts], linestyle="none",
                        markersize=5, alpha=0.6, **style)  # fmt: skip
    chance = 100 / first["n_classes"]
    acc_ax.axhline(chance, color="gray", linestyle="--", linewidth=1, label=f"chance ({chance:g}%)")
    m = first["filters_per_class"]
    for ax in (acc_ax, loss_ax):
        ax.axvline(1 / m, color="gray", linestyle=":", linewidth=1, label=f"p = 1 - 1/m ({m = })")
        _density_axis(ax, [t["p"] for t in table])
    acc_ax.set(ylabel="accuracy (%)", ylim=(0, 103))
    acc_ax.legend(fontsize="small", loc="lower left")
    loss_ax.errorbar(density, [t["loss"] for t in table], yerr=[t["loss_se"] for t in table],
                     marker="o", markersize=4, capsize=3, color="C2",
                     label="final training loss (mean ± SE)")  # fmt: skip
    loss_ax.axhline(math.log(first["n_classes"]), color="gray", linestyle="--", linewidth=1,
                    label=f"loss of a constant output (ln {first['n_classes']})")  # fmt: skip
    loss_ax.set(yscale="log", ylabel="training loss (nats, log scale)")
    loss_ax.legend(fontsize="small", loc="upper left")
    seeds = max(t["n_seeds"] for t in table)
    fig.suptitle(
        f"two-patch data: n = {first['n_samples']}, d = {first['patch_dim']}, ||mu|| = "
        f"{first['mu_norm']:g}, sigma_p = {first['sigma_p']:g}; m = {m} filters per class, "
        f"{_activation(first)}; GD, eta = {first['lr']:g}, {first['step']} steps; "
        f"{seeds} seeds",
        fontsize="medium",
    )
    return fig


def _activation(row: Mapping[str, Any]) -> str:
    return "ReLU" if row["activation"] == "relu" else f"ReLU^{row['q']}"


def shown_fractions(fractions: Sequence[float], filters_per_class: int) -> list[float]:
    """The ``p`` the coefficient figure shows: the grid points nearest to 0, ``1 - 4/m``,
    ``1 - 1/m`` and the largest ``p``, without repeats.

    Examples
    --------
    >>> shown_fractions([0.0, 0.4, 0.8, 0.9, 0.95, 0.99], 20)
    [0.0, 0.8, 0.95, 0.99]
    """
    grid = sorted(fractions)
    targets = (0.0, 1 - 4 / filters_per_class, 1 - 1 / filters_per_class, grid[-1])
    return sorted({min(grid, key=lambda p: abs(p - t)) for t in targets})


def coefficient_curves(rows: Sequence[Mapping[str, Any]], key: str) -> dict[float, np.ndarray]:
    """``p -> array (n_logged_steps, 3)`` of step, mean and SE over seeds of column ``key``."""
    groups: dict[float, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[r["pruning_fraction"]][r["step"]].append(r[key])
    return {
        p: np.array([(step, *mean_se(v)) for step, v in sorted(steps.items())])
        for p, steps in groups.items()
    }


def coefficients_figure(rows: Sequence[Mapping[str, Any]]):
    """Signal learning (left) and noise memorization (right) along training, a few ``p``.

    Mean (line) ± SE (band) over seeds of the coefficients defined in
    :class:`~.record.RandomPruningGeneralizationRecord`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    first = rows[0]
    shown = shown_fractions({r["pruning_fraction"] for r in rows}, first["filters_per_class"])
    seeds = len({r["seed"] for r in rows})
    for ax, key, title in (
        (axes[0], "signal_coefficient", r"signal learning: mean over classes $j$ of "
         r"$\max_r\,\langle w_{j,r}\odot M_{j,r},\,\mu_j\rangle$"),
        (axes[1], "noise_coefficient", r"noise memorization: mean over $i$ of "
         r"$\max_r\,\langle w_{y_i,r}\odot M_{y_i,r},\,\xi_i\rangle$"),
    ):  # fmt: skip
        curves = coefficient_curves(rows, key)
        for color, p in enumerate(shown):
            step, mean, se = curves[p].T
            ax.plot(step, mean, color=f"C{color}", label=f"p = {p:g}")
            ax.fill_between(step, mean - se, mean + se, color=f"C{color}", alpha=0.25)
        ax.set(xlabel="gradient-descent step", ylabel="coefficient (pre-activation)")
        ax.set_title(title, fontsize="medium")
        ax.legend(fontsize="small")
    fig.suptitle(
        f"mean ± SE over {seeds} seeds; m = {first['filters_per_class']} filters per class, "
        f"{_activation(first)}, eta = {first['lr']:g}",
        fontsize="medium",
    )
    return fig
