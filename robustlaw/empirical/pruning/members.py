"""Sub-ensembles and concatenations: members selected or joined with their masks and seeds."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from robustlaw.empirical.ensemble import Ensemble
from robustlaw.empirical.modules import ModuleEnsemble
from robustlaw.empirical.pruning._architectures import (
    architecture,
    bias_of,
    rebuild,
    stacked_fields,
)
from robustlaw.errors import ValidationError

__all__ = ["concat_members", "select_members", "with_bias_masks"]


AnyEnsemble = Ensemble | ModuleEnsemble


def select_members(ensemble: AnyEnsemble, members: Sequence[int]) -> AnyEnsemble:
    """The sub-ensemble of the given members (stacked tensors indexed, seeds kept).

    Works on MLP ensembles and module ensembles alike (parameters, masks and buffers indexed).

    Examples
    --------
    >>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(2, 3, 1)), seeds=[4, 5, 6])
    >>> select_members(ens, [2, 0]).seeds
    (6, 4)
    """
    architecture(ensemble)
    return rebuild(ensemble, members)


def concat_members(parts: Sequence[AnyEnsemble]) -> AnyEnsemble:
    """The members of several ensembles of one architecture and mask keys, in order, as one.

    Raises
    ------
    ValidationError
        If ``parts`` is empty or the parts differ in kind, architecture or mask keys.

    Examples
    --------
    >>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
    >>> spec = MLPSpec(layer_sizes=(2, 3, 1))
    >>> both = concat_members([init_mlp_ensemble(spec, [1]), init_mlp_ensemble(spec, [7, 8])])
    >>> both.n_members, both.seeds
    (3, (1, 7, 8))
    """
    if not parts:
        raise ValidationError("concat_members needs at least one ensemble")
    first = parts[0]
    identity = architecture(first).identity(first)
    for part in parts[1:]:
        same_kind = type(part) is type(first) and set(part.masks) == set(first.masks)
        if not same_kind or architecture(part).identity(part) != identity:
            raise ValidationError(
                "concat_members needs ensembles of one kind, architecture and mask keys"
            )
    joined = {
        field: {k: torch.cat([getattr(e, field)[k] for e in parts]) for k in getattr(first, field)}
        for field in stacked_fields(first)
    }
    return rebuild(first, seeds=tuple(s for e in parts for s in e.seeds), **joined)


def with_bias_masks(ensemble: AnyEnsemble) -> AnyEnsemble:
    """The ensemble with a full (keep-all) mask on every bias that has none, for bias pruning.

    Only the biases of prunable weights get one (every bias of an MLP).

    Examples
    --------
    >>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
    >>> ens = with_bias_masks(init_mlp_ensemble(MLPSpec(layer_sizes=(2, 3, 1)), seeds=[0]))
    >>> sorted(ens.masks), float(ens.density()[0])
    (['0.bias', '0.weight', '2.bias', '2.weight'], 1.0)
    """
    arch = architecture(ensemble)
    owned = {bias_of(w) for w in arch.weight_names(ensemble)}
    full = {
        k: torch.ones_like(ensemble.params[k], dtype=torch.bool)
        for k in arch.bias_names(ensemble)
        if k in owned and k not in ensemble.masks
    }
    return ensemble.with_masks({**ensemble.masks, **full}) if full else ensemble
