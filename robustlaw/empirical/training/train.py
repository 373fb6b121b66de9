"""Batched training of K masked networks to interpolation, with per-member stopping.

All members train at once on stacked tensors (METHODS.md §7): the objective is the sum over
members of each member's mean loss (plus its penalty, if any), the optimizer acts element-wise
(:mod:`.optimizers`), and a boolean ``active`` flag freezes members whose stopping rule
(:mod:`.stopping`) is met. Masks hold at every step: parameters are zeroed at pruned entries on
entry and gradients are zeroed there before every update, so the optimizer's moments stay
exactly zero there, every update is exactly zero there, and pruned weights stay exactly zero
throughout and are never revived.

Randomness (minibatch order, gradient noise) comes from one ``torch.Generator`` per member,
seeded from the member's seed, so a member's trajectory does not depend on K or on its
batch-mates: training members together equals training them one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from robustlaw._validation import check_seed, check_tensor
from robustlaw.empirical.ensemble import Ensemble, MLPSpec, check_input_shape, check_masks
from robustlaw.empirical.modules import ModuleEnsemble
from robustlaw.empirical.training._leaves import (
    CompressedLeaves,
    DenseLeaves,
    use_sparse_kernels,
)
from robustlaw.empirical.training._loop import (
    DIVERGENCE_FACTOR,
    Trainer,
    TrainingData,
    zero_pruned,
)
from robustlaw.empirical.training.losses import prepare_targets
from robustlaw.empirical.training.options import TrainOptions
from robustlaw.errors import ValidationError

__all__ = ["DIVERGENCE_FACTOR", "TrainRecord", "TrainResult", "train_ensemble", "train_params"]

logger = logging.getLogger(__name__)

Params = dict[str, torch.Tensor]


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainRecord:
    """Per-member outcome of training; every field is a NumPy array of shape ``(n_members,)``.

    Attributes
    ----------
    n_steps : numpy.ndarray of int64
        Optimizer steps each member took.
    final_loss : numpy.ndarray of float64
        Final mean training loss over the whole training set (without the penalty).
    fit_fraction : numpy.ndarray of float64
        Fraction of training examples fitted (per-example loss at most the loss's margin).
    rule_met : numpy.ndarray of bool
        Whether the stopping rule was met (for ``max-steps``: the cap was reached); False for
        a diverged member.
    diverged : numpy.ndarray of bool
        Whether the member diverged: its training loss became NaN or infinite, or exceeded
        :data:`~robustlaw.empirical.training.DIVERGENCE_FACTOR` times its initial loss. A
        diverged member is frozen from that check on (as a finished one) and a warning is
        logged; lower its learning rate.
    """

    n_steps: np.ndarray
    final_loss: np.ndarray
    fit_fraction: np.ndarray
    rule_met: np.ndarray
    diverged: np.ndarray


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


def _training_data(apply, params: Params, X, y, loss, *, n_members, example_ndim) -> TrainingData:
    """Validate ``X`` and ``y`` and bring them to the parameters' dtype and device."""
    first = next(iter(params.values()))
    X = check_tensor(X, "X", ndim=(example_ndim + 1, example_ndim + 2), device=first.device)
    X = X.to(first.dtype)  # on purpose: integer pixels or float64 data meet the parameters' dtype
    per_member_x = X.ndim == example_ndim + 2
    if per_member_x and X.shape[0] != n_members:
        raise ValidationError(f"X has {X.shape[0]} members on axis 0, expected {n_members}")
    n_samples = X.shape[1] if per_member_x else X.shape[0]
    try:
        with torch.no_grad():
            n_outputs = apply(params, X.narrow(X.ndim - example_ndim - 1, 0, 1)).shape[-1]
    except RuntimeError as err:  # a shape mismatch deep in the model: name the argument
        raise ValidationError(
            f"X of shape {tuple(X.shape)} does not fit the model's parameters: {err}"
        ) from None
    y = check_tensor(y, "y", device=first.device)
    y = prepare_targets(y, loss, n_samples=n_samples, n_members=n_members, n_outputs=n_outputs)
    if y.is_floating_point():
        y = y.to(first.dtype)
    return TrainingData(
        inputs=X,
        targets=y,
        inputs_per_member=per_member_x,
        targets_per_member=y.ndim == (2 if loss.integer_targets else 3),
    )


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
        Targets, shared or per member (see
        :func:`robustlaw.empirical.training.losses.prepare_targets`).
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

    Examples
    --------
    >>> import torch
    >>> def apply(params, x):  # a linear model, outputs (n_members, n_batch, 1)
    ...     return x @ params["w"].mT
    >>> params = {"w": torch.zeros(2, 1, 3)}
    >>> X, y = torch.eye(3), torch.ones(3)
    >>> res = train_params(apply, params, {}, X, y, TrainOptions(optimizer="sgd", max_steps=1),
    ...                    seeds=[0, 1])
    >>> res.record.n_steps.tolist()
    [1, 1]
    """
    return _train(
        apply,
        params,
        masks,
        X,
        y,
        options,
        seeds=seeds,
        example_ndim=example_ndim,
        on_check=on_check,
        spec=None,
    )


def _train(
    apply, params, masks, X, y, options, *, seeds, example_ndim, on_check, spec: MLPSpec | None
) -> TrainResult:
    """:func:`train_params`; with ``spec`` (``apply`` is that MLP's), the masked weights may
    train on the sparse kernels (``options.kernels``)."""
    options = TrainOptions() if options is None else options
    if not isinstance(options, TrainOptions):
        raise ValidationError(f"options must be a TrainOptions, got {type(options).__name__}")
    if spec is None and options.kernels == "sparse":
        raise ValidationError(
            "kernels='sparse' trains MLP ensembles (Ensemble) only; use 'auto' or 'dense'"
        )
    seeds = tuple(check_seed(s, "seeds entry") for s in seeds)
    n_members = len(seeds)
    check_masks(masks, params)
    params = {k: v.detach().clone() for k, v in params.items()}
    zero_pruned(params, masks)
    params = {k: v.requires_grad_(True) for k, v in params.items()}
    data = _training_data(
        apply, params, X, y, options.loss, n_members=n_members, example_ndim=example_ndim
    )
    lr_values = options.optimizer.lr
    if isinstance(lr_values, tuple) and len(lr_values) != n_members:
        raise ValidationError(
            f"optimizer lr has {len(lr_values)} entries, expected one per member ({n_members})"
        )
    first = next(iter(params.values()))
    lr = torch.as_tensor(lr_values, dtype=first.dtype, device=first.device).expand(n_members)
    if spec is not None and use_sparse_kernels(options, spec, params, masks):
        store = CompressedLeaves(spec, params, masks)
    else:
        axis = 1 if data.inputs_per_member else 0
        probe = data.inputs.narrow(axis, 0, min(data.n_samples, 1))
        store = DenseLeaves(apply, params, masks, probe)
    out = Trainer(
        store=store,
        data=data,
        options=options,
        seeds=seeds,
        lr=lr,
        on_check=on_check,
    ).run()
    logger.debug(
        "trained %d members: steps %d..%d, rule %r met by %d",
        n_members,
        out.n_steps.min(),
        out.n_steps.max(),
        options.stopping.name,
        int(out.rule_met.sum()),
    )
    record = TrainRecord(
        n_steps=out.n_steps,
        final_loss=out.final_loss,
        fit_fraction=out.fit_fraction,
        rule_met=out.rule_met,
        diverged=out.diverged,
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
    >>> from robustlaw.empirical.training import Adam
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 16, 1)), seeds=[0, 1])
    >>> X = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    >>> y = torch.ones(8)
    >>> opts = TrainOptions(optimizer=Adam(lr=1e-2), max_steps=500, stopping="memorized")
    >>> res = train_ensemble(ens, X, y, opts)
    >>> res.record.rule_met.tolist(), bool((res.record.n_steps < 500).all())
    ([True, True], True)
    """
    if len(ens.seeds) != ens.n_members:
        raise ValidationError(
            f"ens.seeds has {len(ens.seeds)} entries, expected one per member ({ens.n_members})"
        )
    if isinstance(ens, Ensemble):
        check_input_shape(np.shape(X), ens.spec, ens.n_members)
    return _train(
        ens.apply,
        ens.params,
        ens.masks,
        X,
        y,
        options,
        seeds=ens.seeds,
        example_ndim=ens.example_ndim,
        on_check=on_check,
        spec=ens.spec if isinstance(ens, Ensemble) else None,
    )
