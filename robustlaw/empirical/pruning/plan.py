"""Prune an ensemble, one plan per member: method, density, seed, options, scope, ablations.

Members that share a method, its options, scope, output-layer flag and inversion are pruned
together in one batched call; a member's mask depends only on its own plan, parameters and data,
never on its batch-mates, so one ensemble can hold a whole sweep grid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from robustlaw._validation import (
    check_bool,
    check_choice,
    check_interval,
    check_seed,
    get_registered,
)
from robustlaw.empirical.data import Dataset
from robustlaw.empirical.ensemble import Ensemble, MLPSpec
from robustlaw.empirical.modules import ModuleEnsemble
from robustlaw.empirical.pruning._architectures import architecture, prunable, rebuild
from robustlaw.empirical.pruning._context import PruneContext
from robustlaw.empirical.pruning._data import prepare_scoring_data
from robustlaw.empirical.pruning.ablations import SHUFFLES
from robustlaw.empirical.pruning.masks import (
    layer_blocks,
    layer_densities,
    mask_density,
    n_keep_for_density,
)
from robustlaw.empirical.pruning.members import select_members, with_bias_masks
from robustlaw.empirical.pruning.registry import get_pruner
from robustlaw.empirical.training import train_ensemble
from robustlaw.errors import ValidationError

__all__ = [
    "MaskInfo",
    "PrunePlan",
    "PruneResult",
    "ablate",
    "prunable_names",
    "prune",
    "prune_at_step",
]


@dataclass(frozen=True, kw_only=True)
class PrunePlan:
    """How to prune one member.

    Parameters
    ----------
    method : str
        A key of :data:`~robustlaw.empirical.pruning.PRUNERS`.
    density : float
        Target fraction of prunable weights kept, in ``(0, 1]``.
    seed : int
        Seeds the method's randomness (random scores, scoring subset) and the shuffle.
    options : object, optional
        The method's options dataclass; ``None`` is replaced by the method's defaults.
    scope : {"global", "layerwise"}
        One threshold over all prunable weights (default) or one per layer.
    prune_output_layer : bool
        Whether the last layer's weights (and, with ``prune_biases``, its bias) are prunable
        (default True).
    prune_biases : bool
        Whether biases are prunable too (default False: weights only). Biases then carry masks
        and are ranked together with the weights; a layerwise scope thresholds each layer's
        weight and bias together. ERK and ER refuse it. No effect on a bias-free net.
    invert : bool
        Negate the keep-scores: prune the weights the method deems most important.
    shuffle : {None, "layerwise", "global"}
        Permute the finished mask (see :mod:`~robustlaw.empirical.pruning.ablations`).
    reinit_seed : int, optional
        Keep the mask but redraw all parameters from the init distribution with this seed.
    """

    method: str
    density: float
    seed: int = 0
    options: Any = None
    scope: str = "global"
    prune_output_layer: bool = True
    prune_biases: bool = False
    invert: bool = False
    shuffle: str | None = None
    reinit_seed: int | None = None

    def __post_init__(self) -> None:
        entry = get_pruner(self.method)
        check_interval(self.density, "density", 0.0, 1.0, closed="right", scalar=True)
        check_seed(self.seed)
        check_choice(self.scope, "scope", ("global", "layerwise"))
        check_bool(self.prune_output_layer, "prune_output_layer")
        check_bool(self.prune_biases, "prune_biases")
        if self.prune_biases and not entry.prunes_biases:
            raise ValidationError(
                f"method {self.method!r} sets its layer densities from the weight shapes and "
                "cannot prune biases; use prune_biases=False or another method"
            )
        check_bool(self.invert, "invert")
        if self.shuffle is not None:
            get_registered(SHUFFLES, self.shuffle, "shuffle")
        if self.reinit_seed is not None:
            check_seed(self.reinit_seed, "reinit_seed")
        if self.options is None:
            object.__setattr__(self, "options", entry.default_options)
        elif type(self.options) is not type(entry.default_options):
            raise ValidationError(
                f"options for {self.method!r} must be a "
                f"{type(entry.default_options).__name__}, got {type(self.options).__name__}"
            )


@dataclass(frozen=True, kw_only=True)
class MaskInfo:
    """What a member's mask is: method, settings and achieved densities (JSON-friendly)."""

    method: str
    scope: str
    target_density: float
    density: float
    layer_densities: dict[str, float]
    seed: int
    prunable: tuple[str, ...]
    flags: dict[str, Any]


@dataclass(frozen=True, kw_only=True, eq=False)
class PruneResult:
    """The pruned ensemble (pruned entries zeroed) and one :class:`MaskInfo` per member."""

    ensemble: Ensemble | ModuleEnsemble
    info: tuple[MaskInfo, ...]


def prunable_names(
    model: MLPSpec | Ensemble | ModuleEnsemble,
    prune_output_layer: bool = True,
    prune_biases: bool = False,
) -> tuple[str, ...]:
    """The prunable parameter names, in registration order (each weight, then its bias).

    Every weight, or all but the output layer's; with ``prune_biases`` the biases of those
    layers too (none on a bias-free net). A module ensemble's weights are its masked
    parameters (Linear and Conv weights by default) and its output layer the last of them.

    Examples
    --------
    >>> prunable_names(MLPSpec(layer_sizes=(3, 4, 1)), prune_output_layer=False)
    ('0.weight',)
    >>> prunable_names(MLPSpec(layer_sizes=(3, 4, 1)), prune_biases=True)
    ('0.weight', '0.bias', '2.weight', '2.bias')
    >>> from robustlaw.empirical.modules import init_module_ensemble, small_cnn
    >>> prunable_names(init_module_ensemble(small_cnn(1, 8, 10), seeds=[0]), False)
    ('0.weight', '2.weight')
    """
    return prunable(model, prune_output_layer, prune_biases)


def _names_by_plan(ensemble, plans) -> list[tuple[str, ...]]:
    """Each plan's prunable names, computed once per distinct pair of flags."""
    table: dict[tuple[bool, bool], tuple[str, ...]] = {}
    for plan in plans:
        key = (plan.prune_output_layer, plan.prune_biases)
        if key not in table:
            table[key] = prunable(ensemble, *key)
            if not table[key]:
                raise ValidationError(
                    "nothing is prunable: the model's only prunable weight is its output layer; "
                    "use prune_output_layer=True"
                )
    return [table[(p.prune_output_layer, p.prune_biases)] for p in plans]


def _plans(plans, n_members: int) -> tuple[PrunePlan, ...]:
    plans = (plans,) if isinstance(plans, PrunePlan) else tuple(plans)
    if len(plans) == 1:
        plans *= n_members
    if len(plans) != n_members or not all(isinstance(p, PrunePlan) for p in plans):
        raise ValidationError(
            f"plans must be one PrunePlan or {n_members} of them (one per member), "
            f"got {len(plans)} items"
        )
    return plans


def _group_key(plan: PrunePlan) -> tuple:
    return (
        plan.method,
        plan.options,
        plan.scope,
        plan.prune_output_layer,
        plan.prune_biases,
        plan.invert,
    )


def _check_keeps_one(ensemble, plan: PrunePlan, names, member: int) -> None:
    """Refuse a density that keeps no entry (in some layer, for a layerwise scope)."""
    sizes = [sum(ensemble.masks[k][0].numel() for k in block) for block in layer_blocks(names)]
    n = sum(sizes) if plan.scope == "global" else min(sizes)
    if n_keep_for_density(plan.density, n) < 1:
        where = "prunable weights" if plan.scope == "global" else "weights of the smallest layer"
        raise ValidationError(
            f"member {member}: density={plan.density!r} keeps 0 of the {n} {where}; "
            f"the smallest density that keeps one weight is 1/{n} = {1 / n:.6g}"
        )


def _densities(masks, names_by_plan) -> list[float]:
    """Each member's density over its plan's prunable entries (one batched count per name set)."""
    by_names: dict[tuple[str, ...], list[float]] = {}
    out = []
    for i, names in enumerate(names_by_plan):
        if names not in by_names:
            by_names[names] = mask_density({k: masks[k] for k in names}).tolist()
        out.append(by_names[names][i])
    return out


def _check_inputs(ensemble, plans, names_by_plan, data, loss: str, train_options) -> None:
    densities = _densities(ensemble.masks, names_by_plan)
    checked = set()
    for i, (plan, names) in enumerate(zip(plans, names_by_plan, strict=True)):
        entry = get_pruner(plan.method)
        if entry.needs_data and data is None:
            raise ValidationError(f"member {i}: method {plan.method!r} needs data=(X, y)")
        if entry.needs_training and train_options is None:
            raise ValidationError(f"member {i}: method {plan.method!r} needs train_options")
        if (names, plan.scope, plan.density) not in checked:  # the same check for every member
            _check_keeps_one(ensemble, plan, names, i)
            checked.add((names, plan.scope, plan.density))
        current = densities[i]
        if plan.density > current + 1e-12:
            raise ValidationError(
                f"member {i}: density={plan.density} exceeds the current density {current:.6g}; "
                "pruned weights cannot be revived"
            )
    if train_options is not None and train_options.loss.name != loss:
        raise ValidationError(
            f"loss={loss!r} differs from train_options.loss={train_options.loss.name!r}"
        )


def prune(
    ensemble: Ensemble | ModuleEnsemble,
    plans: PrunePlan | Sequence[PrunePlan],
    *,
    data: Dataset | tuple[torch.Tensor, torch.Tensor] | None = None,
    loss: str = "mse",
    train_options=None,
) -> PruneResult:
    """Prune every member of ``ensemble`` by its plan.

    Parameters
    ----------
    ensemble : Ensemble or ModuleEnsemble
        The members to prune: stacked MLPs, or any ``nn.Module`` architecture through
        ``torch.func`` (e.g. a CNN; SynFlow needs its ``example_shape``, reinitialization its
        init distribution). Their current masks stay pruned.
    plans : PrunePlan or sequence of PrunePlan
        One plan for all members, or one per member.
    data : Dataset or tuple (X, y), optional
        Scoring or training data, a :class:`~robustlaw.empirical.data.Dataset` or a pair:
        ``X`` of shape ``(n_samples, *example)`` (shared) or ``(n_members, n_samples,
        *example)``, ``example = (n_features,)`` for an MLP; ``y`` as the loss expects.
        Needed by ``snip``, ``grasp``, ``grasp-abs``, ``magnitude-after`` and ``imp``.
    loss : {"mse", "cross-entropy", "logistic"}
        The training loss, also used for scoring.
    train_options : robustlaw.empirical.training.TrainOptions, optional
        The training recipe of ``magnitude-after`` and ``imp`` (its ``loss`` must be ``loss``).

    Returns
    -------
    PruneResult
        A new ensemble with masks set and pruned parameters zeroed, and per-member metadata.

    Raises
    ------
    ValidationError
        On a bad plan, missing data or training options, a density above the current one, a
        density that keeps no weight (the message gives the smallest one that keeps one), or
        ``X`` whose example shape differs from the ensemble's.

    Examples
    --------
    >>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 8, 1)), seeds=[0, 1])
    >>> plans = [PrunePlan(method="magnitude", density=0.5), PrunePlan(method="erk", density=0.25)]
    >>> res = prune(ens, plans)
    >>> [i.density for i in res.info], res.info[1].scope
    ([0.5, 0.25], 'erk')
    """
    architecture(ensemble)
    plans = _plans(plans, ensemble.n_members)
    if any(p.prune_biases for p in plans):
        ensemble = with_bias_masks(ensemble)
    names_by_plan = _names_by_plan(ensemble, plans)
    _check_inputs(ensemble, plans, names_by_plan, data, loss, train_options)
    like = next(iter(ensemble.params.values()))
    scoring = None
    if data is not None:
        scoring = prepare_scoring_data(data, loss=loss, ensemble=ensemble)
    masks = {k: v.clone() for k, v in ensemble.masks.items()}
    params = {k: v.detach().clone() for k, v in ensemble.params.items()}
    scopes = [p.scope for p in plans]
    groups: dict[tuple, list[int]] = {}
    for i, plan in enumerate(plans):
        groups.setdefault(_group_key(plan), []).append(i)
    for members in groups.values():
        plan = plans[members[0]]
        idx = torch.tensor(members, device=like.device)
        ctx = PruneContext(
            ensemble=select_members(ensemble, members),
            names=names_by_plan[members[0]],
            densities=tuple(plans[i].density for i in members),
            seeds=tuple(plans[i].seed for i in members),
            options=plan.options,
            scope=plan.scope,
            invert=plan.invert,
            data=None if scoring is None else scoring.members(idx),
            train_options=train_options,
        )
        out = get_pruner(plan.method).run(ctx)
        for k, m in out.masks.items():
            masks[k][idx] = m
        for k, v in (out.params or {}).items():
            params[k][idx] = v.to(params[k])
        for i in members:
            scopes[i] = out.scope or plan.scope
    _ablate(ensemble, plans, names_by_plan, masks, params)
    params = {k: v * masks[k] if k in masks else v for k, v in params.items()}
    pruned = rebuild(ensemble, params=params, masks=masks)
    return PruneResult(ensemble=pruned, info=_infos(pruned, plans, names_by_plan, scopes))


def ablate(
    ensemble: Ensemble | ModuleEnsemble,
    plans: PrunePlan | Sequence[PrunePlan],
    *,
    params: dict[str, torch.Tensor] | None = None,
) -> Ensemble | ModuleEnsemble:
    """Apply each plan's shuffle and reinitialization to an already pruned ensemble.

    What :func:`prune` does after scoring (``METHODS.md`` §4), for masks found some other way,
    e.g. the tickets of :func:`~robustlaw.empirical.pruning.imp_path`: ``shuffle`` permutes
    each member's mask over its plan's prunable entries with the plan's seed, ``reinit_seed``
    redraws all of its parameters from the init distribution. Inversion acts on scores and
    cannot be applied to a finished mask. The plans' methods and densities are not read.

    Parameters
    ----------
    ensemble : Ensemble or ModuleEnsemble
        The pruned members (their masks are ablated).
    plans : PrunePlan or sequence of PrunePlan
        One plan for all members or one per member.
    params : dict of str to torch.Tensor, optional
        The values to restart from, *not* zeroed where pruned (e.g. ``θ_k``), so that a
        shuffled mask keeps the values at its new positions; default ``ensemble.params``.

    Returns
    -------
    Ensemble or ModuleEnsemble
        The ablated members, pruned entries zeroed; ``prune(ens, plan)`` equals
        ``ablate(prune(ens, plan_without_ablations).ensemble, plan, params=ens.params)``.

    Examples
    --------
    >>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 8, 1)), seeds=[0])
    >>> pruned = prune(ens, PrunePlan(method="magnitude", density=0.5)).ensemble
    >>> plan = PrunePlan(method="magnitude", density=0.5, seed=3, shuffle="layerwise")
    >>> shuffled = ablate(pruned, plan, params=ens.params)
    >>> [int(shuffled.masks[k].sum()) == int(pruned.masks[k].sum()) for k in pruned.masks]
    [True, True]
    """
    architecture(ensemble)
    plans = _plans(plans, ensemble.n_members)
    for i, plan in enumerate(plans):
        if plan.invert:
            raise ValidationError(f"member {i}: inversion acts on scores, not on a finished mask")
    if any(p.prune_biases for p in plans):
        ensemble = with_bias_masks(ensemble)
    start = ensemble.params if params is None else params
    if set(start) != set(ensemble.params):
        raise ValidationError(
            f"params must have the ensemble's keys {sorted(ensemble.params)}, got {sorted(start)}"
        )
    start = {k: v.detach().clone() for k, v in start.items()}
    masks = {k: v.clone() for k, v in ensemble.masks.items()}
    _ablate(ensemble, plans, _names_by_plan(ensemble, plans), masks, start)
    start = {k: v * masks[k] if k in masks else v for k, v in start.items()}
    return rebuild(ensemble, params=start, masks=masks)


def _ablate(ensemble, plans, names_by_plan, masks, params) -> None:
    """Apply each member's shuffle and reinitialization in place."""
    for i, (plan, names) in enumerate(zip(plans, names_by_plan, strict=True)):
        if plan.shuffle is not None:
            member = SHUFFLES[plan.shuffle]({k: masks[k][i] for k in names}, plan.seed)
            for k, m in member.items():
                masks[k][i] = m
    redrawn = [i for i, plan in enumerate(plans) if plan.reinit_seed is not None]
    if redrawn:
        seeds = [plans[i].reinit_seed for i in redrawn]
        fresh = architecture(ensemble).fresh_params(ensemble, seeds)
        idx = torch.tensor(redrawn, device=next(iter(params.values())).device)
        for k, v in fresh.items():
            params[k][idx] = v.to(params[k])


def _infos(pruned, plans, names_by_plan, scopes) -> tuple[MaskInfo, ...]:
    per_layer = {k: v.tolist() for k, v in layer_densities(pruned.masks).items()}
    densities = _densities(pruned.masks, names_by_plan)
    infos = []
    for i, (plan, names) in enumerate(zip(plans, names_by_plan, strict=True)):
        infos.append(
            MaskInfo(
                method=plan.method,
                scope=scopes[i],
                target_density=float(plan.density),
                density=densities[i],
                layer_densities={k: v[i] for k, v in per_layer.items()},
                seed=plan.seed,
                prunable=names,
                flags={
                    "invert": plan.invert,
                    "shuffle": plan.shuffle,
                    "reinit_seed": plan.reinit_seed,
                    "prune_output_layer": plan.prune_output_layer,
                    "prune_biases": plan.prune_biases,
                    "options": dataclasses.asdict(plan.options),
                },
            )
        )
    return tuple(infos)


def prune_at_step(
    ensemble: Ensemble | ModuleEnsemble,
    plans: PrunePlan | Sequence[PrunePlan],
    *,
    data: Dataset | tuple[torch.Tensor, torch.Tensor],
    train_options,
    prune_step: int,
    state_step: int | None = None,
    loss: str = "mse",
) -> PruneResult:
    """Score at ``θ_t`` after ``t = prune_step`` dense steps, restart from ``θ_state_step``.

    ``METHODS.md`` §4 (Missing the Mark): LTR is ``prune_step=T, state_step=k``. The dense run
    uses ``train_options`` capped at ``max(prune_step, state_step)`` steps. Members with a
    ``reinit_seed`` keep their fresh draw instead of ``θ_state_step``.

    Parameters
    ----------
    ensemble, plans, data, loss
        As in :func:`prune`; the plans' methods must not train themselves.
    train_options : robustlaw.empirical.training.TrainOptions
        The dense training recipe.
    prune_step : int
        ``t``, the dense steps before scoring.
    state_step : int, optional
        The step whose parameters the pruned net restarts from (default ``prune_step``).

    Returns
    -------
    PruneResult
    """
    state_step = prune_step if state_step is None else state_step
    check_seed(prune_step, "prune_step")
    check_seed(state_step, "state_step")
    architecture(ensemble)
    plans = _plans(plans, ensemble.n_members)
    if any(p.prune_biases for p in plans):
        ensemble = with_bias_masks(ensemble)
    for plan in plans:
        if get_pruner(plan.method).needs_training:
            raise ValidationError(f"prune_at_step cannot run {plan.method!r}, which trains itself")
    _check_inputs(ensemble, plans, _names_by_plan(ensemble, plans), data, loss, train_options)
    steps = tuple(sorted({prune_step, state_step}))
    opts = replace(train_options, max_steps=steps[-1], snapshot_steps=steps)
    scoring = prepare_scoring_data(data, loss=loss, ensemble=ensemble)
    snaps = train_ensemble(ensemble, scoring.x, scoring.y, opts).snapshots
    res = prune(ensemble.with_params(snaps[prune_step]), plans, data=data, loss=loss)
    params = {k: v.clone() for k, v in res.ensemble.params.items()}
    for i, plan in enumerate(plans):
        if plan.reinit_seed is None:
            for k in params:
                params[k][i] = snaps[state_step][k][i]
    return replace(res, ensemble=res.ensemble.with_params(params))
