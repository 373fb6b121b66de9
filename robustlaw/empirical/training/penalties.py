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
``"two-layer-operator"`` (:class:`TwoLayerOperatorPenalty`) and ``"path-norm"``
(:class:`PathNormPenalty`). Their ``weight`` may be a tuple, one strength per member, so one
ensemble sweeps a grid of strengths; each also takes the hinge fit constraint
``fit_weight * max(0, MSE - fit_target)`` (THEORY §7.2, with ``fit_target = sigma**2 - eps``).

References
----------
.. [BLN] S. Bubeck, Y. Li, D. Nagaraj, "A law of robustness for two-layers neural networks",
   COLT 2021.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from robustlaw._validation import check_integer, check_interval
from robustlaw.empirical.training._parts import resolve_part
from robustlaw.empirical.training._power import (
    layer_weights,
    member_values,
    per_member,
    power_steps,
    start_vectors,
)
from robustlaw.errors import ValidationError

__all__ = [
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


class Penalty:
    """Base of the penalty parts: ``penalty(params, inputs, outputs) -> (n_members,)``.

    Subclasses are frozen keyword-only dataclasses with a class attribute ``name`` (the
    registry key). A penalty that carries state across steps overrides :meth:`init`; the
    trainer then passes that state (and the step's targets) to every call.
    """

    name: ClassVar[str]

    def init(self, params: Params) -> object | None:
        """The penalty's mutable state for one training run (``None``: stateless)."""
        return None

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


@dataclass
class PenaltyState:
    """The mutable state of one training run's penalty (created by ``penalty.init(params)``).

    Attributes
    ----------
    vectors : dict of str to (torch.Tensor, torch.Tensor)
        Per weight name, the power-iteration vectors ``(u, v)`` of shapes ``(K, out)`` and
        ``(K, in)`` (detached, unit norm), carried from one step to the next.
    n_steps : int
        The number of calls so far (power-iteration steps taken per layer, times
        ``power_iterations``).
    """

    vectors: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    n_steps: int = 0


@dataclass(frozen=True, kw_only=True)
class _LipschitzProxy(Penalty):
    """Shared fields and machinery of the Lipschitz-proxy penalties (THEORY §7.2).

    The penalty of member ``k`` is ``weight[k] * P_k(params)
    + fit_weight * max(0, MSE_k - fit_target)`` with ``P`` the subclass's proxy and ``MSE_k``
    the member's mean squared error on the step's batch (the hinge fit constraint of
    THEORY §7.2, ``fit_target = sigma**2 - eps``; off when ``fit_target`` is ``None``).
    """

    weight: float | tuple[float, ...] = 1e-3
    fit_target: float | None = None
    fit_weight: float = 0.0
    max_layers: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        cls = type(self).__name__
        weight = per_member(self.weight, f"{cls}.weight", closed="left")
        object.__setattr__(self, "weight", weight)
        if self.fit_target is not None:
            check_interval(
                self.fit_target, f"{cls}.fit_target", 0, math.inf, closed="left", scalar=True
            )
        check_interval(
            self.fit_weight, f"{cls}.fit_weight", 0, math.inf, closed="left", scalar=True
        )
        if self.fit_weight > 0 and self.fit_target is None:
            raise ValidationError(f"{cls}.fit_target must be set when fit_weight is positive")

    # -- machinery --------------------------------------------------------------------------

    def _layers(self, params: Params) -> list[tuple[str, torch.Tensor]]:
        cls = type(self).__name__
        layers = layer_weights(params, cls)
        if self.max_layers is not None and len(layers) != self.max_layers:
            raise ValidationError(
                f"{cls} is defined for networks with exactly {self.max_layers} layers, got "
                f"{len(layers)} ({', '.join(k for k, _ in layers)})"
            )
        return layers

    def _weights(self, params: Params) -> torch.Tensor:
        """The strengths as a ``(K,)`` tensor."""
        return member_values(self.weight, params, f"{type(self).__name__}.weight")

    def _spectral_layers(self, params: Params) -> list[tuple[str, torch.Tensor]]:
        """The layers whose spectral norm the proxy needs (all, by default)."""
        return self._layers(params)

    def init(self, params: Params) -> PenaltyState:
        """A fresh state: unit power-iteration vectors ``u`` drawn from a fixed seed.

        Raises
        ------
        ValidationError
            If the network does not suit the proxy, or ``weight`` has the wrong length.
        """
        self._weights(params)
        return PenaltyState(vectors=start_vectors(self._spectral_layers(params)))

    def _proxy(self, params: Params, state: PenaltyState) -> torch.Tensor:
        raise NotImplementedError

    def __call__(
        self,
        params: Params,
        inputs: torch.Tensor,
        outputs: torch.Tensor,
        state: PenaltyState | None = None,
        targets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if state is None:  # a one-off call: fresh vectors, not carried
            state = self.init(params)
        weight = self._weights(params)
        total = weight * self._proxy(params, state)
        state.n_steps += 1
        if self.fit_target is not None and self.fit_weight > 0:
            cls = type(self).__name__
            if targets is None or not targets.is_floating_point():
                raise ValidationError(
                    f"{cls}.fit_target needs real-valued (MSE) targets, got "
                    f"{None if targets is None else targets.dtype}"
                )
            mse = (outputs - targets).square().mean(dim=-1).mean(dim=1)
            total = total + self.fit_weight * torch.relu(mse - self.fit_target)
        return total


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
        return torch.einsum("ko,koi,ki->k", u, w, v)


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
        The hinge's MSE target ``sigma**2 - eps``; ``None`` (default) disables the hinge.
    fit_weight : float
        The hinge's strength: adds ``fit_weight * max(0, MSE - fit_target)``.
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

    def _proxy(self, params: Params, state: PenaltyState) -> torch.Tensor:
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
        The hinge's MSE target ``sigma**2 - eps``; ``None`` (default) disables the hinge.
    fit_weight : float
        The hinge's strength: adds ``fit_weight * max(0, MSE - fit_target)``.
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

    def _proxy(self, params: Params, state: PenaltyState) -> torch.Tensor:
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
        The hinge's MSE target ``sigma**2 - eps``; ``None`` (default) disables the hinge.
    fit_weight : float
        The hinge's strength: adds ``fit_weight * max(0, MSE - fit_target)``.

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

    def _proxy(self, params: Params, state: PenaltyState) -> torch.Tensor:
        (_, w), (_, a) = self._layers(params)
        return (a.norm(dim=1) * w.norm(dim=2)).sum(dim=1)


PENALTIES: dict[str, type[Penalty]] = {
    cls.name: cls for cls in (L2Penalty, SpectralPenalty, TwoLayerOperatorPenalty, PathNormPenalty)
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
