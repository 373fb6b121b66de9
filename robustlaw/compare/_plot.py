"""Shared figure plumbing: rc style, panels, log ticks that never overlap, outside legends.

Figures are built without pyplot (no global state); styles apply only inside
:func:`matplotlib.rc_context`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from robustlaw.errors import ValidationError
from robustlaw.io import FIGURE_DPI

STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.dpi": FIGURE_DPI,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
"""rc settings used inside every figure function (never set globally)."""

LEGEND_WIDTH = 3.4
"""Inches kept free right of the panels for the figure's legend."""


def new_axes(
    nrows: int, ncols: int, axes: Any = None, *, panel: tuple[float, float] = (4.2, 3.4)
) -> tuple[Any, list[Any]]:
    """A figure of ``nrows x ncols`` panels with room for a legend on the right, or the given
    axes (at least ``nrows * ncols`` of them, row by row)."""
    from matplotlib.figure import Figure

    count = nrows * ncols
    if axes is not None:
        flat = list(np.ravel(axes))
        if len(flat) < count:
            raise ValidationError(f"axes must hold at least {count} axes, got {len(flat)}")
        return flat[0].figure, flat[:count]
    width = panel[0] * ncols + LEGEND_WIDTH
    height = panel[1] * nrows + 0.9
    # No layout engine (constrained layout triples drawing time); saving uses a tight bbox.
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.7 / width, right=1 - (LEGEND_WIDTH + 0.2) / width,
                        bottom=0.75 / height, top=1 - 0.75 / height,
                        wspace=0.32, hspace=0.55 * 3.4 / panel[1])  # fmt: skip
    return fig, list(np.ravel(fig.subplots(nrows, ncols, squeeze=False)))


def log_ticks(ax: Any, *, x: bool = True, y: bool = True) -> None:
    """Put the given axes on log scales with labels on major ticks only.

    Over less than about two and a half decades the major ticks are 1, 2 and 5 times powers of
    ten, labelled plainly; otherwise powers of ten (thinned by the locator when many). Minor
    ticks carry no labels, so labels never overlap. Call after everything is drawn (the limits
    decide).
    """
    from matplotlib.ticker import (
        FuncFormatter,
        LogFormatterSciNotation,
        LogLocator,
        NullFormatter,
    )

    data = {ax.xaxis: ax.dataLim.intervalx, ax.yaxis: ax.dataLim.intervaly}
    for on, axis, limits in ((x, ax.xaxis, ax.get_xlim), (y, ax.yaxis, ax.get_ylim)):
        low, high = data[axis]
        if not on or not (np.isfinite([low, high]).all() and 0 < low <= high):
            continue  # nothing positive drawn: a log scale would warn
        (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
        low, high = sorted(limits())
        decades = math.log10(high / low) if low > 0 and high > 0 else math.inf
        if decades < 2.6:
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(_plain))
        else:
            axis.set_major_locator(LogLocator(base=10, numticks=8))
            axis.set_major_formatter(LogFormatterSciNotation())
        axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10), numticks=12))
        axis.set_minor_formatter(NullFormatter())


def _plain(value: float, _pos: Any = None) -> str:
    """A tick label: ``0.05``, ``2``, ``300``; powers of ten as such outside [1e-3, 1e5)."""
    if value <= 0 or 1e-3 <= value < 1e5:
        return f"{value:g}"
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = value / 10.0**exponent
    head = "" if abs(mantissa - 1) < 1e-9 else f"{mantissa:g}\\times"
    return f"${head}10^{{{exponent}}}$"


def legend_outside(fig: Any, axes: Sequence[Any], entries: list[tuple[Any, str]], **kw: Any):
    """One legend for the figure, left-aligned just right of the rightmost panel.

    ``entries`` are ``(handle, label)`` pairs; repeated labels are kept once.
    """
    seen: dict[str, Any] = {}
    for handle, label in entries:
        seen.setdefault(label, handle)
    right = max(ax.get_position().x1 for ax in axes)
    top = max(ax.get_position().y1 for ax in axes)
    return fig.legend(list(seen.values()), list(seen), loc="upper left",
                      bbox_to_anchor=(right + 0.012, top), bbox_transform=fig.transFigure,
                      borderaxespad=0.0, **kw)  # fmt: skip


def proxy(**kw: Any) -> Any:
    """A legend handle drawn with the given line and marker properties."""
    from matplotlib.lines import Line2D

    return Line2D([], [], **kw)


def floor_line(ax: Any, x: np.ndarray, y: np.ndarray, holds: np.ndarray, *, color: Any,
               label: str) -> None:  # fmt: skip
    """A floor: dashed where its k-condition holds, dotted and faded where it fails."""
    order = np.argsort(x)
    x, y, holds = x[order], y[order], holds[order]
    if holds.any():
        ax.plot(x, np.where(holds, y, np.nan), "--", color=color, lw=1.1, label=label)
    if not holds.all():
        # Extend the failing stretch to its neighbours so the line has no gap.
        fail = ~holds
        fail[1:] |= ~holds[:-1]
        fail[:-1] |= ~holds[1:]
        ax.plot(x, np.where(fail, y, np.nan), ":", color=color, lw=1.1, alpha=0.55,
                label=f"{label} (k-condition fails)")  # fmt: skip


def nd_colors(sizes: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """One color per ``(n, d)``, in sorted order."""
    return {nd: f"C{i % 10}" for i, nd in enumerate(sorted(set(sizes)))}
