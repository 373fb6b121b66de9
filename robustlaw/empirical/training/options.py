"""``TrainOptions``: how to train an ensemble, composed of parts.

The parts are the optimizer (:mod:`.optimizers`), the loss (:mod:`.losses`), the stopping rule
(:mod:`.stopping`), the gradient noise (:mod:`.noise`), the penalty (:mod:`.penalties`) and the
constraint (:mod:`.constraints`): each a small frozen dataclass from a registry. A part may be
given by its registered name (``loss="cross-entropy"``), which builds that part with its
defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from robustlaw._validation import check_choice, check_integer
from robustlaw.empirical.training.constraints import Constraint, resolve_constraint
from robustlaw.empirical.training.losses import MSE, Loss, resolve_loss
from robustlaw.empirical.training.noise import GradientNoise, resolve_gradient_noise
from robustlaw.empirical.training.optimizers import Adam, Optimizer, resolve_optimizer
from robustlaw.empirical.training.penalties import Penalty, resolve_penalty
from robustlaw.empirical.training.stopping import MaxSteps, StoppingRule, resolve_stopping
from robustlaw.errors import ValidationError

__all__ = ["KERNELS", "TrainOptions"]

#: The values of :attr:`TrainOptions.kernels`.
KERNELS = ("auto", "sparse", "dense")


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """How to train an ensemble: its parts, the step cap, batching and snapshots.

    Parameters
    ----------
    optimizer : Optimizer or str
        :class:`~.optimizers.SGD`, :class:`~.optimizers.Adam` or :class:`~.optimizers.AdamW`
        (the learning rate, one per member if a tuple, lives here), or a name in
        :data:`~.optimizers.OPTIMIZERS`.
    loss : Loss or str
        :class:`~.losses.MSE`, :class:`~.losses.CrossEntropy` or :class:`~.losses.Logistic`
        (each with the ``fit_margin`` that counts an example as fitted), or a name in
        :data:`~.losses.LOSSES`.
    stopping : StoppingRule or str
        :class:`~.stopping.MaxSteps`, :class:`~.stopping.BelowNoise`,
        :class:`~.stopping.Memorized`, :class:`~.stopping.Converged`,
        :class:`~.stopping.AccuracyPlateau`, or :class:`~.stopping.AnyOf` (done once any of
        its rules is: No Free Prune's converged-or-plateau), or a name in
        :data:`~.stopping.STOPPING_RULES`.
    max_steps : int
        The cap on optimizer steps (0 trains nothing).
    batch_size : int or None
        None trains full batch; otherwise each member draws its own permutation every epoch
        and takes ``n_samples // batch_size`` batches of exactly ``batch_size`` examples.
    check_every : int or None
        Steps between stopping checks; None checks every step full batch (at no extra cost:
        the training forward pass is reused) and once per epoch with minibatches.
    gradient_noise : GradientNoise or str or None
        Noise added to every gradient entry before the step
        (:class:`~.noise.GaussianGradientNoise`); None adds none.
    penalty : Penalty or str or None
        A per-member term added to the objective (:class:`~.penalties.L2Penalty`); None adds
        none. The slot for spectral and gradient penalties.
    constraint : Constraint or str or None
        A projection applied to the active members right after every optimizer step
        (:class:`~.constraints.SpectralBall`: layers scaled back to spectral norm ``<= s``,
        THEORY §7.2), or a name in :data:`~.constraints.CONSTRAINTS`; None projects nothing.
    snapshot_steps : tuple of int
        Steps at which to keep a copy of the parameters (after that many updates; 0 = init).
    kernels : {"auto", "sparse", "dense"}
        How an MLP ensemble's masked layers are multiplied (other models always take
        ``"dense"``). ``"dense"``: stacked dense weights and batched BLAS products, the masks
        multiplied into the gradients. ``"sparse"``: each member's kept weights stored
        compressed and multiplied by compiled sparse kernels
        (:mod:`~robustlaw.empirical.training.sparse_kernels`), so the products and the
        optimizer skip the pruned weights; it needs the CPU, float32 or float64, no penalty,
        no constraint and a working C compiler. ``"auto"`` (default): ``"sparse"`` where it
        applies and at most
        :data:`~robustlaw.empirical.training.sparse_kernels.SPARSE_DENSITY_LIMIT` of the
        weights are kept, else ``"dense"``. Both compute the same function; they differ only
        in floating-point rounding (summation order).

    Examples
    --------
    >>> from robustlaw.empirical.training import Adam, BelowNoise
    >>> opts = TrainOptions(optimizer=Adam(lr=1e-2), stopping=BelowNoise(noise_level=1.0, eps=0.5),
    ...                     max_steps=2000)
    >>> opts.loss, opts.stopping.eps
    (MSE(fit_margin=0.1), 0.5)
    >>> TrainOptions(stopping="below_noise")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    robustlaw.errors.UnknownNameError: ...'below_noise': it is now called 'below-noise'
    """

    optimizer: Optimizer | str = Adam()
    loss: Loss | str = MSE()
    stopping: StoppingRule | str = MaxSteps()
    max_steps: int = 1000
    batch_size: int | None = None
    check_every: int | None = None
    gradient_noise: GradientNoise | str | None = None
    penalty: Penalty | str | None = None
    constraint: Constraint | str | None = None
    snapshot_steps: tuple[int, ...] = ()
    kernels: str = "auto"

    def __post_init__(self) -> None:
        parts = {
            "optimizer": resolve_optimizer(self.optimizer),
            "loss": resolve_loss(self.loss),
            "stopping": resolve_stopping(self.stopping),
        }
        if self.gradient_noise is not None:
            parts["gradient_noise"] = resolve_gradient_noise(self.gradient_noise)
        if self.penalty is not None:
            parts["penalty"] = resolve_penalty(self.penalty)
        if self.constraint is not None:
            parts["constraint"] = resolve_constraint(self.constraint)
        for name, part in parts.items():
            object.__setattr__(self, name, part)
        check_integer(self.max_steps, "max_steps", minimum=0)
        check_choice(self.kernels, "kernels", KERNELS)
        for name in ("batch_size", "check_every"):
            if getattr(self, name) is not None:
                check_integer(getattr(self, name), name, minimum=1)
        if isinstance(self.snapshot_steps, (str, bytes)) or not hasattr(
            self.snapshot_steps, "__iter__"
        ):
            raise ValidationError(
                f"snapshot_steps must be a tuple of integers, got {self.snapshot_steps!r}"
            )
        steps = tuple(check_integer(s, "snapshot_steps entry") for s in self.snapshot_steps)
        object.__setattr__(self, "snapshot_steps", steps)
        if self.stopping.needs_real_outputs and self.loss.integer_targets:
            raise ValidationError(
                f"stopping={self.stopping.name!r} needs real-valued outputs; loss="
                f"{self.loss.name!r} has class indices as targets; use 'mse' or 'logistic'"
            )
