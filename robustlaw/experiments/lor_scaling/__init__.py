"""``lor-scaling``: the Law of Robustness measured on dense and sparse interpolating MLPs.

The first plugin of the experiment framework: :mod:`.settings` (settings, presets, work
units), :mod:`.record` (one typed row per trained member), :mod:`.measure` (build, prune,
train and measure one unit), and its figures, drawn by :mod:`robustlaw.compare`.

References
----------
Bubeck, Sellke, *A Universal Law of Robustness via Isoperimetry*, NeurIPS 2021
(arXiv:2105.12806). Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089).
"""

from functools import partial

from robustlaw.compare.figures import band_figure, ratio_figure, slopes_figure
from robustlaw.experiments.lor_scaling.measure import measure
from robustlaw.experiments.lor_scaling.record import LorScalingRecord
from robustlaw.experiments.lor_scaling.settings import PRESETS, LorScalingSettings, expand
from robustlaw.experiments.registry import Experiment, register

__all__ = ["EXPERIMENT", "PRESETS", "LorScalingRecord", "LorScalingSettings", "expand", "measure"]

EXPERIMENT = register(
    Experiment(
        name="lor-scaling",
        description="Lipschitz constant of dense and pruned interpolating MLPs vs sqrt(nd/p_eff)",
        settings_cls=LorScalingSettings,
        presets=PRESETS,
        expand=expand,
        measure=measure,
        record_type=LorScalingRecord,
        figures={
            "band-vs-p": partial(band_figure, x="kept"),
            "band-vs-peff": partial(band_figure, x="p_eff"),
            "slopes": slopes_figure,
            "ratio": ratio_figure,
        },
    )
)
