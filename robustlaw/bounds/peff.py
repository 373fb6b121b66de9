"""Effective parameter counts of pruned networks and the mask-entropy ceiling (bits).

``p_eff`` of No Free Prune Theorem 4 charges each kept weight ``log2(1 + 60WJ/eps)`` bits (its
description at resolution ``eps/(8J)``) plus the mask's mutual information with the data. The
mask entropy ``log2 binom(p, kept)`` caps that information; for a training-based mask (IMP) it
is the idealized value of THEORY §3.6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from robustlaw._validation import check_bool, check_integer
from robustlaw.bounds._core import as_arrays, compute, finish
from robustlaw.errors import ValidationError

__all__ = [
    "INFORMATION_SOURCES",
    "MaskInformation",
    "binary_entropy",
    "effective_parameter_count",
    "imp_to_pai_ratio",
    "mask_entropy_upper_bound",
    "mask_information",
    "p_eff_informal",
]

INFORMATION_SOURCES = ("zero", "measured", "entropy-bound")
"""Where the mask information in a ``p_eff`` comes from (see :func:`mask_information`)."""


def effective_parameter_count(
    *,
    kept: ArrayLike,
    mutual_information_bits: ArrayLike = 0.0,
    W: ArrayLike,
    J: ArrayLike,
    eps: ArrayLike,
) -> float | np.ndarray:
    r"""The effective parameter count of NFP Theorem 4, in bits.

    .. math::

        p_{\mathrm{eff}} = I(\mathbf m; D) + \mathbb E\|\mathbf m\|_1 \log_2(1 + 60WJ/\epsilon)

    Parameters
    ----------
    kept : array_like
        Expected number of kept (unpruned) weights ``E ||m||_1`` (>= 0).
    mutual_information_bits : array_like
        ``I(m; D | init)`` in bits (>= 0); 0 for data-independent masks.
    W : array_like
        Euclidean diameter of the weight set (> 0).
    J : array_like
        Parameter-Lipschitz constant (> 0).
    eps : array_like
        Fit margin in (0, 1).

    Returns
    -------
    float or numpy.ndarray
        ``p_eff`` in bits.

    References
    ----------
    Kumar, Luo, Sellke, arXiv:2402.01089, Theorem 4.

    Examples
    --------
    >>> round(effective_parameter_count(kept=1000, W=10, J=10, eps=0.1), 3)
    15872.699
    """
    values = dict(kept=kept, mutual_information_bits=mutual_information_bits, W=W, J=J, eps=eps)
    return compute("p_eff", values, "p_eff")


def p_eff_informal(
    *, kept: ArrayLike, mutual_information_bits: ArrayLike = 0.0
) -> float | np.ndarray:
    """The informal count ``E||m||_1 + I(m; D)`` of the NFP abstract (not used by the bound).

    Examples
    --------
    >>> p_eff_informal(kept=1000, mutual_information_bits=5000)
    6000.0
    """
    values = dict(kept=kept, mutual_information_bits=mutual_information_bits)
    return compute("p_eff_informal", values, "p_eff_informal")


def binary_entropy(g: ArrayLike) -> float | np.ndarray:
    r"""Binary entropy :math:`h_2(g) = -g\log_2 g - (1-g)\log_2(1-g)` in bits, for g in [0, 1].

    Examples
    --------
    >>> binary_entropy([0.0, 0.5, 1.0]).tolist()
    [0.0, 1.0, 0.0]
    """
    arrays, shape = as_arrays({"g": g})
    g = arrays["g"]
    return finish((special.entr(g) + special.entr(1.0 - g)) / np.log(2.0), shape, "h2", arrays)


def mask_entropy_upper_bound(p: ArrayLike, kept: ArrayLike) -> float | np.ndarray:
    r"""``log2 binom(p, kept)``: the entropy, in bits, of a uniform mask keeping ``kept`` of ``p``.

    Computed as :math:`-\log(p+1) - \log B(p-kept+1, kept+1)` with ``scipy.special.betaln``,
    which stays accurate (relative error ~1e-14) for huge ``p`` where differences of
    ``lgamma`` values would cancel. Real ``kept`` uses the Gamma-function continuation.

    Parameters
    ----------
    p : array_like
        Number of prunable parameters (>= 1).
    kept : array_like
        Number of kept weights, ``0 <= kept <= p``.

    Returns
    -------
    float or numpy.ndarray
        Bits.

    Examples
    --------
    >>> round(mask_entropy_upper_bound(1e6, 1e4))
    80785
    >>> float(mask_entropy_upper_bound(10, 10))
    0.0
    """
    arrays, shape = as_arrays({"p": p, "kept": kept})
    p, kept = arrays["p"], arrays["kept"]
    if np.any(kept > p):
        raise ValidationError(f"kept must be at most p, got kept={kept.max()!r} > p")
    nats = -np.log1p(p) - special.betaln(p - kept + 1.0, kept + 1.0)
    return finish(np.maximum(nats, 0.0) / np.log(2.0), shape, "log2 binom(p, kept)", arrays)


def imp_to_pai_ratio(gamma: ArrayLike, *, bits_per_weight: ArrayLike = 1.0) -> float | np.ndarray:
    r"""IMP-to-PaI ratio of effective counts at sparsity ``gamma`` (THEORY §3.6).

    .. math::

        \rho(\gamma) = 1 + \frac{h_2(\gamma)}{b\,(1-\gamma)}

    An IMP mask is idealized as maximally informative (``I = p h_2(gamma)``) and a PaI mask as
    data-independent (``I = 0``); each kept weight costs ``b`` bits. The ratio diverges like
    ``log2(1/(1-gamma))`` as ``gamma -> 1``. Evaluated with :func:`binary_entropy` so that
    ``gamma = 0`` gives 1; tested equal to the symbolic ``imp_to_pai_ratio``.

    Parameters
    ----------
    gamma : array_like
        Sparsity (fraction pruned) in [0, 1).
    bits_per_weight : array_like
        ``b`` (> 0): 1 counts weights; ``log2(1 + 60WJ/eps)`` matches Theorem 4.

    Examples
    --------
    >>> round(imp_to_pai_ratio(0.9), 3)
    5.69
    """
    arrays, shape = as_arrays({"gamma": gamma, "bits_per_weight": bits_per_weight})
    gamma, b = arrays["gamma"], arrays["bits_per_weight"]
    with np.errstate(all="ignore"):  # an overflow is reported by finish()
        ratio = 1.0 + binary_entropy(gamma) / (b * (1.0 - gamma))
    return finish(ratio, shape, "ratio", arrays)


@dataclass(frozen=True, kw_only=True)
class MaskInformation:
    """The mask information ``I(m; D | init)`` that enters ``p_eff``, and where it came from.

    Attributes
    ----------
    bits : float
        The information in bits.
    source : {"zero", "measured", "entropy-bound"}
        ``"zero"``: a data-independent mask, exactly 0. ``"measured"``: an estimate (e.g.
        :func:`robustlaw.empirical.information.estimate_mask_entropy`); the upper end of its
        interval where it has one. ``"entropy-bound"``: no estimate, the ceiling
        ``log2 binom(p, kept)`` (THEORY §3.6), an upper bound.
    """

    bits: float
    source: str


def _measured_bits(measured: Any) -> float:
    """Bits of a measurement: a number, or an estimate's ``ci_high`` (else its ``bits``)."""
    if hasattr(measured, "bits"):
        high = getattr(measured, "ci_high", None)
        measured = measured.bits if high is None else high
    if isinstance(measured, bool) or not isinstance(measured, (int, float, np.number)):
        raise ValidationError(
            f"measured must be a number of bits or an entropy estimate, got {measured!r}"
        )
    bits = float(measured)
    if not math.isfinite(bits) or bits < 0:
        raise ValidationError(f"measured information must be finite and >= 0 bits, got {bits}")
    return bits


def mask_information(
    *, p: int, kept: int, data_dependent: bool, measured: Any = None
) -> MaskInformation:
    """The mask information for ``p_eff``: measured where an estimate exists, else bounded.

    No Free Prune Theorem 4 charges ``I(m; D | init)`` bits for the mask. A data-independent
    mask (random, magnitude at init, SynFlow) has ``I = 0`` exactly. For a data-dependent one
    an estimate is used when given; its interval's upper end where it has one, since a larger
    ``I`` only lowers the floor. Without an estimate the ceiling ``log2 binom(p, kept)`` stands
    in: every mask that keeps ``kept`` of ``p`` entries has at most that entropy.

    Parameters
    ----------
    p : int
        Prunable entries (>= 1).
    kept : int
        Kept entries, ``0 <= kept <= p``.
    data_dependent : bool
        Whether the pruning method reads the data (``Pruner.needs_data``).
    measured : float or EntropyEstimate, optional
        Measured information in bits, or an object with ``bits`` and ``ci_high`` such as
        :class:`robustlaw.empirical.entropy.EntropyEstimate`. Ignored, with ``I = 0``, for a
        data-independent mask.

    Returns
    -------
    MaskInformation

    Raises
    ------
    ValidationError
        If ``p`` or ``kept`` is not an integer with ``0 <= kept <= p``, ``data_dependent`` is
        not a bool, or the measurement is negative, not finite, or above the ceiling
        ``log2 binom(p, kept)`` (an impossible value: the estimate or its inputs are wrong).

    References
    ----------
    Kumar, Luo, Sellke, arXiv:2402.01089, Theorem 4 and §4.

    Examples
    --------
    >>> mask_information(p=21, kept=10, data_dependent=False, measured=3.0)
    MaskInformation(bits=0.0, source='zero')
    >>> mask_information(p=21, kept=10, data_dependent=True, measured=3.0)
    MaskInformation(bits=3.0, source='measured')
    >>> round(mask_information(p=21, kept=10, data_dependent=True).bits, 3)  # log2 C(21, 10)
    18.428
    """
    p = check_integer(p, "p", minimum=1)
    kept = check_integer(kept, "kept", minimum=0)
    if kept > p:
        raise ValidationError(f"kept must be at most p, got kept={kept} > p={p}")
    check_bool(data_dependent, "data_dependent")
    ceiling = float(mask_entropy_upper_bound(p, kept))
    if not data_dependent:
        return MaskInformation(bits=0.0, source="zero")
    if measured is None:
        return MaskInformation(bits=ceiling, source="entropy-bound")
    bits = _measured_bits(measured)
    if bits > ceiling * (1 + 1e-9) + 1e-9:
        raise ValidationError(
            f"measured information {bits:.6g} bits exceeds log2 binom(p={p}, kept={kept}) = "
            f"{ceiling:.6g} bits, the most any mask keeping {kept} of {p} entries can carry"
        )
    return MaskInformation(bits=bits, source="measured")
