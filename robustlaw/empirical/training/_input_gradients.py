"""Input gradients of stacked MLPs, rebuilt from their parameters (internal).

The pieces of :class:`~robustlaw.empirical.training.gradient_penalty.GradientPenalty`: the
forward pass of the network the trainer trains (linear layers ``"0.weight"``, ``"0.bias"``,
``"2.weight"``, ... as in :mod:`robustlaw.empirical.ensemble`, an activation between them), the
Jacobian norm per point (with the graph kept, so it can be differentiated with respect to the
parameters), the projections onto the support of an input distribution and projected ascent
on the Jacobian norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from robustlaw.empirical.ensemble import ACTIVATIONS
from robustlaw.empirical.training._power import layer_weights, normalized

__all__ = ["SUPPORTS", "Layers", "ascend", "forward", "jacobian_norms", "mlp_layers"]

Params = dict[str, torch.Tensor]
Layers = list[tuple[torch.Tensor, torch.Tensor | None]]
Activation = Callable[[torch.Tensor], torch.Tensor]


def _sphere(x: torch.Tensor, scale: float) -> torch.Tensor:
    return scale * normalized(x)


def _whole_space(x: torch.Tensor, scale: float) -> torch.Tensor:
    return x


def _cube(x: torch.Tensor, scale: float) -> torch.Tensor:
    return x.clamp(0.0, scale / math.sqrt(x.shape[-1]))


#: Projection onto the support of each input distribution of
#: :data:`robustlaw.empirical.data.synthetic.INPUT_SAMPLERS` at a given ``scale``.
SUPPORTS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "gaussian-normalized": _whole_space,
    "gaussian": _whole_space,
    "sphere": _sphere,
    "cube": _cube,
}


def mlp_layers(params: Params, owner: str) -> Layers:
    """The ``(weight (K, out, in), bias (K, out) or None)`` pairs, first layer first."""
    layers = []
    for key, w in layer_weights(params, owner):
        bias = params.get(key[: -len("weight")] + "bias")
        layers.append((w, bias))
    return layers


def forward(layers: Layers, x: torch.Tensor, act: Activation) -> torch.Tensor:
    """Outputs ``(K, m, n_outputs)`` at points ``x`` of shape ``(K, m, d)``."""
    h = x
    for l, (w, b) in enumerate(layers):
        h = h @ w.mT
        if b is not None:
            h = h + b.unsqueeze(-2)
        if l < len(layers) - 1:
            h = act(h)
    return h


def jacobian_norms(
    layers: Layers, x: torch.Tensor, act: Activation, *, tangential: bool, create_graph: bool
) -> torch.Tensor:
    """``||J(x)||_F`` per member and point, shape ``(K, m)`` (``||grad f||_2`` for one output).

    With ``tangential`` the Jacobian is ``J (I - u u^T)`` with ``u = x / ||x||``: the rate of
    change along the sphere through ``x`` (THEORY §7.1). With ``create_graph`` the result is
    differentiable with respect to the layers (double backward).
    """
    if not x.requires_grad:  # the points themselves are not being differentiated
        x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = forward(layers, x, act)
        rows = [
            torch.autograd.grad(out[..., j].sum(), x, create_graph=create_graph, retain_graph=True)[
                0
            ]
            for j in range(out.shape[-1])
        ]
    jac = torch.stack(rows, dim=-2)  # (K, m, n_outputs, d)
    if tangential:
        u = normalized(x).unsqueeze(-2)
        jac = jac - (jac * u).sum(dim=-1, keepdim=True) * u
    return torch.linalg.vector_norm(jac.flatten(-2), dim=-1)


def smoothed(act_name: str, sharpness: float) -> Activation:
    """The activation used for the ascent: ReLU as ``softplus(s z) / s``, others unchanged.

    ReLU networks are piecewise linear: their Jacobian is piecewise constant, so the Jacobian
    norm has a zero gradient almost everywhere and plain ascent would not move.
    """
    if act_name == "relu":
        return lambda z: F.softplus(z, beta=sharpness)
    return ACTIVATIONS[act_name]


def ascend(
    layers: Layers,
    x0: torch.Tensor,
    *,
    act_name: str,
    steps: int,
    step_size: float,
    sharpness: float,
    project: Callable[[torch.Tensor], torch.Tensor],
    tangential: bool,
    on_sphere: bool,
) -> torch.Tensor:
    """Points ``(K, m, d)`` with Jacobian norms at least those at ``x0`` (detached).

    ``steps`` steps of normalized ascent ``x <- project(x + step_size * u / ||u||)``, with
    ``u`` the gradient of the smoothed network's squared Jacobian norm (its tangential part on
    the sphere); each point keeps the iterate where the real network's norm is largest, so
    the result never falls below the start.
    """
    layers = [(w.detach(), None if b is None else b.detach()) for w, b in layers]
    act, smooth = ACTIVATIONS[act_name], smoothed(act_name, sharpness)

    def real(x):
        return jacobian_norms(layers, x, act, tangential=tangential, create_graph=False)

    x = project(x0.detach())
    best_x, best = x, real(x)
    for _ in range(steps):
        xr = x.detach().requires_grad_(True)
        with torch.enable_grad():
            norms = jacobian_norms(layers, xr, smooth, tangential=tangential, create_graph=True)
            (u,) = torch.autograd.grad(norms.square().sum(), xr)
        with torch.no_grad():
            u = u.nan_to_num(0.0)
            if on_sphere:
                radial = normalized(x)
                u = u - (u * radial).sum(dim=-1, keepdim=True) * radial
            x = project(x + step_size * normalized(u))
        value = real(x)
        better = value > best
        best_x = torch.where(better.unsqueeze(-1), x, best_x)
        best = torch.maximum(best, value)
    return best_x.detach()
