"""The tensors the trainer updates (its leaves) and how they map to the parameters.

:class:`DenseLeaves` keeps every parameter as a stacked dense tensor, in the layout its
gradient comes out in, and runs any functional model. :class:`CompressedLeaves` keeps a masked
MLP's weights as their kept entries only and runs the layers on the compiled sparse kernels of
:mod:`robustlaw.empirical.training.sparse_kernels`: the optimizer then touches only kept
weights, and no mask needs multiplying in. Both give the trainer the same four things: the
leaves, the masks still to apply to their gradients, the parameters in their own shapes, and
the model's outputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from robustlaw.empirical.ensemble import MLPSpec
from robustlaw.empirical.training.options import TrainOptions
from robustlaw.empirical.training.sparse_kernels import (
    SPARSE_DENSITY_LIMIT,
    KernelLayer,
    kernels,
    kernels_unavailable_reason,
    sparse_mlp,
)
from robustlaw.errors import ValidationError

__all__ = ["CompressedLeaves", "DenseLeaves", "use_sparse_kernels"]

Params = dict[str, torch.Tensor]


def _transposed_grads(apply, params: Params, x: torch.Tensor) -> frozenset[str]:
    """Names of the parameters whose gradients come out as transposed views.

    A weight used as ``w.mT`` in a batched matmul gets its gradient as the transpose of a
    contiguous product; stored transposed, its gradient is contiguous, and the element-wise
    masking and optimizer passes then read memory in order (several times faster on CPU).
    """
    grads = torch.autograd.grad(apply(params, x).sum(), list(params.values()))
    return frozenset(
        k
        for k, g in zip(params, grads, strict=True)
        if g.ndim >= 2 and not g.is_contiguous() and g.mT.is_contiguous()
    )


def _flip(t: torch.Tensor, flip: bool) -> torch.Tensor:
    return t.mT if flip else t


class DenseLeaves:
    """Every parameter a dense leaf, stored in its gradient's layout.

    Parameters
    ----------
    apply : callable
        ``apply(params, x) -> outputs``.
    params, masks : dict of str to torch.Tensor
        Stacked parameters (pruned entries zero) and boolean masks.
    probe : torch.Tensor
        One example batch, to find which gradients come out transposed.
    """

    def __init__(self, apply: Callable, params: Params, masks: Params, probe: torch.Tensor):
        self._apply = apply
        self.flips = _transposed_grads(apply, params, probe)
        self.leaves = {
            k: v.detach().mT.contiguous().requires_grad_(True) if k in self.flips else v
            for k, v in params.items()
        }
        self.masks = {k: _flip(m, k in self.flips).contiguous() for k, m in masks.items()}

    def params(self) -> Params:
        """The parameters in their own shapes: views of the leaves."""
        return {k: _flip(v, k in self.flips) for k, v in self.leaves.items()}

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The outputs ``(K, n, n_outputs)`` on inputs ``x``."""
        return self._apply(self.params(), x)

    def to_leaf(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """A tensor of parameter ``name``'s shape in its leaf's layout."""
        return _flip(t, name in self.flips)


class CompressedLeaves:
    """A masked MLP's weights as ``(K, P)`` kept entries; biases dense.

    Parameters
    ----------
    spec : MLPSpec
        The architecture.
    params, masks : dict of str to torch.Tensor
        Stacked parameters (pruned entries zero) and boolean masks; a weight without a mask is
        kept whole.
    """

    def __init__(self, spec: MLPSpec, params: Params, masks: Params):
        self.spec = spec
        self.layers = {
            name: KernelLayer.from_mask(
                masks[name] if name in masks else torch.ones_like(params[name], dtype=torch.bool)
            )
            for name in spec.weight_names()
        }
        self.leaves = {
            k: self.layers[k].compress(v.detach()).requires_grad_(True) if k in self.layers else v
            for k, v in params.items()
        }
        self.masks = {k: m for k, m in masks.items() if k not in self.layers}

    def params(self) -> Params:
        """The parameters in their own shapes (weights expanded, zero at pruned entries)."""
        return {
            k: self.layers[k].expand(v) if k in self.layers else v for k, v in self.leaves.items()
        }

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The outputs ``(K, n, n_outputs)`` on inputs ``(n, d)`` or ``(K, n, d)``."""
        names = self.spec.weight_names()
        biases = self.spec.bias_names() if self.spec.bias else (None,) * len(names)
        out = sparse_mlp(
            x.mT.contiguous(),  # unit-major: (d, n) or (K, d, n)
            [self.leaves[name] for name in names],
            [self.leaves[name] if name else None for name in biases],
            [self.layers[name] for name in names],
            self.spec.activation,
        )
        return out.mT

    def to_leaf(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """A tensor of parameter ``name``'s shape in its leaf's layout (kept entries only)."""
        return self.layers[name].compress(t) if name in self.layers else t


def _sparse_obstacle(options: TrainOptions, params: Params) -> str | None:
    """Why the sparse kernels cannot train these parameters (None if they can)."""
    first = next(iter(params.values()))
    if first.device.type != "cpu" or first.dtype not in (torch.float32, torch.float64):
        return f"they run float32 or float64 on the CPU, not {first.dtype} on {first.device}"
    if options.penalty is not None or options.constraint is not None:
        return "a penalty or a constraint needs the dense parameters at every step"
    if kernels() is None:
        return kernels_unavailable_reason()
    return None


def use_sparse_kernels(options: TrainOptions, spec: MLPSpec, params: Params, masks: Params) -> bool:
    """Whether an MLP ensemble trains on :class:`CompressedLeaves` (``options.kernels``).

    Raises
    ------
    ValidationError
        If ``options.kernels`` is ``"sparse"`` and the sparse kernels cannot train these
        parameters (saying why).
    """
    if options.kernels == "dense":
        return False
    if options.kernels == "auto":  # decided by density first: no compiling for dense nets
        weights = spec.weight_names()
        kept = sum(int(masks[w].sum()) if w in masks else params[w].numel() for w in weights)
        density = kept / sum(params[w].numel() for w in weights)
        if not any(w in masks for w in weights) or density > SPARSE_DENSITY_LIMIT:
            return False
    obstacle = _sparse_obstacle(options, params)
    if options.kernels == "sparse" and obstacle is not None:
        raise ValidationError(f"kernels='sparse' cannot be used: {obstacle}")
    return obstacle is None
