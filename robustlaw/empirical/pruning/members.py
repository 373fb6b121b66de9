"""Sub-ensembles and concatenations: members selected or joined with their masks and seeds."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from robustlaw.empirical.ensemble import Ensemble
from robustlaw.errors import ValidationError

__all__ = ["concat_members", "select_members", "with_bias_masks"]


def select_members(ensemble: Ensemble, members: Sequence[int]) -> Ensemble:
    """The sub-ensemble of the given members (stacked tensors indexed, seeds kept).

    Examples
    --------
    >>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(2, 3, 1)), seeds=[4, 5, 6])
    >>> select_members(ens, [2, 0]).seeds
    (6, 4)
    """
    idx = torch.as_tensor(list(members), dtype=torch.long, device=ensemble.device)
    return Ensemble(
        spec=ensemble.spec,
        params={k: v[idx] for k, v in ensemble.params.items()},
        masks={k: v[idx] for k, v in ensemble.masks.items()},
        seeds=tuple(ensemble.seeds[i] for i in members) if ensemble.seeds else (),
    )


def concat_members(parts: Sequence[Ensemble]) -> Ensemble:
    """The members of several ensembles of one spec and mask keys, in order, as one ensemble.

    Raises
    ------
    ValidationError
        If ``parts`` is empty or the parts differ in spec or mask keys.

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
    for part in parts[1:]:
        if part.spec != first.spec or set(part.masks) != set(first.masks):
            raise ValidationError("concat_members needs ensembles of one spec and mask keys")
    return Ensemble(
        spec=first.spec,
        params={k: torch.cat([e.params[k] for e in parts]) for k in first.params},
        masks={k: torch.cat([e.masks[k] for e in parts]) for k in first.masks},
        seeds=tuple(s for e in parts for s in e.seeds),
    )


def with_bias_masks(ensemble: Ensemble) -> Ensemble:
    """The ensemble with a full (keep-all) mask on every bias that has none, for bias pruning.

    Examples
    --------
    >>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
    >>> ens = with_bias_masks(init_mlp_ensemble(MLPSpec(layer_sizes=(2, 3, 1)), seeds=[0]))
    >>> sorted(ens.masks), float(ens.density()[0])
    (['0.bias', '0.weight', '2.bias', '2.weight'], 1.0)
    """
    full = {
        k: torch.ones_like(ensemble.params[k], dtype=torch.bool)
        for k in ensemble.spec.bias_names()
        if k not in ensemble.masks
    }
    return ensemble.with_masks({**ensemble.masks, **full}) if full else ensemble
