r"""A structure-exploiting primal-dual interior-point solver for LipSDP (torch, CPU or GPU).

The problem (in the multipliers, the "dual" form of Fazlyab et al., NeurIPS 2019) is

.. math::
    \min_{\rho,\lambda}\ \rho\quad\text{s.t.}\quad
    S=\rho E_0-C-\sum_k\lambda_kG_k\succeq0,\qquad \lambda\ge0 .

Its Lagrange dual is over :math:`X\succeq0` with :math:`\operatorname{tr}(X_{00})=1` and
:math:`\operatorname{tr}(G_kX)\ge0`, with value :math:`\operatorname{tr}(CX)`, a lower
bound on the optimum. The method is the infeasible primal-dual path-following method with the
HKM direction (Helmberg, Rendl, Vanderbei, Wolkowicz 1996; Kojima, Shindoh, Hara 1997; Monteiro
1997) and Mehrotra's predictor-corrector (1992), as in SDPT3 (Toh, Todd, Tütüncü 1999). Its
Schur complement :math:`H_{kl}=\operatorname{tr}(G_kXG_lS^{-1})` is assembled from the
rank-two factors of the :math:`G_k` (:meth:`LMIStructure.schur`), so an iteration costs a few
dense :math:`n\times n` products, :math:`O(n^3)` with :math:`n=n_0+N`, instead of
:math:`O(n^6)`. Step lengths come from Lanczos estimates confirmed by Cholesky factorizations.

Only the multipliers leave this module: the bound itself is recomputed from them and
certified by :func:`robustlaw.empirical.lipschitz.certify.certify_rho`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import torch

from robustlaw._validation import check_integer, check_interval
from robustlaw.empirical.lipschitz.sdp_structure import LMIStructure
from robustlaw.errors import SolverError

__all__ = ["IPMOptions", "IPMResult", "solve_ipm"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class IPMOptions:
    """Settings of the interior-point method (``tol`` and ``max_iter`` come from
    :class:`~robustlaw.empirical.lipschitz.lipsdp_prepare.LipSDPOptions`).

    Attributes
    ----------
    tol : float
        Stop when the relative duality gap and both relative infeasibilities are below it.
    max_iter : int
        Iteration limit.
    step_fraction : float
        Fraction of the step to the boundary of the cone that is taken (in (0, 1)).
    """

    tol: float
    max_iter: int
    step_fraction: float = 0.98

    def __post_init__(self) -> None:
        check_interval(self.tol, "tol", 0.0, 1.0)
        check_integer(self.max_iter, "max_iter", minimum=1)
        check_interval(self.step_fraction, "step_fraction", 0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class IPMResult:
    """What the interior-point method found (in the solver's own, rescaled, units).

    Attributes
    ----------
    multipliers : torch.Tensor
        The free multipliers ``lambda``, shape ``(m,)``, all positive.
    rho : float
        The solver's objective ``rho`` (not certified).
    lower : float
        ``tr(C X)``, the dual value: a lower bound on the optimum when ``X`` is feasible.
    n_iter : int
        Iterations used.
    converged : bool
        Whether the tolerance was reached.
    """

    multipliers: torch.Tensor
    rho: float
    lower: float
    n_iter: int
    converged: bool


_FEASIBLE = 1e-13  # relative dual residual below which S is recomputed from y
_LANCZOS_STEPS = 24  # Lanczos iterations per step-length estimate
_DENSE_EIG = 256  # up to this size a dense eigenvalue solve beats Lanczos' Python loop
_BACKTRACK = 0.8  # step shrink factor when the Lanczos estimate was too long


def _is_pd(a: torch.Tensor) -> bool:
    return int(torch.linalg.cholesky_ex(a)[1]) == 0


def _lanczos_min(chol: torch.Tensor, d: torch.Tensor) -> float:
    """Smallest Ritz value of ``L^-1 D L^-T`` (``L = chol``), Lanczos with reorthogonalization.

    Ritz values lie inside the spectrum, so this estimate is at or above the smallest
    eigenvalue; the step built from it is therefore checked by a Cholesky factorization.
    """
    n = d.shape[0]
    k = min(_LANCZOS_STEPS, n)
    q = torch.cos(torch.arange(n, dtype=d.dtype, device=d.device) * 1.7 + 0.3)  # fixed start
    q = q / q.norm()
    basis = d.new_zeros((k, n))
    alphas, betas = [], []
    for j in range(k):
        basis[j] = q
        u = torch.linalg.solve_triangular(chol.T, q[:, None], upper=True)
        w = torch.linalg.solve_triangular(chol, d @ u, upper=False)[:, 0]
        alphas.append(float(q @ w))
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(w.norm())
        if beta < 1e-12 or j == k - 1:
            break
        betas.append(beta)
        q = w / beta
    tri = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        tri += torch.diag(off, 1) + torch.diag(off, -1)
    return float(torch.linalg.eigvalsh(tri)[0])


def _exact_min(chol: torch.Tensor, d: torch.Tensor) -> float:
    """Smallest eigenvalue of ``L^-1 D L^-T`` by a dense eigenvalue solve."""
    inner = torch.linalg.solve_triangular(chol, d, upper=False)
    inner = torch.linalg.solve_triangular(chol, inner.T, upper=False)
    return float(torch.linalg.eigvalsh((inner + inner.T) / 2)[0])


def _cone_step(chol: torch.Tensor, d: torch.Tensor) -> float:
    """Largest ``t`` with ``x + t d`` PSD (``chol``: Cholesky factor of ``x``), estimated by
    Lanczos for large matrices, exact below ``_DENSE_EIG`` where that is cheaper."""
    low = (_exact_min if d.shape[0] <= _DENSE_EIG else _lanczos_min)(chol, d)
    return float("inf") if low >= 0 else -1.0 / low


def _max_step_vec(x: torch.Tensor, dx: torch.Tensor) -> float:
    """The largest ``t`` with ``x + t dx >= 0`` elementwise."""
    neg = dx < 0
    return float((-x[neg] / dx[neg]).min()) if bool(neg.any()) else float("inf")


def _sym(a: torch.Tensor) -> torch.Tensor:
    return (a + a.T) / 2


class _Operators:
    """``y -> sum_k y_k A_k`` and its adjoint for ``y = (lambda, rho)``, ``A_rho = -E_0``."""

    def __init__(self, structure: LMIStructure) -> None:
        self.s = structure
        self.n0 = structure.n_in
        # With alpha = 0, S >= 0 already forces lambda >= 0 (the hidden diagonal of S is
        # 2 lambda_i, or 2 lambda_i - (W_L^T W_L)_ii), so the redundant linear cone is left out:
        # it slowed convergence by a third. With alpha > 0 it is needed.
        self.sign_cone = structure.slopes[0] > 0

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        out = self.s.g_of(y[:-1])
        idx = torch.arange(self.n0, device=y.device)
        out[idx, idx] -= y[-1]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _sym(x)
        rho_part = -x.diagonal()[: self.n0].sum()
        return torch.cat([self.s.trace_g(x), rho_part[None]])

    def schur(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        m = self.s.n_multipliers
        h = x.new_zeros((m + 1, m + 1))
        h[:m, :m] = self.s.schur(x, z)
        cross = -self.s.cross_input(x, z)
        h[:m, m] = cross
        h[m, :m] = cross
        h[m, m] = (x[: self.n0, : self.n0] * z[: self.n0, : self.n0]).sum()
        return h


def _factor_spd(h: torch.Tensor) -> torch.Tensor:
    """Cholesky factor of ``h``, with a tiny diagonal shift if it is not numerically PD."""
    scale = float(h.diagonal().abs().max())
    eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
    for shift in (0.0, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6):
        chol, info = torch.linalg.cholesky_ex(h + shift * scale * eye)
        if int(info) == 0:
            return chol
    raise SolverError("the interior-point Schur complement is not positive definite")


@dataclass(frozen=True)
class _Point:
    """An iterate: primal ``(X, x)``, dual ``(S, y)``; the linear dual slacks are ``lambda``."""

    x: torch.Tensor
    x_lin: torch.Tensor
    s: torch.Tensor
    y: torch.Tensor

    @property
    def lam(self) -> torch.Tensor:
        return self.y[:-1]

    def moved(self, step: float, d: _Point) -> _Point:
        return _Point(
            _sym(self.x + step * d.x), self.x_lin + step * d.x_lin,
            _sym(self.s + step * d.s), self.y + step * d.y,
        )  # fmt: skip

    def dot(self, other: _Point) -> float:
        """``<X, S'> + <x, lambda'>``."""
        return float((self.x * other.s).sum() + self.x_lin @ other.lam)


class _Newton:
    """The HKM Newton system at one iterate, factored once for predictor and corrector."""

    def __init__(
        self, ops: _Operators, pt: _Point, r_p: torch.Tensor, r_d: torch.Tensor | None
    ) -> None:
        self.ops, self.pt, self.r_p, self.r_d = ops, pt, r_p, r_d
        self.cone = float(ops.sign_cone)
        self.chol_x, self.chol_s = torch.linalg.cholesky(pt.x), torch.linalg.cholesky(pt.s)
        self.z = torch.cholesky_inverse(self.chol_s)
        h = ops.schur(pt.x, self.z)
        m = pt.lam.shape[0]
        h[:m, :m] += self.cone * torch.diag(pt.x_lin / pt.lam)
        self.h_chol = _factor_spd(h)
        self.base = 0.0 if r_d is None else pt.x @ r_d @ self.z

    def direction(self, sigma_mu: float, corr: _Point | None = None) -> _Point:
        """Solve for the step towards ``sigma_mu`` on the central path (``corr``: Mehrotra)."""
        pt, z, m = self.pt, self.z, self.pt.lam.shape[0]
        corr_mat = 0.0 if corr is None else corr.x @ corr.s @ z
        corr_lin = 0.0 if corr is None else corr.x_lin * corr.lam / pt.lam
        rhs = self.r_p - self.ops.forward(sigma_mu * z - pt.x - self.base - corr_mat)
        rhs[:m] += self.cone * (sigma_mu / pt.lam - pt.x_lin - corr_lin)
        dy = torch.cholesky_solve(rhs[:, None], self.h_chol)[:, 0]
        ds = -self.ops.adjoint(dy) if self.r_d is None else self.r_d - self.ops.adjoint(dy)
        dx = _sym(sigma_mu * z - pt.x - pt.x @ ds @ z - corr_mat)
        dx_lin = sigma_mu / pt.lam - pt.x_lin - pt.x_lin * dy[:-1] / pt.lam - corr_lin
        dx_lin = self.cone * dx_lin
        return _Point(dx, dx_lin, ds, dy)

    def step(self, d: _Point, fraction: float, *, check: bool = True) -> float:
        """``fraction`` times the largest step keeping every cone, capped at 1.

        The matrix cones use a Lanczos estimate (O(n^2) per iteration instead of an O(n^3)
        eigenvalue solve); with ``check`` the step is then confirmed by Cholesky and shortened
        until it is (``check=False`` serves Mehrotra's heuristic, where an estimate suffices).
        """
        pt = self.pt
        longest = min(
            _max_step_vec(pt.x_lin, d.x_lin), _max_step_vec(pt.lam, d.lam),
            _cone_step(self.chol_x, d.x), _cone_step(self.chol_s, d.s),
        )  # fmt: skip
        t = min(1.0, fraction * longest)
        while check and t > 1e-12:
            if _is_pd(pt.x + t * d.x) and _is_pd(pt.s + t * d.s):
                return t
            t *= _BACKTRACK
        return 0.0 if check else t


def _start(structure: LMIStructure, b: torch.Tensor, norm_c: float) -> _Point:
    """The starting point of SDPT3 (Toh, Todd, Tutuncu 1999): scaled identities."""
    ref, n, m = structure.weights[0], structure.dim, structure.n_multipliers
    norms = torch.cat([structure.g_norms(), ref.new_full((1,), structure.n_in**0.5)])
    xi = max(10.0, n**0.5, n * float((1.0 + b.abs()).div(1.0 + norms).max()))
    eta = max(10.0, n**0.5, float(norms.max()), norm_c)
    eye = torch.eye(n, dtype=ref.dtype, device=ref.device)
    y = torch.cat([ref.new_full((m,), eta), ref.new_zeros(1)])
    x_lin = ref.new_full((m,), xi if structure.slopes[0] > 0 else 0.0)
    return _Point(xi * eye, x_lin, eta * eye, y)


def solve_ipm(structure: LMIStructure, options: IPMOptions) -> IPMResult:
    """Minimize ``rho`` subject to the LipSDP LMI with the HKM predictor-corrector method.

    Parameters
    ----------
    structure : LMIStructure
        The LMI (its weights should be rescaled to unit spectral norm for good conditioning).
    options : IPMOptions
        Tolerances and limits.

    Returns
    -------
    IPMResult
        Multipliers, the solver's objective, the dual value and the iteration count.

    Raises
    ------
    SolverError
        If the Newton system breaks down numerically.
    """
    opts = options
    ops = _Operators(structure)
    m, n0 = structure.n_multipliers, structure.n_in
    c_tilde = -structure.constant
    b = c_tilde.new_zeros(m + 1)
    b[-1] = -1.0
    norm_c = 1.0 + float(torch.linalg.matrix_norm(c_tilde))
    pt = _start(structure, b, norm_c)
    n_iter, converged = 0, False
    for n_iter in range(1, opts.max_iter + 1):  # noqa: B007 (n_iter is reported)
        r_p = b - ops.forward(pt.x)
        r_p[:m] += pt.x_lin
        r_d = c_tilde - ops.adjoint(pt.y) - pt.s
        pobj, dobj = float((c_tilde * pt.x).sum()), float(b @ pt.y)
        rel_gap = abs(pobj - dobj) / (1.0 + abs(pobj) + abs(dobj))
        p_inf = float(r_p.norm()) / 2.0
        d_inf = float(torch.linalg.matrix_norm(r_d)) / norm_c
        logger.debug("ipm %d: gap %.2e pinf %.2e dinf %.2e", n_iter, rel_gap, p_inf, d_inf)
        if max(rel_gap, p_inf, d_inf) < opts.tol:
            converged = True
            break
        gap = pt.dot(pt)
        mu = gap / (structure.dim + m)
        if d_inf < _FEASIBLE and _is_pd(r_d + pt.s):  # dual feasible: S = C - A*(y) exactly
            pt, r_d = dataclasses.replace(pt, s=r_d + pt.s), None
        newton = _Newton(ops, pt, r_p, r_d)
        pred = newton.direction(0.0)
        t_aff = newton.step(pred, 1.0, check=False)
        affine = pt.moved(t_aff, pred)
        sigma = min(1.0, max(0.0, affine.dot(affine) / gap)) ** 3  # Mehrotra's heuristic
        d = newton.direction(sigma * mu, pred)
        # One step length for both sides: separate ones lost centrality on LipSDP.
        t = newton.step(d, opts.step_fraction)
        if t == 0.0:  # no step keeps the iterate interior: stop with what we have
            logger.warning("interior-point method stalled at iteration %d", n_iter)
            break
        logger.debug("ipm %d: step %.3g, sigma %.3g", n_iter, t, sigma)
        pt = pt.moved(t, d)
    lower = float((structure.constant * pt.x).sum()) / float(pt.x[:n0, :n0].trace())
    return IPMResult(
        multipliers=pt.lam.clone(), rho=float(pt.y[-1]), lower=lower, n_iter=n_iter,
        converged=converged,
    )  # fmt: skip
