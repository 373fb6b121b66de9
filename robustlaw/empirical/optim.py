"""Functional SGD and Adam on stacked per-member tensors.

The optimizers act element-wise on tensors with a leading member axis of length K, so members
never interact (METHODS.md §7). Each optimizer is a pair of functions ``init(params) -> state``
and ``step(params, grads, state, lr, active) -> state`` that update ``params`` in place, with
``lr`` of shape ``(K,)`` (per-member learning rates) and ``active`` a boolean ``(K,)`` flag: an
inactive member's parameters *and* optimizer state stay exactly as they are.

The semantics match ``torch.optim.SGD`` (heavy-ball momentum, no dampening, no Nesterov) and
``torch.optim.Adam`` (bias-corrected, ``eps`` added to the square root of the second moment),
which the tests check against one member at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["OPTIMIZERS", "Optimizer", "adam_init", "adam_step", "sgd_init", "sgd_step"]

Params = dict[str, torch.Tensor]


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a (K,) tensor to broadcast against ``like`` of shape (K, ...)."""
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


def sgd_init(params: Params, *, momentum: float = 0.0, **_: object) -> dict:
    """The SGD state: a momentum buffer per parameter when ``momentum > 0``."""
    bufs = {k: torch.zeros_like(v) for k, v in params.items()} if momentum > 0 else {}
    return {"momentum": momentum, "buf": bufs, "started": False}


def sgd_step(
    params: Params, grads: Params, state: dict, lr: torch.Tensor, active: torch.Tensor
) -> dict:
    """One SGD step, ``p -= lr * (g + momentum * buf)`` as in ``torch.optim.SGD``.

    The first step sets the buffer to the gradient (torch's rule); afterwards
    ``buf = momentum * buf + g``. Inactive members keep their parameters and buffers.
    """
    mom = state["momentum"]
    for k, p in params.items():
        a = _expand(active, p)
        d = grads[k]
        if mom > 0:
            buf = state["buf"][k]
            new = d.clone() if not state["started"] else buf * mom + d
            buf.copy_(torch.where(a, new, buf))
            d = buf
        p.sub_(_expand(lr, p) * d * a)
    state["started"] = True
    return state


def adam_init(params: Params, **_: object) -> dict:
    """The Adam state: first and second moments and a per-member step count."""
    n_members = next(iter(params.values())).shape[0]
    device = next(iter(params.values())).device
    return {
        "m": {k: torch.zeros_like(v) for k, v in params.items()},
        "v": {k: torch.zeros_like(v) for k, v in params.items()},
        "t": torch.zeros(n_members, dtype=torch.int64, device=device),
    }


def adam_step(
    params: Params,
    grads: Params,
    state: dict,
    lr: torch.Tensor,
    active: torch.Tensor,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> dict:
    """One Adam step (Kingma & Ba 2015, arXiv:1412.6980) with torch's bias correction.

    ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``p -= lr * m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps)``. The step count ``t`` is per member
    and only advances for active members; inactive members keep ``p``, ``m``, ``v`` and ``t``.
    """
    b1, b2 = betas
    t = state["t"] + active.to(torch.int64)
    state["t"] = t
    tf = t.clamp(min=1).to(lr.dtype)
    c1 = 1 - b1**tf
    c2 = 1 - b2**tf
    for k, p in params.items():
        a = _expand(active, p)
        g = grads[k]
        m, v = state["m"][k], state["v"][k]
        m.copy_(torch.where(a, m * b1 + g * (1 - b1), m))
        v.copy_(torch.where(a, v * b2 + g * g * (1 - b2), v))
        denom = (v / _expand(c2, p)).sqrt() + eps
        p.sub_(torch.where(a, _expand(lr / c1, p) * m / denom, torch.zeros_like(p)))
    return state


@dataclass(frozen=True)
class Optimizer:
    """A registered optimizer: its state constructor and its step."""

    init: Callable[..., dict]
    step: Callable[..., dict]


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(init=sgd_init, step=sgd_step),
    "adam": Optimizer(init=adam_init, step=adam_step),
}
