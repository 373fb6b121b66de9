"""Exceptions raised by robustlaw.

Misuse and bad input raise subclasses of :class:`ValueError`, so callers that already catch
``ValueError`` keep working. Solver failures are :class:`SolverError`.
"""

__all__ = [
    "AssumptionViolated",
    "DamagedStoreError",
    "NotAStoreError",
    "RobustlawError",
    "SolverError",
    "SolverUnavailableError",
    "StoreWriteError",
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


class NotAStoreError(ValidationError):
    """A file is not a robustlaw result store (another program's database, or not SQLite)."""


class DamagedStoreError(ValidationError):
    """A result store is damaged; the message says how to recover its intact units."""


class StoreWriteError(RobustlawError):
    """A unit could not be written (e.g. the disk is full); the units stored before are intact.

    Not a :class:`ValueError`: the input was fine, the environment failed. The CLI exits with
    code 1 on it (2 is for bad input).
    """
