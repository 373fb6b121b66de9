"""Settings, presets and work units of ``random-pruning-generalization`` (Yang et al.).

The setting of ``METHODS.md`` §6, after Cao, Chen, Belkin & Gu's two-patch model: ``n``
training examples ``x = [y mu, xi]``, a signal patch and a Gaussian noise patch
``xi ~ N(0, sigma_p^2 (I - mu mu^T / ||mu||^2))``
(:func:`~robustlaw.empirical.data.two_patch_data`);
a two-layer patch network with ``m`` filters per class and a fixed second layer
(:class:`~robustlaw.empirical.modules.TwoPatchNet`), its filters drawn from
``N(0, sigma_0^2 I)`` and pruned at initialization by an i.i.d. Bernoulli(``1 - p``) mask, then
trained by full-batch gradient descent with step ``eta`` on the logistic loss (cross-entropy
for more than two classes) for ``n_steps`` steps with the mask held fixed.

The paper's own simulation constants are not fixed here (``METHODS.md`` §6); the defaults are
the project's: ``n = 100``, ``d = 1000``, ``m = 20``, ``sigma_p = 1``, ``sigma_0 = 0.01``,
ReLU. Two are calibrated (see the docs page): ``||mu|| = 2.5`` (SNR
``||mu|| / (sigma_p sqrt(d)) = 0.079``) makes the dense net clearly benign, and ``eta = 2``
replaces the project's ``0.1`` so that the over-pruned nets reach a small training loss within
the CPU budget; Cao et al.'s step condition ``eta <~ n m / (sigma_p^2 d)`` is 2 here. The
``paper`` preset takes Cao et al.'s ReLU^3 at ``||mu|| = 6``, where the dense net overfits
harmfully and pruning improves it.

Seeds: seed ``s`` draws the data (train and test), the initialization and one uniform
``u`` per first-layer weight; the member ``(p, s)`` keeps the weights with ``u >= p``. So every
``p`` of a seed starts from the same weights on the same data, and its masks are nested: a
larger ``p`` prunes a superset. Each mask on its own is i.i.d. Bernoulli(``1 - p``).

Work units: one, holding every ``(p, seed)`` pair as a member of one ensemble.

References
----------
Yang, Liang, Guo, Wu, Wang, *Theoretical Characterization of How Neural Network Pruning
Affects its Generalization*, arXiv:2301.00335 (JMLR 26, 2025, as *Random Pruning
Over-parameterized Neural Networks Can Improve Generalization*). Cao, Chen, Belkin, Gu,
*Benign Overfitting in Two-layer Convolutional Neural Networks*, NeurIPS 2022.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from robustlaw._validation import check_choice, check_integer, check_interval
from robustlaw.empirical.data import MU_KINDS
from robustlaw.errors import ValidationError
from robustlaw.experiments.registry import WorkUnit

__all__ = ["ACTIVATIONS", "PRESETS", "RandomPruningGeneralizationSettings", "expand"]

ACTIVATIONS = ("relu", "relu-q")
"""ReLU (``METHODS.md`` §6's default) or ReLU to the power ``q`` (Cao et al.'s activation)."""


@dataclass(frozen=True, kw_only=True)
class RandomPruningGeneralizationSettings:
    """Settings of ``random-pruning-generalization``.

    Parameters
    ----------
    n_samples : int
        ``n``, training examples (project default 100).
    n_test : int
        Fresh test examples per seed, from the same distribution.
    patch_dim : int
        ``d``, the dimension of each patch; inputs have ``2 d`` features (project default 1000).
    filters_per_class : int
        ``m``, filters per class (project default 20).
    n_classes : int
        2 for the binary model (logistic loss, labels ±1); more for ``n_classes`` orthogonal
        signals ``mu_k`` and the cross-entropy loss.
    mu_norm : float
        ``||mu||`` [input units] (calibrated: 2.5).
    mu_kind : {"one-hot", "sparse", "dense"}
        The signal directions (one-hot: ``mu = ||mu|| e_1``).
    sigma_p : float
        Noise standard deviation per coordinate [input units] (project default 1).
    noise_orthogonal : bool
        Remove the signal directions from the noise (METHODS §6's default).
    init_std : float
        ``sigma_0``, the standard deviation of the initial filter entries (project default
        0.01).
    activation : {"relu", "relu-q"}
        The filters' activation.
    q : int
        The power of ``relu-q`` (Cao et al.: ``q > 2``; 3 here); unused by ``relu``.
    lr : float
        ``eta``, the gradient-descent step (calibrated: 2; project default 0.1).
    n_steps : int
        Full-batch gradient-descent steps.
    log_every : int
        Steps between logged rows (coefficients, losses, accuracies).
    pruning_fractions : tuple of float
        The grid of ``p`` in [0, 1).
    seeds : tuple of int
        One network per seed and ``p``.
    dtype : {"float32", "float64"}
        Floating-point type of the data and the networks.
    """

    n_samples: int = 100
    n_test: int = 1000
    patch_dim: int = 1000
    filters_per_class: int = 20
    n_classes: int = 2
    mu_norm: float = 2.5
    mu_kind: str = "one-hot"
    sigma_p: float = 1.0
    noise_orthogonal: bool = True
    init_std: float = 0.01
    activation: str = "relu"
    q: int = 3
    lr: float = 2.0
    n_steps: int = 3000
    log_every: int = 100
    pruning_fractions: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.97, 0.98,
                                            0.99, 0.995)  # fmt: skip
    seeds: tuple[int, ...] = tuple(range(16))
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("pruning_fractions", "seeds"):
            values = tuple(getattr(self, name))
            object.__setattr__(self, name, values)
            if not values:
                raise ValidationError(f"{name} must not be empty")
            if len(set(values)) != len(values):
                raise ValidationError(f"{name} must not repeat an entry, got {values}")
        for name in ("n_samples", "n_test", "patch_dim", "filters_per_class", "n_steps",
                     "log_every", "q"):  # fmt: skip
            check_integer(getattr(self, name), name, minimum=1)
        check_integer(self.n_classes, "n_classes", minimum=2)
        if self.patch_dim < self.n_classes:
            raise ValidationError(
                f"patch_dim must be at least n_classes ({self.n_classes}), got {self.patch_dim}"
            )
        for name in ("mu_norm", "sigma_p", "init_std", "lr"):
            check_interval(getattr(self, name), name, 0, math.inf, scalar=True)
        check_choice(self.mu_kind, "mu_kind", MU_KINDS)
        check_choice(self.activation, "activation", ACTIVATIONS)
        check_interval(self.pruning_fractions, "pruning_fractions", 0, 1, closed="left")
        for seed in self.seeds:
            check_integer(seed, "seeds entry")
        check_choice(self.dtype, "dtype", ("float32", "float64"))

    @property
    def power(self) -> int:
        """The activation's power: ``q`` for ``relu-q``, 1 for ``relu``."""
        return self.q if self.activation == "relu-q" else 1


def expand(settings: RandomPruningGeneralizationSettings) -> tuple[WorkUnit, ...]:
    """One work unit: every ``(p, seed)`` pair is a member of one ensemble.

    Examples
    --------
    >>> [u.key for u in expand(PRESETS["tiny"])]
    ['all']
    """
    return (WorkUnit(key="all", index=0, params={}),)


PRESETS = {
    "tiny": RandomPruningGeneralizationSettings(
        n_samples=40,
        n_test=400,
        patch_dim=1500,
        filters_per_class=5,
        mu_norm=2.5,
        lr=2.0,
        n_steps=400,
        log_every=50,
        pruning_fractions=(0.0, 0.5, 0.99),
        seeds=(0, 1, 2, 3),
    ),
    "default": RandomPruningGeneralizationSettings(),
    "paper": RandomPruningGeneralizationSettings(
        activation="relu-q",
        q=3,
        mu_norm=6.0,
        lr=0.5,
        n_steps=4000,
        pruning_fractions=tuple(round(0.05 * i, 2) for i in range(19))
        + (0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.985, 0.99, 0.995),
        seeds=tuple(range(32)),
    ),
}
PRESETS["relu3-cpu"] = replace(
    PRESETS["paper"],
    pruning_fractions=PRESETS["default"].pruning_fractions,
    seeds=tuple(range(8)),
)
"""``tiny`` (seconds; the tests' scale), ``default`` (the project defaults with ReLU, minutes
on a CPU), ``paper`` (Cao et al.'s ReLU^3 at ``||mu|| = 6``, where the dense net overfits
harmfully; 28 fractions, 32 seeds, for a GPU) and ``relu3-cpu`` (``paper`` at CPU scale: the
default's 11 fractions and 8 seeds)."""
