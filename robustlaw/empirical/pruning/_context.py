"""What a pruner sees: one group of members that share a method and its options.

:func:`robustlaw.empirical.pruning.prune` groups the members of an ensemble by method, options,
scope and inversion, and hands each group to its pruner as a :class:`PruneContext`. Members in a
group may differ in target density and seed. The helpers here turn keep-scores into masks with
the group's scope and inversion, so every pruner thresholds the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from robustlaw.empirical.ensemble import Ensemble
from robustlaw.empirical.modules import ModuleEnsemble
from robustlaw.empirical.pruning._architectures import masked_apply
from robustlaw.empirical.pruning._data import ScoringData
from robustlaw.empirical.pruning.ablations import invert_scores
from robustlaw.empirical.pruning.masks import exact_top_k, layer_blocks, n_keep_for_density

__all__ = ["PruneContext"]

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True, kw_only=True, eq=False)
class PruneContext:
    """One group of members to prune.

    Attributes
    ----------
    ensemble : Ensemble or ModuleEnsemble
        The group's members (stacked parameters, current masks, training seeds).
    names : tuple of str
        The prunable parameter names in registration order: weights, and biases when the plan
        prunes them (``"0.weight", "0.bias", "2.weight", ...``).
    densities : tuple of float
        Each member's target density over the prunable entries.
    seeds : tuple of int
        Each member's pruning seed.
    options : object
        The method's options dataclass.
    scope : {"global", "layerwise"}
        One threshold over all prunable entries, or one per layer (a layer's weight and its
        prunable bias share one).
    invert : bool
        Negate every keep-score before thresholding (prune the most important entries).
    data : ScoringData or None
        The scoring data of the group's members.
    train_options : object or None
        The training recipe (``TrainOptions``) of the methods that train.
    """

    ensemble: Ensemble | ModuleEnsemble
    names: tuple[str, ...]
    densities: tuple[float, ...]
    seeds: tuple[int, ...]
    options: Any
    scope: str
    invert: bool
    data: ScoringData | None
    train_options: Any = None

    @property
    def params(self) -> Tensors:
        """The group's stacked parameters."""
        return self.ensemble.params

    @property
    def masks(self) -> Tensors:
        """The group's current masks."""
        return self.ensemble.masks

    @property
    def n_members(self) -> int:
        """The number of members in the group."""
        return len(self.seeds)

    def forward(self, params: Tensors, x: torch.Tensor, masks: Tensors | None = None):
        """Outputs ``(K, B, out)`` with parameter overrides ``params`` (merged into the group's)."""
        masks = self.masks if masks is None else {**self.masks, **masks}
        return masked_apply(self.ensemble, {**self.params, **params}, masks, x)

    def select(
        self,
        scores: Tensors,
        densities: tuple[float, ...] | None = None,
        alive: Tensors | None = None,
    ) -> Tensors:
        """Masks keeping the top entries of ``scores`` at ``densities`` (default: the targets).

        The group's scope and inversion apply. A target that would keep more entries than are
        alive keeps all of them (already-pruned entries never revive).
        """
        densities = self.densities if densities is None else densities
        alive = {k: self.masks[k] for k in self.names} if alive is None else alive
        blocks = [self.names] if self.scope == "global" else layer_blocks(self.names)
        out: Tensors = {}
        for block in blocks:
            n = sum(alive[k][0].numel() for k in block)
            counts = torch.tensor([n_keep_for_density(d, n) for d in densities])
            out |= self.select_counts({k: scores[k] for k in block}, counts, alive)
        return out

    def select_counts(self, scores: Tensors, counts: torch.Tensor, alive: Tensors) -> Tensors:
        """Keep ``counts[k]`` entries per member over the layers of ``scores`` (clipped to alive).

        The group's inversion applies; all layers of ``scores`` share one threshold.
        """
        if self.invert:
            scores = invert_scores(scores)
        block = {k: alive[k] for k in scores}
        n_alive = sum(m.reshape(m.shape[0], -1).sum(1) for m in block.values())
        return exact_top_k(scores, block, torch.minimum(counts, n_alive.cpu()))
