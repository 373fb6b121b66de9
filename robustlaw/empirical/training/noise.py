"""Gradient-noise parts: noise added to every gradient entry before the optimizer step.

Each member draws its noise from its own ``torch.Generator`` (seeded from the member's seed by
the trainer), in each parameter's own shape, so a member's noise does not depend on K or on its
batch-mates.

Registry :data:`GRADIENT_NOISES`: ``"gaussian"`` (:class:`GaussianGradientNoise`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from robustlaw._validation import check_interval
from robustlaw.empirical.training._parts import resolve_part

__all__ = ["GRADIENT_NOISES", "GaussianGradientNoise", "GradientNoise", "resolve_gradient_noise"]


class GradientNoise:
    """Base of the gradient-noise parts: ``draw(shape, generator=, dtype=)`` for one member.

    Subclasses are frozen keyword-only dataclasses with a class attribute ``name``.
    """

    name: ClassVar[str]

    def draw(
        self, shape: torch.Size, *, generator: torch.Generator, dtype: torch.dtype
    ) -> torch.Tensor:
        """Noise for one member's parameter of shape ``shape`` (on the CPU)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class GaussianGradientNoise(GradientNoise):
    """Independent centred Gaussian noise on every gradient entry.

    Parameters
    ----------
    std : float
        Standard deviation (gradient units: loss per parameter unit); must be positive.

    Examples
    --------
    >>> import torch
    >>> noise = GaussianGradientNoise(std=0.5)
    >>> noise.draw((2, 3), generator=torch.Generator().manual_seed(0), dtype=torch.float64).shape
    torch.Size([2, 3])
    """

    name: ClassVar[str] = "gaussian"
    std: float = 1.0

    def __post_init__(self) -> None:
        check_interval(
            self.std, "GaussianGradientNoise.std", 0, math.inf, closed="neither", scalar=True
        )

    def draw(self, shape, *, generator, dtype) -> torch.Tensor:
        return self.std * torch.randn(shape, generator=generator, dtype=dtype)


GRADIENT_NOISES: dict[str, type[GradientNoise]] = {
    cls.name: cls for cls in (GaussianGradientNoise,)
}
"""Gradient-noise parts by name."""


def resolve_gradient_noise(noise: GradientNoise | str) -> GradientNoise:
    """A gradient-noise part, or the registered one ``noise`` with its defaults.

    Examples
    --------
    >>> resolve_gradient_noise("gaussian")
    GaussianGradientNoise(std=1.0)
    """
    return resolve_part(noise, GradientNoise, GRADIENT_NOISES, "gradient_noise")
