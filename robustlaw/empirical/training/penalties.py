"""Penalty parts: a scalar per member added to the training objective.

The trainer calls ``state = penalty.init(params)`` once per training run. A penalty whose
``init`` returns ``None`` (the default, e.g. :class:`L2Penalty`) is then called as
``penalty(params, inputs, outputs)`` on every step; one with a state as
``penalty(params, inputs, outputs, state=state, targets=targets)``. ``params`` are the stacked
parameters (pruned entries zero; differentiable), ``inputs`` the step's inputs (the batch, shared
or per member), ``outputs`` the network's outputs on them and ``targets`` the step's targets; the
call returns a ``(n_members,)`` tensor. The objective is the sum over members of
``mean loss + penalty``, so each member's penalty only moves that member. With ``penalty=None``
(the default) the objective is the loss alone.

Registry :data:`PENALTIES`: ``"l2"`` (:class:`L2Penalty`) and the Lipschitz proxies of THEORY
§7.2 (searching for the smoothest fit): ``"spectral"`` (:class:`SpectralPenalty`),
``"two-layer-operator"`` (:class:`TwoLayerOperatorPenalty`), ``"path-norm"``
(:class:`PathNormPenalty`) and ``"gradient"``
(:class:`~robustlaw.empirical.training.gradient_penalty.GradientPenalty`, not certified). Their
``weight`` may be a tuple, one strength per member, so one ensemble sweeps a grid of strengths.

Each proxy also takes a fit constraint on ``g = MSE - fit_target`` (THEORY §7.2, with
``fit_target = sigma**2 - eps``; off while ``fit_target`` is None or ``fit_weight`` is 0),
chosen by ``fit_constraint`` (:data:`FIT_CONSTRAINTS`):

- ``"hinge"`` (default): adds ``fit_weight * max(0, g)``.
- ``"augmented-lagrangian"``: adds the Powell-Hestenes-Rockafellar term
  ``(max(0, lam + rho * g)**2 - lam**2) / (2 * rho)`` with ``rho = fit_weight`` and a
  per-member multiplier ``lam >= 0`` kept in :attr:`PenaltyState.multipliers`, updated to
  ``max(0, lam + rho * g)`` (detached) after every ``multiplier_every``-th call
  (Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, §17.4; Bertsekas, *Constrained
  Optimization and Lagrange Multiplier Methods*, 1982, §3.1). The multiplier grows while the
  member's fit is above the target, so the constraint is met without raising ``rho``.

References
----------
.. [BLN] S. Bubeck, Y. Li, D. Nagaraj, "A law of robustness for two-layers neural networks",
   COLT 2021.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from robustlaw._validation import check_integer, check_interval
from robustlaw.empirical.training._parts import resolve_part
from robustlaw.empirical.training._power import power_steps
from robustlaw.empirical.training._proxy import (
    FIT_CONSTRAINTS,
    Penalty,
    PenaltyState,
    _LipschitzProxy,
)
from robustlaw.empirical.training.gradient_penalty import GradientPenalty

__all__ = [
    "FIT_CONSTRAINTS",
    "PENALTIES",
    "L2Penalty",
    "PathNormPenalty",
    "Penalty",
    "PenaltyState",
    "SpectralPenalty",
    "TwoLayerOperatorPenalty",
    "resolve_penalty",
]

Params = dict[str, torch.Tensor]


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


@dataclass(frozen=True, kw_only=True)
class _PowerIterated(_LipschitzProxy):
    """A proxy built from spectral norms, estimated by power iteration carried across steps."""

    power_iterations: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_integer(self.power_iterations, f"{type(self).__name__}.power_iterations", minimum=1)

    def _sigma(self, key: str, w: torch.Tensor, state: PenaltyState) -> torch.Tensor:
        """``u^T W v`` per member after ``power_iterations`` steps: its gradient is ``u v^T``."""
        u, v = power_steps(w, state.vectors[key][0], self.power_iterations)
        state.vectors[key] = (u, v)
        return torch.bmm(torch.bmm(u.unsqueeze(1), w), v.unsqueeze(2)).reshape(-1)  # u^T W v


@dataclass(frozen=True, kw_only=True)
class SpectralPenalty(_PowerIterated):
    """``weight * sum_l log ||W_l||_2``: the log of the certified spectral product.

    For a network with 1-Lipschitz activations ``prod_l ||W_l||_2`` bounds the Lipschitz
    constant; its log is the first proxy of THEORY §7.2 (searching for the smoothest fit). Each
    ``||W_l||_2`` is estimated by power iteration whose vectors ``u, v`` live in the
    :class:`PenaltyState` of the training run and are carried from step to step
    (``power_iterations`` steps per training step, vectors detached). The value used is
    ``sigma = u^T W v`` with ``u, v`` detached, whose gradient is exactly ``u v^T``; it
    approaches ``||W||_2`` from below as the vectors converge.

    Parameters
    ----------
    weight : float or tuple of float
        Strength (loss units per unit of ``log`` Lipschitz), or one per member.
    fit_target : float or None
        The fit constraint's MSE target ``sigma**2 - eps``; ``None`` (default) disables it.
    fit_weight : float
        The hinge's strength (adds ``fit_weight * max(0, MSE - fit_target)``), or the
        augmented Lagrangian's penalty parameter ``rho``.
    fit_constraint : str
        ``"hinge"`` (default) or ``"augmented-lagrangian"`` (module docstring).
    multiplier_every : int
        Calls between the augmented Lagrangian's multiplier updates.
    power_iterations : int
        Power-iteration steps per training step (and per one-off call).

    Examples
    --------
    >>> import torch
    >>> params = {"0.weight": torch.diag(torch.tensor([3.0, 1.0]))[None].double()}
    >>> pen = SpectralPenalty(weight=1.0, power_iterations=50)
    >>> round(float(pen(params, None, None)[0]), 6) == round(math.log(3.0), 6)
    True
    """

    name: ClassVar[str] = "spectral"

    def _proxy(self, params: Params, state: PenaltyState, inputs) -> torch.Tensor:
        tiny = torch.finfo(next(iter(params.values())).dtype).tiny
        return sum(
            self._sigma(key, w, state).clamp_min(tiny).log() for key, w in self._layers(params)
        )


@dataclass(frozen=True, kw_only=True)
class TwoLayerOperatorPenalty(_PowerIterated):
    """``weight * ||a||_2 * ||W||_op`` for two-layer networks ``x -> a psi(W x + b)``.

    The [BLN]_ proxy (Bubeck, Li, Nagaraj, COLT 2021, Theorem 5; THEORY §7.2): for a
    1-Lipschitz activation it bounds the Lipschitz constant of the (scalar) output. ``a`` is
    the last layer's weights (its Frobenius norm for several outputs, which still bounds the
    Jacobian's operator norm), ``W`` the first layer; ``||W||_op`` is estimated by power
    iteration carried across steps as in :class:`SpectralPenalty`.

    Parameters
    ----------
    weight : float or tuple of float
        Strength, or one per member.
    fit_target : float or None
        The fit constraint's MSE target ``sigma**2 - eps``; ``None`` (default) disables it.
    fit_weight : float
        The hinge's strength (adds ``fit_weight * max(0, MSE - fit_target)``), or the
        augmented Lagrangian's penalty parameter ``rho``.
    fit_constraint : str
        ``"hinge"`` (default) or ``"augmented-lagrangian"`` (module docstring).
    multiplier_every : int
        Calls between the augmented Lagrangian's multiplier updates.
    power_iterations : int
        Power-iteration steps per training step (and per one-off call).

    Raises
    ------
    ValidationError
        At ``init`` (or a call) for networks without exactly two layers.
    """

    name: ClassVar[str] = "two-layer-operator"
    max_layers: ClassVar[int | None] = 2

    def _spectral_layers(self, params: Params) -> list[tuple[str, torch.Tensor]]:
        return self._layers(params)[:1]

    def _proxy(self, params: Params, state: PenaltyState, inputs) -> torch.Tensor:
        (first, w), (_, a) = self._layers(params)
        return a.flatten(1).norm(dim=1) * self._sigma(first, w, state)


@dataclass(frozen=True, kw_only=True)
class PathNormPenalty(_LipschitzProxy):
    """``weight * sum_l |a_l| ||w_l||_2``: the two-layer path norm (THEORY §7.2).

    For ``f(x) = sum_l a_l psi(w_l . x + b_l)`` with a 1-Lipschitz activation ``psi`` (ReLU,
    tanh, ...) and any biases, ``||grad f(x)||_2 <= sum_l |a_l| ||w_l||_2`` wherever ``f`` is
    differentiable, so the path norm is an upper bound on the global Lipschitz constant of
    ``f`` from ``(R^d, ||.||_2)`` to ``R``. With several outputs ``|a_l|`` is the Euclidean
    norm of the column ``a_{:, l}`` and the bound is on the Jacobian's operator norm. It never
    undercuts ``Lip`` (unlike ``||a||_2 ||W||_op``, it needs no power iteration), but can exceed
    it by a factor up to the width. Only two-layer networks are accepted.

    Parameters
    ----------
    weight : float or tuple of float
        Strength, or one per member.
    fit_target : float or None
        The fit constraint's MSE target ``sigma**2 - eps``; ``None`` (default) disables it.
    fit_weight : float
        The hinge's strength (adds ``fit_weight * max(0, MSE - fit_target)``), or the
        augmented Lagrangian's penalty parameter ``rho``.
    fit_constraint : str
        ``"hinge"`` (default) or ``"augmented-lagrangian"`` (module docstring).
    multiplier_every : int
        Calls between the augmented Lagrangian's multiplier updates.

    Examples
    --------
    >>> import torch
    >>> params = {"0.weight": torch.tensor([[[3.0, 4.0], [1.0, 0.0]]]),
    ...           "1.weight": torch.tensor([[[2.0, -1.0]]])}
    >>> PathNormPenalty(weight=1.0)(params, None, None).tolist()
    [11.0]
    """

    name: ClassVar[str] = "path-norm"
    max_layers: ClassVar[int | None] = 2

    def _spectral_layers(self, params: Params) -> list[tuple[str, torch.Tensor]]:
        self._layers(params)  # refuse other depths at init
        return []

    def _proxy(self, params: Params, state: PenaltyState, inputs) -> torch.Tensor:
        (_, w), (_, a) = self._layers(params)
        return (a.norm(dim=1) * w.norm(dim=2)).sum(dim=1)


PENALTIES: dict[str, type[Penalty]] = {
    cls.name: cls
    for cls in (
        L2Penalty,
        SpectralPenalty,
        TwoLayerOperatorPenalty,
        PathNormPenalty,
        GradientPenalty,
    )
}
"""Penalty parts by name."""


def resolve_penalty(penalty: Penalty | str) -> Penalty:
    """A penalty part, or the registered penalty ``penalty`` with its defaults.

    Examples
    --------
    >>> resolve_penalty("l2")
    L2Penalty(weight=0.0001)
    """
    return resolve_part(penalty, Penalty, PENALTIES, "penalty")
