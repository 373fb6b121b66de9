"""Moving MLP ensembles in and out: ``nn.Sequential`` members, and files on disk.

A member taken out with :func:`member_to_sequential` is an ordinary ``nn.Sequential`` of
``nn.Linear`` and activation modules with the mask multiplied into its weights; its parameter
names are the ensemble's keys (``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ...).
:func:`ensemble_from_sequentials` stacks such models back. Files written by
:func:`save_ensemble` are a ``torch.save`` of plain tensors, lists and strings, read with
``weights_only=True``; they hold every mask the ensemble has, bias masks included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from robustlaw._validation import check_integer
from robustlaw.empirical.ensemble import Ensemble, MLPSpec, resolve_device
from robustlaw.errors import ValidationError

__all__ = [
    "ACTIVATION_MODULES",
    "FORMAT_VERSION",
    "ensemble_from_sequentials",
    "load_ensemble",
    "member_to_sequential",
    "save_ensemble",
]

ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}
FORMAT_VERSION = 1
_FORMAT = "robustlaw.ensemble"


def member_to_sequential(ens: Ensemble, k: int) -> nn.Sequential:
    """Member ``k`` as a plain ``nn.Sequential`` with its masks applied (weights, masked biases).

    Parameters
    ----------
    ens : Ensemble
        The ensemble.
    k : int
        The member index, ``0 <= k < n_members``.

    Returns
    -------
    torch.nn.Sequential
        Linear and activation modules on the ensemble's device and dtype.

    Examples
    --------
    >>> from robustlaw.empirical.ensemble import init_mlp_ensemble
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 4, 1)), seeds=[0])
    >>> member_to_sequential(ens, 0)
    Sequential(
      (0): Linear(in_features=3, out_features=4, bias=True)
      (1): ReLU()
      (2): Linear(in_features=4, out_features=1, bias=True)
    )
    """
    k = check_integer(k, "k", minimum=0, maximum=ens.n_members - 1)
    spec = ens.spec
    layers: list[nn.Module] = []
    for l, name in enumerate(spec.weight_names()):
        w = ens.params[name][k] * ens.masks[name][k]
        lin = nn.Linear(w.shape[1], w.shape[0], bias=spec.bias, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            lin.weight.copy_(w)
            if spec.bias:
                key = f"{2 * l}.bias"
                b = ens.params[key][k]
                lin.bias.copy_(b * ens.masks[key][k] if key in ens.masks else b)
        layers.append(lin)
        if l < spec.n_layers - 1:
            layers.append(ACTIVATION_MODULES[spec.activation]())
    return nn.Sequential(*layers)


def _spec_of(model: nn.Sequential, index: int) -> MLPSpec:
    mods = list(model)
    linears = mods[0::2]
    acts = mods[1::2]
    if (
        not linears
        or not all(type(m) is nn.Linear for m in linears)
        or len(acts) != len(linears) - 1
    ):
        raise ValidationError(
            f"models[{index}] must alternate nn.Linear and activation modules, starting and "
            f"ending with nn.Linear; got {[type(m).__name__ for m in mods]}"
        )
    names = {cls: name for name, cls in ACTIVATION_MODULES.items()}
    kinds = {names.get(type(a)) for a in acts} or {"relu"}
    if None in kinds or len(kinds) != 1:
        raise ValidationError(
            f"models[{index}] must use one activation among {sorted(ACTIVATION_MODULES)}; "
            f"got {[type(a).__name__ for a in acts]}"
        )
    biases = {lin.bias is not None for lin in linears}
    if len(biases) != 1:
        raise ValidationError(f"models[{index}] mixes layers with and without biases")
    sizes = (linears[0].in_features,) + tuple(lin.out_features for lin in linears)
    return MLPSpec(layer_sizes=sizes, activation=kinds.pop(), bias=biases.pop())


def ensemble_from_sequentials(
    models: Sequence[nn.Sequential], seeds: Sequence[int] | None = None
) -> Ensemble:
    """Stack ``nn.Sequential`` MLPs of one architecture into an ensemble with full masks.

    Parameters
    ----------
    models : sequence of torch.nn.Sequential
        Each alternates ``nn.Linear`` and one activation module type.
    seeds : sequence of int, optional
        Recorded as the members' seeds (used for minibatch order and gradient noise);
        defaults to ``0, 1, ..., K-1``.

    Returns
    -------
    Ensemble
        Parameters are copies; masks keep everything (zeros in the weights stay zeros as
        values, not as pruned entries).

    Raises
    ------
    ValidationError
        If a model is not such an MLP or the architectures differ.
    """
    models = list(models)
    if not models:
        raise ValidationError("models must hold at least one nn.Sequential, got none")
    specs = [_spec_of(m, i) for i, m in enumerate(models)]
    if any(s != specs[0] for s in specs):
        raise ValidationError(
            f"models must share one architecture, got layer sizes {[s.layer_sizes for s in specs]}"
        )
    seeds = tuple(range(len(models))) if seeds is None else tuple(seeds)
    if len(seeds) != len(models):
        raise ValidationError(f"seeds must have {len(models)} entries, got {len(seeds)}")
    states = [m.state_dict() for m in models]
    params = {k: torch.stack([s[k].detach().clone() for s in states]) for k in states[0]}
    masks = {k: torch.ones_like(params[k], dtype=torch.bool) for k in specs[0].weight_names()}
    return Ensemble(spec=specs[0], params=params, masks=masks, seeds=seeds)


def save_ensemble(path: str | Path, ens: Ensemble) -> None:
    """Write an ensemble (parameters, masks, seeds, spec) to ``path`` with ``torch.save``.

    Examples
    --------
    >>> import tempfile, os
    >>> from robustlaw.empirical.ensemble import init_mlp_ensemble
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 4, 1)), seeds=[5, 6])
    >>> path = os.path.join(tempfile.mkdtemp(), "ens.pt")
    >>> save_ensemble(path, ens)
    >>> load_ensemble(path).seeds
    (5, 6)
    """
    payload = {
        "format": _FORMAT,
        "version": FORMAT_VERSION,
        "spec": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(ens.spec).items()
        },
        "params": {k: v.detach().cpu() for k, v in ens.params.items()},
        "masks": {k: v.cpu() for k, v in ens.masks.items()},
        "seeds": list(ens.seeds),
    }
    torch.save(payload, Path(path))


def load_ensemble(path: str | Path, *, device: str | torch.device = "cpu") -> Ensemble:
    """Read an ensemble written by :func:`save_ensemble`.

    Raises
    ------
    ValidationError
        If the file is not a robustlaw ensemble, has a newer format version, or its contents do
        not match its spec.
    """
    dev = resolve_device(device)
    payload = torch.load(Path(path), map_location=dev, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValidationError(f"{path} is not a robustlaw ensemble file")
    if payload.get("version", 0) > FORMAT_VERSION:
        raise ValidationError(
            f"{path} has format version {payload['version']}; this robustlaw reads up to "
            f"{FORMAT_VERSION}"
        )
    spec_fields = dict(payload["spec"])
    spec_fields["layer_sizes"] = tuple(spec_fields["layer_sizes"])
    return Ensemble(
        spec=MLPSpec(**spec_fields),
        params=payload["params"],
        masks=payload["masks"],
        seeds=tuple(payload["seeds"]),
    )
