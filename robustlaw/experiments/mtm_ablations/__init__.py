"""``mtm-ablations``: pruning at initialization against pruning after training, and ablations.

Missing the Mark compares five methods of pruning at initialization (Random, Magnitude, SNIP,
GraSP, SynFlow; |GraSP| is its improved GraSP) with magnitude pruning after training and
lottery-ticket rewinding across the sparsities ``1 - 0.8^j``, then ablates every method: each
layer's mask shuffled, the weights reinitialized, the scores inverted. Its findings: every
method at initialization beats Random but trails pruning after training, more so at higher
sparsity; shuffling and reinitializing do not hurt the methods at initialization (they only
choose per-layer densities) but do hurt those after training; inverting SNIP or SynFlow hurts
while inverting GraSP does not. :mod:`.settings` holds the settings and presets,
:mod:`.configurations` the data and networks, :mod:`.grid` the members and their pruning,
:mod:`.record` one typed row per network, :mod:`.measure` the training and testing,
:mod:`.figures` the figures and the summary table.

References
----------
Frankle, Dziugaite, Roy, Carbin, *Pruning Neural Networks at Initialization: Why Are We Missing
the Mark?*, ICLR 2021 (arXiv:2009.08576).
"""

from robustlaw.experiments.mtm_ablations.figures import ablation_figure, accuracy_figure
from robustlaw.experiments.mtm_ablations.measure import measure
from robustlaw.experiments.mtm_ablations.record import MtmAblationsRecord
from robustlaw.experiments.mtm_ablations.settings import PRESETS, MtmAblationsSettings, expand
from robustlaw.experiments.registry import Experiment, register

__all__ = ["EXPERIMENT", "PRESETS", "MtmAblationsRecord", "MtmAblationsSettings", "expand",
           "measure"]  # fmt: skip

EXPERIMENT = register(
    Experiment(
        name="mtm-ablations",
        description="Missing the Mark: test accuracy vs sparsity of pruning at init and after "
        "training, with shuffle, reinit and inversion ablations",
        settings_cls=MtmAblationsSettings,
        presets=PRESETS,
        expand=expand,
        measure=measure,
        record_type=MtmAblationsRecord,
        figures={"accuracy": accuracy_figure, "ablations": ablation_figure},
    )
)
