"""Tables and figures of a ``lor-scaling`` result: the smallest certified fit beside the floors.

Pure functions of a result table (a DataFrame or a list of dicts, one row per network):
nothing here trains, reads a store or imports :mod:`robustlaw.experiments`.

- :mod:`.tables`: :func:`smallest_fit_table` (per search group, the chosen fit over datasets,
  its controls and floors), :func:`construction_table`, :func:`fit_slope`,
  :func:`format_table`;
- :mod:`.slopes`: :func:`scaling_slopes` (log-log slope below ``p = nd`` with a bootstrap
  interval over datasets, and the plateau beyond), :func:`scaling_points`,
  :func:`fit_law_constant`;
- :mod:`.figures`: :func:`smallest_fit_figure`, :func:`slope_figure`;
- :mod:`.sparse_figures`: :func:`sparse_figure`, :func:`ratio_figure`;
- :mod:`.synthetic`: :func:`synthetic_results`, a table with known answers.

Every median is over fits below the noise only. A certified upper bound (``lip_certified``)
of such a fit brackets the smallest constant :math:`L^\\star` from above; only one *under a
floor* would contradict a theorem. Lower estimates bound their own network only.

>>> from robustlaw.compare import fit_slope
>>> round(fit_slope([1, 4, 16], [1, 0.5, 0.25], [0, 0, 0])["slope"], 12)
-0.5
"""

from robustlaw.compare.figures import slope_figure, smallest_fit_figure
from robustlaw.compare.slopes import fit_law_constant, scaling_points, scaling_slopes
from robustlaw.compare.sparse_figures import ratio_figure, sparse_figure
from robustlaw.compare.synthetic import synthetic_results
from robustlaw.compare.tables import (
    COLUMNS,
    LAW_SLOPE,
    construction_table,
    fit_slope,
    format_table,
    smallest_fit_table,
)

__all__ = [
    "COLUMNS",
    "LAW_SLOPE",
    "construction_table",
    "fit_law_constant",
    "fit_slope",
    "format_table",
    "ratio_figure",
    "scaling_points",
    "scaling_slopes",
    "slope_figure",
    "smallest_fit_figure",
    "smallest_fit_table",
    "sparse_figure",
    "synthetic_results",
]
