"""Ensembles of K independent masked MLPs with stacked weights.

An ensemble holds, for each linear layer ``l``, a weight tensor of shape
``(n_members, out, in)`` (torch's ``(out, in)`` order with a leading member axis), a bias of
shape ``(n_members, out)`` and a boolean mask of the weight's shape. Parameter names follow the
``nn.Sequential`` of ``Linear`` and activation modules that a member corresponds to:
``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ... so masks, state dicts and
``torch.nn.utils.prune`` buffers share keys.

The forward pass is one batched matmul per layer, never a loop over members.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import torch

from robustlaw._validation import check_choice, check_seed
from robustlaw.errors import ValidationError

__all__ = [
    "ACTIVATIONS",
    "Ensemble",
    "MLPSpec",
    "forward",
    "init_mlp_ensemble",
]

ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda h: h,
}


@dataclass(frozen=True, kw_only=True)
class MLPSpec:
    """The architecture of every member of an MLP ensemble.

    Parameters
    ----------
    layer_sizes : tuple of int
        ``(n_features, hidden_1, ..., n_outputs)``; at least two entries.
    activation : str
        The hidden activation, a key of :data:`ACTIVATIONS`.
    bias : bool
        Whether the linear layers have biases.
    """

    layer_sizes: tuple[int, ...]
    activation: str = "relu"
    bias: bool = True

    def __post_init__(self) -> None:
        sizes = tuple(self.layer_sizes)
        if len(sizes) < 2 or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes
        ):
            raise ValidationError(
                f"layer_sizes must be at least two positive integers, got {self.layer_sizes!r}"
            )
        object.__setattr__(self, "layer_sizes", sizes)
        check_choice(self.activation, "activation", ACTIVATIONS)

    @property
    def n_layers(self) -> int:
        """The number of linear layers."""
        return len(self.layer_sizes) - 1

    def weight_names(self) -> tuple[str, ...]:
        """The weight keys, from input to output: ``("0.weight", "2.weight", ...)``."""
        return tuple(f"{2 * l}.weight" for l in range(self.n_layers))

    def bias_names(self) -> tuple[str, ...]:
        """The bias keys, from input to output (empty without biases)."""
        return tuple(f"{2 * l}.bias" for l in range(self.n_layers)) if self.bias else ()

    def n_weights(self) -> int:
        """The number of weight entries of one member (biases excluded)."""
        return sum(a * b for a, b in pairwise(self.layer_sizes))


@dataclass(frozen=True, kw_only=True, eq=False)
class Ensemble:
    """K independent MLPs with stacked parameters and boolean masks.

    Attributes
    ----------
    spec : MLPSpec
        The shared architecture.
    params : dict of str to torch.Tensor
        Weights of shape ``(n_members, out, in)`` and biases of shape ``(n_members, out)``.
    masks : dict of str to torch.Tensor
        One boolean tensor per weight key, of the weight's shape. ``True`` keeps the entry.
    seeds : tuple of int
        The seed each member was initialized from.
    """

    spec: MLPSpec
    params: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    seeds: tuple[int, ...] = field(default=())

    @property
    def n_members(self) -> int:
        """K, the number of members."""
        return self.params[self.spec.weight_names()[0]].shape[0]

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype."""
        return self.params[self.spec.weight_names()[0]].dtype

    @property
    def device(self) -> torch.device:
        """The parameters' device."""
        return self.params[self.spec.weight_names()[0]].device

    def masked_weights(self) -> tuple[torch.Tensor, ...]:
        """Weights times masks, each of shape ``(n_members, out, in)``, input to output."""
        return tuple(self.params[k] * self.masks[k] for k in self.spec.weight_names())


def init_mlp_ensemble(
    spec: MLPSpec,
    seeds: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Ensemble:
    """Initialize one MLP per seed, as ``torch.nn.Linear`` does (Kaiming-uniform).

    Weights and biases are drawn from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, the distribution
    ``nn.Linear.reset_parameters`` uses. Each member has its own ``torch.Generator`` seeded by
    its seed, so a member's initial values never depend on the other members. Masks start full.

    Parameters
    ----------
    spec : MLPSpec
        The architecture.
    seeds : sequence of int
        One seed per member; its length is K.
    dtype : torch.dtype
        float32 by default; float64 on request.
    device : str or torch.device
        Where the parameters live.

    Returns
    -------
    Ensemble

    Examples
    --------
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 5, 1)), seeds=[0, 1])
    >>> tuple(ens.params["0.weight"].shape), ens.n_members
    ((2, 5, 3), 2)
    """
    seeds = tuple(check_seed(s) for s in seeds)
    if not seeds:
        raise ValidationError("seeds must hold at least one seed, got an empty sequence")
    params: dict[str, torch.Tensor] = {}
    for l, (fan_in, fan_out) in enumerate(pairwise(spec.layer_sizes)):
        bound = 1.0 / math.sqrt(fan_in)
        weights, biases = [], []
        for seed in seeds:
            gen = torch.Generator().manual_seed(seed * 1_000_003 + l)
            weights.append(torch.rand(fan_out, fan_in, generator=gen, dtype=torch.float64))
            biases.append(torch.rand(fan_out, generator=gen, dtype=torch.float64))
        params[f"{2 * l}.weight"] = ((2 * torch.stack(weights) - 1) * bound).to(dtype=dtype)
        if spec.bias:
            params[f"{2 * l}.bias"] = ((2 * torch.stack(biases) - 1) * bound).to(dtype=dtype)
    params = {k: v.to(device) for k, v in params.items()}
    masks = {k: torch.ones_like(params[k], dtype=torch.bool) for k in spec.weight_names()}
    return Ensemble(spec=spec, params=params, masks=masks, seeds=seeds)


def forward(
    spec: MLPSpec,
    params: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    x: torch.Tensor,
) -> torch.Tensor:
    """Run every member on its inputs.

    Parameters
    ----------
    spec : MLPSpec
        The architecture.
    params, masks : dict of str to torch.Tensor
        Stacked parameters and masks, as in :class:`Ensemble`.
    x : torch.Tensor
        Shared inputs of shape ``(n_samples, n_features)`` or per-member inputs of shape
        ``(n_members, n_samples, n_features)``.

    Returns
    -------
    torch.Tensor
        Outputs of shape ``(n_members, n_samples, n_outputs)``.
    """
    act = ACTIVATIONS[spec.activation]
    h = x
    last = spec.n_layers - 1
    for l, name in enumerate(spec.weight_names()):
        w = params[name] * masks[name]
        h = torch.matmul(h, w.transpose(1, 2))
        if spec.bias:
            h = h + params[f"{2 * l}.bias"].unsqueeze(1)
        if l < last:
            h = act(h)
    return h
