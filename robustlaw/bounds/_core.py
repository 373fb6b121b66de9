"""Shared machinery of the numeric bounds: argument domains, broadcasting, compiled formulas.

Every public function of :mod:`robustlaw.bounds` validates its arguments here (once), then
evaluates a formula of :mod:`robustlaw.bounds.symbolic` compiled by :func:`sympy.lambdify`.
sympy is imported on the first evaluation, not when the package is imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from robustlaw._validation import get_registered, real_array
from robustlaw.errors import ValidationError


@dataclass(frozen=True, kw_only=True)
class Domain:
    """The set of valid values of one argument: an interval, optionally of integers."""

    low: float
    high: float = np.inf
    closed: str = "neither"
    integer: bool = False

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Return a bool array: which entries of ``x`` lie in the domain (NaN and inf never do)."""
        with np.errstate(invalid="ignore"):
            lo = x >= self.low if self.closed in ("left", "both") else x > self.low
            hi = x <= self.high if self.closed in ("right", "both") else x < self.high
            ok = lo & hi & np.isfinite(x)
            return ok & (x == np.floor(x)) if self.integer else ok

    def formula(self, name: str) -> str:
        """The domain as text, e.g. ``"0 < eps < 1"`` or ``"k >= 1, integer"``."""
        closed_left = self.closed in ("left", "both")
        if self.high == np.inf:
            text = f"{name} {'>=' if closed_left else '>'} {self.low:g}"
        else:
            hi = "<=" if self.closed in ("right", "both") else "<"
            text = f"{self.low:g} {'<=' if closed_left else '<'} {name} {hi} {self.high:g}"
        return text + (", integer" if self.integer else "")


_AT_LEAST_ONE = Domain(low=1.0, closed="left")
_POSITIVE = Domain(low=0.0)
_NON_NEGATIVE = Domain(low=0.0, closed="left")
_UNIT = Domain(low=0.0, high=1.0)
_COUNT = Domain(low=1.0, closed="left", integer=True)

#: The domain of every numeric argument of robustlaw.bounds, keyed by keyword name.
DOMAINS: dict[str, Domain] = {
    "n": _AT_LEAST_ONE,
    "d": _AT_LEAST_ONE,
    "p": _AT_LEAST_ONE,
    "p_eff": _NON_NEGATIVE,
    "eps": _UNIT,
    "delta": _UNIT,
    "W": _POSITIVE,
    "J": _POSITIVE,
    "c": _POSITIVE,
    "k": _COUNT,
    "L": _POSITIVE,
    "kept": _NON_NEGATIVE,
    "mutual_information_bits": _NON_NEGATIVE,
    "log_card": _NON_NEGATIVE,
    "a1_squared": _POSITIVE,
    "exponent_denominator": _POSITIVE,
    "k_condition_const": _POSITIVE,
    "R": _POSITIVE,
    "Q": _COUNT,
    "D": _COUNT,
    "W_inf": _POSITIVE,
    "gamma": Domain(low=0.0, high=1.0, closed="left"),
    "g": Domain(low=0.0, high=1.0, closed="both"),
    "bits_per_weight": _POSITIVE,
    "scale": _POSITIVE,
}


def as_arrays(values: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    """Validate every argument against its domain and check that they broadcast together.

    Returns
    -------
    arrays : dict of str to numpy.ndarray
        The arguments as float64 arrays (0-d for scalars), not yet broadcast.
    shape : tuple of int
        Their common broadcast shape.

    Raises
    ------
    ValidationError
        Naming the first argument that is not a real number or array of real numbers (a
        string, bool or None is refused, not converted), not finite or outside its domain, or
        the arguments whose shapes do not broadcast.
    """
    arrays = {}
    for name, value in values.items():
        dom = get_registered(DOMAINS, name, "argument")
        arr = real_array(value, name)
        if arr.size == 0:
            raise ValidationError(f"{name} must hold at least one value, got an empty array")
        ok = dom.contains(arr)
        if not np.all(ok):
            bad = arr.item() if arr.ndim == 0 else f"{(~ok).sum()} bad entries, e.g. {arr[~ok][:3]}"
            raise ValidationError(f"{name} must be finite with {dom.formula(name)}; got {bad}")
        arrays[name] = arr
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {a.shape}" for k, a in arrays.items() if a.ndim)
        raise ValidationError(f"argument shapes do not broadcast together: {shapes}") from None
    return arrays, shape


@functools.cache
def compiled(
    name: str, solve: str | None = None
) -> tuple[Callable[..., np.ndarray], tuple[str, ...]]:
    """Return the named formula of :mod:`~robustlaw.bounds.symbolic` lambdified with numpy.

    With ``solve``, compile instead its inverse :func:`~robustlaw.bounds.symbolic.solve_for`
    ``(solve, name)``: the value of the symbol ``solve`` at which the bound equals ``L``.

    Returns
    -------
    function : callable
        Takes the formula's symbols as keyword arguments.
    names : tuple of str
        The names of those symbols (sorted).
    """
    import sympy as sp

    from robustlaw.bounds import symbolic

    expr = symbolic.expression(name) if solve is None else symbolic.solve_for(solve, name)
    names = tuple(sorted(s.name for s in expr.free_symbols))
    return sp.lambdify([symbolic.SYMBOLS[s] for s in names], expr, modules="numpy"), names


def evaluate(name: str, arrays: Mapping[str, np.ndarray], solve: str | None = None) -> np.ndarray:
    """Evaluate a compiled formula (or inverse) on validated arrays; extra entries are ignored."""
    function, names = compiled(name, solve)
    with np.errstate(all="ignore"):  # overflow and 0/0 surface in finish(), naming arguments
        return np.asarray(function(*(arrays[s] for s in names)), dtype=np.float64)


def finish(
    out: np.ndarray, shape: tuple[int, ...], what: str, arrays: Mapping[str, np.ndarray]
) -> float | np.ndarray:
    """Broadcast a result to the arguments' shape; return a float for scalar inputs.

    Raises
    ------
    ValidationError
        If the result is not finite (it overflowed float64), naming the arguments (``arrays``,
        as :func:`as_arrays` returns them): never returns NaN or infinity.
    """
    out = np.asarray(out, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        args = ", ".join(
            f"{k}={a.item():g}" if a.ndim == 0 else f"{k} of shape {a.shape}"
            for k, a in arrays.items()
        )
        raise ValidationError(f"{what} is not finite in float64 at {args} (overflow)")
    if out.shape != shape:
        out = np.broadcast_to(out, shape).copy()
    return float(out) if out.ndim == 0 else out


def compute(name: str, values: Mapping[str, Any], what: str) -> float | np.ndarray:
    """Validate ``values``, evaluate the formula ``name`` and finish the result."""
    arrays, shape = as_arrays(values)
    return finish(evaluate(name, arrays), shape, what, arrays)
