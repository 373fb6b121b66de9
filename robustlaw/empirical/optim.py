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


_FUSED_MAX_RUNS = 8
"""Above this many runs of members with equal learning rate and step count (members stopped
in between split the runs), :func:`adam_step` uses its element-wise path: torch's fused kernel
pays a fixed cost per tensor and per call, which many short slices would repeat."""


def _uniform_runs(lr: torch.Tensor, t: torch.Tensor, active: torch.Tensor) -> list[tuple]:
    """Maximal runs ``(start, stop, lr, t)`` of consecutive active members with equal lr and t."""
    runs: list[tuple] = []
    for i, (a, rate, count) in enumerate(
        zip(active.tolist(), lr.tolist(), t.tolist(), strict=True)
    ):
        if not a:
            continue
        if runs and runs[-1][1] == i and runs[-1][2:] == (rate, count):
            runs[-1] = (runs[-1][0], i + 1, rate, count)
        else:
            runs.append((i, i + 1, rate, count))
    return runs


def _fusable(tensors: list[torch.Tensor]) -> bool:
    """Whether torch's fused Adam kernel applies: CPU or CUDA floats, all contiguous."""
    return all(
        x.device.type in ("cpu", "cuda") and x.is_floating_point() and x.is_contiguous()
        for x in tensors
    )


def _adam_fused(params, grads, state, runs, b1: float, b2: float, eps: float) -> None:
    """``torch.optim.Adam(fused=True)``'s kernel, one call per run of members (one pass)."""
    keys = list(params)
    for start, stop, rate, count in runs:
        m, v = state["m"], state["v"]
        step = torch.tensor(float(count), device=params[keys[0]].device)
        torch._fused_adam_(
            [params[k][start:stop] for k in keys],
            [grads[k][start:stop].contiguous() for k in keys],
            [m[k][start:stop] for k in keys],
            [v[k][start:stop] for k in keys],
            [],
            [step] * len(keys),
            lr=rate,
            beta1=b1,
            beta2=b2,
            weight_decay=0.0,
            eps=eps,
            amsgrad=False,
            maximize=False,
        )


def _adam_elementwise(params, grads, state, lr, active, b1: float, b2: float, eps: float) -> None:
    """Per-member ``lr`` and ``t`` as broadcast (K,) factors: several passes per tensor.

    The second moment is clamped below at the smallest normal float before the square root
    (a change of at most ``sqrt(tiny)``, about 1e-19 in float32, in the denominator): CPU
    square roots of exact zeros, which pruned entries are, run about ten times slower than
    those of normal numbers.
    """
    tiny = torch.finfo(lr.dtype).tiny
    a = active.to(lr.dtype)
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

    Active members form runs of consecutive members with equal ``lr`` and ``t`` (one run when
    all are active with one learning rate, as the trainer's members mostly are). With at most
    ``_FUSED_MAX_RUNS`` runs and contiguous CPU or CUDA tensors, each run's slices go through
    torch's fused Adam kernel (``torch.optim.Adam(fused=True)``: one pass reading ``p``, ``g``,
    ``m``, ``v``), and inactive members, outside every run, are not touched; otherwise an
    element-wise path with per-member factors does the same arithmetic, equal up to float
    rounding.
    """
    b1, b2 = betas
    state["t"] += active.to(torch.int64)
    runs = _uniform_runs(lr, state["t"], active)
    slots = [*params.values(), *state["m"].values(), *state["v"].values()]
    if len(runs) <= _FUSED_MAX_RUNS and _fusable(slots):
        _adam_fused(params, grads, state, runs, b1, b2, eps)
    else:
        _adam_elementwise(params, grads, state, lr, active, b1, b2, eps)
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
