"""``nfp-memorization-images``: how much do pruned nets memorize of noisy images? (NFP Fig. 1b)

No Free Prune argues that a mask learned from the data carries information that counts as
parameters (``p_eff`` = kept weights + ``I(mask; data)``, ``THEORY.md`` §3.4), so at equal
sparsity masks found by training (IMP, magnitude after training) should memorize more than masks
found at initialization (Random, SNIP, SynFlow, GraSP). The experiment measures the training
accuracy of each method's subnetworks on images with heavy pixel noise, where fitting the
training set takes memorization. :mod:`.settings` holds the settings, presets and work units,
:mod:`.record` one typed row per network, :mod:`.measure` the pruning and training,
:mod:`.figures` the figure.

References
----------
Kumar, Luo, Sellke, *No Free Prune: Information-Theoretic Barriers to Pruning at
Initialization*, ICML 2024 (arXiv:2402.01089), §4, Fig. 1b.
"""

from robustlaw.experiments.nfp_memorization_images.figures import accuracy_figure
from robustlaw.experiments.nfp_memorization_images.measure import measure
from robustlaw.experiments.nfp_memorization_images.record import NfpMemorizationImagesRecord
from robustlaw.experiments.nfp_memorization_images.settings import (
    PRESETS,
    NfpMemorizationImagesSettings,
    expand,
)
from robustlaw.experiments.registry import Experiment, register

__all__ = ["EXPERIMENT", "PRESETS", "NfpMemorizationImagesRecord",
           "NfpMemorizationImagesSettings", "expand", "measure"]  # fmt: skip

EXPERIMENT = register(
    Experiment(
        name="nfp-memorization-images",
        description="No Free Prune Fig. 1b: train accuracy of pruned MLPs on noisy images vs "
        "sparsity",
        settings_cls=NfpMemorizationImagesSettings,
        presets=PRESETS,
        expand=expand,
        measure=measure,
        record_type=NfpMemorizationImagesRecord,
        figures={"accuracy": accuracy_figure},
    )
)
