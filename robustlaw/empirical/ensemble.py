"""Ensembles of K independent masked MLPs with stacked weights.

An ensemble holds, for each linear layer ``l``, a weight tensor of shape
``(n_members, out, in)`` (torch's ``(out, in)`` order with a leading member axis), a bias of
shape ``(n_members, out)`` and a boolean mask of the weight's shape; a bias may carry a mask of
its own shape too (No Free Prune's Fig. 4 toy model prunes biases). Parameter names follow the
``nn.Sequential`` of ``Linear`` and activation modules that a member corresponds to:
``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ... so masks, state dicts and
``torch.nn.utils.prune`` buffers share keys.

The forward pass is one batched matmul per layer, never a loop over members.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import torch

from robustlaw._validation import check_integer, check_seed, derived_seed, get_registered
from robustlaw.errors import ValidationError

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "Ensemble",
    "MLPSpec",
    "check_input_shape",
    "check_masks",
    "forward",
    "init_mlp_ensemble",
    "masked_copy",
    "resolve_device",
]

ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda h: h,
}


def _kaiming_uniform(gen: torch.Generator, fan_out: int, fan_in: int):
    bound = 1.0 / math.sqrt(fan_in)
    w = torch.rand(fan_out, fan_in, generator=gen, dtype=torch.float64)
    b = torch.rand(fan_out, generator=gen, dtype=torch.float64)
    return (2 * w - 1) * bound, (2 * b - 1) * bound


def _kaiming_normal(gen: torch.Generator, fan_out: int, fan_in: int):
    w = torch.randn(fan_out, fan_in, generator=gen, dtype=torch.float64)
    return w * math.sqrt(2.0 / fan_in), torch.zeros(fan_out, dtype=torch.float64)


def _standard_normal(gen: torch.Generator, fan_out: int, fan_in: int):
    w = torch.randn(fan_out, fan_in, generator=gen, dtype=torch.float64)
    return w, torch.randn(fan_out, generator=gen, dtype=torch.float64)


INITIALIZERS = {
    "kaiming-uniform": _kaiming_uniform,
    "kaiming-normal": _kaiming_normal,
    "standard-normal": _standard_normal,
}
"""Weight and bias initializers, ``(generator, fan_out, fan_in) -> (weight, bias)`` in float64.

``kaiming-uniform`` is ``nn.Linear``'s default: weight and bias from
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``. ``kaiming-normal`` is He et al. (2015):
``N(0, 2/fan_in)`` weights, zero biases. ``standard-normal`` draws every entry from ``N(0, 1)``.
"""


def resolve_device(device: str | torch.device) -> torch.device:
    """Return ``device`` as a ``torch.device``, rejecting CUDA when no GPU is present.

    ``"auto"`` means ``"cuda"`` when a GPU is present and ``"cpu"`` otherwise.

    Raises
    ------
    ValidationError
        If the device string is malformed or names CUDA without an available GPU.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValidationError(
            f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError(f"device={device!r} requested but no CUDA GPU is available")
    return dev


def masked_copy(
    params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Detached copies of ``params``, zero where ``masks`` prune (keys without a mask copied).

    Examples
    --------
    >>> masked_copy({"w": torch.ones(2)}, {"w": torch.tensor([True, False])})["w"].tolist()
    [1.0, 0.0]
    """
    return {
        k: v.detach() * masks[k] if k in masks else v.detach().clone() for k, v in params.items()
    }


def check_masks(
    masks: Mapping[str, torch.Tensor],
    params: Mapping[str, torch.Tensor],
    *,
    required: Sequence[str] | None = None,
    optional: Sequence[str] = (),
) -> None:
    """Check that masks are boolean tensors of their parameters' shapes and devices.

    The one mask validator of robustlaw: ensembles, training and pruning all call it.

    Parameters
    ----------
    masks : mapping of str to torch.Tensor
        The masks to check; keys must be parameter names.
    params : mapping of str to torch.Tensor
        The parameters the masks belong to.
    required : sequence of str, optional
        If given, the mask keys must be exactly these, plus any of ``optional``.
    optional : sequence of str
        Keys that may have a mask when ``required`` is given (an ensemble's bias keys).

    Raises
    ------
    ValidationError
        Naming the key and what was expected: a missing or extra key, a mask that is not a
        boolean tensor, or one whose shape or device differs from its parameter's.

    Examples
    --------
    >>> w = {"0.weight": torch.zeros(1, 2, 3)}
    >>> check_masks({"0.weight": torch.ones(1, 2, 3, dtype=torch.bool)}, w, required=["0.weight"])
    >>> check_masks({"0.weight": torch.ones(1, 3, 2, dtype=torch.bool)}, w)
    Traceback (most recent call last):
    ...
    robustlaw.errors.ValidationError: mask '0.weight' must have shape (1, 2, 3), got (1, 3, 2)
    """
    if not isinstance(masks, Mapping):
        raise ValidationError(f"masks must be a dict of bool tensors, got {type(masks).__name__}")
    if required is not None and not set(required) <= set(masks) <= {*required, *optional}:
        allowed = f" (optionally also {sorted(optional)})" if optional else ""
        raise ValidationError(
            f"masks must have keys {sorted(required)}{allowed}, got {sorted(masks)}"
        )
    for key, m in masks.items():
        if key not in params:
            raise ValidationError(
                f"mask key {key!r} is not a parameter; expected one of {sorted(params)}"
            )
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            got = m.dtype if isinstance(m, torch.Tensor) else type(m).__name__
            raise ValidationError(f"mask {key!r} must be a torch.bool tensor, got {got}")
        if m.shape != params[key].shape:
            raise ValidationError(
                f"mask {key!r} must have shape {tuple(params[key].shape)}, got {tuple(m.shape)}"
            )
        if m.device != params[key].device:
            raise ValidationError(f"mask {key!r} must be on {params[key].device}, got {m.device}")


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
    init : str
        The initializer, a key of :data:`INITIALIZERS` (torch's Kaiming-uniform by default).
    """

    layer_sizes: tuple[int, ...]
    activation: str = "relu"
    bias: bool = True
    init: str = "kaiming-uniform"

    def __post_init__(self) -> None:
        if isinstance(self.layer_sizes, (str, bytes)) or not hasattr(self.layer_sizes, "__iter__"):
            raise ValidationError(
                f"layer_sizes must be a sequence of integers, got {self.layer_sizes!r}"
            )
        sizes = tuple(check_integer(s, "layer_sizes entry", minimum=1) for s in self.layer_sizes)
        if len(sizes) < 2:
            raise ValidationError(f"layer_sizes must have at least two entries, got {sizes!r}")
        object.__setattr__(self, "layer_sizes", sizes)
        get_registered(ACTIVATIONS, self.activation, "activation")
        get_registered(INITIALIZERS, self.init, "init")

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
        One boolean tensor per weight key, of the weight's shape, and optionally one per bias
        key, of the bias's shape. ``True`` keeps the entry; a bias without a mask is kept.
    seeds : tuple of int
        The seed each member was initialized from.
    """

    spec: MLPSpec
    params: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    seeds: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        names = self.spec.weight_names() + self.spec.bias_names()
        if set(self.params) != set(names):
            raise ValidationError(
                f"params must have keys {sorted(names)}, got {sorted(self.params)}"
            )
        n_members = self.params[names[0]].shape[0]
        for l, (fan_in, fan_out) in enumerate(pairwise(self.spec.layer_sizes)):
            expected = {f"{2 * l}.weight": (n_members, fan_out, fan_in)}
            if self.spec.bias:
                expected[f"{2 * l}.bias"] = (n_members, fan_out)
            for key, shape in expected.items():
                if tuple(self.params[key].shape) != shape:
                    raise ValidationError(
                        f"params[{key!r}] must have shape {shape}, "
                        f"got {tuple(self.params[key].shape)}"
                    )
        kinds = {(v.dtype, v.device) for v in self.params.values()}
        if len(kinds) != 1 or not self.params[names[0]].is_floating_point():
            raise ValidationError(
                f"params must share one floating dtype and device, got {sorted(map(str, kinds))}"
            )
        self._check_masks(self.masks)
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if self.seeds and len(self.seeds) != n_members:
            raise ValidationError(
                f"seeds must have one entry per member ({n_members}), got {len(self.seeds)}"
            )

    def _check_masks(self, masks: Mapping[str, torch.Tensor]) -> None:
        check_masks(
            masks, self.params, required=self.spec.weight_names(), optional=self.spec.bias_names()
        )

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

    @property
    def example_ndim(self) -> int:
        """Dimensions of one input example: 1 (feature vectors)."""
        return 1

    def apply(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Run every member with the given (already masked) stacked parameters.

        The functional form the trainer uses; see :func:`forward` for shapes.
        """
        return _forward(self.spec, params, None, x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(n_members, n_samples, n_outputs)`` with the masks applied.

        Raises
        ------
        ValidationError
            If ``x`` is not a tensor of shape ``(n_samples, n_features)`` or
            ``(n_members, n_samples, n_features)``.
        """
        return forward(self.spec, self.params, self.masks, x)

    def masked_weights(self) -> tuple[torch.Tensor, ...]:
        """Weights times masks, each of shape ``(n_members, out, in)``, input to output."""
        return tuple(self.params[k] * self.masks[k] for k in self.spec.weight_names())

    def density(self) -> torch.Tensor:
        """Fraction of masked entries kept per member, shape ``(n_members,)`` (float64).

        The masked entries are the weights plus the biases that carry a mask: 21 parameters
        for a 3-4-1 net with masked biases, its 16 weights otherwise.
        """
        kept = sum(m.flatten(1).sum(dim=1) for m in self.masks.values())
        return kept.to(torch.float64) / sum(m[0].numel() for m in self.masks.values())

    def with_masks(self, masks: dict[str, torch.Tensor]) -> Ensemble:
        """A new ensemble with these masks; parameters are copied and zeroed where pruned.

        Raises
        ------
        ValidationError
            If ``masks`` lacks a weight key, has a key that is neither a weight nor a bias, or
            a mask's dtype, shape or device does not match its parameter.
        """
        self._check_masks(masks)
        params = masked_copy(self.params, masks)
        return Ensemble(spec=self.spec, params=params, masks=dict(masks), seeds=self.seeds)

    def with_params(self, params: dict[str, torch.Tensor]) -> Ensemble:
        """A new ensemble with these parameters (copied), zeroed where the masks prune.

        Raises
        ------
        ValidationError
            If the keys or shapes of ``params`` do not match the architecture.
        """
        params = masked_copy(params, self.masks)
        return Ensemble(spec=self.spec, params=params, masks=self.masks, seeds=self.seeds)

    def to(
        self, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Ensemble:
        """A copy on another device or with another floating dtype (masks stay bool)."""
        dev = resolve_device(device) if device is not None else self.device
        params = {k: v.to(device=dev, dtype=dtype or v.dtype) for k, v in self.params.items()}
        masks = {k: v.to(dev) for k, v in self.masks.items()}
        return Ensemble(spec=self.spec, params=params, masks=masks, seeds=self.seeds)


def init_mlp_ensemble(
    spec: MLPSpec,
    seeds: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Ensemble:
    """Initialize one MLP per seed with ``spec.init`` (by default as ``torch.nn.Linear`` does).

    The default draws weights and biases from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, the
    distribution ``nn.Linear.reset_parameters`` uses; see :data:`INITIALIZERS` for the others.
    Each member and layer has its own ``torch.Generator`` seeded from the member's seed, so a
    member's initial values never depend on the other members. Draws are made in float64 and
    then cast, so float32 and float64 ensembles agree to float32 rounding. Masks start full.

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

    Raises
    ------
    ValidationError
        If a seed is invalid, ``seeds`` is empty, ``dtype`` is not floating or CUDA is
        requested without a GPU.

    Examples
    --------
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 5, 1)), seeds=[0, 1])
    >>> tuple(ens.params["0.weight"].shape), ens.n_members
    ((2, 5, 3), 2)
    """
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValidationError(f"seeds must be a sequence of integers, got {seeds!r}")
    seeds = tuple(check_seed(s, "seeds entry") for s in seeds)
    if not seeds:
        raise ValidationError("seeds must hold at least one seed, got an empty sequence")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValidationError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    device = resolve_device(device)
    draw = INITIALIZERS[spec.init]
    params: dict[str, torch.Tensor] = {}
    for l, (fan_in, fan_out) in enumerate(pairwise(spec.layer_sizes)):
        pairs = [
            draw(torch.Generator().manual_seed(derived_seed(seed, l)), fan_out, fan_in)
            for seed in seeds
        ]
        params[f"{2 * l}.weight"] = torch.stack([w for w, _ in pairs]).to(device, dtype)
        if spec.bias:
            params[f"{2 * l}.bias"] = torch.stack([b for _, b in pairs]).to(device, dtype)
    masks = {k: torch.ones_like(params[k], dtype=torch.bool) for k in spec.weight_names()}
    return Ensemble(spec=spec, params=params, masks=masks, seeds=seeds)


def check_input_shape(shape: Sequence[int], spec: MLPSpec, n_members: int, name: str = "X") -> None:
    """Check that inputs of this shape fit the ensemble: ``(n_samples, d)`` or ``(K, n_samples, d)``.

    Parameters
    ----------
    shape : sequence of int
        The inputs' shape.
    spec : MLPSpec
        The architecture; ``d = spec.layer_sizes[0]``.
    n_members : int
        ``K``, the leading axis of per-member inputs.
    name : str
        The argument's name, used in the error message.

    Raises
    ------
    ValidationError
        Naming the argument, the expected shape and the shape it got.

    Examples
    --------
    >>> check_input_shape((5, 3), MLPSpec(layer_sizes=(4, 2)), 1)
    Traceback (most recent call last):
    ...
    robustlaw.errors.ValidationError: X must have shape (n_samples, 4) or (1, n_samples, 4) for layer_sizes (4, 2), got (5, 3)
    """  # noqa: E501
    shape = tuple(shape)
    d = spec.layer_sizes[0]
    if len(shape) not in (2, 3) or shape[-1] != d or (len(shape) == 3 and shape[0] != n_members):
        raise ValidationError(
            f"{name} must have shape (n_samples, {d}) or ({n_members}, n_samples, {d}) for "
            f"layer_sizes {spec.layer_sizes}, got {shape}"
        )


def forward(
    spec: MLPSpec,
    params: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor] | None,
    x: torch.Tensor,
) -> torch.Tensor:
    """Run every member on its inputs.

    Parameters
    ----------
    spec : MLPSpec
        The architecture.
    params : dict of str to torch.Tensor
        Stacked parameters, as in :class:`Ensemble`.
    masks : dict of str to torch.Tensor or None
        Boolean masks multiplied into the weights (and into the biases that have one); None
        when ``params`` are already masked.
    x : torch.Tensor
        Shared inputs of shape ``(n_samples, n_features)`` or per-member inputs of shape
        ``(n_members, n_samples, n_features)``.

    Returns
    -------
    torch.Tensor
        Outputs of shape ``(n_members, n_samples, n_outputs)``.

    Raises
    ------
    ValidationError
        If ``x`` is not a tensor or its shape does not fit (wrong feature count or member axis).
    """
    if not isinstance(x, torch.Tensor):
        raise ValidationError(f"x must be a torch.Tensor, got {type(x).__name__}")
    check_input_shape(x.shape, spec, params[spec.weight_names()[0]].shape[0], "x")
    return _forward(spec, params, masks, x)


def _forward(spec: MLPSpec, params: dict, masks: dict | None, x: torch.Tensor) -> torch.Tensor:
    """:func:`forward` on inputs already checked (the trainer's hot path)."""
    act = ACTIVATIONS[spec.activation]
    h = x
    last = spec.n_layers - 1
    for l, name in enumerate(spec.weight_names()):
        w = params[name] if masks is None else params[name] * masks[name]
        if spec.bias:
            key = f"{2 * l}.bias"
            b = params[key] if masks is None or key not in masks else params[key] * masks[key]
            b = b.unsqueeze(1)
            h = torch.baddbmm(b, h, w.transpose(1, 2)) if h.ndim == 3 else b + h @ w.mT
        else:
            h = torch.matmul(h, w.mT)
        if l < last:
            h = act(h)
    return h
