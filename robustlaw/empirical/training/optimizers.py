"""Optimizer parts: functional SGD, Adam and AdamW on stacked per-member tensors.

The optimizers act element-wise on tensors with a leading member axis of length K, so members
never interact (METHODS.md §7). Each part is a frozen dataclass of hyperparameters with
``init(params) -> state`` and ``step(params, grads, state, lr, active) -> state``, which updates
``params`` in place, with ``lr`` of shape ``(K,)`` (per-member learning rates, from the part's
``lr``) and ``active`` a boolean ``(K,)`` flag: an inactive member's parameters *and* optimizer
state stay exactly as they are.

The semantics match ``torch.optim.SGD`` (heavy-ball momentum, no dampening, no Nesterov,
``weight_decay`` adds ``wd * p`` to the gradient), ``torch.optim.Adam`` (bias-corrected, ``eps``
added to the square root of the second moment, ``weight_decay`` as an L2 term in the gradient)
and ``torch.optim.AdamW`` (decoupled decay ``p *= 1 - lr * wd``), which the tests check against
one member at a time.

Registry :data:`OPTIMIZERS`: ``"sgd"`` (:class:`SGD`), ``"adam"`` (:class:`Adam`), ``"adamw"``
(:class:`AdamW`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from robustlaw._validation import check_interval
from robustlaw.empirical.training._adam import adam_init, adam_step, expand
from robustlaw.empirical.training._parts import resolve_part
from robustlaw.errors import ValidationError

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "adam_init",
    "adam_step",
    "resolve_optimizer",
    "sgd_init",
    "sgd_step",
]

Params = dict[str, torch.Tensor]


def sgd_init(params: Params, *, momentum: float = 0.0) -> dict:
    """The SGD state: a momentum buffer per parameter when ``momentum > 0``."""
    bufs = {k: torch.zeros_like(v) for k, v in params.items()} if momentum > 0 else {}
    return {"momentum": momentum, "buf": bufs}


def sgd_step(
    params: Params,
    grads: Params,
    state: dict,
    lr: torch.Tensor,
    active: torch.Tensor,
    *,
    weight_decay: float = 0.0,
) -> dict:
    """One SGD step, ``d = g + wd p``, ``buf = momentum buf + d``, ``p -= lr buf``.

    This is ``torch.optim.SGD``. The buffer starts at zero, so the first step uses ``buf = d``
    as torch does. Gradients of inactive members must already be zero (the trainer multiplies
    them by ``active``); weight decay is applied to active members only, so inactive members'
    buffers and parameters stay exactly as they are.
    """
    mom = state["momentum"]
    keep = torch.where(active, lr.new_tensor(mom), lr.new_tensor(1.0))
    decay = active.to(lr.dtype) * weight_decay
    for k, p in params.items():
        d = grads[k]
        if weight_decay:
            d = d + p * expand(decay, p)
        if mom > 0:
            d = state["buf"][k].mul_(expand(keep, p)).add_(d)
        p.addcmul_(d, expand(lr * active, p), value=-1.0)
    return state


class Optimizer:
    """Base of the optimizer parts.

    Subclasses are frozen keyword-only dataclasses with fields ``lr`` (a float, or a tuple with
    one learning rate per member) and ``weight_decay``, and a class attribute ``name`` (the
    registry key).
    """

    name: ClassVar[str]
    lr: float | tuple[float, ...]
    weight_decay: float

    def __post_init__(self) -> None:
        cls = type(self).__name__
        lr = check_interval(self.lr, f"{cls}.lr", 0, math.inf, closed="neither")
        if lr.ndim or isinstance(self.lr, (list, tuple)):  # one learning rate per member
            if lr.ndim != 1 or lr.size == 0:
                raise ValidationError(f"{cls}.lr must be a number or a flat tuple, got {self.lr!r}")
            object.__setattr__(self, "lr", tuple(float(v) for v in lr))
        check_interval(
            self.weight_decay, f"{cls}.weight_decay", 0, math.inf, closed="left", scalar=True
        )

    def init(self, params: Params) -> dict:
        """The optimizer state for ``params`` (stacked, leading member axis)."""
        raise NotImplementedError

    def step(
        self, params: Params, grads: Params, state: dict, lr: torch.Tensor, active: torch.Tensor
    ) -> dict:
        """Update ``params`` in place; ``lr`` and ``active`` have shape ``(K,)``."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class SGD(Optimizer):
    """Stochastic gradient descent with heavy-ball momentum, as ``torch.optim.SGD``.

    Parameters
    ----------
    lr : float or tuple of float
        Learning rate, or one per member.
    momentum : float
        Heavy-ball momentum in [0, 1).
    weight_decay : float
        L2 coefficient: ``weight_decay * p`` is added to the gradient.

    Examples
    --------
    >>> import torch
    >>> p = {"w": torch.ones(2, 3)}
    >>> opt = SGD(lr=0.5, weight_decay=1.0)
    >>> state = opt.step(p, {"w": torch.zeros(2, 3)}, opt.init(p), torch.full((2,), 0.5),
    ...                  torch.tensor([True, False]))
    >>> p["w"][:, 0].tolist()
    [0.5, 1.0]
    """

    name: ClassVar[str] = "sgd"
    lr: float | tuple[float, ...] = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_interval(self.momentum, "SGD.momentum", 0, 1, closed="left", scalar=True)

    def init(self, params: Params) -> dict:
        return sgd_init(params, momentum=self.momentum)

    def step(self, params, grads, state, lr, active) -> dict:
        return sgd_step(params, grads, state, lr, active, weight_decay=self.weight_decay)


@dataclass(frozen=True, kw_only=True)
class Adam(Optimizer):
    """Adam with torch's bias correction, as ``torch.optim.Adam``.

    Parameters
    ----------
    lr : float or tuple of float
        Learning rate, or one per member.
    betas : tuple of float
        Decay rates of the first and second moments, each in [0, 1).
    eps : float
        Added to the bias-corrected square root of the second moment.
    weight_decay : float
        L2 coefficient: ``weight_decay * p`` is added to the gradient.

    Examples
    --------
    >>> Adam(lr=(1e-2, 3e-2)).lr
    (0.01, 0.03)
    """

    name: ClassVar[str] = "adam"
    decoupled: ClassVar[bool] = False
    lr: float | tuple[float, ...] = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        cls = type(self).__name__
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValidationError(f"{cls}.betas must be a pair (beta1, beta2), got {self.betas!r}")
        object.__setattr__(self, "betas", tuple(self.betas))
        check_interval(self.betas, f"{cls}.betas", 0, 1, closed="left")
        check_interval(self.eps, f"{cls}.eps", 0, math.inf, closed="left", scalar=True)

    def init(self, params: Params) -> dict:
        return adam_init(params)

    def step(self, params, grads, state, lr, active) -> dict:
        return adam_step(
            params,
            grads,
            state,
            lr,
            active,
            betas=self.betas,
            eps=self.eps,
            weight_decay=self.weight_decay,
            decoupled=self.decoupled,
        )


@dataclass(frozen=True, kw_only=True)
class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``: ``p *= 1 - lr * wd``.

    Parameters
    ----------
    lr, betas, eps : see :class:`Adam`
    weight_decay : float
        Decoupled decay rate per unit learning rate (torch's default 0.01).

    Examples
    --------
    >>> AdamW().weight_decay
    0.01
    """

    name: ClassVar[str] = "adamw"
    decoupled: ClassVar[bool] = True
    weight_decay: float = 1e-2


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adam, AdamW)}
"""Optimizer parts by name."""


def resolve_optimizer(optimizer: Optimizer | str) -> Optimizer:
    """An optimizer part, or the registered optimizer ``optimizer`` with its defaults.

    Examples
    --------
    >>> resolve_optimizer("sgd")
    SGD(lr=0.001, momentum=0.0, weight_decay=0.0)
    """
    return resolve_part(optimizer, Optimizer, OPTIMIZERS, "optimizer")
