"""The penalty protocol and the machinery the Lipschitz-proxy penalties share (internal).

:class:`Penalty` (the protocol), :class:`PenaltyState` (a training run's mutable state) and
``_LipschitzProxy``: per-member strengths and the fit constraint of THEORY §7.2, as a hinge or
as an augmented Lagrangian. The public names are re-exported by
:mod:`robustlaw.empirical.training.penalties`.

References
----------
.. [NW] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, §17.4
   (the augmented Lagrangian for inequality constraints).
.. [Ber] D. P. Bertsekas, *Constrained Optimization and Lagrange Multiplier Methods*,
   Academic Press 1982, §3.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from robustlaw._validation import check_choice, check_integer, check_interval
from robustlaw.empirical.training._power import (
    layer_weights,
    member_values,
    per_member,
    start_vectors,
)
from robustlaw.errors import ValidationError

__all__ = ["FIT_CONSTRAINTS", "Penalty", "PenaltyState"]

Params = dict[str, torch.Tensor]

#: The fit constraints of the Lipschitz-proxy penalties (THEORY §7.2).
FIT_CONSTRAINTS = ("hinge", "augmented-lagrangian")


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
    multipliers : torch.Tensor or None
        The augmented Lagrangian's multipliers ``lambda_k >= 0``, shape ``(K,)`` (loss units
        per unit of MSE; detached); None with the hinge.
    """

    vectors: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    n_steps: int = 0
    multipliers: torch.Tensor | None = None


@dataclass(frozen=True, kw_only=True)
class _LipschitzProxy(Penalty):
    r"""Shared fields and machinery of the Lipschitz-proxy penalties (THEORY §7.2).

    The penalty of member ``k`` is ``weight[k] * P_k + C_k`` with ``P`` the subclass's proxy
    and ``C`` the fit constraint on ``g_k = MSE_k - fit_target`` (``MSE_k`` the member's mean
    squared error on the step's batch, ``fit_target = sigma**2 - eps``; no constraint when
    ``fit_target`` is ``None`` or ``fit_weight`` is 0):

    - ``"hinge"``: ``C_k = fit_weight * max(0, g_k)``.
    - ``"augmented-lagrangian"``: the Powell-Hestenes-Rockafellar term for the inequality
      ``g_k <= 0`` with multiplier :math:`\lambda_k \ge 0` and penalty parameter
      :math:`\rho` = ``fit_weight`` ([NW]_ §17.4, [Ber]_ §3.1),
      :math:`C_k = \frac{1}{2\rho}(\max(0, \lambda_k + \rho g_k)^2 - \lambda_k^2)`.
      After every ``multiplier_every``-th call the multipliers, kept in the
      :class:`PenaltyState`, move to :math:`\max(0, \lambda_k + \rho g_k)` (detached): they
      grow while the fit is above the target and shrink back to 0 once it is below, so the
      constraint is met without an ever larger ``fit_weight``.
    """

    weight: float | tuple[float, ...] = 1e-3
    fit_target: float | None = None
    fit_weight: float = 0.0
    fit_constraint: str = "hinge"
    multiplier_every: int = 1
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
        check_choice(self.fit_constraint, f"{cls}.fit_constraint", FIT_CONSTRAINTS)
        check_integer(self.multiplier_every, f"{cls}.multiplier_every", minimum=1)

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

    def _new_state(self, params: Params) -> PenaltyState:
        """Unit power-iteration vectors ``u`` drawn from a fixed seed (multipliers: ``init``)."""
        return PenaltyState(vectors=start_vectors(self._spectral_layers(params)))

    def init(self, params: Params) -> PenaltyState:
        """A fresh state for one training run (zero multipliers for the augmented Lagrangian).

        Raises
        ------
        ValidationError
            If the network does not suit the proxy, or ``weight`` has the wrong length.
        """
        self._weights(params)
        state = self._new_state(params)
        if self.fit_constraint == "augmented-lagrangian":
            first = next(iter(params.values()))
            state.multipliers = first.new_zeros(first.shape[0]).detach()
        return state

    def _proxy(self, params: Params, state: PenaltyState, inputs: torch.Tensor | None):
        raise NotImplementedError

    def __call__(
        self,
        params: Params,
        inputs: torch.Tensor,
        outputs: torch.Tensor,
        state: PenaltyState | None = None,
        targets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if state is None:  # a one-off call: a fresh state, not carried
            state = self.init(params)
        weight = self._weights(params)
        total = weight * self._proxy(params, state, inputs)
        state.n_steps += 1
        if self.fit_target is not None and self.fit_weight > 0:
            cls = type(self).__name__
            if targets is None or not targets.is_floating_point():
                raise ValidationError(
                    f"{cls}.fit_target needs real-valued (MSE) targets, got "
                    f"{None if targets is None else targets.dtype}"
                )
            mse = (outputs - targets).square().mean(dim=-1).mean(dim=1)
            if self.fit_constraint == "hinge":
                total = total + self.fit_weight * torch.relu(mse - self.fit_target)
            else:
                total = total + self._augmented_lagrangian(mse - self.fit_target, state)
        return total

    def _augmented_lagrangian(self, g: torch.Tensor, state: PenaltyState) -> torch.Tensor:
        """The PHR term for ``g <= 0``; updates the multipliers every ``multiplier_every`` calls."""
        rho, lam = self.fit_weight, state.multipliers
        if lam is None:  # a state made by another penalty's init: start from zero
            lam = g.new_zeros(g.shape).detach()
        shifted = lam + rho * g
        term = (torch.relu(shifted).square() - lam.square()) / (2 * rho)
        if state.n_steps % self.multiplier_every == 0:
            state.multipliers = torch.relu(shifted.detach())
        else:
            state.multipliers = lam
        return term
