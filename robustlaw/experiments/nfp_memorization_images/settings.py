"""Settings, presets and work units of ``nfp-memorization-images`` (No Free Prune Fig. 1b).

The paper's recipe (``THEORY.md`` §6.2): Gaussian noise of variance 3 added i.i.d. to every
pixel of the training images (pixels in [0, 1]), drawn once, labels unchanged; a two-hidden-layer
ReLU MLP of width 200 trained with Adam (learning rate 1e-3, batch 64, cross-entropy) until the
loss converges to within 0.01 or the train accuracy is unchanged for 3 consecutive epochs;
training accuracy, mean ± SE over 10 seeds; IMP along its 0.8^j path and the other methods at
several sparsities in 0.97–0.997.

Data: FashionMNIST (60k) read from a local folder for the ``paper`` preset; scikit-learn's
digits (1797 images of 8x8 pixels, shipped with scikit-learn) with the same noise recipe for
``tiny`` and ``default``, so nothing is ever downloaded.

Seeds: seed ``s`` draws the noise (and the subset, if any), initializes the network, orders the
minibatches and seeds the pruning scores. Every method of a seed therefore sees the same noisy
images and starts from the same weights: the comparison between methods is paired.

Work units: one per method; its members (seeds x densities, or seeds x recorded IMP levels)
train as one ensemble, each member on its own seed's data.

References
----------
Kumar, Luo, Sellke, *No Free Prune: Information-Theoretic Barriers to Pruning at
Initialization*, ICML 2024 (arXiv:2402.01089), §4 and Fig. 1b.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robustlaw._validation import check_choice, check_integer, check_interval, get_registered
from robustlaw.empirical.pruning import PRUNERS
from robustlaw.errors import ValidationError
from robustlaw.experiments.registry import WorkUnit

__all__ = ["DATASETS", "PAPER_METHODS", "PRESETS", "NfpMemorizationImagesSettings", "expand"]

DATASETS = ("digits", "fashion-mnist")
"""The image sets: scikit-learn's digits (built in) or FashionMNIST from ``data_root``."""

PAPER_METHODS = ("imp", "magnitude-after", "random", "snip", "synflow", "grasp")
"""The methods of Fig. 1b, by their names in :data:`~robustlaw.empirical.pruning.PRUNERS`."""


@dataclass(frozen=True, kw_only=True)
class NfpMemorizationImagesSettings:
    """Settings of ``nfp-memorization-images``.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}
        The images. FashionMNIST is read by torchvision from ``data_root`` and never
        downloaded.
    data_root : str or None
        The folder torchvision reads FashionMNIST from (it holds ``FashionMNIST/raw``);
        required for ``"fashion-mnist"``, unused for digits.
    n_samples : int or None
        Train on a random subset of this many images (drawn per seed); None takes them all.
    noise_variance : float
        Variance of the Gaussian noise added once to every pixel [pixel units squared, pixels
        in [0, 1]] (paper: 3).
    width : int
        Width of both hidden layers (paper: 200).
    lr : float
        Adam learning rate (paper: 1e-3).
    batch_size : int
        Minibatch size (paper: 64).
    converged_tol : float
        Stop once the mean training loss moved by at most this over ``converged_checks``
        consecutive checks [nats] (paper: "converges to within 0.01").
    converged_checks : int
        The number of checks the convergence window spans (2: the change since the previous
        check; the paper does not say).
    plateau_checks : int
        Stop once the train accuracy is unchanged for this many consecutive checks (paper: 3
        epochs).
    check_every : int or None
        Optimizer steps between stopping checks; None checks once per epoch, as the paper.
        Digits' epoch is 28 steps (60k FashionMNIST images make 937), too short for the
        rule: a sparse net whose loss has not started to fall stops at its first check.
    max_epochs : int
        The cap on training, in epochs (passes over the training set); with ``check_every``
        rounded down to a whole number of checks.
    seeds : tuple of int
        One paired run of every method per seed (paper: 10 seeds).
    methods : tuple of str
        Pruning methods (names in ``PRUNERS``); ``"imp"`` walks its 0.8^j path.
    imp_levels : tuple of int
        The IMP levels ``j`` (density about ``0.8**j``) that are trained and recorded; the
        path runs from level 1 to the largest.
    densities : tuple of float
        The target densities (fractions of weights kept) of every other method, in (0, 1).
    dtype : {"float32", "float64"}
        Floating-point type of the images and the networks.
    """

    dataset: str = "digits"
    data_root: str | None = None
    n_samples: int | None = None
    noise_variance: float = 3.0
    width: int = 200
    lr: float = 1e-3
    batch_size: int = 64
    converged_tol: float = 0.01
    converged_checks: int = 2
    plateau_checks: int = 3
    check_every: int | None = None
    max_epochs: int = 100
    seeds: tuple[int, ...] = tuple(range(10))
    methods: tuple[str, ...] = PAPER_METHODS
    imp_levels: tuple[int, ...] = tuple(range(15, 27))
    densities: tuple[float, ...] = (0.03, 0.02, 0.01, 0.005, 0.003)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("seeds", "methods", "imp_levels", "densities"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            if not getattr(self, name):
                raise ValidationError(f"{name} must not be empty")
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValidationError(f"{name} must not repeat an entry, got {getattr(self, name)}")
        check_choice(self.dataset, "dataset", DATASETS)
        if self.dataset == "fashion-mnist" and self.data_root is None:
            raise ValidationError(
                "dataset 'fashion-mnist' needs data_root, the folder holding FashionMNIST/raw"
            )
        if self.n_samples is not None:
            check_integer(self.n_samples, "n_samples", minimum=2)
        check_interval(self.noise_variance, "noise_variance", 0, math.inf, closed="left")
        for name in ("width", "batch_size", "converged_checks", "plateau_checks", "max_epochs"):
            check_integer(getattr(self, name), name, minimum=1)
        if self.check_every is not None:
            check_integer(self.check_every, "check_every", minimum=1)
        check_interval(self.lr, "lr", 0, math.inf)
        check_interval(self.converged_tol, "converged_tol", 0, math.inf, closed="left")
        for seed in self.seeds:
            check_integer(seed, "seeds entry")
        for name in self.methods:
            get_registered(PRUNERS, name, "pruning method")
        for level in self.imp_levels:
            check_integer(level, "imp_levels entry", minimum=1)
        check_interval(self.densities, "densities", 0, 1, closed="neither")
        check_choice(self.dtype, "dtype", ("float32", "float64"))


def expand(settings: NfpMemorizationImagesSettings) -> tuple[WorkUnit, ...]:
    """One work unit per method: all its seeds and densities (or IMP levels) in one ensemble.

    Examples
    --------
    >>> [u.key for u in expand(PRESETS["tiny"])]
    ['imp', 'magnitude-after', 'random', 'snip', 'synflow', 'grasp']
    """
    return tuple(
        WorkUnit(key=method, index=i, params={"method": method})
        for i, method in enumerate(settings.methods)
    )


# Digits: a 64-200-200-10 net has 54 800 weights against FashionMNIST's 198 800, for 1797
# images instead of 60 000. Density 0.8^j keeps 0.8^j * 54 800 weights: about n at j = 15
# (sparsity 0.965, where the paper's range starts) and n / 10 at j = 26 (0.997, where it ends).
# The default grid starts lower, at j = 10 (0.89), where every method still memorizes, so the
# figure shows where each one drops.
_DIGITS_LEVELS = (10, 13, 16, 18, 21, 24, 26)

# The stopping rule checks once per epoch. FashionMNIST's epoch is 60 000 / 64 = 937 Adam steps,
# digits' only 28: a sparse net whose loss has not yet started to fall would "converge" at its
# first check. The digits presets check every 937 steps, so the rule sees as many optimizer
# steps between checks as in the paper; the default cap, 134 digits epochs (3752 steps), is
# rounded down to four such checks (3748 steps).
_PAPER_EPOCH_STEPS = 60_000 // 64

PRESETS = {
    "tiny": NfpMemorizationImagesSettings(
        n_samples=256,
        width=48,
        check_every=16,
        max_epochs=60,
        seeds=(0, 1, 2),
        imp_levels=(4, 8),
        densities=(0.8**4, 0.8**8),
    ),
    "default": NfpMemorizationImagesSettings(
        check_every=_PAPER_EPOCH_STEPS,
        max_epochs=134,
        seeds=(0, 1, 2),
        imp_levels=_DIGITS_LEVELS,
        densities=tuple(0.8**j for j in _DIGITS_LEVELS),
    ),
    "paper": NfpMemorizationImagesSettings(dataset="fashion-mnist", data_root="data"),
}
"""``tiny`` (seconds; a 256-image digits subset, width 48), ``default`` (digits, minutes on a
CPU) and ``paper`` (FashionMNIST 60k from ``./data``, 10 seeds, width 200, for a GPU)."""
