"""What pruning needs from an ensemble, for each kind of ensemble it prunes.

Pruning works on :class:`~robustlaw.empirical.ensemble.Ensemble` (stacked MLPs, the fast path)
and on :class:`~robustlaw.empirical.modules.ModuleEnsemble` (any ``nn.Module`` through
``torch.func``, e.g. the small CNN of Missing the Mark's reduced setup). Both run members with
``apply(params, x)`` on already-masked stacked parameters, carry masks keyed by parameter name
and rebuild with :func:`dataclasses.replace`; they differ only in how their weights are named,
how inputs are checked, what one example looks like and how fresh parameters are drawn. Those
differences live in one :class:`Architecture` per kind, looked up in :data:`ARCHITECTURES`.

The prunable weights of a module ensemble are its masked parameters (by default every weight of
rank >= 2: Linear and Conv weights), in registration order; the "output layer" is the last of
them, and each ``<prefix>.weight`` owns the bias ``<prefix>.bias`` when there is one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from robustlaw.empirical.ensemble import Ensemble, MLPSpec, check_input_shape, init_mlp_ensemble
from robustlaw.empirical.modules import ModuleEnsemble
from robustlaw.errors import ValidationError

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "architecture",
    "bias_of",
    "masked_apply",
    "n_outputs",
    "prunable",
    "rebuild",
    "stacked_fields",
    "stream",
]

Params = dict[str, torch.Tensor]
_STACKED = ("params", "masks", "buffers")  # dataclass fields that hold per-member tensors


@dataclass(frozen=True)
class Architecture:
    """One kind of ensemble, as pruning sees it.

    Attributes
    ----------
    weight_names : callable
        ``weight_names(ens) -> tuple of str``: the weights that can be pruned, input to output.
    bias_names : callable
        ``bias_names(ens) -> tuple of str``: every bias, in registration order.
    example_shape : callable
        ``example_shape(ens) -> tuple of int``: one input example's shape.
    check_inputs : callable
        ``check_inputs(ens, shape, n_members)`` raises ``ValidationError`` for inputs that do not
        fit: ``(n_samples, *example)`` or ``(n_members, n_samples, *example)``.
    fresh_params : callable
        ``fresh_params(ens, seeds) -> params``: stacked parameters drawn anew from the members'
        init distribution, one member per seed (the reinitialization ablation).
    identity : callable
        ``identity(ens) -> hashable``: equal exactly for ensembles whose members can be stacked.
    """

    weight_names: Callable[[Any], tuple[str, ...]]
    bias_names: Callable[[Any], tuple[str, ...]]
    example_shape: Callable[[Any], tuple[int, ...]]
    check_inputs: Callable[[Any, Sequence[int], int], None]
    fresh_params: Callable[[Any, Sequence[int]], Params]
    identity: Callable[[Any], Hashable]


def _mlp_fresh(ens: Ensemble, seeds: Sequence[int]) -> Params:
    return init_mlp_ensemble(ens.spec, seeds, dtype=ens.dtype, device=ens.device).params


def _module_weights(ens: ModuleEnsemble) -> tuple[str, ...]:
    return tuple(k for k in ens.params if k in ens.masks and not _is_bias(k))


def _module_example_shape(ens: ModuleEnsemble) -> tuple[int, ...]:
    if ens.example_shape is None:
        raise ValidationError(
            "this module ensemble does not know its input shape; pass example_shape= to "
            "init_module_ensemble or ensemble_from_modules (e.g. (3, 32, 32) for CIFAR-10)"
        )
    return ens.example_shape


def _module_check_inputs(ens: ModuleEnsemble, shape: Sequence[int], n_members: int) -> None:
    shape = tuple(shape)
    nd = ens.example_ndim
    example = shape[-nd:] if len(shape) > nd else ()
    ok = len(shape) in (nd + 1, nd + 2) and (len(shape) == nd + 1 or shape[0] == n_members)
    if ens.example_shape is not None:
        ok = ok and example == ens.example_shape
    if not ok:
        want = "(" + ", ".join(map(str, ens.example_shape or ("...",) * nd)) + ")"
        raise ValidationError(
            f"X must have shape (n_samples, *example) or ({n_members}, n_samples, *example) "
            f"with example shape {want}, got {shape}"
        )


def _module_identity(ens: ModuleEnsemble) -> Hashable:
    shapes = tuple((k, tuple(v.shape[1:])) for k, v in ens.params.items())
    return repr(ens.base), shapes, ens.example_shape, ens.init, ens.init_std


ARCHITECTURES: dict[type, Architecture] = {
    Ensemble: Architecture(
        weight_names=lambda ens: ens.spec.weight_names(),
        bias_names=lambda ens: ens.spec.bias_names(),
        example_shape=lambda ens: (ens.spec.layer_sizes[0],),
        check_inputs=lambda ens, shape, k: check_input_shape(shape, ens.spec, k),
        fresh_params=_mlp_fresh,
        identity=lambda ens: ens.spec,
    ),
    ModuleEnsemble: Architecture(
        weight_names=_module_weights,
        bias_names=lambda ens: tuple(k for k in ens.params if _is_bias(k)),
        example_shape=_module_example_shape,
        check_inputs=_module_check_inputs,
        fresh_params=lambda ens, seeds: ens.fresh_params(seeds),
        identity=_module_identity,
    ),
}
"""The :class:`Architecture` of each kind of ensemble pruning accepts."""


def architecture(ensemble: Any) -> Architecture:
    """The :class:`Architecture` of ``ensemble``; one clear error for anything else."""
    try:
        return ARCHITECTURES[type(ensemble)]
    except KeyError:
        raise ValidationError(
            "ensemble must be an Ensemble (stacked MLPs) or a ModuleEnsemble (torch.func "
            f"modules), got {type(ensemble).__name__}"
        ) from None


def _is_bias(name: str) -> bool:
    return name.rsplit(".", 1)[-1] == "bias"


def bias_of(weight: str) -> str:
    """The name of the bias a weight owns: ``"2.weight" -> "2.bias"``, ``"weight" -> "bias"``."""
    prefix, _, _ = weight.rpartition(".")
    return f"{prefix}.bias" if prefix else "bias"


def _names(model: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The weight and bias names of an ensemble, or of a bare ``MLPSpec``."""
    if isinstance(model, MLPSpec):
        return model.weight_names(), model.bias_names()
    arch = architecture(model)
    return arch.weight_names(model), arch.bias_names(model)


def prunable(model: Any, prune_output_layer: bool, prune_biases: bool) -> tuple[str, ...]:
    """The prunable names: each weight, then its bias when biases are pruned and it has one."""
    weights, all_biases = _names(model)
    biases = set(all_biases) if prune_biases else set()
    kept = weights if prune_output_layer else weights[:-1]
    return tuple(n for w in kept for n in (w, bias_of(w)) if n == w or n in biases)


def stream(ensemble: Any, name: str) -> int:
    """Tensor ``name``'s random stream: its index among the weights, then the biases."""
    weights, biases = _names(ensemble)
    return (weights + biases).index(name)


def masked_apply(ensemble: Any, params: Params, masks: Params, x: torch.Tensor) -> torch.Tensor:
    """Outputs ``(K, B, out)`` of ``params`` times ``masks`` (differentiable in both)."""
    return ensemble.apply({k: v * masks[k] if k in masks else v for k, v in params.items()}, x)


def n_outputs(ensemble: Any, x: torch.Tensor) -> int:
    """The output width, from one example of the (checked) inputs ``x``."""
    one = x.narrow(x.ndim - ensemble.example_ndim - 1, 0, 1)
    with torch.no_grad():
        return ensemble.apply(ensemble.params, one).shape[-1]


def stacked_fields(ensemble: Any) -> tuple[str, ...]:
    """The ensemble's fields that hold per-member tensors (``params``, ``masks``, ``buffers``)."""
    names = {f.name for f in dataclasses.fields(ensemble)}
    return tuple(field for field in _STACKED if field in names)


def rebuild(ensemble: Any, members: Sequence[int] | None = None, **changes) -> Any:
    """The ensemble with fields replaced, or the sub-ensemble of ``members`` (seeds kept)."""
    if members is not None:
        idx = torch.as_tensor(list(members), dtype=torch.long)
        for field in stacked_fields(ensemble):
            stacked = getattr(ensemble, field)
            changes[field] = {k: v[idx.to(v.device)] for k, v in stacked.items()}
        changes["seeds"] = tuple(ensemble.seeds[i] for i in members) if ensemble.seeds else ()
    return dataclasses.replace(ensemble, **changes)
