"""Constraint parts: a projection of the parameters after every optimizer step.

THEORY §7.2 (searching for the smoothest fit) offers, as an alternative to a penalty on a
Lipschitz proxy, a *constraint*: every layer is projected to spectral norm ``<= s`` after every
step (Lipschitz-bounded layers), so that a network with 1-Lipschitz activations and ``L`` weight
layers has Lipschitz constant at most ``s**L``; a bisection on the budget then finds the smallest
budget that still fits below the noise.

The trainer calls ``constraint.init(params)`` once, before the first step, and
``constraint.project(params, state, active)`` right after every optimizer step (in place, under
``torch.no_grad``), for the members still training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from robustlaw._validation import check_integer
from robustlaw.empirical.training._parts import resolve_part
from robustlaw.empirical.training._power import (
    layer_weights,
    member_values,
    per_member,
    power_steps,
    start_vectors,
)

__all__ = ["CONSTRAINTS", "Constraint", "ConstraintState", "SpectralBall", "resolve_constraint"]

Params = dict[str, torch.Tensor]


class Constraint:
    """Base of the constraint parts: a projection applied after every optimizer step.

    Subclasses are frozen keyword-only dataclasses with a class attribute ``name`` (the
    registry key). :meth:`init` builds the mutable state of one training run;
    :meth:`project` changes the parameters of the active members in place (THEORY §7.2).
    """

    name: ClassVar[str]

    def init(self, params: Params) -> object | None:
        """The constraint's mutable state for one training run (``None``: stateless)."""
        return None

    def project(self, params: Params, state: object | None, active: torch.Tensor) -> None:
        """Project the parameters of the members where ``active`` (shape ``(K,)``) in place."""
        raise NotImplementedError


@dataclass
class ConstraintState:
    """The mutable state of one training run's :class:`SpectralBall` (from ``init``).

    Attributes
    ----------
    vectors : dict of str to (torch.Tensor, torch.Tensor)
        Per weight name, the power-iteration vectors ``(u, v)`` of shapes ``(K, out)`` and
        ``(K, in)`` (unit norm), carried from one step to the next.
    sigma : dict of str to torch.Tensor
        Per weight name, the last estimate of each member's top singular value (``(K,)``,
        before that step's scaling).
    n_steps : int
        The number of projections so far.
    """

    vectors: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    sigma: dict[str, torch.Tensor] = field(default_factory=dict)
    n_steps: int = 0


@dataclass(frozen=True, kw_only=True)
class SpectralBall(Constraint):
    """Scale every weight matrix back into the spectral ball ``||W_l||_2 <= s`` (THEORY §7.2).

    After every optimizer step, each weight matrix ``W_l`` (every stacked ``(K, out, in)``
    parameter whose name ends in ``weight``) of every active member is multiplied by
    ``min(1, s / sigma_l)``, with ``sigma_l`` its top singular value estimated by power
    iteration whose vectors are carried from step to step in the :class:`ConstraintState`
    (``power_iterations`` steps per training step). The budget ``s`` is per layer: with
    1-Lipschitz activations and ``L`` weight layers the product bound is ``s**L``. Biases are
    not touched. Scaling keeps pruned (zero) entries exactly zero, and a factor of exactly 1
    leaves a member bitwise unchanged.

    The projection is approximate per step: power iteration estimates ``sigma_l`` from below,
    so right after a step ``||W_l||_2`` may exceed ``s`` by the estimate's relative error
    (which shrinks as the carried vectors converge while the weights move slowly). Nothing is
    certified here: measure the certified bound afterwards with
    ``estimate_lipschitz("spectral", ...)`` (:mod:`robustlaw.empirical.lipschitz`).

    Parameters
    ----------
    budget : float or tuple of float
        The per-layer spectral-norm budget ``s > 0``, or one per member.
    power_iterations : int
        Power-iteration steps per training step (at least 1).

    Examples
    --------
    >>> import torch
    >>> params = {"0.weight": torch.diag(torch.tensor([3.0, 1.0]))[None].double()}
    >>> ball = SpectralBall(budget=1.5, power_iterations=20)
    >>> ball.project(params, ball.init(params), torch.ones(1, dtype=torch.bool))
    >>> torch.linalg.matrix_norm(params["0.weight"], ord=2).tolist()
    [1.5]
    """

    name: ClassVar[str] = "spectral-ball"
    budget: float | tuple[float, ...] = 1.0
    power_iterations: int = 1

    def __post_init__(self) -> None:
        budget = per_member(self.budget, "SpectralBall.budget", closed="neither")
        object.__setattr__(self, "budget", budget)
        check_integer(self.power_iterations, "SpectralBall.power_iterations", minimum=1)

    def _budgets(self, params: Params) -> torch.Tensor:
        """The budgets as a ``(K,)`` tensor."""
        return member_values(self.budget, params, "SpectralBall.budget")

    def init(self, params: Params) -> ConstraintState:
        """A fresh state: unit power-iteration vectors ``u`` drawn from a fixed seed.

        Raises
        ------
        ValidationError
            If ``params`` holds no stacked weight matrices, or ``budget`` has the wrong length.
        """
        self._budgets(params)
        return ConstraintState(vectors=start_vectors(layer_weights(params, "SpectralBall")))

    def project(self, params: Params, state: ConstraintState, active: torch.Tensor) -> None:
        """Scale each active member's weight matrices by ``min(1, s / sigma_l)`` in place."""
        with torch.no_grad():
            budget = self._budgets(params)
            for key, w in layer_weights(params, "SpectralBall"):
                u, v = power_steps(w, state.vectors[key][0], self.power_iterations)
                state.vectors[key] = (u, v)
                sigma = torch.einsum("ko,koi,ki->k", u, w, v).abs()
                state.sigma[key] = sigma
                # sigma = 0 gives inf, clamped to 1; NaN (a diverged member) is inactive
                factor = (budget / sigma).clamp(max=1.0)
                factor = torch.where(active & (factor < 1.0), factor, torch.ones_like(factor))
                if bool((factor < 1.0).any()):
                    w.mul_(factor.reshape(-1, 1, 1))
            state.n_steps += 1


CONSTRAINTS: dict[str, type[Constraint]] = {cls.name: cls for cls in (SpectralBall,)}
"""Constraint parts by name."""


def resolve_constraint(constraint: Constraint | str) -> Constraint:
    """A constraint part, or the registered constraint ``constraint`` with its defaults.

    Examples
    --------
    >>> resolve_constraint("spectral-ball")
    SpectralBall(budget=1.0, power_iterations=1)
    """
    return resolve_part(constraint, Constraint, CONSTRAINTS, "constraint")
