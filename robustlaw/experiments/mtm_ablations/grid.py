"""The members of ``mtm-ablations`` and how each is pruned: one ensemble for the whole grid.

A member is a method, an ablation, a seed and a level ``j`` (target density ``0.8**j``). Its
:class:`~robustlaw.empirical.pruning.PrunePlan` carries the ablation (:data:`ABLATIONS`):
``shuffle="layerwise"`` permutes each layer's finished mask (the weights stay where they are, so
the same ``θ_0`` values sit under a different mask with the same per-layer counts),
``reinit_seed`` keeps the mask and redraws every parameter from the init distribution, and
``invert=True`` negates the keep-scores (``METHODS.md`` §4).

Every one-shot member (the methods at initialization and magnitude after training, all
densities, seeds and ablations) is pruned by one :func:`~robustlaw.empirical.pruning.prune`
call, which groups them by method. IMP walks one batched path per seed
(:func:`~robustlaw.empirical.pruning.imp_path`: 20% of the remaining weights per level, each
level trained and rewound) and hands out the rewound ticket of every level on the grid; its
shuffle and reinit are then applied to those tickets exactly as ``prune`` applies them
(:func:`~robustlaw.empirical.pruning.ablate`). Running IMP through ``prune`` with one member
per density and ablation would retrain every such member along the whole path:
``(1 + ablations) x levels`` times the work (21 times for the ``default`` preset).

References
----------
Frankle, Dziugaite, Roy, Carbin, *Pruning Neural Networks at Initialization: Why Are We Missing
the Mark?*, ICLR 2021 (arXiv:2009.08576), §5 (ablations) and §6 (inversion).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from robustlaw.empirical.pruning import (
    ImpOptions,
    MagnitudeAfterOptions,
    PrunePlan,
    ablate,
    concat_members,
    imp_path,
    prune,
    select_members,
)
from robustlaw.empirical.training import train_ensemble
from robustlaw.experiments.mtm_ablations.record import DENSE, NO_ABLATION

__all__ = ["ABLATIONS", "Member", "build_grid", "grid_members", "plan_of"]

logger = logging.getLogger(__name__)

ABLATIONS: dict[str, Callable] = {
    NO_ABLATION: lambda plan, settings: plan,
    "shuffle": lambda plan, settings: replace(plan, shuffle="layerwise"),
    "reinit": lambda plan, settings: replace(
        plan, reinit_seed=plan.seed + settings.reinit_seed_offset
    ),
    "invert": lambda plan, settings: replace(plan, invert=True),
}
"""``ablation -> (plan, settings) -> plan``: the plan field each ablation sets."""

_METHOD_OPTIONS: dict[str, Callable] = {
    "magnitude-after": lambda s: MagnitudeAfterOptions(rewind_step=s.rewind_step),
    "imp": lambda s: ImpOptions(rewind_step=s.rewind_step),
}


@dataclass(frozen=True)
class Member:
    """One network of the grid: method (or ``"dense"``), ablation, seed, level ``j``."""

    method: str
    ablation: str
    seed: int
    level: int


def _ablations_of(settings, method: str) -> tuple[str, ...]:
    names = [a for a in settings.ablations if a != "invert" or method in settings.invert_methods]
    return (NO_ABLATION, *names)


def grid_members(settings) -> list[Member]:
    """Every member, in ensemble order: the dense baselines, the one-shot methods, then IMP.

    Examples
    --------
    >>> from robustlaw.experiments.mtm_ablations.settings import PRESETS
    >>> members = grid_members(PRESETS["tiny"])
    >>> len(members), members[0]
    (183, Member(method='dense', ablation='none', seed=0, level=0))
    >>> members[3]
    Member(method='random', ablation='none', seed=0, level=4)
    """
    dense = [Member(DENSE, NO_ABLATION, s, 0) for s in settings.seeds]
    methods = [m for m in settings.methods if m != "imp"]
    if "imp" in settings.methods:
        methods.append("imp")
    return dense + [
        Member(method, ablation, seed, level)
        for method in methods
        for ablation in _ablations_of(settings, method)
        for level in settings.levels
        for seed in settings.seeds
    ]


def plan_of(settings, member: Member) -> PrunePlan:
    """The member's plan: its method (with the run's rewind step), density, seed, ablation."""
    options = _METHOD_OPTIONS.get(member.method, lambda s: None)(settings)
    plan = PrunePlan(method=member.method, density=0.8**member.level, seed=member.seed,
                     options=options)  # fmt: skip
    return ABLATIONS[member.ablation](plan, settings)


def _imp_members(settings, members: list[Member], split, init, options):
    """IMP's rewound tickets at the members' levels, ablated: one path for all seeds."""
    seeds = list(settings.seeds)
    start = init(seeds)
    path = imp_path(start, data=(split.X, split.y), train_options=options,
                    n_levels=max(m.level for m in members),
                    options=_METHOD_OPTIONS["imp"](settings))  # fmt: skip
    rewound = start.params
    if settings.rewind_step > 0:  # θ_k of the dense run the path started from
        short = replace(options, max_steps=settings.rewind_step)
        rewound = train_ensemble(start, split.X, split.y, short).params
    index = [seeds.index(m.seed) for m in members]
    tickets = concat_members([select_members(path[m.level - 1], [i])
                              for m, i in zip(members, index, strict=True)])  # fmt: skip
    return ablate(tickets, [plan_of(settings, m) for m in members],
                  params={k: v[index] for k, v in rewound.items()})  # fmt: skip


def build_grid(settings, split, init, options):
    """Every member of the grid, pruned and ablated, untrained, as one ensemble.

    Parameters
    ----------
    settings : MtmAblationsSettings
        The run.
    split : Split
        Training data (``split.X``, ``split.y``): the scoring data of SNIP and GraSP, and the
        training data of magnitude after training and IMP.
    init : callable
        ``init(seeds) -> ensemble``, one freshly initialized member per seed.
    options : TrainOptions
        The training recipe (magnitude after training and every IMP level use it).

    Returns
    -------
    ensemble : Ensemble or ModuleEnsemble
        The members in :func:`grid_members` order, each with its seed's minibatch order.
    members : list of Member
        What each member is.
    """
    members = grid_members(settings)
    dense = [m for m in members if m.method == DENSE]
    one_shot = [m for m in members if m.method not in (DENSE, "imp")]
    imp = [m for m in members if m.method == "imp"]
    parts = [init([m.seed for m in dense])]
    if one_shot:
        logger.info("pruning %d one-shot members", len(one_shot))
        plans = [plan_of(settings, m) for m in one_shot]
        res = prune(init([m.seed for m in one_shot]), plans, data=(split.X, split.y),
                    loss="cross-entropy", train_options=options)  # fmt: skip
        parts.append(res.ensemble)
    if imp:
        logger.info("IMP: %d seeds to level %d", len(settings.seeds), max(settings.levels))
        parts.append(_imp_members(settings, imp, split, init, options))
    return concat_members(parts), members
