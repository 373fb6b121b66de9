"""Step lengths of the LipSDP interior-point method: how far a direction stays in the cones.

For the matrix cones the largest ``t`` with ``X + t dX`` positive semidefinite is
``-1 / lambda_min(L^-1 dX L^-T)`` (``L``: Cholesky factor of ``X``), as in SDPT3 (Toh, Todd,
Tütüncü 1999). Above :data:`DENSE_EIG` rows that smallest eigenvalue is estimated by Lanczos
(Golub and Van Loan, *Matrix Computations*, 4th ed., §10.1), which only needs products
``dX @ u``: :mod:`.sdp_solver` passes them as a function, so ``dS`` never has to be formed.
Ritz values lie inside the spectrum, so the estimate can only be too long; the solver confirms
every step by a Cholesky factorization.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

__all__ = ["CHECK_EVERY", "DENSE_EIG", "cone_step", "max_step_vec"]

#: Up to this size a dense eigenvalue solve beats Lanczos' Python loop.
DENSE_EIG = 256
#: Lanczos steps between two convergence checks of the smallest Ritz value.
CHECK_EVERY = 2

Apply = Callable[[torch.Tensor], torch.Tensor]  # u (n, k) -> D @ u (n, k)


def _lanczos_min(
    chol: torch.Tensor, apply: Apply, steps: int, tol: float, warm: torch.Tensor | None
) -> tuple[float, torch.Tensor]:
    """Smallest Ritz value of ``L^-1 D L^-T`` (``L = chol``), Lanczos with reorthogonalization;
    ``apply(u) = D @ u``.

    Starts from ``L^T warm`` when a previous run left ``warm`` (its Ritz vector ``w`` mapped
    back, ``L^-T w``: an approximate generalized eigenvector of ``D v = theta X v``), else from
    a fixed vector. Every :data:`CHECK_EVERY` steps it stops when the smallest Ritz value moved
    by at most ``tol`` (relative) since the last check, and after ``steps`` steps in any case.
    Returns that value and the new ``warm``.
    """
    n = chol.shape[0]
    k = min(steps, n)
    if warm is None:
        q = torch.cos(torch.arange(n, dtype=chol.dtype, device=chol.device) * 1.7 + 0.3)
    else:
        q = chol.T @ warm
    q = q / q.norm()
    basis = chol.new_zeros((k, n))
    alphas, betas = [], []
    previous = None
    for j in range(k):
        basis[j] = q
        u = torch.linalg.solve_triangular(chol.T, q[:, None], upper=True)
        w = torch.linalg.solve_triangular(chol, apply(u), upper=False)[:, 0]
        alphas.append(float(q @ w))
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(w.norm())
        if beta < 1e-12 or j == k - 1:
            break
        if (j + 1) % CHECK_EVERY == 0:
            low = _smallest(alphas, betas)[0]
            if previous is not None and abs(low - previous) <= tol * abs(low):
                break
            previous = low
        betas.append(beta)
        q = w / beta
    m = len(alphas)
    value, vec = _smallest(alphas, betas[: m - 1], vector=True)
    ritz = torch.as_tensor(vec, dtype=chol.dtype, device=chol.device) @ basis[:m]
    return value, torch.linalg.solve_triangular(chol.T, ritz[:, None], upper=True)[:, 0]


def _smallest(d: list[float], e: list[float], vector: bool = False):
    """Smallest eigenvalue (and, with ``vector``, its unit eigenvector, else ``None``) of the
    symmetric tridiagonal matrix with diagonal ``d`` and off-diagonal ``e``: LAPACK's bisection
    and inverse iteration through SciPy, O(len(d)) work."""
    d, e = np.asarray(d), np.asarray(e)
    if not vector:
        low = eigh_tridiagonal(d, e, eigvals_only=True, select="i", select_range=(0, 0))
        return float(low[0]), None
    low, vec = eigh_tridiagonal(d, e, select="i", select_range=(0, 0))
    return float(low[0]), vec[:, 0]


def _exact_min(chol: torch.Tensor, apply: Apply, *_) -> tuple[float, None]:
    """Smallest eigenvalue of ``L^-1 D L^-T`` by a dense eigenvalue solve (``D = apply(I)``)."""
    d = apply(torch.eye(chol.shape[0], dtype=chol.dtype, device=chol.device))
    inner = torch.linalg.solve_triangular(chol, d, upper=False)
    inner = torch.linalg.solve_triangular(chol, inner.T, upper=False)
    return float(torch.linalg.eigvalsh((inner + inner.T) / 2)[0]), None


def cone_step(
    chol: torch.Tensor, apply: Apply, steps: int, tol: float, warm: torch.Tensor | None = None
) -> tuple[float, torch.Tensor | None]:
    """Largest ``t`` with ``X + t D`` PSD: exact up to :data:`DENSE_EIG` rows, above by Lanczos.

    Parameters
    ----------
    chol : torch.Tensor
        Cholesky factor of ``X``, shape ``(n, n)``.
    apply : callable
        ``u -> D @ u`` for ``u`` of shape ``(n, k)``, ``D`` symmetric.
    steps : int
        Most Lanczos steps.
    tol : float
        Relative change of the smallest Ritz value between two checks at which Lanczos stops.
    warm : torch.Tensor, optional
        What the previous call on the same cone returned: the next start.

    Returns
    -------
    tuple
        The step (dimensionless; ``inf`` when ``D`` is PSD as far as the estimate sees) and the
        ``warm`` for the next call (``None`` below :data:`DENSE_EIG` rows).
    """
    small = chol.shape[0] <= DENSE_EIG
    low, warm = (_exact_min if small else _lanczos_min)(chol, apply, steps, tol, warm)
    return (float("inf") if low >= 0 else -1.0 / low), warm


def max_step_vec(x: torch.Tensor, dx: torch.Tensor) -> float:
    """The largest ``t`` with ``x + t dx >= 0`` elementwise (``inf`` if ``dx >= 0``)."""
    neg = dx < 0
    return float((-x[neg] / dx[neg]).min()) if bool(neg.any()) else float("inf")
