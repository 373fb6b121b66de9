"""Lanczos on the Gram matrix: power iteration's Krylov acceleration, batched over matrices.

Power iteration keeps only the last vector of the Krylov sequence ``x, Ax, A^2x, ...``;
Lanczos keeps an orthonormal basis of all of it and takes the best vector in that space. For
the top eigenvalue of ``A = W W^T`` its error after ``k`` steps falls like
``exp(-2 k sqrt(gap))`` instead of ``(1 - gap)^(2k)`` (Golub and Van Loan, *Matrix
Computations*, 4th ed., §10.1), so a few dozen steps reach 1e-6 where power iteration needs
hundreds when the top two singular values are close, as in random layers.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg.lapack import dstebz, dstein

from robustlaw._validation import check_choice, check_integer, check_interval, check_tensor
from robustlaw.empirical.lipschitz.lanczos_rule import (
    CHECK_ACCURACY,
    CHECK_EVERY,
    FIRST_CHECK,
    INVARIANT_EPS,
)
from robustlaw.empirical.lipschitz.spectral import (
    PowerIterationResult,
    _empty_result,
    _unit,
    rayleigh_lower,
)

__all__ = ["BACKENDS", "lanczos"]

BACKENDS = ("auto", "torch", "numba")


def _tridiagonal_top(
    d: np.ndarray, e: np.ndarray, sizes=None, vectors: bool = False, abstol: float = 0.0
):
    """Top eigenvalue (and, with ``vectors``, unit eigenvector) of every symmetric tridiagonal
    matrix with diagonals ``d`` (B, k) and off-diagonals ``e`` (B, k - 1), float64; with
    ``sizes`` (B,), only the leading ``sizes[i]`` rows of matrix ``i`` (its vector is padded
    with zeros).

    LAPACK's bisection ``dstebz`` for the one wanted eigenvalue and inverse iteration ``dstein``
    for its vector: O(k) work per bisection step, where a dense ``eigvalsh`` reduces a k x k
    matrix first (O(k^3)); about 20 us per matrix of a few dozen rows."""
    b, k = d.shape
    sizes = np.full(b, k) if sizes is None else sizes
    values = np.empty(b)
    vecs = np.zeros((b, k)) if vectors else None
    for i, (di, ei, size) in enumerate(zip(d, e, sizes, strict=True)):
        if size == 1:  # the wrappers reject an empty off-diagonal
            values[i] = di[0]
            if vectors:
                vecs[i, 0] = 1.0
            continue
        di, ei = di[:size], ei[: size - 1]
        m, w, block, split, _ = dstebz(di, ei, 2, 0.0, 0.0, size, size, abstol, b"E")
        values[i] = w[0]
        if vectors:
            vecs[i, :size] = dstein(di, ei, w[:m], block, split)[0][:, 0]
    return values, vecs


def _lanczos_chunk(a: torch.Tensor, x: torch.Tensor, max_iter: int, tol: float, first: int):
    """Lanczos on the symmetric ``a`` (B, n, n) from ``x`` (B, n). The top Ritz value of every
    not yet converged matrix is found at step ``first`` and every ``CHECK_EVERY`` steps after
    (:func:`_tridiagonal_top`); a matrix has converged when it moved by at most ``tol``
    (relative) since the last check, or when its Krylov space became invariant. Return (top
    Ritz vector, steps, converged).

    No reorthogonalization: for the extreme eigenvalue the three-term recurrence converges as
    fast, and orthogonality is lost only after the top Ritz value has converged (Paige's theorem,
    Golub and Van Loan §10.3), when the copies it creates leave the top value unchanged. A step
    is six batched operations on preallocated storage, the first of them the product with ``a``
    (which, for a chunk of a few MB, is read from cache)."""
    b, n = x.shape
    m = min(max_iter, n)
    basis = torch.empty(m + 1, b, n, dtype=a.dtype, device=a.device)  # row j: q_j
    alpha = torch.empty(m, b, dtype=a.dtype, device=a.device)
    beta = torch.empty(m, b, dtype=a.dtype, device=a.device)
    basis[0] = _unit(x)
    product = torch.empty(b, 1, n, dtype=a.dtype, device=a.device)
    w = product[:, 0]
    previous = np.zeros(b)
    converged = np.zeros(b, dtype=bool)
    stop = np.full(b, m)  # the step at which each matrix converged
    floor = INVARIANT_EPS * torch.finfo(a.dtype).eps
    for j in range(m):
        q = basis[j]
        torch.bmm(q.unsqueeze(1), a, out=product)  # q^T a = (a q)^T, the fast batched form
        torch.linalg.vecdot(w, q, out=alpha[j])
        w.addcmul_(q, alpha[j].unsqueeze(1), value=-1)
        if j:
            w.addcmul_(basis[j - 1], beta[j - 1].unsqueeze(1), value=-1)
        torch.linalg.vector_norm(w, dim=-1, out=beta[j])
        torch.div(w, beta[j].unsqueeze(1), out=basis[j + 1])  # inf or NaN once exhausted
        last = j + 1 == m
        if (j + 1 < first or (j + 1 - first) % CHECK_EVERY) and not last:
            continue
        d = alpha[: j + 1].T.double().cpu().numpy()
        e = beta[: j + 1].T.double().cpu().numpy()
        # beta_i zero up to rounding (or not finite after it): T's leading i + 1 rows are exact
        scale = np.abs(np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)).max(axis=1)
        small = ~(e > floor * np.maximum(scale, np.finfo(float).tiny)[:, None])
        exhausted = small.any(axis=1)
        sizes = np.where(exhausted, small.argmax(axis=1) + 1, j + 1)
        todo = np.flatnonzero(~converged)
        # enough to compare with tol, about half the bisection steps of full accuracy
        abstol = CHECK_ACCURACY * tol * float(scale.max())
        top_value, _ = _tridiagonal_top(d[todo], e[todo, :-1], sizes[todo], abstol=abstol)
        done = exhausted[todo] | (np.abs(top_value - previous[todo]) <= tol * np.abs(top_value))
        converged[todo] = done
        stop[todo[done]] = j + 1
        previous[todo] = top_value
        if last or converged.all():
            break
    k = j + 1
    sizes = np.minimum(sizes, stop)  # no steps past convergence: they blur the Ritz vector
    s = _tridiagonal_top(d, e[:, :-1], sizes, vectors=True)[1]
    rows = basis[:k].transpose(0, 1)  # (B, k, n)
    if (sizes < k).any():  # the rows past an invariant space are inf or NaN
        rows = rows.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)
    s = torch.from_numpy(s).to(a)
    ok = torch.from_numpy(converged).to(a.device)
    return _unit((s.unsqueeze(1) @ rows).squeeze(1)), k, ok


def _finish(w: torch.Tensor, gram: torch.Tensor, x: torch.Tensor, wide: bool):
    """``sigma``, unit ``u`` and ``v`` and the residual from a unit Ritz vector ``x`` of
    ``gram`` (``w w^T`` when ``wide``, else ``w^T w``): one product with the real ``w`` gives
    the other singular vector, and ``sigma`` is that product's norm recomputed in float64 and
    rounded down (:func:`~.spectral.rayleigh_lower`), a true lower bound in any dtype; the
    residual on the other side, ``||w^T w v - sigma^2 v|| / sigma^2`` (or its mirror), is read
    from ``gram``."""
    y = (x.unsqueeze(1) @ (w if wide else w.transpose(-1, -2))).squeeze(1)  # w^T x or w x
    sigma = rayleigh_lower(w.transpose(-1, -2) if wide else w, x)
    other = _unit(y)
    gx = (x.unsqueeze(1) @ gram).squeeze(1)
    tiny = torch.finfo(w.dtype).tiny
    residual = (gx - sigma.square()[:, None] * x).norm(dim=-1) / sigma.square().clamp_min(tiny)
    return (sigma, x, other, residual) if wide else (sigma, other, x, residual)


def _kernel():
    """:mod:`~robustlaw.empirical.lipschitz.lanczos_kernel`, imported on first use: importing
    numba adds about 0.2 s, which only the numba backend should pay."""
    from robustlaw.empirical.lipschitz import lanczos_kernel

    return lanczos_kernel


def _numba_chunk(a: torch.Tensor, x: torch.Tensor, max_iter: int, tol: float):
    """:func:`_lanczos_chunk`'s contract, each matrix to its own convergence in compiled code."""
    ritz, steps, converged = _kernel().lanczos_top(
        a.detach().numpy(), x.detach().numpy(), max_iter, tol, FIRST_CHECK, CHECK_EVERY
    )
    return torch.from_numpy(ritz), int(steps.max()), torch.from_numpy(converged)


def _chunk_solver(backend: str, W: torch.Tensor):
    """The function that runs Lanczos on a chunk of Gram matrices for ``backend``."""
    compiled = W.device.type == "cpu" and W.dtype in (torch.float32, torch.float64)
    if backend == "numba" and not _kernel().AVAILABLE:
        raise ImportError("backend='numba' needs numba: pip install 'robustlaw[fast]'")
    if backend == "numba" and not compiled:
        raise ValueError(
            f"backend='numba' takes float32 or float64 weights on the CPU, not {W.dtype} on "
            f"{W.device}; use backend='torch'"
        )
    if backend == "numba" or (backend == "auto" and compiled and _kernel().AVAILABLE):
        return _numba_chunk
    return lambda a, x, max_iter, tol: _lanczos_chunk(a, x, max_iter, tol, FIRST_CHECK)


@torch.no_grad()
def lanczos(
    W: torch.Tensor,
    *,
    max_iter: int = 64,
    tol: float = 1e-6,
    u0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    chunk_bytes: int = 8 * 2**20,
    backend: str = "auto",
) -> PowerIterationResult:
    """Top singular value of every matrix of a stack by Lanczos on its Gram matrix.

    Members are processed in chunks of about ``chunk_bytes`` of Gram matrices: per chunk, the
    Gram matrix of the smaller side is built with one batched product (compute-bound; it reads
    the weights once), Lanczos runs on it while it stays in cache, and ``sigma`` is evaluated
    on the chunk's weights before the next chunk. The top Ritz value of every matrix is checked
    from step 20 on, every ``CHECK_EVERY = 4`` steps, by tridiagonal bisection (O(steps) per
    matrix); a matrix has converged when it moved by at most ``tol`` (relative) since its last
    check, and its Ritz vector is taken from the steps up to that check. The error then left is
    typically a fraction of ``tol`` (the convergence is linear with a small rate), and
    ``sigma``'s relative error is about half that of ``sigma^2``.

    Two implementations run these steps. ``"torch"`` advances a chunk in lock step with batched
    operations (any device; the chunk stops when all of its matrices have converged; LAPACK's
    ``dstebz`` for the checks). ``"numba"``
    (:mod:`~robustlaw.empirical.lipschitz.lanczos_kernel`; CPU, float32 and float64) runs each
    matrix to its own convergence in compiled code, one matrix per core at a time with its Gram
    matrix in that core's L2 cache: about 3x faster on a 2-core CPU. numba compiles it on first
    use (a few seconds, once per machine) and caches it on disk. ``"auto"`` takes numba when it
    is installed and the weights are float32 or float64 on the CPU.

    Parameters
    ----------
    W : torch.Tensor
        Shape ``(..., out, in)``.
    max_iter : int
        Most Lanczos steps (at most the smaller side).
    tol : float
        Relative change of the top Ritz value (an eigenvalue of the Gram matrix, i.e.
        ``sigma^2``) over 4 steps at which a matrix counts as converged.
    u0 : torch.Tensor, optional
        Start vectors ``(..., out)``; random from ``generator`` by default.
    generator : torch.Generator, optional
        Source of the random start.
    chunk_bytes : int
        Memory of Gram matrices processed together.
    backend : {"auto", "torch", "numba"}
        Who runs the Lanczos steps (see above); ``"numba"`` needs ``pip install robustlaw[fast]``.

    Returns
    -------
    PowerIterationResult
        ``sigma = ||W^T u||`` (``||W v||`` when ``out > in``) of the real ``W`` for a unit
        Ritz vector, recomputed in float64 and rounded down into ``W``'s dtype: a true lower
        bound on the top singular value, also in float32 and float16 (computed in the input
        precision it exceeded the float64 SVD in about half of random cases, by about 1.5e-7
        in float32 and 8e-4 in float16); ``n_iter`` is the largest number of steps over the
        chunks; ``residual`` is measured on the Gram matrix. A matrix with no rows or no
        columns is the zero map: ``sigma = 0`` with zero vectors ``u`` and ``v``. Nothing is
        tracked for autograd.

    Notes
    -----
    Like every method that starts from one random vector, Lanczos cannot see a top singular
    vector that its start is (nearly) orthogonal to: when that happens and the top two singular
    values are close, it can settle on the second one, a lower estimate off by at most their
    relative gap. Certified upper bounds come from
    :func:`~robustlaw.empirical.lipschitz.spectral_norm_bounds`.

    Examples
    --------
    >>> W = torch.diag(torch.tensor([1.0, 4.0, 3.9], dtype=torch.float64))
    >>> res = lanczos(W, generator=torch.Generator().manual_seed(0))
    >>> round(float(res.sigma), 10), bool(res.converged)
    (4.0, True)
    """
    W = check_tensor(W, "W", ndim=tuple(range(2, 8)), finite=False)  # checked per chunk
    check_interval(tol, "tol", 0.0, closed="neither")
    check_integer(max_iter, "max_iter", minimum=1)
    steps_of_chunk = _chunk_solver(check_choice(backend, "backend", BACKENDS), W)
    out, inp = W.shape[-2:]
    lead = W.shape[:-2]
    if W.numel() == 0:
        return _empty_result(W)
    flat = W.reshape(-1, out, inp)
    if u0 is None:
        u0 = torch.randn((*lead, out), generator=generator, dtype=W.dtype, device=W.device)
    x0 = u0.reshape(-1, out)
    wide = out <= inp
    if not wide:
        x0 = (x0.unsqueeze(1) @ flat).squeeze(1)  # W^T u0, a start on the smaller side
    n = min(out, inp)
    size = max(1, chunk_bytes // (n * n * W.element_size()))
    parts, steps = [], 0
    for w, x in zip(flat.split(size), x0.split(size), strict=True):
        gram = w @ w.transpose(-1, -2) if wide else w.transpose(-1, -2) @ w
        scale = None
        if not bool(gram.diagonal(dim1=-2, dim2=-1).sum().isfinite()):  # sum of w**2: cheap
            check_tensor(w, "W")  # raises on NaN or infinity, else it was an overflow:
            top = w.abs().amax(dim=(-2, -1), keepdim=True)
            scale = torch.exp2(torch.frexp(top).exponent.to(w.dtype))  # a power of 2: exact
            w = w / scale
            gram = w @ w.transpose(-1, -2) if wide else w.transpose(-1, -2) @ w
        ritz, n_steps, ok = steps_of_chunk(gram, x, max_iter, tol)
        sigma, u, v, residual = _finish(w, gram, ritz, wide)
        if scale is not None:  # exact (a power of 2); past the dtype's range, its largest value
            sigma = (sigma * scale[:, 0, 0]).nan_to_num(posinf=torch.finfo(w.dtype).max)
        parts.append((sigma, u, v, residual, ok))
        steps = max(steps, n_steps)

    def cat(i: int, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.cat([p[i] for p in parts]).reshape((*lead, *shape))

    return PowerIterationResult(
        sigma=cat(0, ()),
        u=cat(1, (out,)),
        v=cat(2, (inp,)),
        n_iter=steps,
        converged=cat(4, ()),
        residual=cat(3, ()),
    )
