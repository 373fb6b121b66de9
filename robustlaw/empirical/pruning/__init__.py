"""Pruning: scoring rules, exact thresholding, ablations, one registry of named methods.

``METHODS.md`` §1–4. The entry point is :func:`prune`, which takes an ensemble and one
:class:`PrunePlan` per member (method, density, seed, options, scope, ablations), groups members
by method and prunes each group in one batched call. Methods are looked up in :data:`PRUNERS`
(:func:`get_pruner`). The ensemble is an :class:`~robustlaw.empirical.ensemble.Ensemble`
(stacked MLPs, the fast path) or a :class:`~robustlaw.empirical.modules.ModuleEnsemble` (any
``nn.Module`` through ``torch.func``, e.g. a CNN); :mod:`._architectures` holds what differs.

Examples
--------
>>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
>>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(5, 16, 16, 1)), seeds=[0, 1, 2])
>>> plans = [PrunePlan(method=m, density=0.2, seed=1) for m in ("random", "synflow", "erk")]
>>> res = prune(ens, plans)
>>> [round(i.density, 4) for i in res.info]  # 70 of 352 weights: 352 - ceil(0.8 * 352)
[0.1989, 0.1989, 0.1989]
"""

from robustlaw.empirical.pruning.ablations import SHUFFLES as SHUFFLES
from robustlaw.empirical.pruning.ablations import invert_scores as invert_scores
from robustlaw.empirical.pruning.ablations import shuffle_global as shuffle_global
from robustlaw.empirical.pruning.ablations import shuffle_layerwise as shuffle_layerwise
from robustlaw.empirical.pruning.erk import ErkOptions as ErkOptions
from robustlaw.empirical.pruning.erk import erk_counts as erk_counts
from robustlaw.empirical.pruning.erk import erk_densities as erk_densities
from robustlaw.empirical.pruning.imp import ImpOptions as ImpOptions
from robustlaw.empirical.pruning.imp import MagnitudeAfterOptions as MagnitudeAfterOptions
from robustlaw.empirical.pruning.imp import imp_levels as imp_levels
from robustlaw.empirical.pruning.imp import next_remaining as next_remaining
from robustlaw.empirical.pruning.masks import exact_top_k as exact_top_k
from robustlaw.empirical.pruning.masks import layer_blocks as layer_blocks
from robustlaw.empirical.pruning.masks import layer_densities as layer_densities
from robustlaw.empirical.pruning.masks import mask_density as mask_density
from robustlaw.empirical.pruning.masks import n_keep_for_density as n_keep_for_density
from robustlaw.empirical.pruning.members import concat_members as concat_members
from robustlaw.empirical.pruning.members import select_members as select_members
from robustlaw.empirical.pruning.paths import imp_path as imp_path
from robustlaw.empirical.pruning.plan import MaskInfo as MaskInfo
from robustlaw.empirical.pruning.plan import PrunePlan as PrunePlan
from robustlaw.empirical.pruning.plan import PruneResult as PruneResult
from robustlaw.empirical.pruning.plan import ablate as ablate
from robustlaw.empirical.pruning.plan import prunable_names as prunable_names
from robustlaw.empirical.pruning.plan import prune as prune
from robustlaw.empirical.pruning.plan import prune_at_step as prune_at_step
from robustlaw.empirical.pruning.registry import PRUNERS as PRUNERS
from robustlaw.empirical.pruning.registry import Pruner as Pruner
from robustlaw.empirical.pruning.registry import get_pruner as get_pruner
from robustlaw.empirical.pruning.scorers import GraspOptions as GraspOptions
from robustlaw.empirical.pruning.scorers import MagnitudeOptions as MagnitudeOptions
from robustlaw.empirical.pruning.scorers import RandomOptions as RandomOptions
from robustlaw.empirical.pruning.scorers import SnipOptions as SnipOptions
from robustlaw.empirical.pruning.scorers import SynflowOptions as SynflowOptions

__all__ = [
    "PRUNERS",
    "SHUFFLES",
    "ErkOptions",
    "GraspOptions",
    "ImpOptions",
    "MagnitudeAfterOptions",
    "MagnitudeOptions",
    "MaskInfo",
    "PrunePlan",
    "PruneResult",
    "Pruner",
    "RandomOptions",
    "SnipOptions",
    "SynflowOptions",
    "ablate",
    "erk_counts",
    "erk_densities",
    "concat_members",
    "exact_top_k",
    "get_pruner",
    "imp_levels",
    "imp_path",
    "invert_scores",
    "layer_blocks",
    "layer_densities",
    "mask_density",
    "n_keep_for_density",
    "next_remaining",
    "prunable_names",
    "prune",
    "prune_at_step",
    "select_members",
    "shuffle_global",
    "shuffle_layerwise",
]
