"""The :class:`Dataset` record every generator and loader returns."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch

from robustlaw._validation import check_interval, check_tensor
from robustlaw.errors import ValidationError

__all__ = ["Dataset"]


@dataclass(frozen=True, kw_only=True, eq=False)
class Dataset:
    """A training set and the constants of the distribution it was drawn from.

    Attributes
    ----------
    X : torch.Tensor
        Inputs, shape ``(n_samples, *example_shape)``.
    y : torch.Tensor
        Targets: float of shape ``(n_samples,)`` or ``(n_samples, n_outputs)`` (labels ±1 for
        binary data), or int64 class indices of shape ``(n_samples,)``.
    kind : str
        What generated it (a key of :data:`~robustlaw.empirical.data.DATASETS`, e.g.
        ``"random-labels"``, ``"two-patch"``).
    noise_level : float or None
        sigma^2 = E Var(y | x) (THEORY.md §1.1); None where it is not defined or not known.
    isoperimetry_constant : float or None
        c of the input distribution (THEORY.md §1.4); None where it is not known.
    n_classes : int or None
        Number of classes; None for regression targets.
    labels_bounded : bool
        Whether every label lies in [-1, 1], as the theorems assume. False marks a proxy.
    seed : int
        The seed everything was drawn from.
    extras : mapping
        Generator-specific values (teacher, fixed noise draw, signal vectors, ...).
    """

    X: torch.Tensor
    y: torch.Tensor
    kind: str
    noise_level: float | None
    isoperimetry_constant: float | None
    n_classes: int | None
    labels_bounded: bool
    seed: int
    extras: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        X = check_tensor(self.X, "X", ndim=tuple(range(2, 6)))
        if not X.is_floating_point():
            raise ValidationError(f"X must be floating point, got {X.dtype}")
        y = check_tensor(self.y, "y", ndim=(1, 2))
        if X.shape[0] == 0 or y.shape[0] != X.shape[0]:
            raise ValidationError(
                f"X and y must have the same positive number of samples, got {X.shape[0]} "
                f"and {y.shape[0]}"
            )
        for name in ("noise_level", "isoperimetry_constant"):
            if getattr(self, name) is not None:
                check_interval(getattr(self, name), name, 0, math.inf, closed="left")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))

    @property
    def n_samples(self) -> int:
        """n, the number of examples."""
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        """d, the number of input features of one example (all dimensions flattened)."""
        return math.prod(self.X.shape[1:])

    def class_targets(self) -> torch.Tensor:
        """Class indices (int64) for cross-entropy: ±1 labels map to 0 (for -1) and 1."""
        if self.n_classes is None:
            raise ValidationError(f"{self.kind} data have regression targets, not classes")
        if self.y.is_floating_point():
            return (self.y > 0).to(torch.int64)
        return self.y
