r"""LipSDP written directly in cvxpy: the reference modelling path (any installed solver).

The LMI of Fazlyab et al. (NeurIPS 2019, arXiv 1906.04893, Theorem 2),

.. math::
    \begin{bmatrix}A\\B\end{bmatrix}^{\!\top}
    \begin{bmatrix}-2\alpha\beta T&(\alpha+\beta)T\\(\alpha+\beta)T&-2T\end{bmatrix}
    \begin{bmatrix}A\\B\end{bmatrix}
    +\operatorname{diag}(-\rho I_{n_0},0,\dots,0,W_L^\top W_L)\preceq0,

is built by :func:`build_lipsdp` and solved by :func:`solve_lipsdp`, which maps the solver's
status onto :class:`EstimateStatus` through one dict. The multipliers found are certified
afterwards like those of every other backend.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np

from robustlaw.empirical.lipschitz.lipsdp_prepare import LipSDPOptions, Prepared, prepare
from robustlaw.empirical.lipschitz.result import EstimateStatus
from robustlaw.errors import SolverError, SolverUnavailableError, ValidationError

__all__ = ["LipSDPProblem", "build_lipsdp", "build_prepared", "solve_lipsdp"]

#: cvxpy status -> estimate status. Inaccurate answers are kept only if their multipliers
#: certify a bound, and then they are reported as MAX_ITER (valid but maybe loose).
_STATUS = {
    cp.OPTIMAL: EstimateStatus.OPTIMAL,
    cp.OPTIMAL_INACCURATE: EstimateStatus.MAX_ITER,
    cp.USER_LIMIT: EstimateStatus.MAX_ITER,
}

#: How each solver spells the tolerance ``eps`` and the iteration limit ``max_iter``.
_SOLVER_SETTINGS = {
    "SCS": lambda eps, it: {"eps_abs": eps, "eps_rel": eps, "max_iters": it},
    "CLARABEL": lambda eps, it: {
        "tol_gap_abs": eps,
        "tol_gap_rel": eps,
        "tol_feas": eps,
        "max_iter": it,
    },
    "CVXOPT": lambda eps, it: {"abstol": eps, "reltol": eps, "feastol": eps, "max_iters": it},
}


@dataclass(frozen=True, kw_only=True)
class LipSDPProblem:
    """A LipSDP problem in cvxpy, built but not solved.

    Attributes
    ----------
    problem : cvxpy.Problem
        Minimize ``rho`` subject to the LMI and ``lambda >= 0``.
    rho : cvxpy.Variable
        The squared Lipschitz bound.
    multipliers : cvxpy.Variable
        The free multipliers, shape ``(m,)``.
    """

    problem: cp.Problem
    rho: cp.Variable
    multipliers: cp.Variable
    prepared: Prepared


def build_lipsdp(
    weights: Any, *, variant: str = "neuron", slope_bounds: tuple[float, float] = (0.0, 1.0)
) -> LipSDPProblem:
    """Write the LipSDP LMI of a network in cvxpy (not solved).

    Dead units are dropped and the input compressed first, as for every backend.

    Parameters
    ----------
    weights : sequence of array_like
        ``(out, in)`` matrices from input to output.
    variant : {"neuron", "layer"}
        One multiplier per hidden unit or per hidden layer.
    slope_bounds : tuple of float
        The activation's ``(alpha, beta)``.

    Returns
    -------
    LipSDPProblem

    Examples
    --------
    >>> problem = build_lipsdp([np.eye(2), np.array([[3.0, 4.0]])])
    >>> problem.multipliers.shape, problem.problem.is_dcp()
    ((2,), True)
    """
    return build_prepared(prepare(weights, variant), slope_bounds)


def build_prepared(prepared: Prepared, slopes: tuple[float, float]) -> LipSDPProblem:
    """:func:`build_lipsdp` for a network that :func:`prepare` already processed."""
    alpha, beta = slopes
    ws = prepared.weights
    n0, sizes = ws[0].shape[1], [w.shape[0] for w in ws[:-1]]
    n_hidden = sum(sizes)
    a_mat = np.zeros((n_hidden, n0 + n_hidden))
    row, col = 0, 0
    for w in ws[:-1]:
        a_mat[row : row + w.shape[0], col : col + w.shape[1]] = w
        row, col = row + w.shape[0], col + w.shape[1]
    b_mat = np.hstack([np.zeros((n_hidden, n0)), np.eye(n_hidden)])
    expand = np.zeros((n_hidden, prepared.n_multipliers))
    expand[np.arange(n_hidden), prepared.groups] = 1.0
    lam = cp.Variable(prepared.n_multipliers, name="lambda")
    rho = cp.Variable(name="rho")
    t_mat = cp.diag(expand @ lam)
    stacked = np.vstack([a_mat, b_mat])
    middle = cp.bmat(
        [[-2 * alpha * beta * t_mat, (alpha + beta) * t_mat], [(alpha + beta) * t_mat, -2 * t_mat]]
    )
    constant = np.zeros((n0 + n_hidden,) * 2)
    last = ws[-1].shape[1]
    constant[-last:, -last:] = ws[-1].T @ ws[-1]
    input_block = np.zeros_like(constant)
    input_block[:n0, :n0] = np.eye(n0)
    lmi = stacked.T @ middle @ stacked - rho * input_block + constant
    constraints = [(lmi + lmi.T) / 2 << 0, lam >= 0]
    return LipSDPProblem(
        problem=cp.Problem(cp.Minimize(rho), constraints),
        rho=rho,
        multipliers=lam,
        prepared=prepared,
    )


def solve_lipsdp(
    problem: LipSDPProblem, options: LipSDPOptions
) -> tuple[np.ndarray, float, EstimateStatus, dict[str, Any]]:
    """Solve a built problem; return multipliers, the solver's rho, status and solver stats.

    Parameters
    ----------
    problem : LipSDPProblem
        From :func:`build_lipsdp`.
    options : LipSDPOptions
        ``solver`` (a cvxpy solver name), ``cvxpy_eps`` and ``cvxpy_max_iter`` are used.

    Raises
    ------
    ValidationError
        If ``options.solver`` is ``"ipm"``, which is not a cvxpy solver.
    SolverUnavailableError
        If the solver is not installed (the message lists the installed ones).
    SolverError
        If the solver fails or ends with a status other than optimal, optimal-inaccurate or
        user-limit (the status is in the message). The two inaccurate statuses are the
        documented fallback: their multipliers go on to certification, and the estimate gets
        status ``MAX_ITER`` (a valid but maybe loose bound); cvxpy's warnings are kept in
        ``details["solver_warnings"]``.
    """
    opts = options
    if not isinstance(opts, LipSDPOptions) or opts.solver == "ipm":
        raise ValidationError(
            f"options must be LipSDPOptions with a cvxpy solver (e.g. solver='SCS'), got {opts!r}"
        )
    installed = cp.installed_solvers()
    if opts.solver not in installed:
        raise SolverUnavailableError(
            f"cvxpy solver {opts.solver!r} is not installed; installed: {', '.join(installed)}"
        )
    settings = _SOLVER_SETTINGS.get(opts.solver, lambda eps, it: {})(
        opts.cvxpy_eps, opts.cvxpy_max_iter
    )
    # cvxpy warns about inaccurate solutions; that is the status, kept with the warnings' text.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            problem.problem.solve(solver=opts.solver, **settings)
        except cp.SolverError as err:
            raise SolverError(f"cvxpy solver {opts.solver} failed: {err}") from err
    status = problem.problem.status
    if status not in _STATUS or problem.multipliers.value is None:
        raise SolverError(f"cvxpy solver {opts.solver} ended with status {status!r}")
    stats = problem.problem.solver_stats
    info = {
        "solver_status": status,
        "solver_seconds": stats.solve_time,
        "solver_warnings": [str(w.message) for w in caught],
        "n_iter": stats.num_iters,
    }
    lam = np.maximum(np.asarray(problem.multipliers.value, dtype=np.float64), 0.0)
    return lam, float(problem.rho.value), _STATUS[status], info
