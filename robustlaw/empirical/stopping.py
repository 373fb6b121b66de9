"""Per-member stopping rules for batched training.

A rule looks at one full pass over the training set and returns a boolean ``(n_members,)``
tensor: ``True`` for members that are done. Done members stop changing (their updates are
multiplied by an ``active`` flag, METHODS.md §7); training ends when every member is done or
the step cap is reached.

Rules (the registry :data:`STOPPING_RULES`):

``max_steps``
    Never done early; met once the step cap is reached.
``below_noise``
    Fit below the noise level, THEORY.md §1.1: the mean squared error of the outputs clipped to
    ``[-1, 1]`` is at most ``sigma^2 - eps``.
``memorized``
    Every training example is fitted: per-example loss at most the margin (ln(2)/10 nats for
    cross-entropy, No Free Prune §4.1; squared error 0.1 for MSE).
``converged``
    The train loss moved by at most ``tol`` over the last ``window`` checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["STOPPING_RULES", "CheckPass"]


@dataclass(frozen=True, kw_only=True)
class CheckPass:
    """One evaluation of every member on its whole training set.

    Attributes
    ----------
    outputs : torch.Tensor
        Shape ``(n_members, n_samples, n_outputs)``.
    targets : torch.Tensor
        Targets as returned by :func:`robustlaw.empirical.losses.prepare_targets`.
    per_example : torch.Tensor
        Loss per example, shape ``(n_members, n_samples)``.
    fitted : torch.Tensor
        Boolean ``(n_members, n_samples)``: per-example loss at most the margin.
    history : torch.Tensor
        Member losses at the most recent checks, shape ``(n_checks_kept, n_members)``,
        this pass last.
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


def _max_steps(check: CheckPass, options) -> torch.Tensor:
    n_members = check.outputs.shape[0]
    return torch.full((n_members,), check.final, dtype=torch.bool, device=check.outputs.device)


def _below_noise(check: CheckPass, options) -> torch.Tensor:
    err = (check.outputs.clamp(-1.0, 1.0) - check.targets).square()
    mse = err.flatten(1).mean(dim=1)
    return mse <= options.noise_level - options.fit_eps


def _memorized(check: CheckPass, options) -> torch.Tensor:
    return check.fitted.all(dim=1)


def _converged(check: CheckPass, options) -> torch.Tensor:
    h = check.history
    if h.shape[0] < options.converge_window:
        return torch.zeros(h.shape[1], dtype=torch.bool, device=h.device)
    last = h[-options.converge_window :]
    return (last.max(dim=0).values - last.min(dim=0).values) <= options.converge_tol


STOPPING_RULES: dict[str, Callable[[CheckPass, object], torch.Tensor]] = {
    "max_steps": _max_steps,
    "below_noise": _below_noise,
    "memorized": _memorized,
    "converged": _converged,
}
