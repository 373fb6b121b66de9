"""Turn what users hold into the weight matrices the Lipschitz methods read.

Weights are in torch's ``(out, in)`` order, from input to output, as float64 tensors. Biases
can change the Lipschitz constant (they decide which activation patterns some input reaches;
on small ReLU nets the constant with biases was up to 2.8x the bias-free one), but every upper
bound here (product of norms, ECLipsE, LipSDP) holds for any biases, so the bound methods drop
them; the lower estimate evaluates the real network, biases included. Masks are applied, so
pruned entries are exactly zero in what every method sees.

Accepted inputs: a sequence of 2-D arrays or tensors (one network), a sequence of 3-D ones of
shape ``(n_members, out, in)`` (an ensemble), an :class:`~robustlaw.empirical.ensemble.Ensemble`,
an ``nn.Sequential`` of ``Linear`` and activation modules, or a state dict with ``"<i>.weight"``
keys (``"<i>.bias"`` optional).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from robustlaw._validation import check_tensor, get_registered
from robustlaw.empirical.lipschitz.activation_bounds import ACTIVATION_SLOPE_BOUNDS
from robustlaw.errors import ValidationError

__all__ = [
    "Network",
    "as_network",
    "as_weight_list",
    "compress_input",
    "constant_members",
    "drop_dead_units",
    "normalize_layers",
    "weights_from_ensemble",
    "zero_dead_units",
]

_MODULE_ACTIVATIONS = {
    "ReLU": "relu",
    "LeakyReLU": "leaky-relu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Identity": "identity",
}


@dataclass(frozen=True, kw_only=True)
class Network:
    """A validated MLP (or a stack of K of them) in the form the methods read.

    Attributes
    ----------
    weights : tuple of torch.Tensor
        Float64 tensors of shape ``(n_members, out, in)``, input to output, masks applied.
    biases : tuple of torch.Tensor or None
        Float64 tensors of shape ``(n_members, out)``, or None for a bias-free network.
    activation : str
        The hidden activation, a key of
        :data:`~robustlaw.empirical.lipschitz.activation_bounds.ACTIVATION_SLOPE_BOUNDS`.
    batched : bool
        Whether the input had a member axis (estimates then return one value per member).
    """

    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...] | None
    activation: str
    batched: bool

    @property
    def n_members(self) -> int:
        """K, the number of members (1 for one network)."""
        return self.weights[0].shape[0]

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """``(n_features, hidden_1, ..., n_outputs)``."""
        return (self.weights[0].shape[2], *(w.shape[1] for w in self.weights))

    @property
    def constant_by_shape(self) -> bool:
        r"""Whether a layer size is 0 (no input features, an empty hidden layer or no outputs).

        The network is then constant (or maps into :math:`\mathbb R^0`): its Lipschitz
        constant is 0, and every method returns 0 without running.
        """
        return 0 in self.layer_sizes


def _from_sequential(model: torch.nn.Sequential):
    weights, biases, acts = [], [], set()
    for i, module in enumerate(model):
        name = type(module).__name__
        if isinstance(module, torch.nn.Linear):
            weights.append(module.weight.detach())
            biases.append(None if module.bias is None else module.bias.detach())
        elif name in _MODULE_ACTIVATIONS:
            slope = getattr(module, "negative_slope", 0.01)
            if slope != 0.01:
                raise ValidationError(
                    f"model[{i}] is LeakyReLU with negative_slope={slope}; only 0.01 is "
                    "registered: pass the weights and slope bounds (a, 1.0) explicitly"
                )
            acts.add(_MODULE_ACTIVATIONS[name])
        elif name not in ("Dropout", "Flatten"):
            raise ValidationError(
                f"model[{i}] is {name}; expected Linear or one of "
                f"{', '.join(sorted(_MODULE_ACTIVATIONS))} (an MLP)"
            )
    acts.discard("identity")
    if len(acts) > 1:
        raise ValidationError(f"model mixes activations {sorted(acts)}; expected one kind")
    return weights, biases, acts.pop() if acts else "relu"


def _from_mapping(state: Mapping[str, Any]):
    pattern = re.compile(r"^(?:.*\.)?(\d+)\.weight$")
    keys = sorted((int(m.group(1)), k) for k in state if (m := pattern.match(k)))
    if not keys:
        raise ValidationError(
            f"state dict has no '<i>.weight' keys (got {sorted(state)[:5]}); expected the "
            "state dict of an nn.Sequential MLP"
        )
    weights = [state[k] for _, k in keys]
    biases = [state.get(k[: -len("weight")] + "bias") for _, k in keys]
    return weights, biases


def _check_chain(weights: Sequence[torch.Tensor]) -> None:
    for l in range(1, len(weights)):
        prev, cur = weights[l - 1], weights[l]
        if cur.shape[-1] != prev.shape[-2] or cur.shape[:-2] != prev.shape[:-2]:
            raise ValidationError(
                f"weights do not chain: weights[{l}] has shape {tuple(cur.shape)} (out, in) but "
                f"weights[{l - 1}] has shape {tuple(prev.shape)}; layer {l} needs "
                f"in = {prev.shape[-2]} (the previous layer's out)"
            )


def as_network(
    model_or_weights: Any, *, activation: str | None = None, dtype: torch.dtype = torch.float64
) -> Network:
    """Validate and normalize a network (or an ensemble) for the Lipschitz methods.

    Parameters
    ----------
    model_or_weights : sequence of array_like, Ensemble, nn.Sequential, state dict or Network
        See the module docstring. 2-D matrices make one network; 3-D ones a stack of members.
        A :class:`Network` is returned as it is (with ``activation`` replaced if given).
    activation : str, optional
        The hidden activation; by default the model's own (``"relu"`` for plain weights).
    dtype : torch.dtype
        Float64 by default (on purpose: certification needs it).

    Returns
    -------
    Network

    Raises
    ------
    ValidationError
        Empty input, NaN or infinity, matrices that are not 2-D (or all 3-D), shapes that do
        not chain (the message names the layer and both shapes).

    Examples
    --------
    >>> net = as_network([[[1.0, 2.0]], ], activation="tanh")
    >>> net.layer_sizes, net.batched, net.activation
    ((2, 1), False, 'tanh')
    """
    from robustlaw.empirical.ensemble import Ensemble

    if isinstance(model_or_weights, Network):  # already validated
        if activation is None or activation == model_or_weights.activation:
            return model_or_weights
        get_registered(ACTIVATION_SLOPE_BOUNDS, activation, "activation")
        return dataclasses.replace(model_or_weights, activation=activation)
    biases: list | None = None
    own_activation = "relu"
    batched = None
    if isinstance(model_or_weights, Ensemble):
        spec = model_or_weights.spec
        weights = list(model_or_weights.masked_weights())
        biases = [model_or_weights.params[k] for k in spec.bias_names()] or None
        own_activation, batched = spec.activation, True
    elif isinstance(model_or_weights, torch.nn.Sequential):
        weights, biases, own_activation = _from_sequential(model_or_weights)
    elif isinstance(model_or_weights, Mapping):
        weights, biases = _from_mapping(model_or_weights)
    elif isinstance(model_or_weights, Sequence) or hasattr(model_or_weights, "__iter__"):
        weights = list(model_or_weights)
    else:
        raise ValidationError(
            f"weights must be a sequence of matrices, an Ensemble or an nn.Sequential, got "
            f"{type(model_or_weights).__name__}"
        )
    if len(weights) == 0:
        raise ValidationError("weights must hold at least one matrix, got an empty sequence")
    weights = [
        check_tensor(w, f"weights[{l}]", ndim=(2, 3), dtype=dtype) for l, w in enumerate(weights)
    ]
    ndims = {w.ndim for w in weights}
    if len(ndims) > 1:
        raise ValidationError(
            "weights must be all 2-D (one network) or all 3-D (n_members, out, in), got shapes "
            f"{[tuple(w.shape) for w in weights]}"
        )
    _check_chain(weights)
    if batched is None:
        batched = ndims == {3}
    weights = [w if w.ndim == 3 else w.unsqueeze(0) for w in weights]
    if biases is not None and any(b is None for b in biases):
        biases = None
    if biases is not None:
        biases = [
            check_tensor(b, f"biases[{l}]", ndim=(1, 2), dtype=dtype).reshape(w.shape[:2])
            for l, (b, w) in enumerate(zip(biases, weights, strict=True))
        ]
    act = own_activation if activation is None else activation
    get_registered(ACTIVATION_SLOPE_BOUNDS, act, "activation")
    return Network(
        weights=tuple(weights),
        biases=None if biases is None else tuple(biases),
        activation=act,
        batched=batched,
    )


def as_weight_list(model_or_weights: Any) -> list[torch.Tensor]:
    """The float64 weight matrices ``(out, in)`` of one network, input to output, biases dropped.

    Raises
    ------
    ValidationError
        As :func:`as_network`, and for an ensemble of more than one member (use
        :func:`weights_from_ensemble` or the batched methods).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    >>> [tuple(w.shape) for w in as_weight_list(model)]
    [(4, 3), (1, 4)]
    """
    net = as_network(model_or_weights)
    if net.n_members != 1:
        raise ValidationError(
            f"expected one network, got {net.n_members} members; use weights_from_ensemble"
        )
    return [w[0] for w in net.weights]


def weights_from_ensemble(ensemble: Any, member: int) -> list[torch.Tensor]:
    """The masked float64 weights of one member of an ensemble, input to output.

    Examples
    --------
    >>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 5, 1)), seeds=[0, 1])
    >>> [tuple(w.shape) for w in weights_from_ensemble(ens, 1)]
    [(5, 3), (1, 5)]
    """
    k = ensemble.n_members
    if isinstance(member, bool) or not isinstance(member, int) or not -k <= member < k:
        raise ValidationError(f"member must be an integer in [0, {k}), got {member!r}")
    return [w[member].to(torch.float64) for w in ensemble.masked_weights()]


def compress_input(weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Exact input compression: replace ``W0`` by ``R^T`` where ``W0^T = QR`` (reduced QR).

    Only the row space of ``W0`` matters: ``f(x) = g(R^T Q^T x)`` and ``Q^T`` maps the unit
    ball onto the unit ball, so the Lipschitz constant is unchanged while the input dimension
    drops from ``n_0`` to ``min(n_0, n_1)`` (``LIPSCHITZ.md`` §4). Works on 2-D or stacked 3-D
    matrices; the input is returned unchanged when ``n_0 <= n_1``.

    Examples
    --------
    >>> import torch
    >>> w = [torch.randn(2, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)]
    >>> c = compress_input(w)
    >>> tuple(c[0].shape), bool(torch.isclose(torch.linalg.matrix_norm(c[0], 2),
    ...                                        torch.linalg.matrix_norm(w[0], 2)))
    ((2, 2), True)
    """
    w0 = weights[0]
    if w0.shape[-1] <= w0.shape[-2]:
        return list(weights)
    _, r = torch.linalg.qr(w0.transpose(-1, -2), mode="reduced")
    return [r.transpose(-1, -2), *weights[1:]]


def zero_dead_units(weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Zero the incoming row and outgoing column of every dead hidden unit, member by member.

    A hidden unit with no incoming weight (it outputs a constant, whatever its bias) or no
    outgoing weight (nothing reads it) does not affect the Lipschitz constant. Zeroing repeats
    until no unit is left with only one side zero, so a member keeps its shape and the dead
    units are exactly the all-zero ones, which add nothing to the LipSDP LMI or to ECLipsE's
    recursion (the same bound as removing them, batched over members). Works on 2-D matrices
    or stacks ``(n_members, out, in)``.

    Examples
    --------
    >>> import torch
    >>> w0 = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 1.0]])
    >>> w1 = torch.tensor([[1.0, 5.0, 0.0]])
    >>> [w.tolist() for w in zero_dead_units([w0, w1])]
    [[[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]], [[1.0, 0.0, 0.0]]]
    """
    ws = list(weights)
    changed = True
    while changed:
        changed = False
        for l in range(len(ws) - 1):
            fed, read = (ws[l] != 0).any(dim=-1), (ws[l + 1] != 0).any(dim=-2)
            alive = fed & read
            if bool((alive != (fed | read)).any()):
                ws[l] = torch.where(alive.unsqueeze(-1), ws[l], torch.zeros_like(ws[l]))
                ws[l + 1] = torch.where(alive.unsqueeze(-2), ws[l + 1], torch.zeros_like(ws[l + 1]))
                changed = True
    return ws


def constant_members(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Which members of a stack ``(n_members, out, in)`` are constant networks, shape ``(K,)``.

    A member is constant when, once its dead units are zeroed (:func:`zero_dead_units`), one of
    its layers is zero: a zero layer, or a hidden layer whose units are all dead.

    Examples
    --------
    >>> import torch
    >>> w0 = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    >>> w1 = torch.tensor([[[0.0, 1.0]]])  # reads only the unit that nothing feeds
    >>> constant_members([w0, w1]).tolist()
    [True]
    """
    dead = torch.zeros(weights[0].shape[0], dtype=torch.bool, device=weights[0].device)
    for w in zero_dead_units(weights):
        dead |= (w == 0).flatten(1).all(dim=1)
    return dead


def drop_dead_units(weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Remove hidden units with no incoming or no outgoing weight (common after pruning).

    Such a unit is constant (whatever its bias) or unread, so the constant is unchanged. The
    units :func:`zero_dead_units` zeroes are removed; a hidden layer that dies entirely keeps
    one all-zero unit, so shapes stay valid (the network is then constant, with constant 0).
    Works on one network of 2-D matrices.

    Examples
    --------
    >>> import torch
    >>> w0 = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 1.0]])
    >>> w1 = torch.tensor([[1.0, 5.0, 0.0]])
    >>> [tuple(w.shape) for w in drop_dead_units([w0, w1])]
    [(1, 2), (1, 1)]
    """
    ws = zero_dead_units(weights)
    for l in range(len(ws) - 1):
        alive = (ws[l] != 0).any(dim=1)
        if not bool(alive.any()):
            alive[0] = True
        ws[l], ws[l + 1] = ws[l][alive], ws[l + 1][:, alive]
    return ws


def normalize_layers(weights: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Divide every layer of every member by a power of two, so its largest entry is in [1/2, 1).

    Returns the normalized stacks and the exponents ``e`` of shape ``(n_members, n_layers)``
    (int64) with ``W_l = 2^{e_l} W'_l``, exactly: scaling by powers of two is exact in floating
    point. Every upper bound here is positively homogeneous in each layer (it depends on the
    activation only through its slope bounds, and the class of slope-restricted activations is
    closed under ``phi(z) -> phi(c z) / c``), so ``bound(W) = 2^{sum e} bound(W')`` for any
    activation. That keeps the Schur complements and eigenvalue problems in range for weights
    of any scale float64 can represent. Zero layers stay zero (exponent 0).

    Examples
    --------
    >>> import torch
    >>> ws, e = normalize_layers([torch.tensor([[[3.0, 1e-200]]], dtype=torch.float64)])
    >>> ws[0].tolist(), e.tolist()
    ([[[0.75, 2.5e-201]]], [[2]])
    """
    normalized, exponents = [], []
    for w in weights:
        top = w.abs().flatten(1).amax(dim=1) if w.numel() else w.new_zeros(w.shape[0])
        e = torch.frexp(top)[1].to(torch.int64)
        normalized.append(torch.ldexp(w, -e[:, None, None]))
        exponents.append(e)
    return normalized, torch.stack(exponents, dim=1)
