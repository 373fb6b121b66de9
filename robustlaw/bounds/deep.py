"""Constants for the deep-network setting and the isoperimetry constant of input distributions.

Bubeck–Sellke §3 (THEORY §2.4): a depth-``D`` network with 1-Lipschitz nonlinearities, inputs
``||x|| <= R``, parameters in the box ``[-W_inf, W_inf]^p`` (``W_inf >= 1``) and at most ``Q``
matrix entries tied to one parameter has parameter-Lipschitz constant ``J_BS = R (W Q p)^D``
(or the tighter ``J_tight``). Theorem 3 needs the box's **Euclidean** diameter ``2 W_inf sqrt(p)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from robustlaw._validation import check_bool, check_integer, get_registered
from robustlaw.bounds._core import as_arrays, compute, finish
from robustlaw.errors import ValidationError

__all__ = [
    "ISOPERIMETRY",
    "J_FORMS",
    "Isoperimetry",
    "box_to_euclidean_diameter",
    "isoperimetry_constant",
    "mlp_parameter_count",
    "parameter_lipschitz_constant",
]


#: The two parameter-Lipschitz constants of BS Lemma 3.1, keyed by form.
J_FORMS = {"bs": "J_BS", "tight": "J_tight"}


def parameter_lipschitz_constant(
    *,
    R: ArrayLike,
    W_inf: ArrayLike,
    p: ArrayLike,
    D: ArrayLike,
    Q: ArrayLike = 1,
    form: str = "bs",
) -> float | np.ndarray:
    r"""Parameter-Lipschitz constant ``J`` of a deep network (BS Lemma 3.1, THEORY §2.4).

    .. math::

        J_{BS} = R\,(W_\infty Q p)^D, \qquad
        J_{\mathrm{tight}} = (W_\infty\sqrt{pQ})^D\, Q R \sqrt p .

    ``J_BS`` dominates ``J_tight`` whenever ``D >= 2`` or ``Q = 1``.

    Parameters
    ----------
    R : array_like
        Bound on the input norm ``||x||_2`` (> 0).
    W_inf : array_like
        Per-coordinate weight bound (> 0; BS assume >= 1).
    p : array_like
        Number of parameters (>= 1).
    D : array_like
        Depth (integer >= 1).
    Q : array_like
        Most matrix entries or biases tied to one parameter (integer >= 1; 1 without sharing).
    form : {"bs", "tight"}
        Which constant; the toolkit defaults to ``J_BS`` as BS do.

    Returns
    -------
    float or numpy.ndarray
        ``J`` (output units per unit of parameter norm).

    Examples
    --------
    >>> parameter_lipschitz_constant(R=1, W_inf=1, p=198800, D=3)
    7856862272000000.0
    >>> round(parameter_lipschitz_constant(R=1, W_inf=1, p=198800, D=3, form="tight"))
    39521440000
    """
    name = get_registered(J_FORMS, form, "form")
    return compute(name, dict(R=R, W_inf=W_inf, p=p, D=D, Q=Q), name)


def box_to_euclidean_diameter(*, W_inf: ArrayLike, p: ArrayLike) -> float | np.ndarray:
    """Euclidean diameter ``2 W_inf sqrt(p)`` of the box ``[-W_inf, W_inf]^p``.

    Pass this, not ``W_inf``, as ``W`` to :func:`~robustlaw.bounds.lipschitz_lower_bound`.

    Examples
    --------
    >>> box_to_euclidean_diameter(W_inf=1.0, p=100)
    20.0
    """
    return compute("box_diameter", dict(W_inf=W_inf, p=p), "diameter")


def mlp_parameter_count(widths: Sequence[int], *, bias: bool = False) -> int:
    """Number of parameters of a fully connected network with the given layer widths.

    Examples
    --------
    >>> mlp_parameter_count([784, 200, 200, 10])
    198800
    """
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise ValidationError(f"widths must be a sequence of integers, got {widths!r}")
    widths = [check_integer(w, "widths entry", minimum=1) for w in widths]
    if len(widths) < 2:
        raise ValidationError(f"widths must be at least two positive integers, got {widths}")
    check_bool(bias, "bias")
    return sum(a * b + (b if bias else 0) for a, b in zip(widths[:-1], widths[1:], strict=True))


@dataclass(frozen=True, kw_only=True)
class Isoperimetry:
    """An input distribution with its isoperimetry constant ``c(d)`` at scale 1."""

    description: str
    constant: Callable[[np.ndarray], np.ndarray]
    min_d: float = 1.0


#: Input distributions with known isoperimetry constants (THEORY §1.4).
ISOPERIMETRY: dict[str, Isoperimetry] = {
    "gaussian-normalized": Isoperimetry(
        description="N(0, I_d/d): c = 1", constant=lambda d: np.ones_like(d)
    ),
    "gaussian": Isoperimetry(description="N(0, I_d): c = d", constant=lambda d: d),
    "sphere": Isoperimetry(
        description="uniform on the unit sphere S^{d-1}: c = d/(d-1) (sharp log-Sobolev)",
        constant=lambda d: d / (d - 1.0),
        min_d=2.0,
    ),
    "cube": Isoperimetry(
        description="uniform on the cube [0, 1/sqrt(d)]^d (diameter 1): c = 1/(2 pi)",
        constant=lambda d: np.full_like(d, 1.0 / (2.0 * np.pi)),
    ),
}


def isoperimetry_constant(kind: str, d: ArrayLike, scale: ArrayLike = 1.0) -> float | np.ndarray:
    """Isoperimetry constant ``c`` of an input distribution, after scaling the data by ``scale``.

    Rescaling ``x -> a x`` turns ``c`` into ``a^2 c`` (THEORY §1.4), so ``N(0, s^2 I_d)`` is
    ``kind="gaussian", scale=s`` with ``c = d s^2``. The Boolean cube is deliberately absent: it
    is not O(1)-isoperimetric in the Euclidean sense.

    Parameters
    ----------
    kind : str
        A key of :data:`ISOPERIMETRY`: ``"gaussian-normalized"``, ``"gaussian"``, ``"sphere"``,
        ``"cube"``.
    d : array_like
        Input dimension (>= 1; >= 2 for the sphere).
    scale : array_like
        Factor multiplying the data (> 0).

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> isoperimetry_constant("gaussian", 784)
    784.0
    >>> isoperimetry_constant("sphere", 3)
    1.5
    """
    spec = get_registered(ISOPERIMETRY, kind, "distribution")
    arrays, shape = as_arrays({"d": d, "scale": scale})
    if np.any(arrays["d"] < spec.min_d):
        raise ValidationError(f"d must be >= {spec.min_d:g} for kind {kind!r}, got {d!r}")
    with np.errstate(all="ignore"):  # an overflow is reported by finish()
        c = arrays["scale"] ** 2 * spec.constant(arrays["d"])
    return finish(c, shape, "c", arrays)
