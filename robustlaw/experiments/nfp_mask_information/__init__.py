"""``nfp-mask-information``: how many bits a pruning mask carries about its data (NFP Fig. 4).

No Free Prune charges a pruned fit ``I(m; D | init)`` bits for its mask (``THEORY.md`` §3.4).
In a toy model small enough to enumerate every dataset (6 labelled vertices of {±1}^3: 1792
datasets) this experiment computes that information exactly, and with the paper's plug-in
estimator over sampled datasets, for IMP, magnitude after training, SNIP and GraSP at every
number of pruned parameters (biases included), with SynFlow as the check: its mask ignores the
data, so it carries exactly 0 bits.

:mod:`.settings` holds the settings, presets and units, :mod:`.datasets` the finite dataset
space, :mod:`.masks` every method's masks, :mod:`.measure` the entropies, :mod:`.record` one
row per (variant, init, method, count, estimator) and :mod:`.figures` the figures.

References
----------
Kumar, Luo, Sellke, *No Free Prune: Information-Theoretic Barriers to Pruning at
Initialization*, ICML 2024 (arXiv:2402.01089), §4, Fig. 4.
"""

from robustlaw.experiments.nfp_mask_information.figures import (
    estimator_figure,
    information_figure,
)
from robustlaw.experiments.nfp_mask_information.measure import measure
from robustlaw.experiments.nfp_mask_information.record import MaskInformationRecord
from robustlaw.experiments.nfp_mask_information.settings import (
    PRESETS,
    MaskInformationSettings,
    expand,
)
from robustlaw.experiments.registry import Experiment, register

__all__ = [
    "EXPERIMENT",
    "PRESETS",
    "MaskInformationRecord",
    "MaskInformationSettings",
    "expand",
    "measure",
]

EXPERIMENT = register(
    Experiment(
        name="nfp-mask-information",
        description="exact and sampled mask information I(m; D | init) in a toy model "
        "(No Free Prune Fig. 4)",
        settings_cls=MaskInformationSettings,
        presets=PRESETS,
        expand=expand,
        measure=measure,
        record_type=MaskInformationRecord,
        figures={"information": information_figure, "estimators": estimator_figure},
    )
)
