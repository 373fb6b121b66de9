"""The record every Lipschitz method returns, and its status.

A :class:`LipschitzEstimate` says what its value is: a lower estimate attained at a real
point, or an upper bound, and whether that claim is proven (``certified``). For an ensemble the
value is a float64 NumPy array of shape ``(n_members,)``; for a single network it is a float.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robustlaw._validation import check_choice
from robustlaw.errors import SolverError, ValidationError

__all__ = [
    "KINDS",
    "EstimateStatus",
    "LipschitzEstimate",
    "resolve_options",
    "scale_back",
    "stack_members",
    "zero_estimate",
]

KINDS = ("lower", "upper")


class EstimateStatus(enum.Enum):
    """How a Lipschitz method ended. Each member's :attr:`message` says what to change.

    Examples
    --------
    >>> EstimateStatus.OPTIMAL.ok
    True
    >>> EstimateStatus.MAX_ITER.ok
    False
    """

    OPTIMAL = "optimal"
    MAX_ITER = "max_iter"
    INACCURATE = "inaccurate"
    INFEASIBLE = "infeasible"
    FAILED = "failed"

    @property
    def ok(self) -> bool:
        """Whether the method finished as designed."""
        return self is EstimateStatus.OPTIMAL

    @property
    def message(self) -> str:
        """What the status means and what to change."""
        return _MESSAGES[self]


_MESSAGES = {
    EstimateStatus.OPTIMAL: "finished as designed; nothing to change",
    EstimateStatus.MAX_ITER: (
        "the iteration limit was reached before the tolerance; the value is still a valid "
        "bound of its kind but may be loose: raise max_iter or loosen tol"
    ),
    EstimateStatus.INACCURATE: (
        "the solver returned a low-accuracy answer that could not be certified, or the value "
        "overflowed or underflowed float64 (then details['log_value'] holds its natural log); "
        "it is not claimed as a bound: tighten the solver tolerance, try another "
        "solver/backend, or read log_value"
    ),
    EstimateStatus.INFEASIBLE: (
        "the problem was reported infeasible; check the activation's slope bounds and that the "
        "weights are finite, or try another solver"
    ),
    EstimateStatus.FAILED: (
        "the method failed and the value is NaN; see details['error'], then try another "
        "method, solver or backend"
    ),
}


@dataclass(frozen=True, kw_only=True)
class LipschitzEstimate:
    """One Lipschitz estimate of a network or of every member of an ensemble (l2 norms).

    Attributes
    ----------
    value : float or numpy.ndarray
        The estimate (output distance per unit of input distance). A float for one network;
        a float64 array of shape ``(n_members,)`` for an ensemble. NaN only with status
        ``FAILED``.
    kind : {"lower", "upper"}
        ``"lower"``: the value is attained, ``||J_f(x*)||_2`` at a reported point.
        ``"upper"``: the value bounds the constant from above when ``certified``.
    method : str
        The registry name of the method that produced it (``"gradient"``, ``"spectral"``,
        ``"eclipse-fast"``, ``"lipsdp-neuron"``, ...).
    status : EstimateStatus
        How the method ended (for ensembles the worst over members).
    certified : bool
        Whether the value is a proven bound of its kind (for ensembles: for every member).
    seconds : float
        Wall time of the call, in seconds.
    n_iter : int
        Iterations used (0 for closed forms).
    solver : str
        The numerical backend (``"torch"``, ``"closed_form"``, ``"cvxpy:SCS"``, ...).
    details : dict
        Method-specific extras (e.g. ``x_star``, per-factor certification); JSON-friendly
        where possible.

    Examples
    --------
    >>> est = LipschitzEstimate(value=2.0, kind="upper", method="spectral",
    ...                         status=EstimateStatus.OPTIMAL, certified=True, seconds=0.1)
    >>> est.n_members, float(est.values[0])
    (1, 2.0)
    """

    value: float | np.ndarray
    kind: str
    method: str
    status: EstimateStatus
    certified: bool
    seconds: float
    n_iter: int = 0
    solver: str = "torch"
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice(self.kind, "kind", KINDS)
        if isinstance(self.value, np.ndarray) or hasattr(self.value, "shape"):
            arr = np.asarray(self.value, dtype=np.float64)
            value = arr.reshape(-1) if arr.ndim else float(arr)
        else:
            value = float(self.value)
        object.__setattr__(self, "value", value)
        if self.status is not EstimateStatus.FAILED and np.isnan(np.asarray(value)).any():
            raise SolverError(f"{self.method} produced NaN with status {self.status.value}")

    @property
    def batched(self) -> bool:
        """Whether :attr:`value` is an array over ensemble members."""
        return isinstance(self.value, np.ndarray)

    @property
    def n_members(self) -> int:
        """K, the number of members the value covers (1 for one network)."""
        return self.values.shape[0]

    @property
    def values(self) -> np.ndarray:
        """The value as a float64 array of shape ``(n_members,)``, also for one network."""
        return np.atleast_1d(np.asarray(self.value, dtype=np.float64))

    def raise_for_status(self) -> LipschitzEstimate:
        """Return ``self`` if the method finished as designed, else raise :class:`SolverError`.

        ``MAX_ITER`` passes for certified values, since they are still valid bounds.
        """
        if self.status.ok or (self.status is EstimateStatus.MAX_ITER and self.certified):
            return self
        raise SolverError(f"{self.method}: status {self.status.value}: {self.status.message}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (value, kind, method, status, seconds, ...)."""
        value = self.value.tolist() if self.batched else self.value
        return {
            "value": value,
            "kind": self.kind,
            "method": self.method,
            "status": self.status.value,
            "certified": self.certified,
            "seconds": self.seconds,
            "n_iter": self.n_iter,
            "solver": self.solver,
        }


def resolve_options(options: Any, cls: type, method: str) -> Any:
    """The options a method runs with: ``cls()`` for None, else ``options`` if it is a ``cls``.

    Raises
    ------
    ValidationError
        For options of another type (the message names the method and the expected class).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     tol: float = 1e-6
    >>> resolve_options(None, Opts, "spectral")
    Opts(tol=1e-06)
    """
    if options is None:
        return cls()
    if not isinstance(options, cls):
        raise ValidationError(
            f"options for {method!r} must be {cls.__name__}, got {type(options).__name__}"
        )
    return options


# worst last: the status of an ensemble is the worst of its members'
_SEVERITY = list(EstimateStatus)


def stack_members(estimates: list[LipschitzEstimate], seconds: float) -> LipschitzEstimate:
    """One batched estimate from one estimate per member (in member order).

    The status is the worst of the members', ``certified`` holds when it holds for every
    member, and ``details["members"]`` keeps each member's details.

    Examples
    --------
    >>> one = LipschitzEstimate(value=2.0, kind="upper", method="lipsdp-neuron",
    ...                         status=EstimateStatus.OPTIMAL, certified=True, seconds=0.1)
    >>> stack_members([one, one], 0.2).values.tolist()
    [2.0, 2.0]
    """
    first = estimates[0]
    return LipschitzEstimate(
        value=np.array([e.value for e in estimates], dtype=np.float64),
        kind=first.kind,
        method=first.method,
        status=max((e.status for e in estimates), key=_SEVERITY.index),
        certified=all(e.certified for e in estimates),
        seconds=seconds,
        n_iter=max(e.n_iter for e in estimates),
        solver=first.solver,
        details={"members": [e.details for e in estimates]},
    )


def scale_back(values: np.ndarray, exponents: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """``values * 2**exponents`` (exact), whether each is representable, and what to report.

    A value is representable when it is exactly 0 (a constant network) or a finite normal
    float64; otherwise it overflowed or underflowed and must not be reported as a certified,
    ``OPTIMAL`` value. The dict is empty when all are representable, else
    ``{"log_value": natural logs}`` (per member), which stay exact.

    Examples
    --------
    >>> v, ok, extra = scale_back(np.array([1.5, 0.0, 1.0]), np.array([1, 5000, 5000]))
    >>> v.tolist(), ok.tolist(), round(extra["log_value"][2], 3)
    ([3.0, 0.0, inf], [True, True, False], 3465.736)
    """
    values = np.asarray(values, dtype=np.float64)
    exponents = np.asarray(exponents, dtype=np.int64)
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(values, np.clip(exponents, -(2**30), 2**30).astype(np.int32))
    ok = (values == 0) | (np.isfinite(out) & (np.abs(out) >= np.finfo(np.float64).tiny))
    if bool(ok.all()):
        return out, ok, {}
    with np.errstate(divide="ignore"):
        log = np.log(values) + exponents * np.log(2.0)
    return out, ok, {"log_value": log.tolist()}


def zero_estimate(
    method: str, kind: str, *, n_members: int, batched: bool, seconds: float, reason: str
) -> LipschitzEstimate:
    """The exact answer 0 for a constant network (or a stack of them), with the reason.

    Examples
    --------
    >>> zero_estimate("spectral", "upper", n_members=2, batched=True, seconds=0.0,
    ...               reason="a hidden layer has 0 units").values.tolist()
    [0.0, 0.0]
    """
    return LipschitzEstimate(
        value=np.zeros(n_members) if batched else 0.0,
        kind=kind,
        method=method,
        status=EstimateStatus.OPTIMAL,
        certified=True,
        seconds=seconds,
        solver="closed_form",
        details={"reason": reason},
    )
