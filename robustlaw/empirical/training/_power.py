"""Pieces shared by the spectral penalties and the spectral-ball constraint (internal).

Per-member option values (a number, or one per member), the stacked weight matrices of a
network, and power iteration with vectors carried across training steps.
"""

from __future__ import annotations

import math

import torch

from robustlaw._validation import check_interval
from robustlaw.errors import ValidationError

__all__ = [
    "layer_weights",
    "member_values",
    "normalized",
    "per_member",
    "power_steps",
    "start_vectors",
]

Params = dict[str, torch.Tensor]


def per_member(value, name: str, *, closed: str) -> float | tuple[float, ...]:
    """``value`` checked to lie in ``[0, inf)`` (or ``(0, inf)``): a float, or a flat tuple."""
    arr = check_interval(value, name, 0, math.inf, closed=closed)
    if arr.ndim or isinstance(value, (list, tuple)):  # one value per member
        if arr.ndim != 1 or arr.size == 0:
            raise ValidationError(f"{name} must be a number or a flat tuple, got {value!r}")
        return tuple(float(v) for v in arr)
    return float(arr)


def member_values(value: float | tuple[float, ...], params: Params, name: str) -> torch.Tensor:
    """``value`` as a ``(K,)`` tensor on the parameters' dtype and device."""
    first = next(iter(params.values()))
    n_members = first.shape[0]
    if isinstance(value, tuple) and len(value) != n_members:
        raise ValidationError(
            f"{name} has {len(value)} entries, expected one per member ({n_members})"
        )
    return torch.as_tensor(value, dtype=first.dtype, device=first.device).expand(n_members)


def normalized(x: torch.Tensor) -> torch.Tensor:
    """``x`` scaled to unit norm along its last axis (zero rows stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def layer_weights(params: Params, owner: str) -> list[tuple[str, torch.Tensor]]:
    """The stacked ``(K, out, in)`` weight matrices, first layer first."""
    found = [(k, v) for k, v in params.items() if k.endswith("weight") and v.ndim == 3]
    if not found:
        raise ValidationError(f"{owner} needs stacked (K, out, in) weight matrices in params")

    def order(item):
        head = item[0].split(".", 1)[0]
        return (0, int(head), item[0]) if head.isdigit() else (1, 0, item[0])

    return sorted(found, key=order)


def start_vectors(layers) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Unit vectors ``u`` drawn from a fixed seed (0) and zero ``v``, per weight matrix."""
    generator = torch.Generator().manual_seed(0)
    vectors = {}
    for key, w in layers:
        k, n_out, n_in = w.shape
        u = torch.randn(k, n_out, generator=generator, dtype=torch.float64)
        u = normalized(u.to(dtype=w.dtype, device=w.device))
        vectors[key] = (u, torch.zeros(k, n_in, dtype=w.dtype, device=w.device))
    return vectors


def power_steps(w: torch.Tensor, u: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` power iterations ``v <- W^T u``, ``u <- W v`` (normalized), without gradients."""
    with torch.no_grad():
        w = w.detach()
        for _ in range(steps):
            v = normalized(torch.bmm(u.unsqueeze(1), w).squeeze(1))  # W^T u, batched
            u = normalized(torch.bmm(w, v.unsqueeze(2)).squeeze(2))  # W v
    return u, v
