"""Training losses on stacked outputs, and the per-example "fitted" criterion of each.

Every loss maps outputs of shape ``(n_members, n_samples, n_outputs)`` and targets to a
per-example loss of shape ``(n_members, n_samples)``. A member's loss is the mean over its own
examples; the training objective is the *sum* over members of those means, so every member
receives exactly its own gradient (METHODS.md §7).

Units: natural logarithms (nats) for the cross-entropy and logistic losses; MSE is the plain
mean of squared errors, with no factor 1/2 (THEORY.md §1.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from robustlaw.errors import ValidationError

__all__ = ["LOSSES", "Loss", "prepare_targets"]


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out - y).square().mean(dim=-1)


def _cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    idx = y.expand(out.shape[:-1]).unsqueeze(-1)
    return -torch.log_softmax(out, dim=-1).gather(-1, idx).squeeze(-1)


def _logistic(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.softplus(-y * out).squeeze(-1)


@dataclass(frozen=True)
class Loss:
    """A registered loss.

    Attributes
    ----------
    per_example : callable
        ``(outputs, targets) -> (n_members, n_samples)`` loss values.
    default_margin : float
        An example counts as fitted when its loss is at most this (nats for CE and logistic,
        squared error for MSE; No Free Prune §4.1: one tenth of ln 2, the 50/50 loss).
    integer_targets : bool
        Targets are class indices (int64) rather than real values.
    """

    per_example: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    default_margin: float
    integer_targets: bool


LOSSES: dict[str, Loss] = {
    "mse": Loss(per_example=_mse, default_margin=0.1, integer_targets=False),
    "cross_entropy": Loss(
        per_example=_cross_entropy, default_margin=math.log(2) / 10, integer_targets=True
    ),
    "logistic": Loss(per_example=_logistic, default_margin=math.log(2) / 10, integer_targets=False),
}


def prepare_targets(
    y: torch.Tensor, loss: str, *, n_samples: int, n_members: int, n_outputs: int
) -> torch.Tensor:
    """Bring targets to a canonical stacked shape, checking them against the outputs.

    Real targets become ``(n_samples, n_outputs)`` (shared) or
    ``(n_members, n_samples, n_outputs)`` (per member); a 1-D or ``(K, n)`` target is accepted
    when there is one output. Class indices stay ``(n_samples,)`` or ``(n_members, n_samples)``.

    Raises
    ------
    ValidationError
        If the shapes do not match, class indices are out of range, or logistic labels are not
        in {-1, +1}.
    """
    spec = LOSSES[loss]
    if spec.integer_targets:
        if y.is_floating_point() or y.dtype == torch.bool:
            raise ValidationError(f"y must hold int64 class indices for {loss}, got {y.dtype}")
        ok = y.shape in ((n_samples,), (n_members, n_samples))
        if not ok:
            raise ValidationError(
                f"y must have shape ({n_samples},) or ({n_members}, {n_samples}) for {loss}, "
                f"got {tuple(y.shape)}"
            )
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_outputs):
            raise ValidationError(f"y must hold class indices in [0, {n_outputs}), got outside")
        return y.to(torch.int64)
    if n_outputs == 1 and y.shape in ((n_samples,), (n_members, n_samples)):
        y = y.unsqueeze(-1)
    if y.shape not in ((n_samples, n_outputs), (n_members, n_samples, n_outputs)):
        raise ValidationError(
            f"y must have shape ({n_samples}, {n_outputs}) or ({n_members}, {n_samples}, "
            f"{n_outputs}) for {loss}, got {tuple(y.shape)}"
        )
    if loss == "logistic" and not bool(((y == 1) | (y == -1)).all()):
        raise ValidationError("y must hold labels in {-1, +1} for the logistic loss")
    return y
