"""Settings, presets and work units of ``nfp-memorization`` (No Free Prune Fig. 1a).

Every seed draws its own dataset (``n_samples`` inputs with i.i.d. entries, i.i.d. uniform ±1
labels as two classes) and its own initialization of a ``hidden_layers``-hidden-layer ReLU MLP
of width ``width``. Each method prunes that net to the densities ``(1 - rate)**j`` for ``j`` in
``exponents``; each subnetwork trains with its mask fixed, by Adam on the training loss, until
the No Free Prune stopping rule holds (``THEORY.md`` §6.1, §6.2):

- the training loss changed by at most ``loss_tol`` between two consecutive epochs, or
- the training accuracy was unchanged for ``plateau_epochs`` consecutive epochs,

or until ``max_epochs``. Training is full batch, so an *epoch* cannot be one pass of several
minibatches: it is ``epoch_steps`` full-batch steps, and the rule is checked once per epoch
(``TrainOptions.check_every``). With ``epoch_steps = 1`` both halves of the rule read one
step's change and stop almost every net within a few steps (a pruned net's loss first moves
by less than 0.01 per step), so the default counts ten steps as an epoch; the docs page
shows how the result moves with it.

An example is memorized when its loss is at most ``fit_margin`` (cross-entropy: ln(2)/10 nats,
one tenth of the 50/50 loss; MSE: squared error 0.1).

Work units: one per method and block of ``seeds_per_unit`` seeds. All members of a unit
(seeds x densities) train as one ensemble, each member on its own seed's data. IMP follows its
own path: :func:`~robustlaw.empirical.pruning.imp_levels` prunes ``rate`` of the remaining
weights per level, globally by ``|θ_T|``, rewinding to the initialization, with the levels of
every seed of the unit advancing together; the tickets of the levels in ``exponents`` then train
as one ensemble like the other methods'.

References
----------
Kumar, Luo, Sellke, *No Free Prune: Information-Theoretic Barriers to Pruning at
Initialization*, ICML 2024 (arXiv:2402.01089), §4, Fig. 1a.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robustlaw._validation import check_choice, check_integer, check_interval, get_registered
from robustlaw.empirical.data import INPUT_SAMPLERS
from robustlaw.empirical.pruning import PRUNERS
from robustlaw.empirical.training import LOSSES
from robustlaw.errors import ValidationError
from robustlaw.experiments.registry import WorkUnit

__all__ = ["METHODS", "PAPER_EXPONENTS", "PRESETS", "MemorizationSettings", "expand"]

METHODS = ("imp", "synflow", "snip", "grasp", "random")
"""The methods of NFP Fig. 1a, in the paper's order of memorization at high sparsity."""

PAPER_EXPONENTS = tuple(range(10, 23))
"""NFP Fig. 1a's density grid ``0.8**j``, ``j`` about 10..22 (``THEORY.md`` §6.1)."""

_LOSSES = ("cross-entropy", "mse")


@dataclass(frozen=True, kw_only=True)
class MemorizationSettings:
    """Settings of ``nfp-memorization``.

    Parameters
    ----------
    n_seeds : int
        Seeds ``0 .. n_seeds - 1``; each draws its own dataset and initialization.
    seeds_per_unit : int
        Seeds per work unit (the last unit may hold fewer); a unit trains
        ``seeds x len(exponents)`` members as one ensemble. The trainer keeps finished members
        in every step until the whole ensemble stops, so on a CPU small units cost less (five
        seeds, the default); on a GPU larger ones fill the device better.
    n_samples, n_features : int
        ``n`` and ``d`` of the dataset (NFP: 30 and 30).
    inputs : str
        Input distribution, a key of ``INPUT_SAMPLERS``: ``"gaussian"`` (``N(0, I_d)``, the
        default: the paper says Gaussian entries without a scale) or another one.
    width, hidden_layers : int
        Hidden width and number of hidden layers of the ReLU MLP (NFP: two hidden layers; the
        width is not given, default 200).
    methods : tuple of str
        Pruning methods (keys of ``PRUNERS``); NFP Fig. 1a: IMP, SynFlow, SNIP, GraSP, random.
    exponents : tuple of int
        The ``j`` of the densities ``(1 - rate)**j`` (NFP: about 10..22), each at least 1.
    rate : float
        IMP's pruning rate per level; ``1 - rate`` is the base of every method's density grid.
    loss : {"cross-entropy", "mse"}
        Cross-entropy on two logits (the paper's), or MSE on one output with ±1 targets.
    fit_margin : float or None
        An example is memorized when its loss is at most this (nats for cross-entropy, squared
        error for MSE); None takes ln(2)/10 for cross-entropy and 0.1 for MSE.
    lr : float
        Adam's learning rate (NFP: 1e-2).
    epoch_steps : int
        Full-batch steps that count as one epoch of the stopping rule.
    loss_tol : float
        The loss rule: stop once the training loss moved by at most this between two
        consecutive epochs (NFP: 0.01; nats or squared error).
    plateau_epochs : int
        The accuracy rule: stop once the training accuracy is unchanged for this many
        consecutive epochs (NFP: 3).
    max_epochs : int
        The cap: at most ``max_epochs * epoch_steps`` steps.
    dtype : {"float32", "float64"}
        Floating-point type of training.
    """

    n_seeds: int = 50
    seeds_per_unit: int = 5
    n_samples: int = 30
    n_features: int = 30
    inputs: str = "gaussian"
    width: int = 200
    hidden_layers: int = 2
    methods: tuple[str, ...] = METHODS
    exponents: tuple[int, ...] = PAPER_EXPONENTS
    rate: float = 0.2
    loss: str = "cross-entropy"
    fit_margin: float | None = None
    lr: float = 1e-2
    epoch_steps: int = 10
    loss_tol: float = 0.01
    plateau_epochs: int = 3
    max_epochs: int = 300
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("methods", "exponents"):
            values = tuple(getattr(self, name))
            object.__setattr__(self, name, values)
            if not values or len(set(values)) < len(values):
                raise ValidationError(f"{name} must be non-empty without repeats, got {values}")
        for name in ("n_seeds", "seeds_per_unit", "n_features", "width", "hidden_layers",
                     "epoch_steps", "plateau_epochs", "max_epochs"):  # fmt: skip
            check_integer(getattr(self, name), name, minimum=1)
        check_integer(self.n_samples, "n_samples", minimum=2)
        get_registered(INPUT_SAMPLERS, self.inputs, "input distribution")
        for name in self.methods:
            get_registered(PRUNERS, name, "pruning method")
        for j in self.exponents:
            check_integer(j, "exponents entry", minimum=1)
        check_interval(self.rate, "rate", 0, 1, scalar=True)
        check_choice(self.loss, "loss", _LOSSES)
        if self.fit_margin is not None:
            check_interval(self.fit_margin, "fit_margin", 0, math.inf, scalar=True)
        for name in ("lr", "loss_tol"):
            check_interval(getattr(self, name), name, 0, math.inf, scalar=True)
        check_choice(self.dtype, "dtype", ("float32", "float64"))

    @property
    def margin(self) -> float:
        """The memorization threshold in loss units: ``fit_margin`` or the loss's default."""
        return LOSSES[self.loss]().fit_margin if self.fit_margin is None else self.fit_margin

    @property
    def densities(self) -> tuple[float, ...]:
        """The target densities ``(1 - rate)**j``, one per exponent."""
        return tuple((1 - self.rate) ** j for j in self.exponents)


def expand(settings: MemorizationSettings) -> tuple[WorkUnit, ...]:
    """One unit per method and block of seeds.

    Examples
    --------
    >>> settings = MemorizationSettings(n_seeds=30, seeds_per_unit=25, methods=("imp", "random"))
    >>> units = expand(settings)
    >>> [u.key for u in units]
    ['imp-seeds0-24', 'imp-seeds25-29', 'random-seeds0-24', 'random-seeds25-29']
    """
    units = []
    for method in settings.methods:
        for first in range(0, settings.n_seeds, settings.seeds_per_unit):
            last = min(first + settings.seeds_per_unit, settings.n_seeds) - 1
            params = {"method": method, "seeds": list(range(first, last + 1))}
            units.append((f"{method}-seeds{first}-{last}", params))
    return tuple(WorkUnit(key=k, index=i, params=p) for i, (k, p) in enumerate(units))


PRESETS = {
    "tiny": MemorizationSettings(n_seeds=16, seeds_per_unit=16, width=64, exponents=(4, 8, 12)),
    "default": MemorizationSettings(exponents=tuple(range(10, 31, 2))),
    "paper": MemorizationSettings(n_seeds=250),
}
"""``tiny``: seconds (tests); ``default``: minutes on a laptop CPU; ``paper``: NFP's 250 seeds."""
