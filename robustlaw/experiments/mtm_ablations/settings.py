"""Settings, presets and work units of ``mtm-ablations`` (Missing the Mark, ``METHODS.md`` §5).

The paper prunes ResNets and VGG-16 at the sparsities ``1 - 0.8^j`` with five methods at
initialization (Random, Magnitude, SNIP, GraSP, SynFlow) and two after training (magnitude
pruning after training, lottery-ticket rewinding), then ablates each method's mask: every layer's
mask shuffled, the weights redrawn, the scores inverted. Here every method, density, seed and
ablation is one member of one ensemble, in three configurations (:data:`.configurations.
CONFIGURATIONS`): an MLP on scikit-learn's digits (the default, CPU), the same digits as 1x8x8
images through a small CNN, and the small CNN on CIFAR-10 from a local folder (GPU).

Seeds: seed ``s`` draws a member's initialization, its minibatch order and its pruning
randomness (random scores, the scoring subset of SNIP and GraSP, the shuffle permutation); the
reinitialized member is redrawn with seed ``s + reinit_seed_offset``. Every method and ablation of
a seed therefore starts from the same weights and sees the same batches: comparisons are paired.

Work units: one per seed, that seed's whole grid (every method, density and ablation, and its
IMP path) trained as one ensemble; a killed run resumes at the first seed not stored. A member's
result does not depend on its batch-mates, so the split changes no number.

References
----------
Frankle, Dziugaite, Roy, Carbin, *Pruning Neural Networks at Initialization: Why Are We Missing
the Mark?*, ICLR 2021 (arXiv:2009.08576).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robustlaw._validation import check_choice, check_integer, check_interval, get_registered
from robustlaw.empirical.pruning import PRUNERS
from robustlaw.errors import ValidationError
from robustlaw.experiments.mtm_ablations.configurations import CONFIGURATIONS, DATA_SOURCES
from robustlaw.experiments.registry import WorkUnit

__all__ = ["ABLATION_NAMES", "MTM_METHODS", "PRESETS", "MtmAblationsSettings", "expand"]

MTM_METHODS = ("random", "magnitude", "snip", "grasp", "grasp-abs", "synflow",
               "magnitude-after", "imp")  # fmt: skip
"""The paper's methods by their :data:`~robustlaw.empirical.pruning.PRUNERS` names: five at
initialization, |GraSP| (the paper's improved GraSP), and two after training."""

ABLATION_NAMES = ("shuffle", "reinit", "invert")
"""The ablations: each layer's mask shuffled, the weights redrawn, the keep-scores negated."""

_INVERTIBLE = ("magnitude", "snip", "grasp", "grasp-abs", "synflow", "magnitude-after")


@dataclass(frozen=True, kw_only=True)
class MtmAblationsSettings:
    """Settings of ``mtm-ablations``.

    Parameters
    ----------
    configuration : {"digits-mlp", "digits-cnn", "cifar10-cnn"}
        Data and network (:data:`~.configurations.CONFIGURATIONS`).
    data_root : str or None
        The folder torchvision reads CIFAR-10 from (it holds ``cifar-10-batches-py``); required
        by ``cifar10-cnn``, unused by the digits configurations. Nothing is downloaded.
    n_train, n_test : int or None
        Random subsets of the training and test splits (None: all of them). Digits has no split
        of its own: :data:`~.configurations.DIGITS_TEST_SIZE` images are held out by
        ``split_seed``.
    split_seed : int
        Seeds the digits split and the subsets.
    width : int
        Width of the MLP's two hidden layers.
    cnn_channels : tuple of int
        Channels of the small CNN's two convolutions.
    init : {"kaiming-normal", "kaiming-uniform"}
        The networks' initialization: He-normal weights with zero biases (the paper's and
        OpenLTH's, default), or torch's default uniform ``U(±1/sqrt(fan_in))``. With the
        uniform init, global magnitude pruning at init empties the later layers of the MLP
        beyond about 92 % sparsity (their bound ``1/sqrt(fan_in)`` falls under the threshold).
    lr, momentum, weight_decay : float
        SGD with heavy-ball momentum, the paper's optimizer; a constant learning rate (the
        trainer has no schedule; the paper decays it tenfold twice).
    batch_size : int
        Minibatch size.
    epochs : int
        Training length in passes over the training set; every training (dense, sparse, each
        IMP level) runs ``epochs * (n_train // batch_size)`` steps.
    rewind_step : int
        ``k``: IMP and magnitude after training restart the survivors from ``θ_k`` (0 is the
        initialization, the original lottery ticket).
    seeds : tuple of int
        One paired run of every method and ablation per seed.
    methods : tuple of str
        Pruning methods (names in ``PRUNERS``); ``"imp"`` walks one 20%-per-level path per seed.
    levels : tuple of int
        The densities ``0.8**j`` of the grid, as ``j`` (the standard grid is j = 1..18).
    ablations : tuple of str
        A subset of :data:`ABLATION_NAMES`. Shuffle and reinit apply to every method (for Random
        they are a null control: the ablated member is again a random mask on a random init, so
        its change measures seed noise alone); invert applies to ``invert_methods``.
    invert_methods : tuple of str
        The methods whose inversion is run. Inverting a keep-score prunes what the method keeps;
        for ``magnitude-after`` that keeps the smallest trained weights (rewound like the
        original). IMP is not invertible here (its path is one batched walk of the original
        rule), and inverting Random only draws another random mask.
    reinit_seed_offset : int
        The reinitialized member of seed ``s`` is drawn with seed ``s + reinit_seed_offset``.
    dtype : {"float32", "float64"}
        Floating-point type of the data and the networks.
    """

    configuration: str = "digits-mlp"
    data_root: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    split_seed: int = 0
    width: int = 100
    cnn_channels: tuple[int, int] = (16, 32)
    init: str = "kaiming-normal"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 64
    epochs: int = 30
    rewind_step: int = 0
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    methods: tuple[str, ...] = MTM_METHODS
    levels: tuple[int, ...] = (3, 6, 9, 12, 14, 16, 18)
    ablations: tuple[str, ...] = ABLATION_NAMES
    invert_methods: tuple[str, ...] = _INVERTIBLE
    reinit_seed_offset: int = 1_000_000
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("seeds", "methods", "levels", "ablations", "invert_methods", "cnn_channels"):
            value = tuple(getattr(self, name))
            object.__setattr__(self, name, value)
            if len(set(value)) != len(value):
                raise ValidationError(f"{name} must not repeat an entry, got {value}")
        for name in ("seeds", "methods", "levels"):
            if not getattr(self, name):
                raise ValidationError(f"{name} must not be empty")
        config = get_registered(CONFIGURATIONS, self.configuration, "configuration")
        if DATA_SOURCES[config.data].needs_root and self.data_root is None:
            raise ValidationError(
                f"configuration {self.configuration!r} needs data_root, the folder holding the "
                f"{config.data} files"
            )
        for name in ("n_train", "n_test"):
            if getattr(self, name) is not None:
                check_integer(getattr(self, name), name, minimum=1)
        for name in ("split_seed", "rewind_step", "reinit_seed_offset"):
            check_integer(getattr(self, name), name)
        for name in ("width", "batch_size", "epochs"):
            check_integer(getattr(self, name), name, minimum=1)
        if len(self.cnn_channels) != 2:
            raise ValidationError(f"cnn_channels must hold 2 entries, got {self.cnn_channels}")
        for c in self.cnn_channels:
            check_integer(c, "cnn_channels entry", minimum=1)
        check_choice(self.init, "init", ("kaiming-normal", "kaiming-uniform"))
        check_interval(self.lr, "lr", 0, math.inf)
        check_interval(self.momentum, "momentum", 0, 1, closed="left")
        check_interval(self.weight_decay, "weight_decay", 0, math.inf, closed="left")
        for seed in self.seeds:
            check_integer(seed, "seeds entry")
        for method in self.methods:
            get_registered(PRUNERS, method, "pruning method")
        for level in self.levels:
            check_integer(level, "levels entry", minimum=1)
        for ablation in self.ablations:
            check_choice(ablation, "ablations entry", ABLATION_NAMES)
        for method in self.invert_methods:
            check_choice(method, "invert_methods entry", _INVERTIBLE)
            if method not in self.methods:
                raise ValidationError(
                    f"invert_methods entry {method!r} is not one of methods {self.methods}"
                )
        check_choice(self.dtype, "dtype", ("float32", "float64"))


def expand(settings: MtmAblationsSettings) -> tuple[WorkUnit, ...]:
    """One work unit per seed: every method, density and ablation of it, as one ensemble.

    Examples
    --------
    >>> [u.key for u in expand(PRESETS["tiny"])]
    ['digits-mlp/seed-0', 'digits-mlp/seed-1', 'digits-mlp/seed-2']
    """
    return tuple(
        WorkUnit(key=f"{settings.configuration}/seed-{seed}", index=i, params={"seed": seed})
        for i, seed in enumerate(settings.seeds)
    )


PRESETS = {
    "tiny": MtmAblationsSettings(width=32, epochs=8, seeds=(0, 1, 2), levels=(4, 10)),
    "default": MtmAblationsSettings(),
    "paper": MtmAblationsSettings(
        configuration="cifar10-cnn",
        data_root="data",
        lr=0.01,
        batch_size=128,
        epochs=160,
        seeds=(0, 1, 2),
        levels=tuple(range(1, 19)),
    ),
}
"""``tiny`` (seconds: width 32, 8 epochs, 3 seeds, two densities), ``default`` (digits MLP,
width 100, 30 epochs, 5 seeds, 7 densities from the standard grid; minutes on a CPU) and
``paper`` (the small CNN on CIFAR-10 from ``./data``, the whole standard grid, 160 epochs; a
GPU)."""
