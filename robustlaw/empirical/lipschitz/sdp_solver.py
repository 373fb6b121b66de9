"""A structure-exploiting primal-dual interior-point solver for LipSDP (torch, CPU or GPU).

The problem (in the multipliers, the "dual" form of Fazlyab et al., NeurIPS 2019) is

.. math::
    \\min_{\\rho,\\lambda}\\ \\rho\\quad\\text{s.t.}\\quad
    S=\\rho E_0-C-\\sum_k\\lambda_kG_k\\succeq0,\\qquad \\lambda\\ge0 .

Its Lagrange dual is over :math:`X\\succeq0` with :math:`\\operatorname{tr}(X_{00})=1` and
:math:`\\operatorname{tr}(G_kX)\\ge0`, with value :math:`\\operatorname{tr}(CX)`, a lower
bound on the optimum. The method is the infeasible HKM path-following method with Mehrotra's
predictor-corrector (Helmberg, Rendl, Vanderbei, Wolkowicz 1996; Kojima, Shindoh, Hara 1997;
Todd, Toh, Tütüncü 1998), the one SDPT3 uses. Its Schur complement
:math:`H_{kl}=\\operatorname{tr}(G_kXG_lX^{-1}...)` is assembled from the rank-two factors of
the :math:`G_k` (:meth:`LMIStructure.schur`), so an iteration costs a few dense
:math:`n\\times n` products, :math:`O(n^3)` with :math:`n=n_0+N`, instead of :math:`O(n^6)`.

Only the multipliers leave this module: the bound itself is recomputed from them and
certified by :func:`robustlaw.empirical.lipschitz.certify.certify`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from robustlaw._validation import check_interval
from robustlaw.empirical.lipschitz.sdp_structure import LMIStructure

__all__ = ["IPMOptions", "IPMResult", "solve_ipm"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class IPMOptions:
    """Settings of the interior-point method.

    Attributes
    ----------
    tol : float
        Stop when the relative duality gap and both relative infeasibilities are below it.
    max_iter : int
        Iteration limit.
    step_fraction : float
        Fraction of the step to the boundary of the cone that is taken (in (0, 1)).
    """

    tol: float = 1e-9
    max_iter: int = 100
    step_fraction: float = 0.98

    def __post_init__(self) -> None:
        check_interval(self.tol, "tol", 0.0, 1.0)
        check_interval(self.max_iter, "max_iter", 1, closed="left")
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


def _max_step(chol: torch.Tensor, dx: torch.Tensor) -> float:
    """The largest ``t`` with ``x + t dx`` PSD, ``chol`` the Cholesky factor of ``x``."""
    inner = torch.linalg.solve_triangular(chol, dx, upper=False)
    inner = torch.linalg.solve_triangular(chol, inner.T, upper=False)
    low = float(torch.linalg.eigvalsh((inner + inner.T) / 2)[0])
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


def _solve_spd(h: torch.Tensor, rhs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Solve ``h d = r`` for each ``r``, by Cholesky, regularizing if it is not numerically PD."""
    scale = float(h.diagonal().abs().max())
    for shift in (0.0, 1e-14, 1e-12, 1e-10, 1e-8):
        eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
        chol, info = torch.linalg.cholesky_ex(h + shift * scale * eye)
        if int(info) == 0:
            return [torch.cholesky_solve(r[:, None], chol)[:, 0] for r in rhs]
    return [torch.linalg.lstsq(h, r[:, None]).solution[:, 0] for r in rhs]


def solve_ipm(structure: LMIStructure, options: IPMOptions | None = None) -> IPMResult:
    """Minimize ``rho`` subject to the LipSDP LMI with the HKM predictor-corrector method.

    Parameters
    ----------
    structure : LMIStructure
        The LMI (its weights should be rescaled to unit spectral norm for good conditioning).
    options : IPMOptions, optional
        Tolerances and limits (defaults if omitted).

    Returns
    -------
    IPMResult
        Multipliers, the solver's objective, the dual value and the iteration count.
    """
    opts = options or IPMOptions()
    ops = _Operators(structure)
    ref = structure.weights[0]
    n, m, n0 = structure.dim, structure.n_multipliers, structure.n_in
    eye = torch.eye(n, dtype=ref.dtype, device=ref.device)
    c_tilde = -structure.constant()
    b = ref.new_zeros(m + 1)
    b[-1] = -1.0
    norm_b, norm_c = 1.0, 1.0 + float(torch.linalg.matrix_norm(c_tilde))
    # Starting point of SDPT3 (Toh, Todd, Tutuncu 1999): scaled identities.
    norms = torch.cat([structure.g_norms(), ref.new_full((1,), n0**0.5)])
    xi = max(10.0, n**0.5, n * float((1.0 + b.abs()).div(1.0 + norms).max()))
    eta = max(10.0, n**0.5, float(norms.max()), norm_c)
    x_mat, s_mat = xi * eye, eta * eye
    x_lin = ref.new_full((m,), xi)  # primal slacks of lambda >= 0; their dual slacks are lambda
    y = torch.cat([ref.new_full((m,), eta), ref.new_zeros(1)])
    n_iter, converged = 0, False
    for n_iter in range(1, opts.max_iter + 1):  # noqa: B007 (n_iter is reported)
        lam = y[:-1]
        r_p = b - ops.forward(x_mat) + torch.cat([x_lin, ref.new_zeros(1)])
        r_d = c_tilde - ops.adjoint(y) - s_mat
        gap = float((x_mat * s_mat).sum() + x_lin @ lam)
        pobj, dobj = float((c_tilde * x_mat).sum()), float(b @ y)
        rel_gap = abs(pobj - dobj) / (1.0 + abs(pobj) + abs(dobj))
        p_inf = float(r_p.norm()) / (1.0 + norm_b)
        d_inf = float(torch.linalg.matrix_norm(r_d)) / norm_c
        logger.debug("ipm %d: gap %.2e pinf %.2e dinf %.2e", n_iter, rel_gap, p_inf, d_inf)
        if max(rel_gap, p_inf, d_inf) < opts.tol:
            converged = True
            break
        mu = gap / (n + m)
        chol_x, chol_s = torch.linalg.cholesky(x_mat), torch.linalg.cholesky(s_mat)
        z_mat = torch.cholesky_inverse(chol_s)
        h = ops.schur(x_mat, z_mat)
        h[:m, :m] += torch.diag(x_lin / lam)
        base = x_mat @ r_d @ z_mat

        def direction(sigma_mu, corr_mat, corr_lin):
            rhs = r_p - ops.forward(sigma_mu * z_mat - x_mat - base - corr_mat)
            rhs[:m] += sigma_mu / lam - x_lin - corr_lin
            return rhs

        def complete(dy, sigma_mu, corr_mat, corr_lin):
            ds = r_d - ops.adjoint(dy)
            dx = _sym(sigma_mu * z_mat - x_mat - x_mat @ ds @ z_mat - corr_mat)
            dlam = dy[:-1]
            dx_lin = sigma_mu / lam - x_lin - x_lin * dlam / lam - corr_lin
            return dx, dx_lin, ds, dlam

        zero_lin = torch.zeros_like(x_lin)
        (dy,) = _solve_spd(h, [direction(0.0, 0.0, zero_lin)])
        dx, dx_lin, ds, dlam = complete(dy, 0.0, 0.0, zero_lin)
        t_p = min(1.0, _max_step(chol_x, dx), _max_step_vec(x_lin, dx_lin))
        t_d = min(1.0, _max_step(chol_s, ds), _max_step_vec(lam, dlam))
        gap_aff = float(((x_mat + t_p * dx) * (s_mat + t_d * ds)).sum())
        gap_aff += float((x_lin + t_p * dx_lin) @ (lam + t_d * dlam))
        sigma = min(1.0, max(0.0, gap_aff / gap)) ** 3
        corr_mat = dx @ ds @ z_mat
        corr_lin = dx_lin * dlam / lam
        (dy,) = _solve_spd(h, [direction(sigma * mu, corr_mat, corr_lin)])
        dx, dx_lin, ds, dlam = complete(dy, sigma * mu, corr_mat, corr_lin)
        # One step length for both sides: separate ones lost centrality on LipSDP.
        t = min(
            1.0,
            opts.step_fraction * _max_step(chol_x, dx),
            opts.step_fraction * _max_step_vec(x_lin, dx_lin),
            opts.step_fraction * _max_step(chol_s, ds),
            opts.step_fraction * _max_step_vec(lam, dlam),
        )
        logger.debug("ipm %d: step %.3g, sigma %.3g", n_iter, t, sigma)
        x_mat, x_lin = _sym(x_mat + t * dx), x_lin + t * dx_lin
        s_mat, y = _sym(s_mat + t * ds), y + t * dy
    lower = float((structure.constant() * x_mat).sum()) / float(x_mat[:n0, :n0].trace())
    return IPMResult(
        multipliers=y[:-1].clone(),
        rho=float(y[-1]),
        lower=lower,
        n_iter=n_iter,
        converged=converged,
    )
