"""``random-pruning-generalization``: how random pruning changes what a two-layer net learns.

Yang, Liang, Guo, Wu & Wang prove, for a two-layer convolutional network on two-patch data
(a class signal ``y mu`` in one patch, Gaussian noise in the other; Cao, Chen, Belkin & Gu's
benign-overfitting setting), randomly pruned at initialization with fraction ``p`` and trained
by gradient descent: below a threshold on ``p`` the training loss goes to zero and the network
generalizes, with a bound that *improves* as ``p`` grows (pruning cuts the noise each filter
sees); past it, the training loss still goes to zero, by memorizing noise, but the test
accuracy is no better than chance. The experiment trains every ``(p, seed)`` pair as one
ensemble and logs test accuracy, training loss and the signal-learning and noise-memorization
coefficients along training (``METHODS.md`` §6). :mod:`.settings` holds the settings, presets
and work unit, :mod:`.record` one typed row per network and logged step, :mod:`.measure` the
pruning, training and logging, :mod:`.figures` the figures.

References
----------
Yang, Liang, Guo, Wu, Wang, *Theoretical Characterization of How Neural Network Pruning
Affects its Generalization*, arXiv:2301.00335. Cao, Chen, Belkin, Gu, *Benign Overfitting in
Two-layer Convolutional Neural Networks*, NeurIPS 2022.
"""

from robustlaw.experiments.random_pruning_generalization.figures import (
    accuracy_figure,
    coefficients_figure,
)
from robustlaw.experiments.random_pruning_generalization.measure import measure
from robustlaw.experiments.random_pruning_generalization.record import (
    RandomPruningGeneralizationRecord,
)
from robustlaw.experiments.random_pruning_generalization.settings import (
    PRESETS,
    RandomPruningGeneralizationSettings,
    expand,
)
from robustlaw.experiments.registry import Experiment, register

__all__ = ["EXPERIMENT", "PRESETS", "RandomPruningGeneralizationRecord",
           "RandomPruningGeneralizationSettings", "expand", "measure"]  # fmt: skip

EXPERIMENT = register(
    Experiment(
        name="random-pruning-generalization",
        description="Yang et al.: test accuracy and training loss of randomly pruned two-patch "
        "nets vs the pruning fraction",
        settings_cls=RandomPruningGeneralizationSettings,
        presets=PRESETS,
        expand=expand,
        measure=measure,
        record_type=RandomPruningGeneralizationRecord,
        figures={"accuracy": accuracy_figure, "coefficients": coefficients_figure},
    )
)
