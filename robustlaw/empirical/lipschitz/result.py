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

__all__ = ["KINDS", "EstimateStatus", "LipschitzEstimate", "resolve_options", "stack_members"]

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
        "the solver returned a low-accuracy answer that could not be certified; it is not "
        "claimed as an upper bound: tighten the solver tolerance or try another solver/backend"
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
