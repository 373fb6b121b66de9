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
    return {"momentum": momentum, "buf": bufs}


def sgd_step(
    params: Params, grads: Params, state: dict, lr: torch.Tensor, active: torch.Tensor
) -> dict:
    """One SGD step, ``buf = momentum * buf + g``, ``p -= lr * buf`` (``torch.optim.SGD``).

    The buffer starts at zero, so the first step uses ``buf = g`` as torch does. Gradients of
    inactive members must already be zero (the trainer multiplies them by ``active``); their
    buffers and parameters then stay exactly as they are.
    """
    mom = state["momentum"]
    keep = torch.where(active, lr.new_tensor(mom), lr.new_tensor(1.0))
    for k, p in params.items():
        d = grads[k]
        if mom > 0:
            d = state["buf"][k].mul_(_expand(keep, p)).add_(d)
        p.addcmul_(d, _expand(lr * active, p), value=-1.0)
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
    ``p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)``. The step count ``t`` is per member
    and only advances for active members. Gradients of inactive members must already be zero
    (the trainer multiplies them by ``active``); their ``p``, ``m``, ``v`` and ``t`` then stay
    exactly as they are. Entries with zero gradient and zero moments (pruned weights) get an
    update of exactly zero.

    The second moment is clamped below at the smallest normal float before the square root
    (a change of at most ``sqrt(tiny)``, about 1e-19 in float32, in the
    denominator): CPU square roots of exact zeros, which pruned entries are, run about ten
    times slower than those of normal numbers.
    """
    b1, b2 = betas
    tiny = torch.finfo(lr.dtype).tiny
    a = active.to(lr.dtype)
    state["t"] += active.to(torch.int64)
    tf = state["t"].clamp(min=1).to(lr.dtype)
    step = lr * a / (1 - b1**tf)
    sqrt_c2 = (1 - b2**tf).sqrt()
    w1 = (1 - b1) * a
    keep2 = 1 - (1 - b2) * a
    for k, p in params.items():
        g = grads[k]
        m, v = state["m"][k], state["v"][k]
        m.lerp_(g, _expand(w1, p))
        v.mul_(_expand(keep2, p)).addcmul_(g, g, value=1 - b2)
        denom = v.clamp_min(tiny).sqrt_().div_(_expand(sqrt_c2, p)).add_(eps)
        p.addcdiv_(m * _expand(step, p), denom, value=-1.0)
    return state


@dataclass(frozen=True)
class Optimizer:
    """A registered optimizer.

    Attributes
    ----------
    init : callable
        ``init(params, **hyper) -> state``.
    step : callable
        ``step(params, grads, state, lr, active, **hyper) -> state``.
    hyper : callable
        Picks the optimizer's keyword hyperparameters from a ``TrainOptions``.
    """

    init: Callable[..., dict]
    step: Callable[..., dict]
    hyper: Callable[[object], dict]


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(init=sgd_init, step=sgd_step, hyper=lambda o: {}),
    "adam": Optimizer(
        init=adam_init, step=adam_step, hyper=lambda o: {"betas": o.betas, "eps": o.adam_eps}
    ),
}
