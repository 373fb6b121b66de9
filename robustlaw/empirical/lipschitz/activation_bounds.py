r"""Activation slope bounds: the ``[alpha, beta]`` that LipSDP and ECLipsE need.

An activation :math:`\phi` is slope-restricted in :math:`[\alpha, \beta]` when
:math:`\alpha \le (\phi(a) - \phi(b)) / (a - b) \le \beta` for all :math:`a \ne b`
(Fazlyab et al., NeurIPS 2019, §2).
"""

from __future__ import annotations

from robustlaw._validation import check_interval, get_registered
from robustlaw.errors import ValidationError

__all__ = ["ACTIVATION_SLOPE_BOUNDS", "activation_slope_bounds"]

#: Registered activations and their slope bounds ``(alpha, beta)``. ``leaky-relu`` uses
#: PyTorch's default negative slope 0.01; pass ``(a, 1.0)`` for another one.
ACTIVATION_SLOPE_BOUNDS: dict[str, tuple[float, float]] = {
    "relu": (0.0, 1.0),
    "leaky-relu": (0.01, 1.0),
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 0.25),
    "identity": (1.0, 1.0),
}


def activation_slope_bounds(activation: str | tuple[float, float]) -> tuple[float, float]:
    """Return ``(alpha, beta)`` for a registered activation name or an explicit pair.

    Parameters
    ----------
    activation : str or tuple of float
        A key of :data:`ACTIVATION_SLOPE_BOUNDS`, or ``(alpha, beta)`` with
        ``0 <= alpha <= beta`` and ``beta > 0``.

    Returns
    -------
    tuple of float

    Raises
    ------
    UnknownNameError
        For an unknown name (the message lists the valid names).
    ValidationError
        For a pair that is not ordered or not finite.

    Examples
    --------
    >>> activation_slope_bounds("sigmoid")
    (0.0, 0.25)
    >>> activation_slope_bounds((0.1, 1.0))
    (0.1, 1.0)
    """
    if isinstance(activation, str):
        return get_registered(ACTIVATION_SLOPE_BOUNDS, activation, "activation")
    try:
        alpha, beta = activation
    except (TypeError, ValueError):
        raise ValidationError(
            f"activation must be a name or a pair (alpha, beta), got {activation!r}"
        ) from None
    alpha = float(check_interval(alpha, "alpha", 0.0, closed="left"))
    beta = float(check_interval(beta, "beta", 0.0, closed="neither"))
    if alpha > beta:
        raise ValidationError(f"slope bounds need alpha <= beta, got ({alpha}, {beta})")
    return alpha, beta
