"""The masks of every pruning method, for every dataset of a unit, at every pruned count.

A :class:`Problem` holds one fixed init replicated over K datasets (member ``i`` trains on
dataset ``i``), with every parameter prunable. :func:`method_masks` returns, per kept count,
a boolean array ``(K, n_params)`` of the masks, parameters in registration order
(``0.weight, 0.bias, 2.weight, 2.bias``). All pruning goes through
:func:`robustlaw.empirical.pruning.prune` with ``prune_biases=True``:

- one-shot methods (SNIP, GraSP, SynFlow, random, magnitude at init) run once per count;
- ``magnitude-after`` is ``prune(..., "magnitude")`` of the densely trained net at each count,
  which is what ``prune(..., "magnitude-after")`` computes, with the training done once;
- ``imp`` walks IMP's path once: at each level the ticket trains from the init, and every
  count between this level's remaining count and the next level's is the magnitude pruning of
  that trained ticket, which is IMP's last level clamped to the count. This is exactly
  ``prune(..., PrunePlan("imp", density=kept / p))`` for every count (the tests check it)
  with one training per level instead of one per level and count.

Kept count 0 is the empty mask, the only mask of that count (``prune`` refuses density 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from robustlaw.empirical.ensemble import Ensemble
from robustlaw.empirical.pruning import (
    GraspOptions,
    PrunePlan,
    SnipOptions,
    SynflowOptions,
    next_remaining,
    prunable_names,
    prune,
)
from robustlaw.empirical.training import TrainOptions, TrainResult, train_ensemble

__all__ = ["MASK_RULES", "Problem", "method_masks"]


@dataclass(frozen=True, kw_only=True, eq=False)
class Problem:
    """One init over K datasets: the ensemble, the data, the training and pruning recipe.

    Attributes
    ----------
    ensemble : Ensemble
        K members with the same parameters (the init) and full masks on weights and biases.
    x : torch.Tensor
        Inputs of shape ``(K, n_samples, n_features)``.
    y : torch.Tensor
        Targets of shape ``(K, n_samples)``: ±1 values (MSE, logistic) or class indices.
    loss : str
        The training and scoring loss.
    train_options : TrainOptions
        Full-batch gradient descent for a fixed number of steps.
    imp_rate : float
        IMP's fraction of remaining parameters pruned per level.
    synflow_iterations : int
        SynFlow's rounds.
    prune_seed : int
        Every plan's seed.
    """

    ensemble: Ensemble
    x: torch.Tensor
    y: torch.Tensor
    loss: str
    train_options: TrainOptions
    imp_rate: float = 0.2
    synflow_iterations: int = 100
    prune_seed: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        """Every parameter, in registration order: all are prunable."""
        return prunable_names(self.ensemble.spec, prune_biases=True)

    @property
    def n_params(self) -> int:
        """p, the number of prunable parameters of one member."""
        return sum(self.ensemble.params[k][0].numel() for k in self.names)

    def train(self, ensemble: Ensemble) -> TrainResult:
        """Train ``ensemble`` (same members, any masks) on the problem's datasets."""
        return train_ensemble(ensemble, self.x, self.y, self.train_options)

    @cached_property
    def dense(self) -> TrainResult:
        """The dense nets trained from the init (IMP's first level and magnitude-after's)."""
        return self.train(self.ensemble)

    def prune(self, ensemble: Ensemble, method: str, kept: int) -> Ensemble:
        """``ensemble`` pruned by ``method`` down to ``kept`` parameters per member."""
        plan = PrunePlan(
            method=method,
            density=kept / self.n_params,
            seed=self.prune_seed,
            options=self._options(method),
            prune_biases=True,
        )
        return prune(ensemble, plan, data=(self.x, self.y), loss=self.loss).ensemble

    def _options(self, method: str):
        return {
            "snip": SnipOptions(samples_per_class=None),
            "grasp": GraspOptions(samples_per_class=None),
            "grasp-abs": GraspOptions(samples_per_class=None),
            "synflow": SynflowOptions(iterations=self.synflow_iterations),
        }.get(method)

    def flat(self, ensemble: Ensemble) -> np.ndarray:
        """The masks as a boolean array ``(K, n_params)`` in :attr:`names` order."""
        parts = [ensemble.masks[k].flatten(1) for k in self.names]
        return torch.cat(parts, dim=1).cpu().numpy()


Masks = dict[int, np.ndarray]


def _one_shot(problem: Problem, method: str, kept: Sequence[int]) -> Masks:
    return {t: problem.flat(problem.prune(problem.ensemble, method, t)) for t in kept}


def _magnitude_after(problem: Problem, method: str, kept: Sequence[int]) -> Masks:
    trained = problem.dense.to_ensemble(problem.ensemble)
    return {t: problem.flat(problem.prune(trained, "magnitude", t)) for t in kept}


def _imp(problem: Problem, method: str, kept: Sequence[int]) -> Masks:
    """IMP's path: one training per level; each count is the level that brackets it, clamped."""
    targets = sorted(kept, reverse=True)
    ticket, remaining, trained = problem.ensemble, problem.n_params, problem.dense
    out: Masks = {}
    while True:
        out |= {t: problem.flat(ticket) for t in targets if t == remaining}
        if not any(t < remaining for t in targets):
            return out
        if trained is None:
            trained = problem.train(ticket)
        tuned = trained.to_ensemble(ticket)
        nxt = next_remaining(remaining, problem.imp_rate)
        out |= {
            t: problem.flat(problem.prune(tuned, "magnitude", t))
            for t in targets
            if nxt < t < remaining
        }
        ticket = problem.prune(tuned, "magnitude", nxt).with_params(problem.ensemble.params)
        remaining, trained = nxt, None


MASK_RULES: dict[str, Callable[[Problem, str, Sequence[int]], Masks]] = {
    "imp": _imp,
    "magnitude-after": _magnitude_after,
}
"""How a method's masks are computed when it is not a one-shot ``prune`` call per count."""


def method_masks(problem: Problem, method: str, kept: Sequence[int]) -> Masks:
    """Masks ``(K, n_params)`` of ``method`` for each kept count in ``kept``.

    Parameters
    ----------
    problem : Problem
        The init, datasets and recipe.
    method : str
        A pruning method that can prune biases.
    kept : sequence of int
        Kept counts, each in ``[0, n_params]``.

    Returns
    -------
    dict of int to numpy.ndarray
        ``kept -> masks``.
    """
    empty = np.zeros((problem.ensemble.n_members, problem.n_params), dtype=bool)
    positive = [t for t in kept if t > 0]
    masks = MASK_RULES.get(method, _one_shot)(problem, method, positive) if positive else {}
    return {t: masks[t] if t > 0 else empty for t in kept}
