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
:math:`O(n^6)`. The dual slack is kept implicit (:class:`_Residual`) and formed only for its
Cholesky factorization; step lengths come from warm-started Lanczos estimates
(:mod:`.sdp_steps`) confirmed by Cholesky factorizations.

Only the multipliers leave this module: the bound itself is recomputed from them and
certified by :func:`robustlaw.empirical.lipschitz.certify.certify_rho`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from robustlaw._validation import check_integer, check_interval
from robustlaw.empirical.lipschitz.sdp_steps import cone_step, max_step_vec
from robustlaw.empirical.lipschitz.sdp_structure import LMIStructure, add_transposed
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


_FEASIBLE = 1e-13  # relative dual residual below which S is taken as C - A*(y) exactly
# Lanczos steps (at most) and relative tolerance of a step length: for the step taken, and for
# Mehrotra's heuristic only (within a few per cent suffices there)
_LANCZOS_STEPS, _LANCZOS_TOL = 24, 1e-4
_LANCZOS_ESTIMATE, _ESTIMATE_TOL = 12, 1e-2
_BACKTRACK = 0.8  # step shrink factor when the Lanczos estimate was too long


class _Operators:
    """``y -> sum_k y_k A_k`` and its adjoint for ``y = (lambda, rho)``, ``A_rho = -E_0``."""

    def __init__(self, structure: LMIStructure) -> None:
        self.s = structure
        self.n0 = structure.n_in
        # With alpha = 0, S >= 0 already forces lambda >= 0 (the hidden diagonal of S is
        # 2 lambda_i, or 2 lambda_i - (W_L^T W_L)_ii), so the redundant linear cone is left out:
        # it slowed convergence by a third. With alpha > 0 it is needed.
        self.sign_cone = structure.slopes[0] > 0

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

    def forward_lowrank(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """``forward(P @ Q.T)`` for thin ``P``, ``Q`` of shape ``(n, r)``."""
        rho_part = -(p[: self.n0] * q[: self.n0]).sum()
        return torch.cat([self.s.trace_g_lowrank(p, q), rho_part[None]])

    def schur(
        self, x: torch.Tensor, z: torch.Tensor, grams: tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        """``H_kl = tr(A_k X A_l Z)``, ``(m + 1) x (m + 1)``; ``grams = (A X, A Z, A Z A^T)``."""
        m, n0 = self.s.n_multipliers, self.n0
        h = x.new_empty((m + 1, m + 1))
        ax, az, azat = grams
        self.s.schur(x, z, ax=ax, az=az, azat=azat, out=h[:m, :m])
        cross = -self.s.trace_g_lowrank(x[:, :n0], z[:, :n0])  # tr(G_k X A_rho Z)
        h[:m, m] = cross
        h[m, :m] = cross
        h[m, m] = (x[:n0, :n0] * z[:n0, :n0]).sum()
        return h


@dataclass(frozen=True)
class _Affine:
    """The symmetric matrix ``M = A*(v) + c C + e I`` (``A*(v) = sum_k v_k A_k``, ``C`` the
    LMI's constant), kept implicit: the dual slack and its steps are all of this form."""

    v: torch.Tensor
    c: float
    e: float

    def dense(self, ops: _Operators) -> torch.Tensor:
        """``M`` as an ``n x n`` matrix (a zero fill plus ``O(nnz(A))`` writes)."""
        out = ops.s.g_of(self.v[:-1])
        diag = out.diagonal()
        diag[: ops.n0] -= self.v[-1]
        diag += self.e
        return ops.s.add_constant(out, self.c)

    def times(self, ops: _Operators, z: torch.Tensor, az: torch.Tensor) -> torch.Tensor:
        """``M @ Z`` from ``az = A @ Z`` (``Z`` of shape ``(n, k)``), without a dense product."""
        out = ops.s.g_times(self.v[:-1], z, az)
        out[: ops.n0].add_(z[: ops.n0], alpha=-float(self.v[-1]))
        out.add_(z, alpha=self.e)
        return ops.s.add_constant_times(out, z, self.c)

    def apply(self, ops: _Operators) -> Callable[[torch.Tensor], torch.Tensor]:
        """``u -> M @ u``, for the Lanczos step lengths."""
        return lambda u: self.times(ops, u, ops.s.apply_a(u))

    def inner(self, ops: _Operators, x: torch.Tensor, fx: torch.Tensor) -> float:
        """``<M, X> = v . forward(X) + c tr(C X) + e tr(X)``, from ``fx = forward(X)``."""
        return float(self.v @ fx) + self.c * ops.s.trace_constant(x) + self.e * float(x.trace())


@dataclass(frozen=True)
class _Residual:
    """The dual residual ``R_d = nu R_0``, ``R_0 = -(C + A*(y_0) + eta I)`` at the start.

    Every step moves ``S`` and ``y`` by the same fraction ``t`` of a direction that solves the
    dual equation exactly, so ``R_d`` only shrinks by ``1 - t``. The dual slack is therefore
    never stored: ``S = -C - A*(y) - nu R_0`` and ``dS = nu R_0 - A*(dy)`` are
    :class:`_Affine`, formed densely only for the Cholesky factorization of a new ``S``.
    """

    nu: float
    y0: torch.Tensor
    eta: float
    norm: float  # ||R_0||_F

    def slack(self, y: torch.Tensor) -> _Affine:
        """``S = A*(nu y_0 - y) + (nu - 1) C + nu eta I``."""
        return _Affine(self.nu * self.y0 - y, self.nu - 1.0, self.nu * self.eta)

    def move(self, dy: torch.Tensor) -> _Affine:
        """``dS = -A*(dy + nu y_0) - nu C - nu eta I``: the dual equation solved exactly."""
        return _Affine(-dy - self.nu * self.y0, -self.nu, -self.nu * self.eta)

    def shrunk(self, t: float) -> _Residual:
        """The residual after a step of length ``t``."""
        return dataclasses.replace(self, nu=self.nu * (1.0 - t))


@dataclass(frozen=True)
class _Point:
    """An iterate (or a direction): primal ``(X, x)`` with ``forward(X)``, dual ``y``; the
    dual slack ``S`` is :meth:`_Residual.slack` of ``y``, the linear dual slacks ``lambda``.

    A direction also carries ``sz = dS @ Z`` (Mehrotra's corrector reuses it).
    """

    x: torch.Tensor
    x_lin: torch.Tensor
    y: torch.Tensor
    fx: torch.Tensor
    sz: torch.Tensor | None = None

    @property
    def lam(self) -> torch.Tensor:
        return self.y[:-1]


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


class _Newton:
    """The HKM Newton system at one iterate, factored once for predictor and corrector.

    ``chol_x`` and ``chol_s`` are the Cholesky factors of ``X`` and ``S`` (those that confirmed
    the previous step). Dense ``n x n`` work per iteration: ``Z = S^-1``, three products (``X dS
    Z`` for predictor and corrector, Mehrotra's ``dX dS Z``, each fused with its additions
    into one ``addmm``), four block-sparse products with ``A`` for the Schur complement and
    one ``A^T`` per direction for ``dS Z``.
    """

    def __init__(
        self,
        ops: _Operators,
        pt: _Point,
        r_p: torch.Tensor,
        residual: _Residual,
        factors: tuple[torch.Tensor, torch.Tensor],
        warm: tuple[torch.Tensor | None, torch.Tensor | None],
    ) -> None:
        self.ops, self.pt, self.r_p, self.residual = ops, pt, r_p, residual
        self.warm = list(warm)  # Lanczos starts for the X and S cones, updated by step
        self.cone = float(ops.sign_cone)
        self.chol_x, self.chol_s = factors
        # cholesky_inverse returns column-major: Z^T (the same matrix) is row-major like every
        # other n x n operand, so no pass below reads it transposed
        self.z = torch.cholesky_inverse(self.chol_s).T
        ax, self.az = ops.s.apply_a(pt.x), ops.s.apply_a(self.z)
        h = ops.schur(pt.x, self.z, (ax, self.az, ops.s.gram(self.az)))
        self.base = None  # forward(X R_d Z): no product, see _base
        if residual.nu:
            self.base = self._base(h, ax)
        m = pt.lam.shape[0]
        h[:m, :m].diagonal().add_(self.cone * pt.x_lin / pt.lam)
        self.h_chol = _factor_spd(h)

    def _base(self, h: torch.Tensor, ax: torch.Tensor) -> torch.Tensor:
        """``forward(X R_d Z)`` with ``R_d = -nu (A*(y_0) + C + eta I)``, read off the Schur
        complement (``sum_l y0_l tr(A_k X A_l Z) = (H y_0)_k``), the low-rank ``C = U U^T``
        (``forward((X U)(Z U)^T)``) and ``forward(X Z)``: no dense product."""
        ops, x, z, res = self.ops, self.pt.x, self.z, self.residual
        low = ops.forward_lowrank(ops.s.constant_factor_times(x), ops.s.constant_factor_times(z))
        # forward(X Z) with Z^T for Z (Z is symmetric): its columns are then read as rows
        total = h @ res.y0 + low + res.eta * ops.forward_product(x, ax, z.T, self.az)
        return -res.nu * total

    def direction(self, sigma_mu: float, corr: _Point | None = None) -> _Point:
        """Solve for the step towards ``sigma_mu`` on the central path (``corr``: Mehrotra).

        ``dX = sym(T)``, ``T = sigma_mu Z - X - dX_aff dS_aff Z - X dS Z``, is built in one
        buffer ``half`` (``T / 2`` at the end): each product is an in-place ``addmm`` on it and
        the symmetrization is one (tiled) pass, ``dX = half + half^T``.
        """
        pt, z, m, ops = self.pt, self.z, self.pt.lam.shape[0], self.ops
        half = torch.add(pt.x, z, alpha=-sigma_mu) if sigma_mu else pt.x.clone()
        scale = -0.5  # the part of T built so far is 2 * scale * half
        if corr is not None:
            half.addmm_(corr.x, corr.sz, beta=scale, alpha=-0.5)
            scale = 1.0
        corr_lin = 0.0 if corr is None else corr.x_lin * corr.lam / pt.lam
        rhs = self.r_p - 2.0 * scale * ops.forward(half)
        if self.base is not None:
            rhs += self.base
        rhs[:m] += self.cone * (sigma_mu / pt.lam - pt.x_lin - corr_lin)
        dy = torch.cholesky_solve(rhs[:, None], self.h_chol)[:, 0]
        sz = self.residual.move(dy).times(ops, z, self.az)  # dS Z
        half.addmm_(pt.x, sz, beta=scale, alpha=-0.5)
        dx = add_transposed(half, half)
        dx_lin = sigma_mu / pt.lam - pt.x_lin - pt.x_lin * dy[:-1] / pt.lam - corr_lin
        dx_lin = self.cone * dx_lin
        return _Point(dx, dx_lin, dy, ops.forward(dx), sz)

    def gap_terms(self, d: _Point) -> tuple[float, float]:
        """``<X, dS> + <dX, S>`` and ``<dX, dS>`` (with the linear parts), no ``n x n`` pass."""
        pt, ops, res = self.pt, self.ops, self.residual
        slack, move = res.slack(pt.y), res.move(d.y)
        first = move.inner(ops, pt.x, pt.fx) + slack.inner(ops, d.x, d.fx)
        first += float(pt.x_lin @ d.lam + d.x_lin @ pt.lam)
        return first, move.inner(ops, d.x, d.fx) + float(d.x_lin @ d.lam)

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
        pt, ops, steps = self.pt, self.ops, _LANCZOS_STEPS if check else _LANCZOS_ESTIMATE
        tol = _LANCZOS_TOL if check else _ESTIMATE_TOL
        t_x, self.warm[0] = cone_step(self.chol_x, d.x.__matmul__, steps, tol, self.warm[0])
        move = self.residual.move(d.y).apply(ops)
        t_s, self.warm[1] = cone_step(self.chol_s, move, steps, tol, self.warm[1])
        longest = min(max_step_vec(pt.x_lin, d.x_lin), max_step_vec(pt.lam, d.lam), t_x, t_s)
        t = min(1.0, fraction * longest)
        while check and t > 1e-12:
            x_new = torch.add(pt.x, d.x, alpha=t)  # exactly symmetric, as X and dX are
            chol_x, info = torch.linalg.cholesky_ex(x_new)
            if int(info) == 0:
                y_new = pt.y + t * d.y
                s_new = self.residual.shrunk(t).slack(y_new).dense(ops)
                chol_s, info = torch.linalg.cholesky_ex(s_new)
                if int(info) == 0:
                    fx = ops.forward(x_new)
                    moved = _Point(x_new, pt.x_lin + t * d.x_lin, y_new, fx)
                    return t, (moved, chol_x, chol_s)
            t *= _BACKTRACK
        return (0.0 if check else t), None


def _start(structure: LMIStructure, norm_c: float) -> tuple[_Point, _Residual]:
    """Scaled identities ``X = I``, ``S = (1 + ||C||_F) I``, ``lambda = 1 + ||C||_F``.

    The scales suit the rescaled problem (unit-norm layers: the optimal multipliers and
    ``rho`` are of order one). SDPT3's rule (Toh, Todd, Tutuncu 1999), with ``X`` of order
    ``n``, took 15-25% more iterations on random LipSDP instances.
    """
    ops = _Operators(structure)
    ref, n, m = structure.weights[0], structure.dim, structure.n_multipliers
    x = torch.eye(n, dtype=ref.dtype, device=ref.device)
    y = torch.cat([ref.new_full((m,), norm_c), ref.new_zeros(1)])
    x_lin = ref.new_full((m,), 1.0 if structure.slopes[0] > 0 else 0.0)
    r0 = _Affine(y, 1.0, norm_c).dense(ops)  # -R_0: S = eta I = C_tilde - A*(y_0) + R_0
    residual = _Residual(nu=1.0, y0=y, eta=norm_c, norm=float(torch.linalg.matrix_norm(r0)))
    return _Point(x, x_lin, y, ops.forward(x)), residual


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
    b = structure.weights[0].new_zeros(m + 1)
    b[-1] = -1.0
    norm_c = 1.0 + structure.constant_norm
    pt, residual = _start(structure, norm_c)
    factors = torch.linalg.cholesky(pt.x), torch.linalg.cholesky(residual.slack(pt.y).dense(ops))
    n_iter, converged = 0, False
    warm = None, None
    for n_iter in range(1, opts.max_iter + 1):  # noqa: B007 (n_iter is reported)
        r_p = b - pt.fx
        r_p[:m] += pt.x_lin
        pobj, dobj = -structure.trace_constant(pt.x), float(b @ pt.y)
        rel_gap = abs(pobj - dobj) / (1.0 + abs(pobj) + abs(dobj))
        p_inf = float(r_p.norm()) / 2.0
        d_inf = residual.nu * residual.norm / norm_c  # ||C_tilde - A*(y) - S||_F, relative
        logger.debug("ipm %d: gap %.2e pinf %.2e dinf %.2e", n_iter, rel_gap, p_inf, d_inf)
        if max(rel_gap, p_inf, d_inf) < opts.tol:
            converged = True
            break
        if residual.nu and d_inf < _FEASIBLE:  # dual feasible: S = C_tilde - A*(y) exactly
            feasible = residual.shrunk(1.0)
            chol_s, info = torch.linalg.cholesky_ex(feasible.slack(pt.y).dense(ops))
            if int(info) == 0:
                residual, factors = feasible, (factors[0], chol_s)
        gap = residual.slack(pt.y).inner(ops, pt.x, pt.fx) + float(pt.x_lin @ pt.lam)
        mu = gap / (structure.dim + m)
        newton = _Newton(ops, pt, r_p, residual, factors, warm)
        pred = newton.direction(0.0)
        t_aff, _ = newton.step(pred, 1.0, check=False)
        # <X + t dX, S + t dS> (+ the linear part), expanded: no new n x n matrices
        first, second = newton.gap_terms(pred)
        gap_aff = gap + t_aff * first + t_aff**2 * second
        sigma = min(1.0, max(0.0, gap_aff / gap)) ** 3  # Mehrotra's heuristic
        d = newton.direction(sigma * mu, pred)
        # One step length for both sides: separate ones lost centrality on LipSDP.
        t, confirmed = newton.step(d, opts.step_fraction)
        if confirmed is None:  # no step keeps the iterate interior: stop with what we have
            logger.warning("interior-point method stalled at iteration %d", n_iter)
            break
        logger.debug("ipm %d: step %.3g, sigma %.3g", n_iter, t, sigma)
        pt, factors, warm = confirmed[0], confirmed[1:], tuple(newton.warm)
        residual = residual.shrunk(t)
    lower = structure.trace_constant(pt.x) / float(pt.x[:n0, :n0].trace())
    return IPMResult(
        multipliers=pt.lam.clone(), rho=float(pt.y[-1]), lower=lower, n_iter=n_iter,
        converged=converged,
    )  # fmt: skip
