"""``nfp-memorization``: how many random labels a pruned net can memorize (NFP Fig. 1a).

No Free Prune argues that a mask learned from the data (IMP) carries information that raises
the effective parameter count ``p_eff`` above the kept weights, while masks chosen at
initialization carry little. Memorization capacity is its proxy: every seed draws ``n = 30``
Gaussian points in ``d = 30`` with random ±1 labels and a two-hidden-layer ReLU net; each method
prunes it to the densities ``0.8**j``; the subnetworks train with cross-entropy and Adam until
converged; a point is memorized when its loss is at most ln(2)/10 (``THEORY.md`` §6.1).
:mod:`.settings` holds the settings, presets and work units, :mod:`.record` one row per seed,
method and density, :mod:`.measure` the pruning and training, :mod:`.figures` the figure.

References
----------
Kumar, Luo, Sellke, *No Free Prune: Information-Theoretic Barriers to Pruning at
Initialization*, ICML 2024 (arXiv:2402.01089), §4, Fig. 1a.
"""

from robustlaw.experiments.nfp_memorization.figures import memorization_figure
from robustlaw.experiments.nfp_memorization.measure import measure
from robustlaw.experiments.nfp_memorization.record import MemorizationRecord
from robustlaw.experiments.nfp_memorization.settings import (
    PRESETS,
    MemorizationSettings,
    expand,
)
from robustlaw.experiments.registry import Experiment, register

__all__ = ["EXPERIMENT", "PRESETS", "MemorizationRecord", "MemorizationSettings", "expand",
           "measure"]  # fmt: skip

EXPERIMENT = register(
    Experiment(
        name="nfp-memorization",
        description="fraction of random labels memorized vs density, per pruning method "
        "(No Free Prune Fig. 1a)",
        settings_cls=MemorizationSettings,
        presets=PRESETS,
        expand=expand,
        measure=measure,
        record_type=MemorizationRecord,
        figures={"memorized": memorization_figure},
    )
)
