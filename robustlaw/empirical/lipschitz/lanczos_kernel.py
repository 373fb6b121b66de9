"""Lanczos on many small symmetric matrices in compiled code (numba), one matrix at a time.

The torch path of :func:`robustlaw.empirical.lipschitz.krylov.lanczos` advances a whole chunk
of matrices in lock step: every step is a few batched operations whose fixed cost and whose
reads of the chunk from the L3 cache dominate, and the chunk runs until its slowest matrix has
converged. Here each thread takes one matrix, keeps it in its core's L2 cache for all of its
steps, checks its own top Ritz value by Sturm bisection and stops as soon as that has
converged. Same algorithm, same stopping rule, same outputs (up to rounding): the three-term
recurrence without reorthogonalization, the top Ritz value checked from step ``first`` every
``every`` steps, and the Ritz vector of the steps up to convergence, found by inverse
iteration on the tridiagonal matrix just above its top eigenvalue (Golub and Van Loan,
*Matrix Computations*, 4th ed., §8.4 and §10.1).

numba is optional (``pip install robustlaw[fast]``); :data:`AVAILABLE` says whether it is
installed. Everything is compiled on the first call (a few seconds) and cached on disk.
"""

from __future__ import annotations

import numpy as np

from robustlaw.empirical.lipschitz.lanczos_rule import CHECK_ACCURACY, INVARIANT_EPS

try:
    import numba
except ImportError:  # the torch path is used instead
    numba = None

__all__ = ["AVAILABLE", "lanczos_top"]

AVAILABLE = numba is not None


def _jit(**options):
    """numba's ``njit`` with ``options``, or the plain Python function without numba."""
    if numba is None:
        return lambda function: function
    return numba.njit(cache=True, nogil=True, error_model="numpy", **options)


_FAST = {"reassoc", "contract", "arcp"}  # reorder sums (SIMD), fuse multiply-adds; NaN kept


@_jit(fastmath=_FAST)
def _product(a, q, out):
    """``out = a q`` for the symmetric ``a`` (rows are contiguous), in ``a``'s dtype: the
    reads of ``a`` from the L2 cache bound it (float64 sums would double the time)."""
    n = q.shape[0]
    for r in range(n):
        acc = a[r, 0] * q[0]
        for i in range(1, n):
            acc += a[r, i] * q[i]
        out[r] = acc


@_jit()
def _count_above(d, e, k, x):
    """Number of eigenvalues of the leading ``k`` rows of tridiagonal ``(d, e)`` above ``x``:
    the positive pivots of the LDL^T factorization of ``T - x I`` (Sylvester's inertia)."""
    tiny = 1e-300
    count = 0
    pivot = d[0] - x
    if pivot > 0:
        count += 1
    for i in range(1, k):
        if pivot == 0.0:
            pivot = tiny
        pivot = d[i] - x - e[i - 1] * e[i - 1] / pivot
        if pivot > 0:
            count += 1
    return count


@_jit()
def _top_eigenvalue(d, e, k, low, abstol):
    """Largest eigenvalue of the leading ``k`` rows of tridiagonal ``(d, e)`` by bisection,
    known to be at least ``low``; returns an upper end at most ``abstol`` (plus rounding) above
    it."""
    top = -np.inf
    bottom = np.inf
    for i in range(k):
        radius = (abs(e[i - 1]) if i > 0 else 0.0) + (abs(e[i]) if i < k - 1 else 0.0)
        top = max(top, d[i] + radius)
        bottom = min(bottom, d[i] - radius)
    low = max(low, bottom)
    high = top
    if low > high:
        low = bottom
    for _ in range(200):
        middle = 0.5 * (low + high)
        if high - low <= abstol + 2e-16 * max(abs(low), abs(high)) or middle in (low, high):
            break
        if _count_above(d, e, k, middle) >= 1:
            low = middle
        else:
            high = middle
    return high


@_jit()
def _top_eigenvector(d, e, k, shift, out):
    """Unit eigenvector of the top eigenvalue of the leading ``k`` rows of ``(d, e)`` by two
    steps of inverse iteration with ``shift`` at or just above that eigenvalue: ``T - shift I``
    is then negative (semi)definite, so elimination without pivoting is stable. A zero pivot is
    replaced by ``-1e-16`` times the matrix's scale, which bounds the growth to about 1e16."""
    size = 0.0
    for i in range(k):
        size = max(size, abs(d[i]) + 2.0 * (abs(e[i]) if i < k - 1 else 0.0))
    floor = -1e-16 * (size if size > 0.0 else 1.0)
    pivots = np.empty(k)
    for i in range(k):
        out[i] = 1.0
    for _ in range(2):
        pivots[0] = min(d[0] - shift, floor)
        for i in range(1, k):  # forward elimination of L D L^T
            factor = e[i - 1] / pivots[i - 1]
            pivots[i] = min(d[i] - shift - factor * e[i - 1], floor)
            out[i] -= factor * out[i - 1]
        for i in range(k - 1, -1, -1):  # back substitution
            value = out[i] - (e[i] * out[i + 1] if i < k - 1 else 0.0)
            out[i] = value / pivots[i]
        largest = 0.0
        for i in range(k):
            largest = max(largest, abs(out[i]))
        norm = 0.0
        for i in range(k):
            out[i] /= largest
            norm += out[i] * out[i]
        norm = np.sqrt(norm)
        for i in range(k):
            out[i] /= norm


@_jit(fastmath=_FAST)
def _one(a, x, max_iter, tol, first, every, ritz):
    """Lanczos on one symmetric matrix ``a`` from ``x``; writes the unit top Ritz vector into
    ``ritz`` and returns (steps, converged)."""
    n = x.shape[0]
    m = min(max_iter, n)
    basis = np.empty((m + 1, n), a.dtype)
    d = np.zeros(m)
    e = np.zeros(m)
    w = np.empty(n, a.dtype)
    norm = 0.0
    for i in range(n):
        norm += float(x[i]) * float(x[i])
    norm = max(np.sqrt(norm), 1e-300)
    for i in range(n):
        basis[0, i] = x[i] / norm  # stored in a's dtype
    floor = INVARIANT_EPS * np.finfo(a.dtype).eps
    scale = 0.0
    previous = -np.inf
    converged = False
    steps = m
    for j in range(m):
        _product(a, basis[j], w)
        alpha = 0.0
        for i in range(n):
            alpha += float(w[i]) * float(basis[j, i])
        beta_before = e[j - 1] if j else 0.0
        beta = 0.0
        for i in range(n):
            value = w[i] - alpha * basis[j, i]
            if j:
                value -= beta_before * basis[j - 1, i]
            w[i] = value
            beta += float(value) * float(value)
        beta = np.sqrt(beta)
        d[j] = alpha
        e[j] = beta
        scale = max(scale, abs(alpha))
        if not beta > floor * max(scale, 1e-300):  # an invariant Krylov space: T is exact
            steps = j + 1
            converged = True
            break
        for i in range(n):
            basis[j + 1, i] = w[i] / beta
        if j + 1 < first or (j + 1 - first) % every:
            if j + 1 < m:
                continue
        top = _top_eigenvalue(d, e, j + 1, previous, CHECK_ACCURACY * tol * scale)
        if abs(top - previous) <= tol * abs(top):
            steps = j + 1
            converged = True
            break
        previous = top
    s = np.empty(steps)
    shift = _top_eigenvalue(d, e, steps, -np.inf, 0.0)
    _top_eigenvector(d, e, steps, shift + 4e-16 * abs(shift), s)
    combined = np.zeros(n)
    for r in range(steps):
        for i in range(n):
            combined[i] += s[r] * basis[r, i]
    norm = np.sqrt(np.sum(combined * combined))
    if not (norm > 0.0 and np.isfinite(norm)):  # cannot happen with a finite matrix; be safe
        combined[:] = basis[0]
        norm = 1.0
    for i in range(n):
        ritz[i] = combined[i] / norm
    return steps, converged


@_jit(parallel=True)
def _many(a, x, max_iter, tol, first, every, ritz, steps, converged):
    for b in numba.prange(a.shape[0]):
        steps[b], converged[b] = _one(a[b], x[b], max_iter, tol, first, every, ritz[b])


def lanczos_top(a: np.ndarray, x: np.ndarray, max_iter: int, tol: float, first: int, every: int):
    """Top Ritz vectors of the symmetric matrices ``a`` (B, n, n) from the starts ``x`` (B, n),
    each matrix in parallel and to its own convergence.

    Returns
    -------
    tuple
        Unit Ritz vectors (B, n) in ``a``'s dtype, steps per matrix (B,) and converged (B,).
    """
    a = np.ascontiguousarray(a)
    x = np.ascontiguousarray(x, dtype=a.dtype)
    ritz = np.empty_like(x)
    steps = np.zeros(len(a), dtype=np.int64)
    converged = np.zeros(len(a), dtype=np.bool_)
    _many(a, x, max_iter, float(tol), first, every, ritz, steps, converged)
    return ritz, steps, converged
