"""Resolve a training part given as an instance or as a registered name (internal)."""

from __future__ import annotations

from typing import Any

from robustlaw._validation import get_registered
from robustlaw.errors import ValidationError

__all__ = ["resolve_part"]


def resolve_part(value: Any, base: type, registry: dict[str, type], field: str) -> Any:
    """Return ``value`` as an instance of ``base``; a name builds the registered part's defaults.

    Names go through :func:`robustlaw._validation.get_registered`, so an unknown name lists the
    valid ones and an old underscore spelling names the new one.

    Examples
    --------
    >>> from robustlaw.empirical.training.losses import LOSSES, Loss
    >>> resolve_part("mse", Loss, LOSSES, "loss")
    MSE(fit_margin=0.1)
    """
    if isinstance(value, str):
        return get_registered(registry, value, field)()
    if isinstance(value, base):
        return value
    names = ", ".join(map(repr, sorted(registry)))
    raise ValidationError(
        f"{field} must be a {base.__name__} or one of the names {names}, got {value!r}"
    )
