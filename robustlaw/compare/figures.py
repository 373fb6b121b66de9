"""Figures of measured Lipschitz constants against the Law of Robustness.

Every function takes loaded results (a DataFrame or a list of dicts, as
:func:`robustlaw.experiments.load` returns) and optionally the axes to draw on, and returns the
:class:`matplotlib.figure.Figure`. Figures are built without pyplot (no global state); styles
apply only inside :func:`matplotlib.rc_context`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from robustlaw.compare.tables import LAW_SLOPE, slope_table
from robustlaw.io import FIGURE_DPI, rows_of

__all__ = [
    "STYLE",
    "band_figure",
    "ratio_figure",
    "slopes_figure",
]

STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7,
    "figure.dpi": FIGURE_DPI,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
"""rc settings used inside every figure function (never set globally)."""

X_LABELS = {
    "kept": "p = kept weights + biases",
    "p_eff": "p_eff (bits)",
}


def _new_axes(n_panels: int, axes: Sequence[Any] | None, width: float = 3.2, ncols: int = 4):
    """A figure with ``n_panels`` axes in rows of at most ``ncols`` (or the given axes)."""
    from matplotlib.figure import Figure

    if axes is not None:
        axes = list(np.ravel(axes))
        if len(axes) < n_panels:
            raise ValueError(f"axes must hold at least {n_panels} axes, got {len(axes)}")
        return axes[0].figure, axes
    cols = max(1, min(n_panels, ncols))
    rows = -(-n_panels // cols)
    # No layout engine: constrained layout triples the drawing time; saving uses a tight bbox.
    fig = Figure(figsize=(width * cols, 3.0 * rows))
    fig.subplots_adjust(wspace=0.3, hspace=0.45)
    grid = list(np.ravel(fig.subplots(rows, cols, squeeze=False)))
    for ax in grid[n_panels:]:
        ax.remove()
    return fig, grid[:n_panels]


def _log_axes(ax, x: bool = True) -> None:
    """Log scales; x minor ticks at 2 and 5 times powers of ten, labelled plainly."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if x:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.tick_params(axis="x", which="minor", labelsize=6)
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(NullFormatter())


def _by(rows, key):
    out = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return dict(sorted(out.items()))


def _medians(rows, x, ys):
    """Sorted x values and, for each y column, the median over rows sharing an x value."""
    by_x = _by([r for r in rows if r.get(x)], x)
    xs = np.array(list(by_x), dtype=float)
    cols = {
        y: np.array([np.median([r[y] for r in g if r.get(y)] or [np.nan]) for g in by_x.values()])
        for y in ys
    }
    return xs, cols


def band_figure(results: Any, *, x: str = "kept", axes: Sequence[Any] | None = None):
    """Measured Lipschitz band against ``x`` (``"kept"`` or ``"p_eff"``), one panel per method.

    The shaded band runs from the sound lower estimate to the certified upper bound (medians
    over seeds, members that fit below the noise level); the dashed line is the No Free Prune
    bound, the dotted one the law's shape ``sqrt(n d / x)``, both on log-log axes.
    """
    import matplotlib as mpl

    rows = [r for r in rows_of(results) if r.get("fit_below_noise")] or rows_of(results)
    methods = _by(rows, "method")
    with mpl.rc_context(STYLE):
        fig, axs = _new_axes(len(methods), axes)
        for ax, (method, mrows) in zip(axs, methods.items(), strict=False):
            for i, ((n, d), grows) in enumerate(_by_nd(mrows).items()):
                color = f"C{i}"
                xs, c = _medians(grows, x, ("lip_lower", "lip_upper", "bound_nfp"))
                label = f"n={n}, d={d}"
                ax.fill_between(xs, c["lip_lower"], c["lip_upper"], color=color, alpha=0.25)
                ax.plot(xs, c["lip_lower"], "o-", color=color, ms=3, label=f"{label}: measured")
                ax.plot(xs, c["bound_nfp"], "--", color=color, lw=1, label=f"{label}: NFP bound")
                ax.plot(xs, np.sqrt(n * d / xs), ":", color=color, lw=1, label="sqrt(nd/x)")
            _log_axes(ax)
            ax.set(title=method, xlabel=X_LABELS.get(x, x))
        axs[0].set_ylabel("Lipschitz constant (output per unit input)")
        axs[0].legend(loc="best")
    return fig


def _by_nd(rows):
    out = defaultdict(list)
    for r in rows:
        out[(r["n"], r["d"])].append(r)
    return dict(sorted(out.items()))


def slopes_figure(results: Any, *, ax: Any = None):
    """Fitted log-log slopes (with confidence intervals) per method, against the law's -1/2."""
    import matplotlib as mpl

    table = rows_of(slope_table(results, as_frame=False))
    with mpl.rc_context(STYLE):
        fig, (ax,) = _new_axes(1, None if ax is None else [ax], width=5.0)
        methods = sorted({r["method"] for r in table})
        series = sorted({(r["x"], r["y"]) for r in table})
        width = 0.8 / max(len(series), 1)
        for j, (xk, yk) in enumerate(series):
            pts = [
                (i, r)
                for i, m in enumerate(methods)
                for r in table
                if r["method"] == m and (r["x"], r["y"]) == (xk, yk) and r["status"] == "ok"
            ]
            if not pts:
                continue
            pos = np.array([i for i, _ in pts]) + (j - (len(series) - 1) / 2) * width
            slope = np.array([r["slope"] for _, r in pts])
            err = np.array([[r["slope"] - r["ci_low"], r["ci_high"] - r["slope"]] for _, r in pts])
            ax.errorbar(pos, slope, yerr=err.T, fmt="o", ms=4, capsize=2, label=f"{yk} vs {xk}")
        ax.axhline(LAW_SLOPE, color="k", ls="--", lw=1, label="law: -1/2")
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
        ax.set(ylabel="log-log slope (95% CI)", title="Fitted slopes of Lipschitz vs parameters")
        ax.legend(loc="best")
    return fig


def ratio_figure(results: Any, *, ax: Any = None):
    """Measured lower estimate divided by the No Free Prune bound, against density per method."""
    import matplotlib as mpl

    rows = [r for r in rows_of(results) if r.get("fit_below_noise")] or rows_of(results)
    rows = [{**r, "ratio": r["lip_lower"] / r["bound_nfp"]} for r in rows if r.get("lip_lower")]
    with mpl.rc_context(STYLE):
        fig, (ax,) = _new_axes(1, None if ax is None else [ax], width=5.0)
        for i, (method, mrows) in enumerate(_by(rows, "method").items()):
            # Dense networks all have density 1: one marker per width, stacked at x = 1.
            dense = method == "dense"
            xs, c = _medians(mrows, "kept" if dense else "density", ("ratio",))
            xs = np.ones_like(xs) if dense else xs
            ax.plot(xs, c["ratio"], "s" if dense else "o-", color=f"C{i}", label=method)
        ax.axhline(1.0, color="k", ls="--", lw=1, label="bound (ratio 1)")
        _log_axes(ax)
        ax.set(xlabel="density (fraction of weights kept)")
        ax.set(ylabel="lip_lower / NFP bound", title="Measured-to-bound ratio")
        ax.legend(loc="best")
    return fig
