"""Ensembles of any ``torch.nn.Module`` through ``torch.func``.

The general path of METHODS.md §7: stacked parameters (``stack_module_state``) and
``vmap(functional_call(base, (params, buffers), x))``. The base module lives on the ``meta``
device and only supplies the computation; every member's values are in the stacked tensors.
Masks are boolean tensors keyed by parameter name and applied functionally, so the same
:func:`robustlaw.empirical.training.train_params` trains these ensembles and the MLP ones.

Two networks come with it: :func:`small_cnn` (conv-conv-linear, for images) and
:class:`TwoPatchNet`, the two-layer patch network of Yang et al. (arXiv:2301.00335, after Cao,
Chen, Belkin & Gu, NeurIPS 2022; METHODS.md §6).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from robustlaw._validation import check_choice, check_integer, check_seed, get_registered
from robustlaw.empirical.ensemble import check_masks, masked_copy, resolve_device
from robustlaw.errors import ValidationError

__all__ = [
    "MODULE_INITIALIZERS",
    "ModuleEnsemble",
    "TwoPatchNet",
    "ensemble_from_modules",
    "init_module_ensemble",
    "small_cnn",
]

Params = dict[str, torch.Tensor]


class TwoPatchNet(nn.Module):
    """The two-layer patch network of Yang et al. with a fixed second layer.

    For an input ``x = [x1, x2]`` of two patches in R^d, with filters ``w_{j,r}`` (one group of
    ``m`` per class ``j``),

    .. math:: F_j(x) = \\frac1m \\sum_{r=1}^m \\sum_{p=1}^2 \\sigma(\\langle w_{j,r}, x_p\\rangle).

    Binary networks (``n_classes=2``) output ``F_{+1} - F_{-1}`` (shape ``(B, 1)``, for the
    logistic loss with labels ±1); multi-class ones output the logits ``F_k`` (shape ``(B, C)``).
    The second layer is fixed at ±1/m and there are no biases: only ``weight`` (shape
    ``(n_classes * m, d)``, rows ``j*m .. (j+1)*m-1`` for class ``j``) is trained and pruned.

    Parameters
    ----------
    d : int
        Patch dimension; inputs have ``2 d`` features.
    m : int
        Filters per class.
    n_classes : int
        Number of classes (2 for the binary model; class 0 is label -1).
    activation : {"relu", "relu-q"}
        ReLU, or ReLU to the power ``q``.
    q : int
        The power of ``relu-q``.
    """

    def __init__(
        self, d: int, m: int, n_classes: int = 2, activation: str = "relu", q: int = 3
    ) -> None:
        super().__init__()
        check_choice(activation, "activation", ("relu", "relu-q"))
        d, m, q = (check_integer(v, name, minimum=1) for v, name in ((d, "d"), (m, "m"), (q, "q")))
        n_classes = check_integer(n_classes, "n_classes", minimum=2)
        self.d, self.m, self.n_classes, self.q = d, m, n_classes, q
        self.power = 1 if activation == "relu" else q
        self.weight = nn.Parameter(torch.empty(n_classes * m, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = x.reshape(x.shape[0], 2, self.d)
        act = torch.relu(patches @ self.weight.T) ** self.power
        scores = act.sum(dim=1).reshape(x.shape[0], self.n_classes, self.m).mean(dim=-1)
        return scores[:, 1:] - scores[:, :1] if self.n_classes == 2 else scores


def small_cnn(
    in_channels: int, image_size: int, n_classes: int, channels: tuple[int, int] = (16, 32)
) -> nn.Sequential:
    """A conv-conv-linear ReLU network for square images.

    Two 3x3 convolutions with stride 2 and padding 1 (each halves the side, rounding up),
    then a linear classifier on the flattened features.

    Examples
    --------
    >>> small_cnn(1, 8, 10)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    side = math.ceil(math.ceil(image_size / 2) / 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, channels[0], 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(channels[0], channels[1], 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels[1] * side * side, n_classes),
    )


def _fan_in(weight_shape: torch.Size) -> int:
    return math.prod(weight_shape[1:])


def _torch_default(gen, name, shape, fan_in, std):
    bound = 1.0 / math.sqrt(fan_in)
    return (2 * torch.rand(shape, generator=gen, dtype=torch.float64) - 1) * bound


def _normal(gen, name, shape, fan_in, std):
    return torch.randn(shape, generator=gen, dtype=torch.float64) * std


def _kaiming_normal(gen, name, shape, fan_in, std):
    if name.rsplit(".", 1)[-1] == "bias":
        return torch.zeros(shape, dtype=torch.float64)
    return torch.randn(shape, generator=gen, dtype=torch.float64) * math.sqrt(2.0 / fan_in)


MODULE_INITIALIZERS: dict[str, Callable] = {
    "kaiming-uniform": _torch_default,
    "kaiming-normal": _kaiming_normal,
    "normal": _normal,
}
"""Per-tensor initializers ``(generator, name, shape, fan_in, std) -> float64 tensor``.

``kaiming-uniform`` is torch's default for Linear and Conv layers, weights and biases from
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in`` the weight's entries per output unit;
``kaiming-normal`` is He et al. (2015), ``N(0, 2/fan_in)`` weights and zero biases (as the MLP
initializer of that name; OpenLTH's and Missing the Mark's init); ``normal`` draws
``N(0, std^2)`` (Yang et al.: ``std = sigma_0``).
"""


@dataclass(frozen=True, kw_only=True, eq=False)
class ModuleEnsemble:
    """K members of one ``nn.Module`` architecture, with stacked parameters and masks.

    Attributes
    ----------
    base : torch.nn.Module
        The architecture, on the ``meta`` device (holds no values).
    params : dict of str to torch.Tensor
        Stacked parameters, leading axis K.
    buffers : dict of str to torch.Tensor
        Stacked buffers, leading axis K.
    masks : dict of str to torch.Tensor
        Boolean masks for the prunable parameters (weights of rank >= 2 by default).
    seeds : tuple of int
        One seed per member.
    example_ndim : int
        Dimensions of one input example (1 for vectors, 3 for images).
    example_shape : tuple of int or None
        The shape of one input example, ``(n_features,)`` or ``(channels, height, width)``,
        when known. SynFlow's all-ones input needs it; inputs are checked against it.
    init : str or None
        The key of :data:`MODULE_INITIALIZERS` the members were drawn with, and ``init_std``
        its standard deviation; None when unknown (stacked from existing modules). The
        reinitialization ablation redraws from it (:meth:`fresh_params`).
    """

    base: nn.Module
    params: Params
    buffers: Params = field(default_factory=dict)
    masks: Params = field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    example_ndim: int = 1
    example_shape: tuple[int, ...] | None = None
    init: str | None = None
    init_std: float = 1.0

    def __post_init__(self) -> None:
        check_masks(self.masks, self.params)
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if self.example_shape is not None:
            shape = tuple(
                check_integer(n, "example_shape entry", minimum=1) for n in self.example_shape
            )
            if len(shape) != self.example_ndim:
                raise ValidationError(
                    f"example_shape {shape} has {len(shape)} dimensions but example_ndim is "
                    f"{self.example_ndim}"
                )
            object.__setattr__(self, "example_shape", shape)
        if self.init is not None:
            get_registered(MODULE_INITIALIZERS, self.init, "init")

    @property
    def n_members(self) -> int:
        """K, the number of members."""
        return next(iter(self.params.values())).shape[0]

    def apply(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """Run every member; ``x`` is shared or has a leading member axis.

        Parameters are used as given (apply masks first, as the trainer does).
        Returns outputs of shape ``(n_members, n_batch, n_outputs)``.
        """
        x_dim = 0 if x.ndim == self.example_ndim + 2 else None

        def one(p: Params, b: Params, xx: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, (p, b), (xx,))

        return vmap(one, in_dims=(0, 0, x_dim))(params, self.buffers, x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(n_members, n_batch, n_outputs)`` with the masks applied."""
        masked = {k: v * self.masks[k] if k in self.masks else v for k, v in self.params.items()}
        return self.apply(masked, x)

    def with_masks(self, masks: Params) -> ModuleEnsemble:
        """A new ensemble with these masks; parameters are copied and zeroed where pruned."""
        check_masks(masks, self.params)
        return self._replace(params=masked_copy(self.params, masks), masks=dict(masks))

    def with_params(self, params: Params) -> ModuleEnsemble:
        """A new ensemble with these parameters (copied), zeroed where the masks prune."""
        params = masked_copy(params, self.masks)
        return self._replace(params=params)

    def fresh_params(self, seeds: Sequence[int]) -> Params:
        """Parameters drawn anew from the members' init distribution, one member per seed.

        Member ``k`` equals what :func:`init_module_ensemble` draws for ``seeds[k]``.

        Raises
        ------
        ValidationError
            If the init distribution is unknown (an ensemble stacked from existing modules).
        """
        if self.init is None:
            raise ValidationError(
                "this ensemble's init distribution is unknown (stacked from existing modules); "
                "make it with init_module_ensemble to redraw its parameters"
            )
        like = next(iter(self.params.values()))
        return _draw_params(self.base, seeds, self.init, self.init_std, like.dtype, like.device)

    def _replace(self, **changes) -> ModuleEnsemble:
        return replace(self, **changes)


def _default_masks(params: Params) -> Params:
    return {
        k: torch.ones_like(v, dtype=torch.bool)
        for k, v in params.items()
        if k.rsplit(".", 1)[-1] == "weight" and v.ndim >= 3
    }


def ensemble_from_modules(
    models: Sequence[nn.Module],
    seeds: Sequence[int] | None = None,
    *,
    example_ndim: int | None = None,
    example_shape: Sequence[int] | None = None,
) -> ModuleEnsemble:
    """Stack existing modules of one architecture (``torch.func.stack_module_state``).

    Masks start full on every weight of rank >= 2 (Linear and Conv weights, and
    :class:`TwoPatchNet`'s filters). Seeds default to ``0, ..., K-1``. ``example_ndim`` and
    ``example_shape`` are as in :func:`init_module_ensemble`. The members' init distribution is
    unknown, so the reinitialization ablation refuses these ensembles.

    Examples
    --------
    >>> ens = ensemble_from_modules([small_cnn(1, 8, 3) for _ in range(2)], example_ndim=3)
    >>> ens(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([2, 5, 3])
    """
    models = list(models)
    if not models:
        raise ValidationError("models must hold at least one module, got none")
    seeds = tuple(range(len(models))) if seeds is None else tuple(seeds)
    if len(seeds) != len(models):
        raise ValidationError(f"seeds must have {len(models)} entries, got {len(seeds)}")
    try:
        params, buffers = stack_module_state(models)
    except (RuntimeError, ValueError) as exc:
        raise ValidationError(f"models must share one architecture: {exc}") from None
    params = {k: v.detach().clone() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    if example_ndim is None:
        example_ndim = 1 if example_shape is None else len(example_shape)
    return ModuleEnsemble(
        base=base,
        params=params,
        buffers={k: v.clone() for k, v in buffers.items()},
        masks=_default_masks(params),
        seeds=seeds,
        example_ndim=example_ndim,
        example_shape=None if example_shape is None else tuple(example_shape),
    )


def _draw_params(
    module: nn.Module,
    seeds: Sequence[int],
    init: str,
    init_std: float,
    dtype: torch.dtype,
    device: torch.device,
) -> Params:
    """Stacked parameters of ``module``'s shapes, member ``k`` drawn from ``seeds[k]``."""
    draw = get_registered(MODULE_INITIALIZERS, init, "init")
    shapes = dict(module.named_parameters())
    params: Params = {}
    for i, (name, p) in enumerate(shapes.items()):
        owner = name.rsplit(".", 1)[0] + ".weight" if "." in name else "weight"
        fan_in = _fan_in(shapes[owner].shape) if owner in shapes else _fan_in(p.shape)
        members = [
            draw(torch.Generator().manual_seed(s * 1_000_003 + i), name, p.shape, fan_in, init_std)
            for s in seeds
        ]
        params[name] = torch.stack(members).to(device, dtype)
    return params


def init_module_ensemble(
    module: nn.Module,
    seeds: Sequence[int],
    *,
    example_ndim: int | None = None,
    example_shape: Sequence[int] | None = None,
    init: str = "kaiming-uniform",
    init_std: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> ModuleEnsemble:
    """One member per seed of ``module``'s architecture, each drawn from its own generator.

    Parameters
    ----------
    module : torch.nn.Module
        The architecture; its own parameter values are ignored.
    seeds : sequence of int
        One seed per member.
    example_ndim : int, optional
        Dimensions of one input example (default: ``len(example_shape)``, else 1).
    example_shape : sequence of int, optional
        The shape of one input example, e.g. ``(3, 32, 32)``; SynFlow needs it.
    init : {"kaiming-uniform", "kaiming-normal", "normal"}
        A key of :data:`MODULE_INITIALIZERS`.
    init_std : float
        Standard deviation for ``init="normal"``.
    dtype, device
        Parameter dtype (float32 default) and device.

    Examples
    --------
    >>> ens = init_module_ensemble(TwoPatchNet(d=4, m=3), seeds=[0, 1], init="normal",
    ...                            init_std=0.01)
    >>> tuple(ens.params["weight"].shape), sorted(ens.masks)
    ((2, 6, 4), ['weight'])
    >>> init_module_ensemble(small_cnn(1, 8, 10), seeds=[0], example_shape=(1, 8, 8)).example_ndim
    3
    """
    seeds = tuple(check_seed(s, "seeds entry") for s in seeds)
    if not seeds:
        raise ValidationError("seeds must hold at least one seed, got an empty sequence")
    if example_ndim is None:
        example_ndim = 1 if example_shape is None else len(example_shape)
    dev = resolve_device(device)
    params = _draw_params(module, seeds, init, init_std, dtype, dev)
    buffers = {
        k: b.detach().to(dev).expand(len(seeds), *b.shape).clone()
        for k, b in module.named_buffers()
    }
    return ModuleEnsemble(
        base=copy.deepcopy(module).to("meta"),
        params=params,
        buffers=buffers,
        masks=_default_masks(params),
        seeds=seeds,
        example_ndim=example_ndim,
        example_shape=None if example_shape is None else tuple(example_shape),
        init=init,
        init_std=init_std,
    )
