"""Functional Adam and AdamW on stacked per-member tensors (internal; see :mod:`.optimizers`)."""

from __future__ import annotations

import torch

__all__ = ["adam_init", "adam_step"]

Params = dict[str, torch.Tensor]


def expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a (K,) tensor to broadcast against ``like`` of shape (K, ...)."""
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


def adam_init(params: Params) -> dict:
    """The Adam state: first and second moments and a per-member step count."""
    first = next(iter(params.values()))
    return {
        "m": {k: torch.zeros_like(v) for k, v in params.items()},
        "v": {k: torch.zeros_like(v) for k, v in params.items()},
        "t": torch.zeros(first.shape[0], dtype=torch.int64, device=first.device),
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


def _adam_fused(params, grads, state, runs, hyper: dict) -> None:
    """``torch.optim.Adam(fused=True)``'s kernel (AdamW's when decoupled), one call per run."""
    kernel = torch._fused_adamw_ if hyper["decoupled"] else torch._fused_adam_
    keys = list(params)
    m, v = state["m"], state["v"]
    for start, stop, rate, count in runs:
        step = torch.tensor(float(count), device=params[keys[0]].device)
        kernel(
            [params[k][start:stop] for k in keys],
            [grads[k][start:stop].contiguous() for k in keys],
            [m[k][start:stop] for k in keys],
            [v[k][start:stop] for k in keys],
            [],
            [step] * len(keys),
            lr=rate,
            beta1=hyper["b1"],
            beta2=hyper["b2"],
            weight_decay=hyper["weight_decay"],
            eps=hyper["eps"],
            amsgrad=False,
            maximize=False,
        )


def _adam_elementwise(params, grads, state, lr, active, hyper: dict) -> None:
    """Per-member ``lr`` and ``t`` as broadcast (K,) factors: several passes per tensor.

    The second moment is clamped below at the smallest normal float before the square root
    (a change of at most ``sqrt(tiny)``, about 1e-19 in float32, in the denominator): CPU
    square roots of exact zeros, which pruned entries are, run about ten times slower than
    those of normal numbers.
    """
    b1, b2, eps, wd = hyper["b1"], hyper["b2"], hyper["eps"], hyper["weight_decay"]
    tiny = torch.finfo(lr.dtype).tiny
    a = active.to(lr.dtype)
    tf = state["t"].clamp(min=1).to(lr.dtype)
    step = lr * a / (1 - b1**tf)
    sqrt_c2 = (1 - b2**tf).sqrt()
    w1 = (1 - b1) * a
    keep2 = 1 - (1 - b2) * a
    for k, p in params.items():
        g = grads[k]
        if wd and hyper["decoupled"]:  # AdamW: p *= 1 - lr * wd, active members only
            p.mul_(expand(1 - lr * a * wd, p))
        elif wd:  # Adam: L2 added to the gradient of active members
            g = g + p * expand(a * wd, p)
        m, v = state["m"][k], state["v"][k]
        m.lerp_(g, expand(w1, p))
        v.mul_(expand(keep2, p)).addcmul_(g, g, value=1 - b2)
        denom = v.clamp_min(tiny).sqrt_().div_(expand(sqrt_c2, p)).add_(eps)
        p.addcdiv_(m * expand(step, p), denom, value=-1.0)


def adam_step(
    params: Params,
    grads: Params,
    state: dict,
    lr: torch.Tensor,
    active: torch.Tensor,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> dict:
    """One Adam step (Kingma & Ba 2015, arXiv:1412.6980) with torch's bias correction.

    ``g += wd p`` (``torch.optim.Adam``; with ``decoupled``, ``p *= 1 - lr wd`` first, as
    ``torch.optim.AdamW``), ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)``. The step count ``t`` is per
    member and only advances for active members. Gradients of inactive members must already be
    zero (the trainer multiplies them by ``active``); their ``p``, ``m``, ``v`` and ``t`` then
    stay exactly as they are. Entries with zero gradient, zero value and zero moments (pruned
    weights) get an update of exactly zero.

    Active members form runs of consecutive members with equal ``lr`` and ``t`` (one run when
    all are active with one learning rate, as the trainer's members mostly are). With at most
    ``_FUSED_MAX_RUNS`` runs and contiguous CPU or CUDA tensors, each run's slices go through
    torch's fused kernel (``torch.optim.Adam(fused=True)``: one pass reading ``p``, ``g``,
    ``m``, ``v``), and inactive members, outside every run, are not touched; otherwise an
    element-wise path with per-member factors does the same arithmetic, equal up to float
    rounding.
    """
    hyper = {
        "b1": betas[0],
        "b2": betas[1],
        "eps": eps,
        "weight_decay": weight_decay,
        "decoupled": decoupled,
    }
    state["t"] += active.to(torch.int64)
    runs = _uniform_runs(lr, state["t"], active)
    slots = [*params.values(), *state["m"].values(), *state["v"].values()]
    if len(runs) <= _FUSED_MAX_RUNS and _fusable(slots):
        _adam_fused(params, grads, state, runs, hyper)
    else:
        _adam_elementwise(params, grads, state, lr, active, hyper)
    return state
