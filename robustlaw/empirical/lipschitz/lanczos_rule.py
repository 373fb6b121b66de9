"""The stopping rule that both Lanczos backends share (:mod:`.krylov` and :mod:`.lanczos_kernel`).

Defined once here, so that the torch path and the compiled kernel stop at the same step and
neither module imports the other.
"""

__all__ = ["CHECK_ACCURACY", "CHECK_EVERY", "FIRST_CHECK", "INVARIANT_EPS"]

#: Lanczos steps between two convergence checks of a matrix.
CHECK_EVERY = 4
#: The step of the first check.
FIRST_CHECK = 20
#: ``beta_j`` at most this many eps times ``max |alpha|``: an invariant Krylov space.
INVARIANT_EPS = 64.0
#: A check's bisection stops at this fraction of ``tol`` (times ``max |alpha|``).
CHECK_ACCURACY = 1e-3
