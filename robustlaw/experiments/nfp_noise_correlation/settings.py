"""Settings, presets and work units of ``nfp-noise-correlation`` (No Free Prune Figs. 2–3).

The defaults are the paper's setup (``THEORY.md`` §6.3): ``n = 1000`` inputs with standard
normal entries in ``d = 50``; labels ``y = g(x) + z`` from a teacher ``g`` (a ReLU MLP with three
linear layers of width 50) and Gaussian noise ``z`` of variance ``sigma^2 = 1``, drawn once;
a student ReLU MLP with five linear layers of width 100, trained on the MSE with Adam, batch 64.
Each entry of ``seeds`` draws its own teacher, data and student. Three sweeps, each a work unit:

- ``"imp"`` (Figs. 2a, 3): iterative magnitude pruning, ``imp_rate`` of the remaining weights
  (global, weights only) after every ``epochs`` epochs, rewound to ``rewind_epoch``;
- ``"learning-rate"`` (Fig. 2b): no pruning, one run per entry of ``learning_rates``;
- ``"gradient-noise"`` (Fig. 2c): no pruning, learning rate ``lr``, one run per entry of
  ``gradient_noise_stds`` (additive i.i.d. Gaussian noise on every gradient entry).

References
----------
Kumar, Luo, Sellke, *No Free Prune: Information-Theoretic Barriers to Pruning at
Initialization*, ICML 2024 (arXiv:2402.01089), §6, Figs. 2–3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robustlaw._validation import (
    check_bool,
    check_choice,
    check_integer,
    check_interval,
    check_seed,
    get_registered,
)
from robustlaw.empirical.data.synthetic import INPUT_SAMPLERS
from robustlaw.empirical.pruning import next_remaining
from robustlaw.errors import ValidationError
from robustlaw.experiments.registry import WorkUnit

__all__ = ["PRESETS", "SWEEPS", "NoiseCorrelationSettings", "expand", "imp_kept_counts"]

SWEEPS = ("imp", "learning-rate", "gradient-noise")
"""The named parts of the experiment: NFP Fig. 2a/3, Fig. 2b and Fig. 2c."""


@dataclass(frozen=True, kw_only=True)
class NoiseCorrelationSettings:
    """Settings of ``nfp-noise-correlation``.

    Parameters
    ----------
    seeds : tuple of int
        One teacher, dataset, noise draw, fresh sample and student per entry.
    sweeps : tuple of str
        Which parts to run, names in :data:`SWEEPS` (default: all three).
    n_samples, n_features : int
        ``n`` training points in ``d`` dimensions.
    inputs : str
        The input distribution (a key of ``INPUT_SAMPLERS``); ``"gaussian"`` is ``N(0, I_d)``.
    noise_std : float
        ``sigma``, the standard deviation of the Gaussian label noise ``z``.
    teacher_hidden, student_hidden : tuple of int
        Hidden widths of the teacher and the student (linear layers = hidden layers + 1).
    batch_size : int
        Minibatch size; an epoch is ``n_samples // batch_size`` steps (the remainder of each
        epoch's permutation is left out).
    lr : float
        Adam's learning rate in the IMP and gradient-noise sweeps.
    epochs : int
        Epochs of every run: each IMP cycle, each learning rate, each noise level.
    fresh_samples : int
        Fresh inputs per seed that estimate ``E_mu f`` in the correlation.
    imp_cycles : int
        IMP cycles (cycle ``c`` keeps about ``(1 - imp_rate)**c`` of the weights).
    imp_rate : float
        Fraction of the remaining prunable weights pruned after each cycle, in (0, 1).
    rewind_epoch : int
        The epoch whose parameters the survivors restart from (0: the initialization); later
        cycles then train ``epochs - rewind_epoch`` epochs.
    prune_output_layer : bool
        Whether the output layer's weights are prunable (biases never are).
    learning_rates : tuple of float
        The learning rates of the learning-rate sweep.
    gradient_noise_stds : tuple of float
        Standard deviations of the gradient noise (0: none).
    dtype : {"float32", "float64"}
        Floating-point type of training and measurement.
    """

    seeds: tuple[int, ...] = tuple(range(25))
    sweeps: tuple[str, ...] = SWEEPS
    n_samples: int = 1000
    n_features: int = 50
    inputs: str = "gaussian"
    noise_std: float = 1.0
    teacher_hidden: tuple[int, ...] = (50, 50)
    student_hidden: tuple[int, ...] = (100, 100, 100, 100)
    batch_size: int = 64
    lr: float = 1e-3
    epochs: int = 100
    fresh_samples: int = 10_000
    imp_cycles: int = 15
    imp_rate: float = 0.2
    rewind_epoch: int = 0
    prune_output_layer: bool = True
    learning_rates: tuple[float, ...] = (1e-4, 2.5e-4, 5e-4, 7.5e-4, 1e-3)
    gradient_noise_stds: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("seeds", "sweeps", "teacher_hidden", "student_hidden", "learning_rates",
                     "gradient_noise_stds"):  # fmt: skip
            value = tuple(getattr(self, name))
            if not value:
                raise ValidationError(f"{name} must not be empty")
            if name not in ("teacher_hidden", "student_hidden") and len(set(value)) < len(value):
                raise ValidationError(f"{name} must not repeat an entry, got {value}")
            object.__setattr__(self, name, value)
        for seed in self.seeds:
            check_seed(seed, "seeds entry")
        for sweep in self.sweeps:
            check_choice(sweep, "sweeps entry", SWEEPS)
        check_integer(self.n_samples, "n_samples", minimum=2)
        check_integer(self.n_features, "n_features", minimum=1)
        get_registered(INPUT_SAMPLERS, self.inputs, "input distribution")
        check_interval(self.noise_std, "noise_std", 0, math.inf, scalar=True)
        for width in self.teacher_hidden + self.student_hidden:
            check_integer(width, "hidden width", minimum=1)
        check_integer(self.batch_size, "batch_size", minimum=1, maximum=self.n_samples)
        check_interval(self.lr, "lr", 0, math.inf, scalar=True)
        check_interval(self.learning_rates, "learning_rates", 0, math.inf)
        check_interval(self.gradient_noise_stds, "gradient_noise_stds", 0, math.inf,
                       closed="left")  # fmt: skip
        check_integer(self.epochs, "epochs", minimum=1)
        check_integer(self.fresh_samples, "fresh_samples", minimum=1)
        check_integer(self.imp_cycles, "imp_cycles", minimum=1)
        check_interval(self.imp_rate, "imp_rate", 0, 1, scalar=True)
        check_integer(self.rewind_epoch, "rewind_epoch", minimum=0, maximum=self.epochs - 1)
        check_bool(self.prune_output_layer, "prune_output_layer")
        check_choice(self.dtype, "dtype", ("float32", "float64"))
        if imp_kept_counts(self)[-1] < 1:
            raise ValidationError(
                f"imp_cycles={self.imp_cycles} at imp_rate={self.imp_rate} prunes every weight; "
                "use fewer cycles"
            )

    @property
    def prunable_weights(self) -> int:
        """``N``, the student's prunable weights (all weights, or all but the output layer's)."""
        sizes = (self.n_features, *self.student_hidden, 1)
        counts = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False)]
        return sum(counts if self.prune_output_layer else counts[:-1])


def imp_kept_counts(settings: NoiseCorrelationSettings) -> tuple[int, ...]:
    """The prunable weights each IMP cycle keeps: ``N``, then ``R - ceil(rate R)`` per cycle.

    Examples
    --------
    >>> imp_kept_counts(NoiseCorrelationSettings(imp_cycles=4))
    (35100, 28080, 22464, 17971)
    """
    counts = [settings.prunable_weights]
    for _ in range(settings.imp_cycles - 1):
        counts.append(next_remaining(counts[-1], settings.imp_rate))
    return tuple(counts)


def expand(settings: NoiseCorrelationSettings) -> tuple[WorkUnit, ...]:
    """One work unit per sweep (its members: every seed times every value, one ensemble).

    Examples
    --------
    >>> [u.key for u in expand(NoiseCorrelationSettings())]
    ['imp', 'learning-rate', 'gradient-noise']
    """
    return tuple(
        WorkUnit(key=name, index=i, params={"sweep": name})
        for i, name in enumerate(settings.sweeps)
    )


PRESETS = {
    "tiny": NoiseCorrelationSettings(
        seeds=(0, 1, 2),
        n_samples=128,
        n_features=32,
        teacher_hidden=(32, 32),
        student_hidden=(32, 32, 32, 32),
        batch_size=16,
        epochs=20,
        fresh_samples=256,
        imp_cycles=4,
    ),
    "default": NoiseCorrelationSettings(seeds=tuple(range(5)), fresh_samples=1000),
    "paper": NoiseCorrelationSettings(),
}
"""``tiny``: seconds, for tests; ``default``: the paper's sizes and 15 IMP cycles with 5 seeds
and 1000 fresh samples (minutes on a CPU); ``paper``: 25 seeds and 10^4 fresh samples."""
