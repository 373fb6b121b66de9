"""``nfp-noise-correlation``: how much of the label noise does a trained network carry?

No Free Prune (Kumar, Luo, Sellke, ICML 2024) reduces fitting below the noise to a large
correlation :math:`\\operatorname{corr}(f) = \\frac1n\\sum_i (f(x_i) - \\mathbb E_\\mu f) z_i`
with the label noise, which its information lemma caps by :math:`I(f^W; D)` (``THEORY.md``
§3.2–3.3). Its Figs. 2–3 track the correlation per epoch in a student–teacher task under
iterative magnitude pruning, several learning rates and several gradient-noise levels
(``THEORY.md`` §6.3). :mod:`.settings` holds the settings, presets and work units (one per
sweep), :mod:`.record` one row per student and epoch, :mod:`.measure` the training and the
per-epoch measurement, :mod:`.figures` the three figures.

References
----------
Kumar, Luo, Sellke, *No Free Prune: Information-Theoretic Barriers to Pruning at
Initialization*, ICML 2024 (arXiv:2402.01089).
"""

from robustlaw.experiments.nfp_noise_correlation.figures import (
    gradient_noise_figure,
    imp_figure,
    learning_rate_figure,
)
from robustlaw.experiments.nfp_noise_correlation.measure import measure
from robustlaw.experiments.nfp_noise_correlation.record import NoiseCorrelationRecord
from robustlaw.experiments.nfp_noise_correlation.settings import (
    PRESETS,
    SWEEPS,
    NoiseCorrelationSettings,
    expand,
)
from robustlaw.experiments.registry import Experiment, register

__all__ = [
    "EXPERIMENT",
    "PRESETS",
    "SWEEPS",
    "NoiseCorrelationRecord",
    "NoiseCorrelationSettings",
    "expand",
    "measure",
]

EXPERIMENT = register(
    Experiment(
        name="nfp-noise-correlation",
        description="No Free Prune Figs. 2-3: per-epoch correlation of a student with the label "
        "noise under IMP, learning rates and gradient noise",
        settings_cls=NoiseCorrelationSettings,
        presets=PRESETS,
        expand=expand,
        measure=measure,
        record_type=NoiseCorrelationRecord,
        figures={
            "imp": imp_figure,
            "learning-rate": learning_rate_figure,
            "gradient-noise": gradient_noise_figure,
        },
    )
)
