"""Measured mask information for ``lor-scaling``'s ``p_eff``: validated entries and lookup.

No Free Prune Theorem 4 charges a pruned net ``I(m; D | init)`` bits for its mask. Where the
information of a (method, n, d, density) has been measured (for example with
:func:`robustlaw.empirical.information.estimate_mask_entropy` over datasets sampled with the
init fixed), the settings carry it in ``mask_information`` and the records use it; elsewhere a
data-dependent mask is charged the ceiling ``log2 binom(prunable, kept)`` and a
data-independent one 0 (:func:`robustlaw.bounds.mask_information`). Each record's
``mask_info_source`` says which.

References
----------
Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089), Theorem 4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from robustlaw._validation import check_integer, check_interval
from robustlaw.errors import ValidationError

__all__ = ["check_mask_information", "measured_bits"]

ENTRY_FIELDS = ("method", "n", "d", "density", "bits")
"""The fields of one ``mask_information`` entry, in order."""


def _entry(raw: Any, settings: Any) -> tuple[str, int, int, float, float]:
    if not isinstance(raw, (tuple, list)) or len(raw) != len(ENTRY_FIELDS):
        raise ValidationError(
            f"mask_information entries must be {ENTRY_FIELDS} tuples, got {raw!r}"
        )
    method, n, d, density, bits = raw
    if method not in settings.methods:
        raise ValidationError(
            f"mask_information names method {method!r}, which is not among the settings' "
            f"methods {settings.methods}"
        )
    n = check_integer(n, "mask_information n")
    d = check_integer(d, "mask_information d")
    if (n, d) not in settings.sizes:
        raise ValidationError(
            f"mask_information names (n, d) = ({n}, {d}), not among the sizes {settings.sizes}"
        )
    density = float(check_interval(density, "mask_information density", 0, 1, scalar=True))
    if not any(math.isclose(density, x, rel_tol=1e-12) for x in settings.densities):
        raise ValidationError(
            f"mask_information names density {density}, not among the densities "
            f"{settings.densities}"
        )
    bits = float(check_interval(bits, "mask_information bits", 0, math.inf, closed="left",
                                scalar=True))  # fmt: skip
    return (method, n, d, density, bits)


def check_mask_information(settings: Any) -> tuple[tuple[str, int, int, float, float], ...]:
    """Validate ``settings.mask_information``: each entry names a point the settings run, once.

    Parameters
    ----------
    settings : LorScalingSettings
        Settings whose ``methods``, ``sizes`` and ``densities`` are already validated.

    Returns
    -------
    tuple of (method, n, d, density, bits)
        The entries, normalized (ints and floats).

    Raises
    ------
    ValidationError
        On a malformed entry, a point the settings do not run (a likely typo), negative bits,
        or two entries for one point.
    """
    raw: Sequence[Any] = settings.mask_information
    if isinstance(raw, (str, bytes)) or not hasattr(raw, "__iter__"):
        raise ValidationError(f"mask_information must be a tuple of entries, got {raw!r}")
    entries = tuple(_entry(e, settings) for e in raw)
    points = [e[:4] for e in entries]
    if len(set(points)) != len(points):
        raise ValidationError("mask_information must give each (method, n, d, density) once")
    return entries


def measured_bits(
    entries: Sequence[tuple[str, int, int, float, float]],
    *,
    method: str,
    n: int,
    d: int,
    density: float | None,
) -> float | None:
    """The measured information of one point in bits, or None where none was measured.

    Examples
    --------
    >>> measured_bits((("snip", 32, 16, 0.05, 12.5),), method="snip", n=32, d=16, density=0.05)
    12.5
    >>> measured_bits((), method="snip", n=32, d=16, density=0.05) is None
    True
    """
    if density is None:
        return None
    for m, n_, d_, x, bits in entries:
        if (m, n_, d_) == (method, n, d) and math.isclose(x, density, rel_tol=1e-12):
            return bits
    return None
