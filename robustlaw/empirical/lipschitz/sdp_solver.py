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
_LANCZOS_ESTIMATE = 12  # ... for Mehrotra's heuristic only (within a few per cent suffices)
_DENSE_EIG = 256  # up to this size a dense eigenvalue solve beats Lanczos' Python loop
_BACKTRACK = 0.8  # step shrink factor when the Lanczos estimate was too long


def _lanczos_min(chol: torch.Tensor, d: torch.Tensor, steps: int) -> float:
    """Smallest Ritz value of ``L^-1 D L^-T`` (``L = chol``), Lanczos with reorthogonalization.

    Ritz values lie inside the spectrum, so this estimate is at or above the smallest
    eigenvalue; the step built from it is therefore checked by a Cholesky factorization.
    """
    n = d.shape[0]
    k = min(steps, n)
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


def _exact_min(chol: torch.Tensor, d: torch.Tensor, steps: int) -> float:
    """Smallest eigenvalue of ``L^-1 D L^-T`` by a dense eigenvalue solve."""
    inner = torch.linalg.solve_triangular(chol, d, upper=False)
    inner = torch.linalg.solve_triangular(chol, inner.T, upper=False)
    return float(torch.linalg.eigvalsh((inner + inner.T) / 2)[0])


def _cone_step(chol: torch.Tensor, d: torch.Tensor, steps: int) -> float:
    """Largest ``t`` with ``x + t d`` PSD (``chol``: Cholesky factor of ``x``), estimated by
    ``steps`` Lanczos steps for large matrices, exact below ``_DENSE_EIG`` where that is
    cheaper."""
    low = (_exact_min if d.shape[0] <= _DENSE_EIG else _lanczos_min)(chol, d, steps)
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

    def adjoint_times(self, y: torch.Tensor, z: torch.Tensor, az: torch.Tensor) -> torch.Tensor:
        """``adjoint(y) @ Z`` from ``az = A @ Z``, without a dense ``n x n`` product."""
        out = self.s.g_times(y[:-1], z, az)
        out[: self.n0] -= y[-1] * z[: self.n0]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(tr(A_k X))_k`` for any square ``X`` (only its symmetric part counts)."""
        rho_part = -x.diagonal()[: self.n0].sum()
        return torch.cat([self.s.trace_g(x), rho_part[None]])

    def forward_product(
        self, x: torch.Tensor, ax: torch.Tensor, y: torch.Tensor, ay_t: torch.Tensor
    ) -> torch.Tensor:
        """``forward(X @ Y)`` from ``ax = A @ X`` and ``ay_t = A @ Y.T``, without the product."""
        rho_part = -(x[: self.n0] * y[:, : self.n0].T).sum()
        return torch.cat([self.s.trace_g_product(x, ax, y, ay_t), rho_part[None]])

    def schur(
        self, x: torch.Tensor, z: torch.Tensor, grams: tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        """The Schur complement; ``grams = (A X, A Z, A Z A^T)``."""
        m = self.s.n_multipliers
        h = x.new_zeros((m + 1, m + 1))
        ax, az, azat = grams
        h[:m, :m] = self.s.schur(x, z, ax=ax, az=az, azat=azat)
        cross = -self.s.cross_input(x, z)
        h[:m, m] = cross
        h[m, :m] = cross
        h[m, m] = (x[: self.n0, : self.n0] * z[: self.n0, : self.n0]).sum()
        return h


def _factor_spd(h: torch.Tensor) -> torch.Tensor:
    """Cholesky factor of ``h``, with a tiny diagonal shift if it is not numerically PD."""
    chol, info = torch.linalg.cholesky_ex(h)
    if int(info) == 0:
        return chol
    scale = float(h.diagonal().abs().max())
    eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
    for shift in (1e-14, 1e-12, 1e-10, 1e-8, 1e-6):
        chol, info = torch.linalg.cholesky_ex(h + shift * scale * eye)
        if int(info) == 0:
            return chol
    raise SolverError("the interior-point Schur complement is not positive definite")


@dataclass(frozen=True)
class _Point:
    """An iterate: primal ``(X, x)``, dual ``(S, y)``; the linear dual slacks are ``lambda``.

    A direction also carries ``sz = dS @ Z`` (Mehrotra's corrector reuses it).
    """

    x: torch.Tensor
    x_lin: torch.Tensor
    s: torch.Tensor
    y: torch.Tensor
    sz: torch.Tensor | None = None

    @property
    def lam(self) -> torch.Tensor:
        return self.y[:-1]

    def dot(self, other: _Point) -> float:
        """``<X, S'> + <x, lambda'>``."""
        return float((self.x * other.s).sum() + self.x_lin @ other.lam)


@dataclass(frozen=True)
class _Residual:
    """The dual residual ``R_d = nu R_0``, ``R_0 = -C - adjoint(y_0) - eta I`` at the start.

    Every step moves ``S`` and ``y`` by the same fraction ``t`` of a direction that solves the
    dual equation exactly, so ``R_d`` only shrinks by ``1 - t``: ``R_d Z`` is then structured
    (:meth:`times`), and ``forward(X R_d Z)`` needs no dense product at all.
    """

    nu: float
    y0: torch.Tensor
    eta: float

    def times(self, ops: _Operators, z: torch.Tensor, az: torch.Tensor) -> torch.Tensor:
        """``R_d @ Z`` from ``az = A @ Z``."""
        r0z = -ops.s.constant_times(z) - ops.adjoint_times(self.y0, z, az) - self.eta * z
        return self.nu * r0z


class _Newton:
    """The HKM Newton system at one iterate, factored once for predictor and corrector.

    ``chol_x`` and ``chol_s`` are the Cholesky factors of ``X`` and ``S`` (those that confirmed
    the previous step). Dense ``n x n`` work per iteration: ``Z = S^-1``, three products (``X dS
    Z`` for predictor and corrector, Mehrotra's ``dX dS Z``), and a few block-sparse products
    with ``A``.
    """

    def __init__(
        self,
        ops: _Operators,
        pt: _Point,
        r_p: torch.Tensor,
        r_d: torch.Tensor | None,
        residual: _Residual,
        factors: tuple[torch.Tensor, torch.Tensor],
    ) -> None:
        self.ops, self.pt, self.r_p, self.r_d = ops, pt, r_p, r_d
        self.cone = float(ops.sign_cone)
        self.chol_x, self.chol_s = factors
        self.z = torch.cholesky_inverse(self.chol_s)
        ax, self.az = ops.s.apply_a(pt.x), ops.s.apply_a(self.z)
        h = ops.schur(pt.x, self.z, (ax, self.az, ops.s.apply_a(self.az.T)))
        m = pt.lam.shape[0]
        h[:m, :m] += self.cone * torch.diag(pt.x_lin / pt.lam)
        self.h_chol = _factor_spd(h)
        self.rz = None if r_d is None else residual.times(ops, self.z, self.az)
        self.base = None  # forward(X R_d Z), from A X and A (R_d Z)^T: no dense product
        if self.rz is not None:
            self.base = ops.forward_product(pt.x, ax, self.rz, ops.s.apply_a(self.rz.T))

    def direction(self, sigma_mu: float, corr: _Point | None = None) -> _Point:
        """Solve for the step towards ``sigma_mu`` on the central path (``corr``: Mehrotra)."""
        pt, z, m = self.pt, self.z, self.pt.lam.shape[0]
        target = sigma_mu * z - pt.x
        if corr is not None:
            corr_mat = corr.x @ corr.sz
            target = target - corr_mat
        corr_lin = 0.0 if corr is None else corr.x_lin * corr.lam / pt.lam
        rhs = self.r_p - self.ops.forward(target)
        if self.base is not None:
            rhs += self.base
        rhs[:m] += self.cone * (sigma_mu / pt.lam - pt.x_lin - corr_lin)
        dy = torch.cholesky_solve(rhs[:, None], self.h_chol)[:, 0]
        sz = -self.ops.adjoint_times(dy, z, self.az)  # dS Z
        ds = -self.ops.adjoint(dy)
        if self.r_d is not None:
            sz += self.rz
            ds += self.r_d
        if self.ops.s.k[0]:  # A^T D A by blocks is symmetric only up to rounding
            ds = _sym(ds)
        dx = _sym(target - pt.x @ sz)
        dx_lin = sigma_mu / pt.lam - pt.x_lin - pt.x_lin * dy[:-1] / pt.lam - corr_lin
        dx_lin = self.cone * dx_lin
        return _Point(dx, dx_lin, ds, dy, sz)

    def step(
        self, d: _Point, fraction: float, *, check: bool = True
    ) -> tuple[float, tuple[_Point, torch.Tensor, torch.Tensor] | None]:
        """``fraction`` times the largest step keeping every cone, capped at 1.

        The matrix cones use a Lanczos estimate (O(n^2) per iteration instead of an O(n^3)
        eigenvalue solve); with ``check`` the step is then confirmed by Cholesky and shortened
        until it is (``check=False`` serves Mehrotra's heuristic, where an estimate suffices).
        With ``check``, the new iterate and the Cholesky factors of its ``X`` and ``S`` that
        confirmed the step are returned with it, for the next iteration.
        """
        pt, steps = self.pt, _LANCZOS_STEPS if check else _LANCZOS_ESTIMATE
        longest = min(
            _max_step_vec(pt.x_lin, d.x_lin), _max_step_vec(pt.lam, d.lam),
            _cone_step(self.chol_x, d.x, steps), _cone_step(self.chol_s, d.s, steps),
        )  # fmt: skip
        t = min(1.0, fraction * longest)
        while check and t > 1e-12:
            x_new = pt.x + t * d.x  # exactly symmetric, as X and dX are
            chol_x, info = torch.linalg.cholesky_ex(x_new)
            if int(info) == 0:
                s_new = pt.s + t * d.s
                chol_s, info = torch.linalg.cholesky_ex(s_new)
                if int(info) == 0:
                    moved = _Point(x_new, pt.x_lin + t * d.x_lin, s_new, pt.y + t * d.y)
                    return t, (moved, chol_x, chol_s)
            t *= _BACKTRACK
        return (0.0 if check else t), None


def _start(structure: LMIStructure, norm_c: float) -> _Point:
    """Scaled identities ``X = I``, ``S = (1 + ||C||_F) I``, ``lambda = 1 + ||C||_F``.

    The scales suit the rescaled problem (unit-norm layers: the optimal multipliers and
    ``rho`` are of order one). SDPT3's rule (Toh, Todd, Tutuncu 1999), with ``X`` of order
    ``n``, took 15-25% more iterations on random LipSDP instances.
    """
    ref, n, m = structure.weights[0], structure.dim, structure.n_multipliers
    eye = torch.eye(n, dtype=ref.dtype, device=ref.device)
    y = torch.cat([ref.new_full((m,), norm_c), ref.new_zeros(1)])
    x_lin = ref.new_full((m,), 1.0 if structure.slopes[0] > 0 else 0.0)
    return _Point(eye.clone(), x_lin, norm_c * eye, y)


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
    pt = _start(structure, norm_c)
    residual = _Residual(nu=1.0, y0=pt.y, eta=float(pt.s[0, 0]))
    factors = torch.linalg.cholesky(pt.x), torch.linalg.cholesky(pt.s)
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
        if residual.nu and d_inf < _FEASIBLE:  # dual feasible: S = C - A*(y) exactly
            chol_s, info = torch.linalg.cholesky_ex(r_d + pt.s)
            if int(info) == 0:
                pt, residual = (
                    dataclasses.replace(pt, s=r_d + pt.s),
                    dataclasses.replace(residual, nu=0.0),
                )
                factors = factors[0], chol_s
        newton = _Newton(ops, pt, r_p, r_d if residual.nu else None, residual, factors)
        pred = newton.direction(0.0)
        t_aff, _ = newton.step(pred, 1.0, check=False)
        # <X + t dX, S + t dS> (+ the linear part), expanded: no new n x n matrices
        gap_aff = gap + t_aff * (pt.dot(pred) + pred.dot(pt)) + t_aff**2 * pred.dot(pred)
        sigma = min(1.0, max(0.0, gap_aff / gap)) ** 3  # Mehrotra's heuristic
        d = newton.direction(sigma * mu, pred)
        # One step length for both sides: separate ones lost centrality on LipSDP.
        t, confirmed = newton.step(d, opts.step_fraction)
        if confirmed is None:  # no step keeps the iterate interior: stop with what we have
            logger.warning("interior-point method stalled at iteration %d", n_iter)
            break
        logger.debug("ipm %d: step %.3g, sigma %.3g", n_iter, t, sigma)
        pt, factors = confirmed[0], confirmed[1:]
        residual = dataclasses.replace(residual, nu=residual.nu * (1.0 - t))
    lower = float((structure.constant * pt.x).sum()) / float(pt.x[:n0, :n0].trace())
    return IPMResult(
        multipliers=pt.lam.clone(), rho=float(pt.y[-1]), lower=lower, n_iter=n_iter,
        converged=converged,
    )  # fmt: skip
