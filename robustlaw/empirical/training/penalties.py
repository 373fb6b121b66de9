"""Penalty parts: a scalar per member added to the training objective.

A penalty is called as ``penalty(params, inputs, outputs)`` on every step, with the stacked
parameters (pruned entries zero; differentiable), the step's inputs (the batch, shared or per
member) and the network's outputs on them, and returns a ``(n_members,)`` tensor. The objective
is the sum over members of ``mean loss + penalty``, so each member's penalty only moves that
member. With ``penalty=None`` (the default) the objective is the loss alone.

Registry :data:`PENALTIES`: ``"l2"`` (:class:`L2Penalty`). Spectral and gradient penalties are
the next entries (issue 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from robustlaw._validation import check_interval
from robustlaw.empirical.training._parts import resolve_part

__all__ = ["PENALTIES", "L2Penalty", "Penalty", "resolve_penalty"]

Params = dict[str, torch.Tensor]


class Penalty:
    """Base of the penalty parts: ``penalty(params, inputs, outputs) -> (n_members,)``.

    Subclasses are frozen keyword-only dataclasses with a class attribute ``name`` (the
    registry key).
    """

    name: ClassVar[str]

    def __call__(self, params: Params, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class L2Penalty(Penalty):
    """``weight * sum(p**2)`` over every parameter of the member (weights and biases).

    Its gradient is ``2 * weight * p``. Unlike an optimizer's ``weight_decay`` it is part of
    the objective, so Adam rescales it like the loss gradient.

    Parameters
    ----------
    weight : float
        Coefficient (loss units per squared parameter unit).

    Examples
    --------
    >>> import torch
    >>> params = {"w": torch.ones(2, 3), "b": torch.zeros(2, 1)}
    >>> L2Penalty(weight=0.5)(params, torch.zeros(4, 3), torch.zeros(2, 4, 1)).tolist()
    [1.5, 1.5]
    """

    name: ClassVar[str] = "l2"
    weight: float = 1e-4

    def __post_init__(self) -> None:
        check_interval(self.weight, "L2Penalty.weight", 0, math.inf, closed="left", scalar=True)

    def __call__(self, params, inputs, outputs) -> torch.Tensor:
        return self.weight * sum(p.flatten(1).square().sum(dim=1) for p in params.values())


PENALTIES: dict[str, type[Penalty]] = {cls.name: cls for cls in (L2Penalty,)}
"""Penalty parts by name."""


def resolve_penalty(penalty: Penalty | str) -> Penalty:
    """A penalty part, or the registered penalty ``penalty`` with its defaults.

    Examples
    --------
    >>> resolve_penalty("l2")
    L2Penalty(weight=0.0001)
    """
    return resolve_part(penalty, Penalty, PENALTIES, "penalty")
