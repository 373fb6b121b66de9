"""Training losses on stacked outputs, and the per-example "fitted" criterion of each.

Every loss maps outputs of shape ``(n_members, n_samples, n_outputs)`` and targets to a
per-example loss of shape ``(n_members, n_samples)``. A member's loss is the mean over its own
examples; the training objective is the *sum* over members of those means, so every member
receives exactly its own gradient (METHODS.md §7).

Units: natural logarithms (nats) for the cross-entropy and logistic losses; MSE is the plain
mean of squared errors, with no factor 1/2 (THEORY.md §1.1).

Registry :data:`LOSSES`: ``"mse"`` (:class:`MSE`), ``"cross-entropy"`` (:class:`CrossEntropy`),
``"logistic"`` (:class:`Logistic`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from robustlaw._validation import check_interval
from robustlaw.empirical.training._parts import resolve_part
from robustlaw.errors import ValidationError

__all__ = ["LOSSES", "CrossEntropy", "Logistic", "Loss", "MSE", "prepare_targets", "resolve_loss"]

_LN2_TENTH = math.log(2) / 10
"""No Free Prune §4.1: an example is fitted at one tenth of ln 2 nats, the 50/50 loss."""


class Loss:
    """Base of the loss parts: a per-example loss and the margin below which an example is fitted.

    Subclasses are frozen keyword-only dataclasses with a ``fit_margin`` field (an example counts
    as fitted when its loss is at most ``fit_margin``: nats for cross-entropy and logistic,
    squared error for MSE), and class attributes ``name`` (the registry key) and
    ``integer_targets`` (targets are class indices rather than real values).
    """

    name: ClassVar[str]
    integer_targets: ClassVar[bool] = False
    fit_margin: float

    def __post_init__(self) -> None:
        check_interval(
            self.fit_margin, f"{type(self).__name__}.fit_margin", 0, math.inf, closed="left"
        )

    def per_example(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Loss per example, shape ``(n_members, n_samples)``."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class MSE(Loss):
    """Mean squared error over the outputs (no factor 1/2).

    Parameters
    ----------
    fit_margin : float
        Squared error at or below which an example is fitted.

    Examples
    --------
    >>> import torch
    >>> MSE().per_example(torch.ones(1, 2, 1), torch.zeros(2, 1)).tolist()
    [[1.0, 1.0]]
    """

    name: ClassVar[str] = "mse"
    fit_margin: float = 0.1

    def per_example(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs - targets).square().mean(dim=-1)


@dataclass(frozen=True, kw_only=True)
class CrossEntropy(Loss):
    """Softmax cross-entropy in nats; targets are class indices.

    Parameters
    ----------
    fit_margin : float
        Loss in nats at or below which an example is fitted (ln(2)/10 by default).

    Examples
    --------
    >>> import torch
    >>> round(CrossEntropy().per_example(torch.zeros(1, 1, 2), torch.tensor([0])).item(), 4)
    0.6931
    """

    name: ClassVar[str] = "cross-entropy"
    integer_targets: ClassVar[bool] = True
    fit_margin: float = _LN2_TENTH

    def per_example(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        idx = targets.expand(outputs.shape[:-1]).unsqueeze(-1)
        return -torch.log_softmax(outputs, dim=-1).gather(-1, idx).squeeze(-1)


@dataclass(frozen=True, kw_only=True)
class Logistic(Loss):
    """Logistic loss ``log(1 + exp(-y f))`` in nats, labels in {-1, +1}, one output.

    Parameters
    ----------
    fit_margin : float
        Loss in nats at or below which an example is fitted (ln(2)/10 by default).

    Examples
    --------
    >>> import torch
    >>> round(Logistic().per_example(torch.zeros(1, 1, 1), torch.ones(1, 1)).item(), 4)
    0.6931
    """

    name: ClassVar[str] = "logistic"
    fit_margin: float = _LN2_TENTH

    def per_example(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.softplus(-targets * outputs).squeeze(-1)


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (MSE, CrossEntropy, Logistic)}
"""Loss parts by name."""


def resolve_loss(loss: Loss | str) -> Loss:
    """A loss part, or the registered loss ``loss`` with its defaults.

    Examples
    --------
    >>> resolve_loss("cross-entropy").name
    'cross-entropy'
    """
    return resolve_part(loss, Loss, LOSSES, "loss")


def prepare_targets(
    y: torch.Tensor, loss: Loss | str, *, n_samples: int, n_members: int, n_outputs: int
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

    Examples
    --------
    >>> import torch
    >>> prepare_targets(torch.ones(3), "mse", n_samples=3, n_members=2, n_outputs=1).shape
    torch.Size([3, 1])
    """
    spec = resolve_loss(loss)
    name = spec.name
    if spec.integer_targets:
        if y.is_floating_point() or y.dtype == torch.bool:
            raise ValidationError(f"y must hold int64 class indices for {name}, got {y.dtype}")
        ok = y.shape in ((n_samples,), (n_members, n_samples))
        if not ok:
            raise ValidationError(
                f"y must have shape ({n_samples},) or ({n_members}, {n_samples}) for {name}, "
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
            f"{n_outputs}) for {name}, got {tuple(y.shape)}"
        )
    if isinstance(spec, Logistic) and not bool(((y == 1) | (y == -1)).all()):
        raise ValidationError("y must hold labels in {-1, +1} for the logistic loss")
    return y
