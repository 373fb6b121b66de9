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
from robustlaw.empirical.ensemble import Ensemble, check_masks
from robustlaw.empirical.losses import LOSSES, prepare_targets
from robustlaw.empirical.modules import ModuleEnsemble
from robustlaw.empirical.optim import OPTIMIZERS
from robustlaw.empirical.stopping import STOPPING_RULES, CheckPass
from robustlaw.errors import ValidationError

__all__ = ["TrainOptions", "TrainRecord", "TrainResult", "train_ensemble", "train_params"]

logger = logging.getLogger(__name__)

Params = dict[str, torch.Tensor]
_SHUFFLE_STREAM, _NOISE_STREAM = 10_007, 20_011


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
        lr = self.lr if isinstance(self.lr, tuple) else (self.lr,)
        check_interval(lr, "lr", 0, math.inf, closed="neither")
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


def _member_generators(seeds: Sequence[int], stream: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s * 1_000_003 + stream) for s in seeds]


class _Batches:
    """Per-member minibatch indices: a fresh permutation per member and epoch."""

    def __init__(self, seeds: Sequence[int], n_samples: int, batch_size: int, device) -> None:
        self.gens = _member_generators(seeds, _SHUFFLE_STREAM)
        self.n, self.b, self.device = n_samples, min(batch_size, n_samples), device
        self.per_epoch = n_samples // self.b
        self.perm: torch.Tensor | None = None

    def indices(self, step: int) -> torch.Tensor:
        j = step % self.per_epoch
        if j == 0:
            perms = [torch.randperm(self.n, generator=g) for g in self.gens]
            self.perm = torch.stack(perms).to(self.device)
        return self.perm[:, j * self.b : (j + 1) * self.b]


def _take(t: torch.Tensor, idx: torch.Tensor, per_member: bool) -> torch.Tensor:
    if per_member:
        return t[torch.arange(idx.shape[0], device=idx.device).unsqueeze(1), idx]
    return t[idx]


def _zero_pruned(tensors: Params, masks: Params) -> None:
    """Zero the entries of ``tensors`` at pruned positions (in place)."""
    with torch.no_grad():
        for k, m in masks.items():
            if k in tensors:
                tensors[k].mul_(m)


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
    if X.is_floating_point():
        X = X.to(dtype)
    per_member_x = X.ndim == example_ndim + 2
    if per_member_x and X.shape[0] != n_members:
        raise ValidationError(f"X has {X.shape[0]} members on axis 0, expected {n_members}")
    n_samples = X.shape[1] if per_member_x else X.shape[0]
    params = {k: v.detach().clone() for k, v in params.items()}
    _zero_pruned(params, masks)
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
    return _Trainer(
        apply, params, masks, X, y, options, seeds, per_member_x, per_member_y, lr, on_check
    ).run()


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


class _Trainer:
    """The training loop's state; private, built by :func:`train_params`."""

    def __init__(self, apply, params, masks, X, y, options, seeds, pmx, pmy, lr, on_check):
        self.apply, self.params, self.masks, self.X, self.y = apply, params, masks, X, y
        self.o, self.seeds, self.pmx, self.pmy, self.lr = options, seeds, pmx, pmy, lr
        self.on_check = on_check
        self.loss = LOSSES[options.loss]
        self.rule = STOPPING_RULES[options.stopping]
        opt = OPTIMIZERS[options.optimizer]
        self.opt_step = opt.step
        self.state = opt.init(params, momentum=options.momentum)
        self.step_kwargs = (
            {"betas": options.betas, "eps": options.adam_eps} if options.optimizer == "adam" else {}
        )
        k = len(seeds)
        self.active = torch.ones(k, dtype=torch.bool, device=lr.device)
        self.met = torch.zeros(k, dtype=torch.bool, device=lr.device)
        self.n_steps = torch.zeros(k, dtype=torch.int64, device=lr.device)
        self.history: list[torch.Tensor] = []
        self.history_steps: list[int] = []
        self.snapshots: dict[int, Params] = {}
        n = X.shape[1] if pmx else X.shape[0]
        self.batches = None
        if options.batch_size is not None:
            self.batches = _Batches(seeds, n, options.batch_size, lr.device)
        self.check_every = options.check_every or (self.batches.per_epoch if self.batches else 1)
        self.noise_gens = _member_generators(seeds, _NOISE_STREAM) if options.grad_noise_std else []
        self.step_masks: Params | None = None

    def _check(self, step: int, out: torch.Tensor, final: bool = False) -> None:
        pe = self.loss.per_example(out, self.y)
        self.history.append(pe.mean(dim=1).to(torch.float64))
        self.history_steps.append(step)
        check = CheckPass(
            outputs=out,
            targets=self.y,
            per_example=pe,
            fitted=pe <= self.o.margin,
            final=final,
            history=torch.stack(self.history[-self.o.converge_window :]),
        )
        done = self.rule(check, self.o)
        self.met |= done
        if bool((done & self.active).any()):
            self.active &= ~done
            self.step_masks = None
        self.last_check = check
        if self.on_check is not None:
            self.on_check(step, {k: v.detach() for k, v in self.params.items()})

    def _full_pass(self) -> torch.Tensor:
        with torch.no_grad():
            return self.apply(self.params, self.X)

    def run(self) -> TrainResult:
        o = self.o
        step = 0
        for step in range(o.max_steps):
            if step in o.snapshot_steps:
                self.snapshots[step] = {k: v.detach().clone() for k, v in self.params.items()}
            due = step % self.check_every == 0
            if self.batches is None:
                out = self.apply(self.params, self.X)
                y = self.y
                if due:
                    self._check(step, out.detach())
            else:
                if due:
                    self._check(step, self._full_pass())
                idx = self.batches.indices(step)
                out = self.apply(self.params, _take(self.X, idx, self.pmx))
                y = _take(self.y, idx, self.pmy)
            if not bool(self.active.any()):
                break
            total = self.loss.per_example(out, y).mean(dim=1).sum()
            grads = torch.autograd.grad(total, list(self.params.values()))
            grads = dict(zip(self.params, grads, strict=True))
            self._add_noise(grads)
            with torch.no_grad():
                self._update(grads)
            self.n_steps += self.active
        else:
            step = o.max_steps
        self._check(step, self._full_pass(), final=True)
        final = {k: v.detach().clone() for k, v in self.params.items()}
        for s in o.snapshot_steps:
            self.snapshots.setdefault(s, final)
        check = self.last_check
        record = TrainRecord(
            n_steps=self.n_steps.cpu().numpy(),
            final_loss=check.member_loss.to(torch.float64).cpu().numpy(),
            fit_fraction=check.fitted.to(torch.float64).mean(dim=1).cpu().numpy(),
            rule_met=self.met.cpu().numpy(),
        )
        return TrainResult(
            params={k: v.detach() for k, v in self.params.items()},
            record=record,
            snapshots=dict(sorted(self.snapshots.items())),
            history=torch.stack(self.history).cpu().numpy(),
            history_steps=np.asarray(self.history_steps, dtype=np.int64),
        )

    def _update(self, grads: Params) -> None:
        """Zero the gradients of pruned entries and inactive members, then step.

        Pruned entries then have zero gradient and (fresh, zero) optimizer state that stays
        exactly zero, so both optimizers leave them at exactly zero: nothing can revive them.
        """
        if self.step_masks is None:  # the active members changed: refresh the gradient masks
            everyone = bool(self.active.all())
            self.step_masks = {
                k: (
                    (self.masks[k] if k in self.masks else torch.ones_like(g, dtype=torch.bool))
                    & self.active.reshape((-1,) + (1,) * (g.ndim - 1))
                ).to(g.dtype)  # float masks: multiplying by a bool tensor converts it each time
                for k, g in grads.items()
                if k in self.masks or not everyone
            }
        _zero_pruned(grads, self.step_masks)
        self.opt_step(self.params, grads, self.state, self.lr, self.active, **self.step_kwargs)

    def _add_noise(self, grads: Params) -> None:
        if not self.noise_gens:
            return
        std = self.o.grad_noise_std
        for k, g in grads.items():
            noise = torch.stack(
                [torch.randn(g.shape[1:], generator=gen, dtype=g.dtype) for gen in self.noise_gens]
            )
            grads[k] = g + std * noise.to(g.device)
