"""Exceptions raised by robustlaw.

Misuse and bad input raise subclasses of :class:`ValueError`, so callers that already catch
``ValueError`` keep working. Solver failures are :class:`SolverError`.
"""

__all__ = [
    "AssumptionViolated",
    "RobustlawError",
    "SolverError",
    "SolverUnavailableError",
    "UnknownNameError",
    "ValidationError",
]


class RobustlawError(Exception):
    """Base class of every robustlaw exception."""


class ValidationError(RobustlawError, ValueError):
    """An argument has the wrong type, shape, value or domain; the message names it."""


class UnknownNameError(ValidationError):
    """A name is not in a registry; the message lists the valid names."""


class AssumptionViolated(ValidationError):
    """A precondition of a theorem does not hold; the message names the condition."""


class SolverError(RobustlawError):
    """A numerical solver failed or its result could not be certified."""


class SolverUnavailableError(SolverError, ValueError):
    """The requested solver is not installed; the message lists the installed ones."""
