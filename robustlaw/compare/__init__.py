"""Measured-versus-bound tables and figures: pure functions of a result table.

Nothing here trains, reads a store or imports :mod:`robustlaw.experiments`.

>>> from robustlaw.compare import fit_slope
>>> round(fit_slope([1, 4, 16], [1, 0.5, 0.25], [0, 0, 0])["slope"], 12)
-0.5
"""

from robustlaw.compare.figures import band_figure, ratio_figure, slopes_figure
from robustlaw.compare.tables import (
    LAW_SLOPE,
    band_table,
    fit_slope,
    format_table,
    slope_table,
)

__all__ = [
    "LAW_SLOPE",
    "band_figure",
    "band_table",
    "fit_slope",
    "format_table",
    "ratio_figure",
    "slope_table",
    "slopes_figure",
]
