"""Figures of ``nfp-noise-correlation``: No Free Prune Figs. 2a/3, 2b and 2c from its rows.

Every curve is the mean over seeds with a band of one standard error (none for one seed); the
dashed grey line is ``sigma^2``, the dotted one the seeds' mean ``(1/n) sum_i z_i^2`` (what a
fit that copies the noise reaches).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from robustlaw.compare._plot import STYLE, legend_outside
from robustlaw.experiments.summary import mean_se

__all__ = ["gradient_noise_figure", "imp_figure", "learning_rate_figure", "mean_and_se"]

Rows = list[dict[str, Any]]


def mean_and_se(values_by_x: dict[Any, list[float]]) -> tuple[np.ndarray, ...]:
    """Sorted ``x``, the mean and the standard error (``std / sqrt(count)``, ddof 1) at each.

    Examples
    --------
    >>> x, mean, se = mean_and_se({2: [1.0, 3.0], 1: [4.0]})
    >>> x.tolist(), mean.tolist(), se.tolist()
    ([1, 2], [4.0, 2.0], [0.0, 1.0])
    """
    xs = sorted(values_by_x)
    stats = [mean_se(values_by_x[x]) for x in xs]
    return np.asarray(xs), *(np.asarray(s, dtype=float) for s in zip(*stats, strict=True))


def _of(rows: Rows, sweep: str) -> Rows:
    return [r for r in rows if r["sweep"] == sweep]


def _band(ax: Any, x: np.ndarray, mean: np.ndarray, se: np.ndarray, **kw: Any) -> None:
    (line,) = ax.plot(x, mean, lw=1.3, **kw)
    ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.25, lw=0)


def _noise_lines(ax: Any, rows: Rows) -> None:
    ax.axhline(rows[0]["sigma2"], color="0.4", ls="--", lw=1, label=r"$\sigma^2$")
    power = np.mean([r["noise_power"] for r in rows if r["epoch"] == 0 and r["cycle"] == 0])
    ax.axhline(power, color="0.4", ls=":", lw=1, label=r"mean $\frac{1}{n}\sum_i z_i^2$")


def _empty(ax: Any, sweep: str) -> None:
    ax.text(0.5, 0.5, f"no {sweep!r} rows in these results", ha="center", va="center",
            transform=ax.transAxes)  # fmt: skip


def _curves_figure(rows: Rows, sweep: str, key: str, label: str, title: str, *, extra=None,
                   log_panel: bool = False):  # fmt: skip
    """Correlation against epoch, one mean ± SE curve per value of ``key``; ``extra(ax)`` draws
    more on the panel; ``log_panel`` adds the curves' means on a log scale beside it."""
    from matplotlib import colormaps, rc_context
    from matplotlib.figure import Figure

    with rc_context(STYLE):
        fig = Figure(figsize=(9.0 if log_panel else 5.0, 3.6))
        axes = fig.subplots(1, 2 if log_panel else 1, squeeze=False)[0]
        mine = _of(rows, sweep)
        if not mine:
            _empty(axes[0], sweep)
            return fig
        values = sorted({r[key] for r in mine})
        colors = colormaps["viridis"](np.linspace(0.0, 0.85, len(values)))
        for value, color in zip(values, colors, strict=True):
            by_epoch = defaultdict(list)
            for r in mine:
                if r[key] == value:
                    by_epoch[r["epoch"]].append(r["correlation"])
            x, mean, se = mean_and_se(by_epoch)
            _band(axes[0], x, mean, se, color=color, label=label.format(value))
            if log_panel:  # the mean where positive; the bands would cross zero
                axes[1].plot(x, np.where(mean > 0, mean, np.nan), color=color, lw=1.3)
        if extra is not None:
            extra(axes[0])
        for ax in axes:
            _noise_lines(ax, mine)
            ax.set(xlabel="epoch", ylabel="correlation with the label noise")
        n_seeds = len({r["seed"] for r in mine})
        axes[0].set_title(f"{title} (mean ± SE over {n_seeds} seeds)")
        if log_panel:
            axes[1].set(yscale="log", title="the same means, log scale")
        axes[-1].legend(*axes[0].get_legend_handles_labels(), loc="upper left",
                        bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)  # fmt: skip
    return fig


def learning_rate_figure(rows: Rows):
    """NFP Fig. 2b: the correlation per epoch, one curve per learning rate (no pruning)."""
    return _curves_figure(rows, "learning-rate", "learning_rate", "lr = {:.3g}",
                          "Fig. 2b: learning rate")  # fmt: skip


def gradient_noise_figure(rows: Rows):
    """NFP Fig. 2c: one curve per gradient-noise level; the learning-rate sweep's run at the
    same learning rate (when present) is drawn thin and dashed over the zero-noise curve."""
    noisy = _of(rows, "gradient-noise")
    lr = noisy[0]["learning_rate"] if noisy else None
    same = [r for r in _of(rows, "learning-rate") if r["learning_rate"] == lr]

    def overlay(ax: Any) -> None:
        if same:
            by_epoch = defaultdict(list)
            for r in same:
                by_epoch[r["epoch"]].append(r["correlation"])
            x, mean, _ = mean_and_se(by_epoch)
            ax.plot(x, mean, "k--", lw=0.8, label=f"learning-rate sweep, lr = {lr:.3g}")

    return _curves_figure(rows, "gradient-noise", "gradient_noise", "noise std = {:g}",
                          "Fig. 2c: gradient noise", extra=overlay, log_panel=True)  # fmt: skip


def _cycle_curves(rows: Rows) -> dict[int, dict[str, Any]]:
    """Per cycle: its kept fraction, the mean ± SE curve, and the per-seed peaks."""
    out = {}
    for cycle in sorted({r["cycle"] for r in rows}):
        mine = [r for r in rows if r["cycle"] == cycle]
        by_epoch, by_seed = defaultdict(list), defaultdict(list)
        for r in mine:
            by_epoch[r["epoch"]].append(r["correlation"])
            by_seed[r["seed"]].append(r["correlation"])
        peaks = [max(v) for v in by_seed.values()]
        out[cycle] = {"kept": np.mean([r["kept_fraction"] for r in mine]),
                      "curve": mean_and_se(by_epoch), "peak": mean_and_se({0: peaks})}  # fmt: skip
    return out


def imp_figure(rows: Rows):
    """NFP Figs. 2a and 3: the correlation through the IMP cycles (left) and each cycle's peak
    against the fraction of weights kept (right)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    with rc_context(STYLE):
        fig = Figure(figsize=(10.5, 3.8))
        left, right = fig.subplots(1, 2, width_ratios=(2.2, 1))
        fig.subplots_adjust(wspace=0.25)
        mine = _of(rows, "imp")
        if not mine:
            _empty(left, "imp")
            return fig
        cycles = _cycle_curves(mine)
        length = max(r["epoch"] for r in mine)
        for cycle, c in cycles.items():
            x, mean, se = c["curve"]
            _band(left, cycle * length + x, mean, se, color="C0",
                  label="IMP, mean ± SE" if cycle == 0 else None)  # fmt: skip
            if cycle:
                left.axvline(cycle * length, color="0.7", lw=0.6)
        _noise_lines(left, mine)
        top = left.secondary_xaxis("top")
        labels = [f"{100 * c['kept']:.3g}" for c in cycles.values()]
        top.set_xticks([(k + 0.5) * length for k in cycles], labels, fontsize=6.5)
        top.set_xlabel("% of weights kept in the cycle")
        n_seeds = len({r["seed"] for r in mine})
        left.set(xlabel=f"epoch (IMP cycles of {length} epochs; prune + rewind at grey lines)",
                 ylabel="correlation with the label noise",
                 title=f"Figs. 2a/3: IMP ({n_seeds} seeds)")  # fmt: skip
        kept = np.array([c["kept"] for c in cycles.values()])
        peak = np.array([c["peak"][1][0] for c in cycles.values()])
        peak_se = np.array([c["peak"][2][0] for c in cycles.values()])
        right.errorbar(kept, peak, yerr=peak_se, fmt="o-", color="C1", ms=3.5, capsize=2,
                       label="cycle's peak (mean ± SE)")  # fmt: skip
        _noise_lines(right, mine)
        right.set_xscale("log")
        step = -(-len(kept) // 6)  # at most six labels
        right.set_xticks(kept[::step], [f"{100 * k:.3g}" for k in kept[::step]])
        right.xaxis.set_minor_formatter(NullFormatter())
        right.invert_xaxis()
        right.set_ylim(0, 1.1 * max(peak.max(), mine[0]["sigma2"]))
        right.set(xlabel="% of weights kept", ylabel="peak correlation in the cycle",
                  title="Per-cycle peak")  # fmt: skip
        entries = [
            (h, lb)
            for ax in (left, right)
            for h, lb in zip(*ax.get_legend_handles_labels(), strict=True)
        ]
        legend_outside(fig, [left, right], entries)
    return fig
