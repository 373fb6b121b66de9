"""Validation at the public boundary.

Public functions call these once; internal functions trust their inputs. Every error names
the argument, the value it got and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from robustlaw.errors import UnknownNameError, ValidationError

__all__ = [
    "check_bool",
    "check_choice",
    "check_integer",
    "check_interval",
    "check_seed",
    "check_tensor",
    "derived_seed",
    "get_registered",
    "real_array",
]


def _describe(arr: np.ndarray, bad: np.ndarray) -> str:
    """Describe the offending values: the scalar itself, or the first bad entries."""
    if arr.ndim == 0:
        return repr(arr.item())
    return f"array of shape {arr.shape} (first bad values {arr[bad][:3].tolist()})"


def _holds_non_number(x: Any) -> bool:
    """Whether a (nested) list or tuple holds a bool, string, bytes or None."""
    if isinstance(x, (list, tuple)):
        return any(_holds_non_number(v) for v in x)
    return x is None or isinstance(x, (bool, np.bool_, str, bytes))


def real_array(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a float64 array if it holds real numbers, else raise naming ``name``.

    Strings, bytes, booleans, ``None``, complex numbers and ragged sequences are refused:
    ``np.asarray`` would turn ``"0.5"`` into 0.5, ``True`` into 1.0 and ``None`` into NaN.
    NumPy arrays, tensors and (nested) sequences of real numbers are converted.

    Raises
    ------
    ValidationError
        If ``x`` is not a real number or an array of real numbers.

    Examples
    --------
    >>> real_array([1, 2.5], "n").tolist()
    [1.0, 2.5]
    >>> real_array("60000", "n")
    Traceback (most recent call last):
    ...
    robustlaw.errors.ValidationError: n must be numeric: a real number or an array of them, got '60000'
    """  # noqa: E501
    text = repr(x)
    text = text if len(text) <= 80 else f"{text[:77]}..."
    expected = f"{name} must be numeric: a real number or an array of them, got {text}"
    if _holds_non_number(x):
        raise ValidationError(expected)
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        raise ValidationError(expected) from None
    if raw.dtype.kind not in "iuf" and not (
        raw.dtype.kind == "O" and not any(_holds_non_number(v) for v in raw.flat)
    ):
        raise ValidationError(expected)
    try:
        return raw.astype(np.float64)
    except (TypeError, ValueError):
        raise ValidationError(expected) from None


def check_interval(
    x: Any,
    name: str,
    low: float = -np.inf,
    high: float = np.inf,
    *,
    closed: str = "neither",
    scalar: bool = False,
) -> np.ndarray:
    """Return ``x`` as a float64 array after checking it is finite and inside an interval.

    Parameters
    ----------
    x : array_like
        The value to check.
    name : str
        The argument's name, used in the error message.
    low, high : float
        The interval's end points (``-inf`` and ``inf`` mean unbounded on that side).
    closed : {"neither", "left", "right", "both"}
        Which end points belong to the interval.
    scalar : bool
        Require a single number (a 0-d array), not an array.

    Returns
    -------
    numpy.ndarray
        ``x`` as a float64 array (0-d for scalars).

    Raises
    ------
    ValidationError
        If ``x`` is not a real number or array of real numbers (strings, bools and None are
        refused, see :func:`real_array`), holds NaN or infinity, or leaves the interval.

    Examples
    --------
    >>> float(check_interval(0.5, "eps", 0, 1))
    0.5
    >>> check_interval("0.5", "density", 0, 1)
    Traceback (most recent call last):
    ...
    robustlaw.errors.ValidationError: density must be numeric: a real number or an array of them, got '0.5'
    """  # noqa: E501
    arr = real_array(x, name)
    if scalar and arr.ndim:
        raise ValidationError(f"{name} must be a single real number, got {x!r}")
    if arr.size == 0:
        raise ValidationError(f"{name} must hold at least one value, got an empty array")
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} must be finite, got {_describe(arr, ~np.isfinite(arr))}")
    lo_ok = arr >= low if closed in ("left", "both") else arr > low
    hi_ok = arr <= high if closed in ("right", "both") else arr < high
    ok = lo_ok & hi_ok
    if not np.all(ok):
        left = "[" if closed in ("left", "both") else "("
        right = "]" if closed in ("right", "both") else ")"
        raise ValidationError(
            f"{name} must be in {left}{low:g}, {high:g}{right}, got {_describe(arr, ~ok)}"
        )
    return arr


def check_choice(x: Any, name: str, options: Iterable[str]) -> str:
    """Return ``x`` if it is one of ``options``, else raise naming the valid choices.

    Choices use hyphens between words, as registry names do (:func:`get_registered`): an old
    underscore spelling is refused with a message that names the new one.

    Examples
    --------
    >>> check_choice("neuron", "variant", ("neuron", "layer"))
    'neuron'
    """
    options = tuple(options)
    if x not in options:
        renamed = _hyphenated(x, options)
        if renamed is not None:
            raise ValidationError(f"{name} {x!r} is now called {renamed!r}")
        raise ValidationError(f"{name} must be one of {', '.join(map(repr, options))}; got {x!r}")
    return x


def _hyphenated(name: Any, names: Iterable[str]) -> str | None:
    """The hyphenated spelling of an underscore ``name`` when it is one of ``names``."""
    renamed = name.replace("_", "-") if isinstance(name, str) and "_" in name else None
    return renamed if renamed is not None and renamed in names else None


def get_registered(registry: dict, name: str, kind: str) -> Any:
    """Look ``name`` up in ``registry``; an unknown name lists the valid ones.

    Registry names use hyphens between words (``"below-noise"``, ``"magnitude-after"``). An
    old name written with underscores is refused with a message that names its new spelling.

    Examples
    --------
    >>> get_registered({"a": 1}, "a", "method")
    1
    >>> get_registered({"max-steps": 1}, "max_steps", "stopping rule")
    Traceback (most recent call last):
    ...
    robustlaw.errors.UnknownNameError: unknown stopping rule 'max_steps': it is now called 'max-steps'
    """  # noqa: E501
    try:
        return registry[name]
    except (KeyError, TypeError):
        pass
    renamed = _hyphenated(name, registry)
    if renamed is not None:
        raise UnknownNameError(f"unknown {kind} {name!r}: it is now called {renamed!r}")
    valid = ", ".join(sorted(map(str, registry)))
    raise UnknownNameError(f"unknown {kind} {name!r}; valid names: {valid}")


def check_integer(x: Any, name: str, *, minimum: int | None = 0, maximum: int | None = None) -> int:
    """Return ``x`` as an ``int`` after checking it is an integer in ``[minimum, maximum]``.

    Booleans, floats (even integral ones) and strings are refused: a count given as ``1e3``
    or ``"3"`` is a mistake worth one clear message, not a silent conversion.

    Parameters
    ----------
    x : int
        The value to check (Python or NumPy integer).
    name : str
        The argument's name, used in the error message.
    minimum, maximum : int, optional
        Inclusive limits; None leaves that side open.

    Raises
    ------
    ValidationError
        If ``x`` is not an integer or leaves the limits.

    Examples
    --------
    >>> check_integer(3, "max_steps")
    3
    >>> check_integer(0, "width", minimum=1)
    Traceback (most recent call last):
    ...
    robustlaw.errors.ValidationError: width must be an integer >= 1, got 0
    """
    lo = "" if minimum is None else f" >= {minimum}"
    hi = "" if maximum is None else f" <= {maximum}"
    expected = f"an integer{lo}{' and' if lo and hi else ''}{hi}"
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise ValidationError(f"{name} must be {expected}, got {x!r}")
    if (minimum is not None and x < minimum) or (maximum is not None and x > maximum):
        raise ValidationError(f"{name} must be {expected}, got {x!r}")
    return int(x)


def check_bool(x: Any, name: str) -> bool:
    """Return ``x`` if it is a bool (Python or NumPy), else raise naming the argument.

    Examples
    --------
    >>> check_bool(True, "exact")
    True
    >>> check_bool("yes", "exact")
    Traceback (most recent call last):
    ...
    robustlaw.errors.ValidationError: exact must be True or False, got 'yes'
    """
    if not isinstance(x, (bool, np.bool_)):
        raise ValidationError(f"{name} must be True or False, got {x!r}")
    return bool(x)


#: The largest seed: ``torch.Generator.manual_seed`` takes at most 64 bits.
MAX_SEED = 2**64 - 1


def check_seed(seed: Any, name: str = "seed") -> int:
    """Return ``seed`` as an int in ``[0, MAX_SEED]`` (64 bits, as generators take).

    Examples
    --------
    >>> check_seed(3)
    3
    """
    seed = check_integer(seed, name, minimum=0)
    if seed > MAX_SEED:
        raise ValidationError(f"{name} must be an integer >= 0 and < 2**64, got {seed!r}")
    return seed


def derived_seed(seed: int, stream: int) -> int:
    """The seed of one stream of a seeded computation: ``(seed * 1_000_003 + stream) mod 2**64``.

    Below 2**64 (every seed a test or sweep uses) the modulus changes nothing; above, it keeps
    the value a valid ``torch.Generator`` seed.

    Examples
    --------
    >>> derived_seed(2, 1), derived_seed(MAX_SEED, 0) <= MAX_SEED
    (2000007, True)
    """
    return (seed * 1_000_003 + stream) % (MAX_SEED + 1)


def check_tensor(
    x: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    finite: bool = True,
    dtype: Any = None,
    device: Any = None,
):
    """Return ``x`` as a torch tensor after checking its rank and values.

    Parameters
    ----------
    x : array_like or torch.Tensor
        The value to check. NumPy arrays are converted without copying where possible.
    name : str
        The argument's name, used in the error message.
    ndim : int or tuple of int, optional
        The allowed numbers of dimensions.
    finite : bool
        Reject NaN and infinity.
    dtype, device : optional
        Convert to this dtype and device (on purpose, at the boundary).

    Raises
    ------
    ValidationError
        If ``x`` has the wrong rank or holds NaN or infinity.
    """
    import torch

    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError, RuntimeError):
            raise ValidationError(
                f"{name} must be an array or tensor, got {type(x).__name__}"
            ) from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            raise ValidationError(
                f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                f"got shape {tuple(x.shape)}"
            )
    if dtype is not None or device is not None:
        x = x.to(dtype=dtype, device=device)
    # A finite sum proves every entry finite (NaN and inf propagate); only an overflowing or
    # non-finite sum needs the entry-wise pass, which costs a full read of a large stack.
    if (
        finite
        and x.is_floating_point()
        and not bool(torch.isfinite(x.sum()))
        and not bool(torch.isfinite(x).all())
    ):
        raise ValidationError(f"{name} must be finite, but it holds NaN or infinity")
    return x
