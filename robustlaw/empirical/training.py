"""Batched training of K masked networks to interpolation, with per-member stopping.

All members train at once on stacked tensors (METHODS.md §7): the objective is the sum over
members of each member's mean loss, the optimizer acts element-wise (:mod:`.optim`), and a
boolean ``active`` flag freezes members whose stopping rule (:mod:`.stopping`) is met. Masks
hold at every step: parameters are zeroed at pruned entries on entry and gradients are zeroed
there before every update, so the optimizer's moments stay exactly zero there, every update is
exactly zero there, and pruned weights stay exactly zero throughout and are never revived.

Randomness (minibatch order, gradient noise) comes from one ``torch.Generator`` per member,
seeded from the member's seed, so a member's trajectory does not depend on K or on its
batch-mates: training members together equals training them one by one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from robustlaw._validation import check_interval, check_seed, check_tensor, get_registered
from robustlaw.empirical._train_loop import Trainer, zero_pruned
from robustlaw.empirical.ensemble import Ensemble, check_masks
from robustlaw.empirical.losses import LOSSES, prepare_targets
from robustlaw.empirical.modules import ModuleEnsemble
from robustlaw.empirical.optim import OPTIMIZERS
from robustlaw.empirical.stopping import STOPPING_RULES
from robustlaw.errors import ValidationError

__all__ = ["TrainOptions", "TrainRecord", "TrainResult", "train_ensemble", "train_params"]

logger = logging.getLogger(__name__)

Params = dict[str, torch.Tensor]


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """How to train an ensemble.

    Parameters
    ----------
    optimizer : {"adam", "sgd"}
        A key of :data:`robustlaw.empirical.optim.OPTIMIZERS`.
    lr : float or tuple of float
        Learning rate, or one per member.
    momentum : float
        SGD heavy-ball momentum in [0, 1) (``torch.optim.SGD`` semantics).
    betas : tuple of float
        Adam's moment decay rates.
    adam_eps : float
        Adam's denominator constant.
    loss : {"mse", "cross_entropy", "logistic"}
        A key of :data:`robustlaw.empirical.losses.LOSSES`.
    batch_size : int or None
        None trains full batch; otherwise each member draws its own permutation every epoch
        and takes ``n_samples // batch_size`` batches of exactly ``batch_size`` examples.
    max_steps : int
        The cap on optimizer steps.
    stopping : {"max_steps", "below_noise", "memorized", "converged"}
        A key of :data:`robustlaw.empirical.stopping.STOPPING_RULES`.
    noise_level : float
        sigma^2 of the data, for ``below_noise`` (THEORY.md §1.1).
    fit_eps : float
        epsilon of ``below_noise``: fitted when clipped MSE <= sigma^2 - epsilon.
    fit_margin : float or None
        An example is fitted when its loss is at most this; None uses the loss's default
        (ln(2)/10 nats for cross-entropy and logistic, squared error 0.1 for MSE).
    converge_tol : float
        ``converged``: the loss range over the window must be at most this.
    converge_window : int
        ``converged``: the number of checks the window spans.
    check_every : int or None
        Steps between stopping checks; None checks every step full batch (at no extra cost:
        the training forward pass is reused) and once per epoch with minibatches.
    grad_noise_std : float
        Standard deviation of Gaussian noise added to every gradient entry before the step.
    snapshot_steps : tuple of int
        Steps at which to keep a copy of the parameters (after that many updates; 0 = init).
    """

    optimizer: str = "adam"
    lr: float | tuple[float, ...] = 1e-3
    momentum: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    loss: str = "mse"
    batch_size: int | None = None
    max_steps: int = 1000
    stopping: str = "max_steps"
    noise_level: float = 1.0
    fit_eps: float = 0.1
    fit_margin: float | None = None
    converge_tol: float = 1e-4
    converge_window: int = 10
    check_every: int | None = None
    grad_noise_std: float = 0.0
    snapshot_steps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        get_registered(OPTIMIZERS, self.optimizer, "optimizer")
        get_registered(LOSSES, self.loss, "loss")
        get_registered(STOPPING_RULES, self.stopping, "stopping rule")
        if isinstance(self.lr, (list, tuple)):
            object.__setattr__(self, "lr", tuple(float(v) for v in self.lr))
        check_interval(self.lr, "lr", 0, math.inf, closed="neither")
        check_interval(self.momentum, "momentum", 0, 1, closed="left")
        check_interval(self.betas, "betas", 0, 1, closed="left")
        check_interval(self.adam_eps, "adam_eps", 0, math.inf, closed="left")
        for name in ("batch_size", "check_every"):
            value = getattr(self, name)
            if value is not None:
                _check_positive_int(value, name)
        _check_positive_int(self.max_steps, "max_steps", allow_zero=True)
        _check_positive_int(self.converge_window, "converge_window")
        check_interval(self.noise_level, "noise_level", 0, math.inf, closed="left")
        check_interval(self.fit_eps, "fit_eps", 0, math.inf, closed="left")
        if self.fit_margin is not None:
            check_interval(self.fit_margin, "fit_margin", 0, math.inf, closed="left")
        check_interval(self.converge_tol, "converge_tol", 0, math.inf, closed="left")
        check_interval(self.grad_noise_std, "grad_noise_std", 0, math.inf, closed="left")
        object.__setattr__(self, "snapshot_steps", tuple(self.snapshot_steps))
        for s in self.snapshot_steps:
            _check_positive_int(s, "snapshot_steps entry", allow_zero=True)
        if self.stopping == "below_noise" and self.loss == "cross_entropy":
            raise ValidationError(
                "stopping='below_noise' needs real-valued outputs; use loss='mse' or 'logistic'"
            )

    @property
    def margin(self) -> float:
        """The per-example fitted threshold in use."""
        return LOSSES[self.loss].default_margin if self.fit_margin is None else self.fit_margin


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainRecord:
    """Per-member outcome of training; every field is a NumPy array of shape ``(n_members,)``.

    Attributes
    ----------
    n_steps : numpy.ndarray of int64
        Optimizer steps each member took.
    final_loss : numpy.ndarray of float64
        Final mean training loss over the whole training set.
    fit_fraction : numpy.ndarray of float64
        Fraction of training examples fitted (per-example loss at most the margin).
    rule_met : numpy.ndarray of bool
        Whether the stopping rule was met (for ``max_steps``: the cap was reached).
    """

    n_steps: np.ndarray
    final_loss: np.ndarray
    fit_fraction: np.ndarray
    rule_met: np.ndarray


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainResult:
    """Trained parameters, per-member records, snapshots and the loss history.

    Attributes
    ----------
    params : dict of str to torch.Tensor
        Trained stacked parameters, pruned entries exactly zero.
    record : TrainRecord
        Per-member outcome.
    snapshots : dict of int to dict
        ``step -> params`` after that many updates, for each requested snapshot step (a member
        that stopped earlier appears with its final parameters).
    history : numpy.ndarray
        Mean training loss per member at each check, shape ``(n_checks, n_members)``.
    history_steps : numpy.ndarray
        The step of each check, shape ``(n_checks,)``.
    """

    params: Params
    record: TrainRecord
    snapshots: dict[int, Params] = field(default_factory=dict)
    history: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    history_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def to_ensemble(self, ens: Ensemble | ModuleEnsemble) -> Ensemble | ModuleEnsemble:
        """The ensemble ``ens`` with the trained parameters."""
        return ens.with_params(self.params)


def _check_positive_int(value, name: str, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "non-negative" if allow_zero else "positive"
        raise ValidationError(f"{name} must be a {kind} integer, got {value!r}")


def train_params(
    apply: Callable[[Params, torch.Tensor], torch.Tensor],
    params: Params,
    masks: Params,
    X,
    y,
    options: TrainOptions | None = None,
    *,
    seeds: Sequence[int],
    example_ndim: int = 1,
    on_check: Callable[[int, Params], None] | None = None,
) -> TrainResult:
    """Train stacked parameters of any functional model, with per-member stopping.

    Parameters
    ----------
    apply : callable
        ``apply(params, x) -> outputs`` of shape ``(n_members, n_batch, n_outputs)``, where
        ``x`` is shared ``(n_batch, *example_shape)`` or per member
        ``(n_members, n_batch, *example_shape)``. The parameters it gets are exactly zero at
        pruned entries (the trainer keeps them so), so it need not apply the masks.
    params : dict of str to torch.Tensor
        Stacked parameters with a leading member axis; not modified (the trainer copies them).
    masks : dict of str to torch.Tensor
        Boolean masks for some of the parameters, each of its parameter's shape.
    X : array_like
        Inputs, shared ``(n_samples, *example_shape)`` or per member with a leading K.
    y : array_like
        Targets, shared or per member (see :func:`robustlaw.empirical.losses.prepare_targets`).
    options : TrainOptions, optional
        Defaults to ``TrainOptions()``.
    seeds : sequence of int
        One seed per member, for minibatch order and gradient noise.
    example_ndim : int
        The number of dimensions of one example (1 for vectors, 3 for images).
    on_check : callable, optional
        Called as ``on_check(step, params)`` at every stopping check (detached parameters; do
        not modify them).

    Returns
    -------
    TrainResult
    """
    options = TrainOptions() if options is None else options
    seeds = tuple(check_seed(s, "seeds entry") for s in seeds)
    n_members = len(seeds)
    first = next(iter(params.values()))
    dtype, device = first.dtype, first.device
    check_masks(masks, params)
    X = check_tensor(X, "X", ndim=(example_ndim + 1, example_ndim + 2), device=device)
    X = X.to(dtype)  # on purpose: integer pixels or float64 data meet the parameters' dtype
    per_member_x = X.ndim == example_ndim + 2
    if per_member_x and X.shape[0] != n_members:
        raise ValidationError(f"X has {X.shape[0]} members on axis 0, expected {n_members}")
    n_samples = X.shape[1] if per_member_x else X.shape[0]
    params = {k: v.detach().clone() for k, v in params.items()}
    zero_pruned(params, masks)
    params = {k: v.requires_grad_(True) for k, v in params.items()}
    with torch.no_grad():
        probe = X.narrow(X.ndim - example_ndim - 1, 0, 1)
        n_outputs = apply(params, probe).shape[-1]
    y = check_tensor(y, "y", device=device)
    y = prepare_targets(
        y, options.loss, n_samples=n_samples, n_members=n_members, n_outputs=n_outputs
    )
    if y.is_floating_point():
        y = y.to(dtype)
    per_member_y = y.ndim == (2 if LOSSES[options.loss].integer_targets else 3)
    if isinstance(options.lr, tuple) and len(options.lr) != n_members:
        raise ValidationError(
            f"lr has {len(options.lr)} entries, expected one per member ({n_members})"
        )
    lr = torch.as_tensor(options.lr, dtype=dtype, device=device).expand(n_members)
    out = Trainer(
        apply, params, masks, X, y, options, seeds, per_member_x, per_member_y, lr, on_check
    ).run()
    logger.debug(
        "trained %d members: steps %d..%d, rule %r met by %d",
        n_members,
        out.n_steps.min(),
        out.n_steps.max(),
        options.stopping,
        int(out.rule_met.sum()),
    )
    record = TrainRecord(
        n_steps=out.n_steps,
        final_loss=out.final_loss,
        fit_fraction=out.fit_fraction,
        rule_met=out.rule_met,
    )
    return TrainResult(
        params=out.params,
        record=record,
        snapshots=out.snapshots,
        history=out.history,
        history_steps=out.history_steps,
    )


def train_ensemble(
    ens: Ensemble | ModuleEnsemble,
    X,
    y,
    options: TrainOptions | None = None,
    *,
    on_check: Callable[[int, Params], None] | None = None,
) -> TrainResult:
    """Train every member of an ensemble with its masks held fixed.

    Parameters
    ----------
    ens : Ensemble or ModuleEnsemble
        An MLP ensemble or a ``torch.func`` module ensemble; its ``seeds`` drive minibatch
        order and gradient noise.
    X : array_like
        Inputs, shared ``(n_samples, *example_shape)`` or per member with a leading K.
    y : array_like
        Targets (``(n_samples,)``, ``(n_samples, n_outputs)`` or class indices; a leading K
        for per-member targets).
    options : TrainOptions, optional
        Defaults to ``TrainOptions()``.
    on_check : callable, optional
        Passed to :func:`train_params`.

    Returns
    -------
    TrainResult
        ``result.to_ensemble(ens)`` is the trained ensemble.

    Examples
    --------
    >>> import torch
    >>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 16, 1)), seeds=[0, 1])
    >>> X = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    >>> y = torch.ones(8)
    >>> opts = TrainOptions(lr=1e-2, max_steps=500, stopping="memorized")
    >>> res = train_ensemble(ens, X, y, opts)
    >>> res.record.rule_met.tolist(), bool((res.record.n_steps < 500).all())
    ([True, True], True)
    """
    if len(ens.seeds) != ens.n_members:
        raise ValidationError(
            f"ens.seeds has {len(ens.seeds)} entries, expected one per member ({ens.n_members})"
        )
    return train_params(
        ens.apply,
        ens.params,
        ens.masks,
        X,
        y,
        options,
        seeds=ens.seeds,
        example_ndim=ens.example_ndim,
        on_check=on_check,
    )
