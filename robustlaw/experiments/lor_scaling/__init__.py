"""``lor-scaling``: does the law of robustness hold? The smoothest fit against the floors.

For every ``(n, d)``, dataset and parameter count the experiment searches for the fit below the
noise with the smallest certified Lipschitz upper bound, runs two controls (the first fit and
full interpolation), builds the explicit interpolators of [BLN], and sets them beside the
Bubeck–Sellke and No Free Prune floors (``THEORY.md`` §7). :mod:`.settings` holds the settings,
presets and work units, :mod:`.record` one typed row per network, :mod:`.measure` the search and
the measurements; the figures are drawn by :mod:`robustlaw.compare`.

Falsification: only a certified upper bound of a fit below the noise that lies under a floor
contradicts the theorem. Lower estimates bound their own network only.

References
----------
Bubeck, Sellke, *A Universal Law of Robustness via Isoperimetry*, NeurIPS 2021
(arXiv:2105.12806). Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089).
Bubeck, Li, Nagaraj, *A law of robustness for two-layers neural networks*, COLT 2021
(arXiv:2009.14444).
"""

from robustlaw.compare import ratio_figure, slope_figure, smallest_fit_figure, sparse_figure
from robustlaw.experiments.lor_scaling.measure import measure
from robustlaw.experiments.lor_scaling.record import LorScalingRecord
from robustlaw.experiments.lor_scaling.settings import PRESETS, LorScalingSettings, expand
from robustlaw.experiments.registry import Experiment, register

__all__ = ["EXPERIMENT", "PRESETS", "LorScalingRecord", "LorScalingSettings", "expand", "measure"]

EXPERIMENT = register(
    Experiment(
        name="lor-scaling",
        description="smallest certified Lipschitz constant of fits below the noise vs the law's "
        "floors",
        settings_cls=LorScalingSettings,
        presets=PRESETS,
        expand=expand,
        measure=measure,
        record_type=LorScalingRecord,
        figures={
            "smallest-vs-p": smallest_fit_figure,
            "slope": slope_figure,
            "sparse": sparse_figure,
            "ratio": ratio_figure,
        },
    )
)
