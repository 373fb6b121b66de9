"""LipSDP upper bounds on the l2 Lipschitz constant, every one of them certified.

LipSDP is Fazlyab, Robey, Hassani, Morari, Pappas, "Efficient and Accurate Estimation of
Lipschitz Constants for Deep Neural Networks" (NeurIPS 2019, arXiv 1906.04893). For an
activation slope-restricted in :math:`[\\alpha,\\beta]`, multipliers :math:`\\lambda\\ge0`
with :math:`M(\\rho,\\lambda)\\preceq0` prove :math:`\\operatorname{Lip}(f)\\le\\sqrt\\rho`;
LipSDP minimizes :math:`\\rho`.

Two backends search for multipliers:

- ``"fast"`` (the default, also ``"auto"``): a primal-dual interior-point method that uses the
  rank-two structure of the constraint matrices (:mod:`.sdp_solver`), in torch float64 on the
  GPU when there is one;
- ``"cvxpy"``: the LMI written in cvxpy (:mod:`.lipsdp_cvxpy`), with any installed solver.

Whatever the backend, the value returned is :math:`\\sqrt{\\rho(\\lambda)}`, recomputed from the
multipliers alone in float64 (:mod:`.certify`). Dead units are dropped and the input is
compressed exactly before solving and certifying.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robustlaw._validation import get_registered
from robustlaw.empirical.ensemble import resolve_device
from robustlaw.empirical.lipschitz.lipsdp_prepare import Prepared, as_torch, layer_scales, prepare
from robustlaw.empirical.lipschitz.result import EstimateStatus, LipschitzEstimate
from robustlaw.empirical.lipschitz.sdp_solver import IPMOptions, solve_ipm
from robustlaw.empirical.lipschitz.sdp_structure import LMIStructure
from robustlaw.empirical.lipschitz.slopes import slope_bounds
from robustlaw.errors import ValidationError

__all__ = ["BACKENDS", "certify", "lipsdp"]


@dataclass(frozen=True, kw_only=True)
class _Outcome:
    """What a backend found: free multipliers and the solver's own view (original units)."""

    multipliers: np.ndarray
    solver_rho: float
    status: EstimateStatus
    n_iter: int
    solver: str
    details: dict[str, Any] = field(default_factory=dict)


def _run_fast(prepared: Prepared, slopes, solver, tol, max_iter, device) -> _Outcome:
    if solver not in (None, "ipm"):
        raise ValidationError(
            f"solver must be None or 'ipm' for backend='fast', got {solver!r}; cvxpy solvers "
            "need backend='cvxpy'"
        )
    dev = resolve_device(device or "auto")
    scales = layer_scales(prepared.weights)
    scaled = [w / s for w, s in zip(prepared.weights, scales, strict=True)]
    structure = LMIStructure(
        as_torch(scaled, dev),
        slopes,
        torch.as_tensor(prepared.groups, device=dev),
        prepared.n_multipliers,
    )
    defaults = IPMOptions()
    options = IPMOptions(tol=tol or defaults.tol, max_iter=max_iter or defaults.max_iter)
    result = solve_ipm(structure, options)
    # Undo the rescaling W_l -> W_l / s_l: rho = rho' prod s^2, and a unit of hidden layer l
    # gets lambda = lambda' prod_{k >= l} s_k^2 (LipSDP is invariant under this change).
    sq = scales**2
    unit_factor = np.cumprod(sq[::-1])[::-1][1:]  # prod_{k >= l} s_k^2 for l = 1..L
    per_multiplier = np.zeros(prepared.n_multipliers)
    sizes = [w.shape[0] for w in prepared.weights[:-1]]
    per_multiplier[prepared.groups] = np.repeat(unit_factor, sizes)
    lam = result.multipliers.cpu().numpy() * per_multiplier
    total = float(np.prod(sq))
    return _Outcome(
        multipliers=lam,
        solver_rho=result.rho * total,
        status=EstimateStatus.OPTIMAL if result.converged else EstimateStatus.MAX_ITER,
        n_iter=result.n_iter,
        solver="ipm",
        details={"device": str(dev), "dual_rho": result.lower * total},
    )


def _run_cvxpy(prepared: Prepared, slopes, solver, tol, max_iter, device) -> _Outcome:
    from robustlaw.empirical.lipschitz.lipsdp_cvxpy import (
        LipSDPOptions,
        build_prepared,
        solve_lipsdp,
    )

    defaults = LipSDPOptions()
    options = LipSDPOptions(
        solver=solver or defaults.solver,
        eps=tol or defaults.eps,
        max_iter=max_iter or defaults.max_iter,
    )
    lam, rho, status, info = solve_lipsdp(build_prepared(prepared, slopes), options)
    return _Outcome(
        multipliers=lam,
        solver_rho=rho,
        status=status,
        n_iter=int(info.pop("n_iter") or 0),
        solver=f"cvxpy:{options.solver}",
        details=info,
    )


#: LipSDP backends: name -> function(prepared, slopes, solver, tol, max_iter, device).
BACKENDS: dict[str, Callable[..., _Outcome]] = {
    "auto": _run_fast,
    "fast": _run_fast,
    "cvxpy": _run_cvxpy,
}


def lipsdp(
    weights: Any,
    *,
    variant: str = "neuron",
    activation: str | tuple[float, float] | None = None,
    backend: str = "auto",
    solver: str | None = None,
    tol: float | None = None,
    max_iter: int | None = None,
    device: str | torch.device | None = None,
) -> LipschitzEstimate:
    """A certified LipSDP upper bound on the l2 Lipschitz constant of an MLP.

    Parameters
    ----------
    weights : sequence of array_like, nn.Sequential or state dict
        One network, ``(out, in)`` matrices from input to output (masks applied; biases are
        ignored since they do not change the constant).
    variant : {"neuron", "layer"}
        One multiplier per hidden unit (tighter) or per hidden layer. ``"network"`` is refused:
        it is unsound.
    activation : str or (float, float), optional
        A registered activation (``"relu"``, ``"leaky_relu"``, ``"tanh"``, ``"sigmoid"``) or
        slope bounds ``(alpha, beta)``; by default the model's own (``"relu"`` for weights).
    backend : {"auto", "fast", "cvxpy"}
        ``"auto"`` is ``"fast"``, the structured interior-point method.
    solver : str, optional
        For ``"cvxpy"``: a cvxpy solver name (default ``"SCS"``). For ``"fast"``: ``"ipm"``.
    tol : float, optional
        Solver tolerance (fast: 1e-8 relative gap and infeasibility; cvxpy: ``eps`` 1e-9).
    max_iter : int, optional
        Solver iteration limit (fast: 100; cvxpy: 200000).
    device : str or torch.device, optional
        Where the fast solver runs (CUDA when available, else CPU).

    Returns
    -------
    LipschitzEstimate
        ``kind="upper"``, ``certified=True``, method ``"lipsdp-neuron"`` or ``"lipsdp-layer"``.
        ``details`` holds the backend, the multipliers (original units, after preprocessing),
        ``solver_rho`` (the solver's own objective), ``certified_rho``, their relative
        ``gap``, the layer sizes before and after preprocessing and the dead units dropped.

    Raises
    ------
    ValidationError
        Bad weights, an unknown variant (``"network"`` explains why it is absent), backend or
        activation.
    SolverUnavailableError
        A cvxpy solver that is not installed (the message lists the installed ones).
    SolverError
        The solver failed, or its multipliers certify nothing.

    Examples
    --------
    >>> est = lipsdp([np.eye(2), np.array([[3.0, 4.0]])])
    >>> round(est.value, 6), est.kind, est.certified
    (5.0, 'upper', True)
    """
    start = time.perf_counter()
    slopes = slope_bounds(activation if activation is not None else _own_activation(weights))
    run = get_registered(BACKENDS, backend, "LipSDP backend")
    prepared = prepare(weights, variant)
    method = f"lipsdp-{variant}"
    if prepared.closed_form is not None:
        value, reason = prepared.closed_form
        return LipschitzEstimate(
            value=value, kind="upper", method=method, status=EstimateStatus.OPTIMAL,
            certified=True, seconds=time.perf_counter() - start, solver="closed_form",
            details={"backend": backend, "reason": reason, **prepared.details},
        )  # fmt: skip
    outcome = run(prepared, slopes, solver, tol, max_iter, device)
    rho = prepared.certify(outcome.multipliers, slopes)
    details = {
        "backend": backend,
        "multipliers": outcome.multipliers.tolist(),
        "solver_rho": outcome.solver_rho,
        "certified_rho": rho,
        "gap": abs(rho - outcome.solver_rho) / max(rho, 1e-300),
        "slopes": slopes,
        **prepared.details,
        **outcome.details,
    }
    return LipschitzEstimate(
        value=math.sqrt(rho), kind="upper", method=method, status=outcome.status,
        certified=True, seconds=time.perf_counter() - start, n_iter=outcome.n_iter,
        solver=outcome.solver, details=details,
    )  # fmt: skip


def _own_activation(weights: Any) -> str:
    from robustlaw.empirical.lipschitz.weights import as_network

    return as_network(weights).activation


def certify(
    weights: Any,
    multipliers: Any,
    *,
    activation: str | tuple[float, float] = "relu",
) -> float:
    """The Lipschitz bound :math:`\\sqrt{\\rho(\\lambda)}` that given multipliers prove.

    No preprocessing: the multipliers belong to the hidden units of ``weights`` as given.

    Parameters
    ----------
    weights : sequence of array_like
        ``W_0, ..., W_L`` in ``(out, in)`` order.
    multipliers : array_like
        One per hidden unit (shape ``(N,)``) or one per hidden layer (shape ``(L,)``).
    activation : str or (float, float)
        Registered activation or slope bounds.

    Returns
    -------
    float
        The certified upper bound.

    Raises
    ------
    SolverError
        If the multipliers are negative or leave the hidden block not negative definite.

    Examples
    --------
    >>> certify([[[1.0]], [[2.0]]], [4.0])
    2.0
    """
    from robustlaw.empirical.lipschitz.certify import certify_rho
    from robustlaw.empirical.lipschitz.weights import as_weight_list

    ws = [w.cpu().numpy() for w in as_weight_list(weights)]
    lam = np.asarray(multipliers, dtype=np.float64).ravel()
    sizes = [w.shape[0] for w in ws[:-1]]
    if lam.shape[0] == len(sizes) and lam.shape[0] != sum(sizes):
        lam = np.repeat(lam, sizes)
    if lam.shape[0] != sum(sizes):
        raise ValidationError(
            f"multipliers must have one entry per hidden unit ({sum(sizes)}) or per hidden "
            f"layer ({len(sizes)}), got {lam.shape[0]}"
        )
    return math.sqrt(certify_rho(ws, lam, slope_bounds(activation)))
