"""Pruning after training: magnitude after training and iterative magnitude pruning (IMP).

``METHODS.md`` §3.6–3.7. Frankle & Carbin, *The Lottery Ticket Hypothesis*, ICLR 2019
(arXiv:1803.03635); Frankle et al., *Linear Mode Connectivity and the Lottery Ticket
Hypothesis*, ICML 2020 (arXiv:1912.05671) for rewinding to step ``k``.

Training is :func:`robustlaw.empirical.training.train_ensemble` with the plan's
``TrainOptions``; ``T`` is its ``max_steps`` (a stopping rule may end a member earlier). A
rewind restarts from the snapshot ``θ_k`` with a fresh optimizer state and trains ``T - k``
steps (the learning rate is constant, so the schedule needs no reset). Every level uses the
ensemble's seeds for minibatch order, i.e. the same data order at every level.

Both rank the prunable entries (weights, and biases when the plan prunes them) together by
``|θ_T|``. IMP rounding rule: with ``R_j`` entries remaining at level ``j``, level ``j + 1`` keeps
``R_{j+1} = R_j - ceil(rate R_j - 1e-9)`` (float64), so the density is ``≈ (1 - rate)**j``.
Under :func:`~robustlaw.empirical.pruning.prune` the last level stops at the plan's kept count
``N - ceil((1 - density) N - 1e-9)`` instead of overshooting it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from robustlaw._validation import check_choice, check_interval, check_seed
from robustlaw.empirical.ensemble import Ensemble
from robustlaw.empirical.modules import ModuleEnsemble
from robustlaw.empirical.pruning._context import PruneContext
from robustlaw.empirical.pruning.masks import layer_blocks, n_keep_for_density
from robustlaw.empirical.pruning.scorers import PrunerOutput, magnitude_scores
from robustlaw.empirical.training import train_ensemble
from robustlaw.errors import ValidationError

__all__ = [
    "ImpOptions",
    "MagnitudeAfterOptions",
    "imp_levels",
    "next_remaining",
    "prune_imp",
    "prune_magnitude_after",
]

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True, kw_only=True)
class ImpOptions:
    """Options of iterative magnitude pruning with rewinding.

    Parameters
    ----------
    rate : float
        Fraction of the *remaining* prunable weights removed per level (default 0.2).
    rewind_step : int
        ``k``: survivors are reset to ``θ_k`` after every level (0 is the original lottery
        ticket; a small ``k > 0`` is LTR). Must be below the training's ``max_steps``.
    """

    rate: float = 0.2
    rewind_step: int = 0

    def __post_init__(self) -> None:
        check_interval(self.rate, "rate", 0.0, 1.0, closed="neither", scalar=True)
        check_seed(self.rewind_step, "rewind_step")


@dataclass(frozen=True, kw_only=True)
class MagnitudeAfterOptions:
    """Options of magnitude pruning after training.

    Parameters
    ----------
    after_prune : {"rewind-k", "finetune"}
        Survivors restart from ``θ_k`` (default) or keep the trained ``θ_T``.
    rewind_step : int
        ``k`` for ``rewind-k`` (default 0, as IMP's default).
    """

    after_prune: str = "rewind-k"
    rewind_step: int = 0

    def __post_init__(self) -> None:
        check_choice(self.after_prune, "after_prune", ("rewind-k", "finetune"))
        check_seed(self.rewind_step, "rewind_step")


def next_remaining(n_remaining: int, rate: float = 0.2) -> int:
    """IMP's next remaining count ``R - ceil(rate R - 1e-9)``.

    Examples
    --------
    >>> counts = [1000]
    >>> for _ in range(4):
    ...     counts.append(next_remaining(counts[-1]))
    >>> counts
    [1000, 800, 640, 512, 409]
    >>> next_remaining(15)  # 0.2 * 15 = 3.0000000000000004 in float64: prune 3, not 4
    12
    """
    return n_remaining - math.ceil(rate * n_remaining - 1e-9)


def _train(ctx: PruneContext, ens: Ensemble | ModuleEnsemble, max_steps: int, snapshot: int | None):
    if ctx.train_options is None or ctx.data is None:
        raise ValidationError("this method trains; pass data=(X, y) and train_options")
    if snapshot is not None and snapshot > max_steps:
        raise ValidationError(f"rewind_step={snapshot} exceeds max_steps={max_steps}")
    snaps = () if snapshot is None else (snapshot,)
    opts = replace(ctx.train_options, max_steps=max_steps, snapshot_steps=snaps)
    return train_ensemble(ens, ctx.data.x, ctx.data.y, opts)


def prune_magnitude_after(ctx: PruneContext) -> PrunerOutput:
    """Train dense, keep the largest ``|θ_T|``, then rewind to ``θ_k`` or keep ``θ_T``."""
    opts: MagnitudeAfterOptions = ctx.options
    rewind = opts.after_prune == "rewind-k"
    res = _train(
        ctx, ctx.ensemble, ctx.train_options.max_steps, opts.rewind_step if rewind else None
    )
    masks = ctx.select(magnitude_scores(replace(ctx, ensemble=res.to_ensemble(ctx.ensemble))))
    return PrunerOutput(masks, res.snapshots[opts.rewind_step] if rewind else res.params)


def _blocks(ctx: PruneContext) -> list[tuple[str, ...]]:
    return [ctx.names] if ctx.scope == "global" else layer_blocks(ctx.names)


def _targets(ctx: PruneContext, block: tuple[str, ...]) -> list[int]:
    n = sum(ctx.masks[k][0].numel() for k in block)
    return [n_keep_for_density(d, n) for d in ctx.densities]


def _alive(alive: Tensors, block: tuple[str, ...]) -> list[int]:
    return sum(alive[k].flatten(1).sum(1) for k in block).tolist()


def _level(ctx: PruneContext, theta_t: Tensors, alive: Tensors, clamp: bool) -> Tensors:
    """One IMP level: prune ``ceil(rate R)`` of the alive entries with the lowest ``|θ_T|``."""
    scores = {k: theta_t[k].detach().abs() for k in ctx.names}
    out: Tensors = {}
    for block in _blocks(ctx):
        keep = [next_remaining(r, ctx.options.rate) for r in _alive(alive, block)]
        if clamp:
            keep = [max(n, t) for n, t in zip(keep, _targets(ctx, block), strict=True)]
        out |= ctx.select_counts({k: scores[k] for k in block}, torch.tensor(keep), alive)
    return out


def imp_levels(ctx: PruneContext, n_levels: int | None = None) -> list[Ensemble | ModuleEnsemble]:
    """Run IMP; return the rewound ticket (``θ_k`` under the level's mask) of every level.

    With ``n_levels=None`` the levels continue until every member reaches its target density
    (members already there keep their mask); otherwise exactly ``n_levels`` levels run with the
    plain rounding rule. Level ``j``'s ticket is returned *before* its retraining.
    """
    k = ctx.options.rewind_step
    total = ctx.train_options.max_steps if ctx.train_options is not None else 0
    res = _train(ctx, ctx.ensemble, total, k)
    theta_k, theta_t = res.snapshots[k], res.params
    alive = {name: ctx.masks[name] for name in ctx.names}
    tickets: list[Ensemble | ModuleEnsemble] = []
    while True:
        alive = _level(ctx, theta_t, alive, clamp=n_levels is None)
        ticket = ctx.ensemble.with_params(theta_k).with_masks({**ctx.masks, **alive})
        tickets.append(ticket)
        if n_levels is None:
            done = all(
                a <= t
                for block in _blocks(ctx)
                for a, t in zip(_alive(alive, block), _targets(ctx, block), strict=True)
            )
        else:
            done = len(tickets) == n_levels
        if done:
            return tickets
        theta_t = _train(ctx, ticket, total - k, None).params


def prune_imp(ctx: PruneContext) -> PrunerOutput:
    """IMP down to each member's target density; returns the last level's ticket."""
    ticket = imp_levels(ctx)[-1]
    return PrunerOutput({k: ticket.masks[k] for k in ctx.names}, ticket.params)
