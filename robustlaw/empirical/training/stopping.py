"""Per-member stopping rules for batched training.

A rule looks at one full pass over the training set (a :class:`CheckPass`) and returns a
boolean ``(n_members,)`` tensor: ``True`` for members that are done. Done members stop changing
(their updates are multiplied by an ``active`` flag, METHODS.md §7); training ends when every
member is done or the step cap is reached.

Registry :data:`STOPPING_RULES`:

``"max-steps"`` (:class:`MaxSteps`)
    Never done early; met once the step cap is reached.
``"below-noise"`` (:class:`BelowNoise`)
    Fit below the noise level, THEORY.md §1.1: the mean squared error of the outputs clipped to
    ``[-1, 1]`` is at most ``noise_level - eps``.
``"memorized"`` (:class:`Memorized`)
    Every training example is fitted: per-example loss at most the loss's ``fit_margin``.
``"converged"`` (:class:`Converged`)
    The train loss moved by at most ``tol`` over the last ``window`` checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from robustlaw._validation import check_integer, check_interval
from robustlaw.empirical.training._parts import resolve_part

__all__ = [
    "STOPPING_RULES",
    "BelowNoise",
    "CheckPass",
    "Converged",
    "MaxSteps",
    "Memorized",
    "StoppingRule",
    "resolve_stopping",
]


@dataclass(frozen=True, kw_only=True)
class CheckPass:
    """One evaluation of every member on its whole training set.

    Attributes
    ----------
    outputs : torch.Tensor
        Shape ``(n_members, n_samples, n_outputs)``.
    targets : torch.Tensor
        Targets as returned by :func:`robustlaw.empirical.training.losses.prepare_targets`.
    per_example : torch.Tensor
        Loss per example, shape ``(n_members, n_samples)``.
    fitted : torch.Tensor
        Boolean ``(n_members, n_samples)``: per-example loss at most the loss's margin.
    history : torch.Tensor
        Member losses at the most recent checks (at most the rule's ``history_window``), shape
        ``(n_checks_kept, n_members)``, this pass last.
    final : bool
        Whether this is the pass after the last step (the step cap is reached).
    """

    outputs: torch.Tensor
    targets: torch.Tensor
    per_example: torch.Tensor
    fitted: torch.Tensor
    history: torch.Tensor
    final: bool = False

    @property
    def member_loss(self) -> torch.Tensor:
        """Mean loss of each member, shape ``(n_members,)``."""
        return self.per_example.mean(dim=1)


class StoppingRule:
    """Base of the stopping parts: ``rule(check) -> done``, a boolean ``(n_members,)`` tensor.

    Subclasses are frozen keyword-only dataclasses with a class attribute ``name`` (the
    registry key). ``history_window`` is how many recent checks the rule reads from
    ``check.history``; ``needs_real_outputs`` refuses losses on class indices.
    """

    name: ClassVar[str]
    needs_real_outputs: ClassVar[bool] = False

    @property
    def history_window(self) -> int:
        """The number of recent checks kept in ``CheckPass.history``."""
        return 1

    def __call__(self, check: CheckPass) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class MaxSteps(StoppingRule):
    """Train to the step cap; the rule counts as met once the cap is reached.

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(2, 3, 1)
    >>> MaxSteps()(CheckPass(outputs=z, targets=z[0], per_example=z[..., 0],
    ...                      fitted=z[..., 0] > 0, history=z[:1, :, 0], final=True)).tolist()
    [True, True]
    """

    name: ClassVar[str] = "max-steps"

    def __call__(self, check: CheckPass) -> torch.Tensor:
        n_members = check.outputs.shape[0]
        device = check.outputs.device
        return torch.full((n_members,), check.final, dtype=torch.bool, device=device)


@dataclass(frozen=True, kw_only=True)
class BelowNoise(StoppingRule):
    """Done once the clipped training MSE is at most ``noise_level - eps`` (THEORY.md §1.1).

    Parameters
    ----------
    noise_level : float
        sigma^2, the variance of the label noise (squared output units).
    eps : float
        How far below the noise level the clipped MSE must go (squared output units).

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[[0.9], [2.0]]])  # clipped to [0.9, 1.0]
    >>> y = torch.ones(2, 1)
    >>> BelowNoise(noise_level=1.0, eps=0.5)(CheckPass(outputs=out, targets=y,
    ...     per_example=out[..., 0], fitted=out[..., 0] > 0, history=out[:, :1, 0])).tolist()
    [True]
    """

    name: ClassVar[str] = "below-noise"
    needs_real_outputs: ClassVar[bool] = True
    noise_level: float = 1.0
    eps: float = 0.1

    def __post_init__(self) -> None:
        check_interval(
            self.noise_level, "BelowNoise.noise_level", 0, math.inf, closed="left", scalar=True
        )
        check_interval(self.eps, "BelowNoise.eps", 0, math.inf, closed="left", scalar=True)

    def __call__(self, check: CheckPass) -> torch.Tensor:
        err = (check.outputs.clamp(-1.0, 1.0) - check.targets).square()
        mse = err.flatten(1).mean(dim=1)
        return mse <= self.noise_level - self.eps


@dataclass(frozen=True, kw_only=True)
class Memorized(StoppingRule):
    """Done once every training example is fitted (loss at most the loss's ``fit_margin``).

    Examples
    --------
    >>> import torch
    >>> fitted = torch.tensor([[True, True], [True, False]])
    >>> z = torch.zeros(2, 2, 1)
    >>> Memorized()(CheckPass(outputs=z, targets=z[0], per_example=z[..., 0],
    ...                       fitted=fitted, history=z[:1, :, 0])).tolist()
    [True, False]
    """

    name: ClassVar[str] = "memorized"

    def __call__(self, check: CheckPass) -> torch.Tensor:
        return check.fitted.all(dim=1)


@dataclass(frozen=True, kw_only=True)
class Converged(StoppingRule):
    """Done once the member's train loss moved by at most ``tol`` over ``window`` checks.

    Parameters
    ----------
    tol : float
        Largest loss range over the window (loss units: nats or squared error).
    window : int
        The number of checks the window spans (at least 1).

    Examples
    --------
    >>> import torch
    >>> h = torch.tensor([[1.0, 1.0], [1.0, 0.5]])
    >>> z = torch.zeros(2, 1, 1)
    >>> Converged(tol=1e-3, window=2)(CheckPass(outputs=z, targets=z[0],
    ...     per_example=z[..., 0], fitted=z[..., 0] > 0, history=h)).tolist()
    [True, False]
    """

    name: ClassVar[str] = "converged"
    tol: float = 1e-4
    window: int = 10

    def __post_init__(self) -> None:
        check_interval(self.tol, "Converged.tol", 0, math.inf, closed="left", scalar=True)
        check_integer(self.window, "Converged.window", minimum=1)

    @property
    def history_window(self) -> int:
        return self.window

    def __call__(self, check: CheckPass) -> torch.Tensor:
        h = check.history
        if h.shape[0] < self.window:
            return torch.zeros(h.shape[1], dtype=torch.bool, device=h.device)
        last = h[-self.window :]
        return (last.max(dim=0).values - last.min(dim=0).values) <= self.tol


STOPPING_RULES: dict[str, type[StoppingRule]] = {
    cls.name: cls for cls in (MaxSteps, BelowNoise, Memorized, Converged)
}
"""Stopping parts by name."""


def resolve_stopping(stopping: StoppingRule | str) -> StoppingRule:
    """A stopping part, or the registered rule ``stopping`` with its defaults.

    Examples
    --------
    >>> resolve_stopping("below-noise")
    BelowNoise(noise_level=1.0, eps=0.1)
    """
    return resolve_part(stopping, StoppingRule, STOPPING_RULES, "stopping")
