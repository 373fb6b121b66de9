"""LipSDP upper bounds on the l2 Lipschitz constant, every one of them certified.

LipSDP is Fazlyab, Robey, Hassani, Morari, Pappas, "Efficient and Accurate Estimation of
Lipschitz Constants for Deep Neural Networks" (NeurIPS 2019, arXiv 1906.04893). For an
activation slope-restricted in :math:`[\\alpha,\\beta]`, multipliers :math:`\\lambda\\ge0`
with :math:`M(\\rho,\\lambda)\\preceq0` prove :math:`\\operatorname{Lip}(f)\\le\\sqrt\\rho`;
LipSDP minimizes :math:`\\rho`.

The solver (:class:`~.lipsdp_prepare.LipSDPOptions`) searches for multipliers:

- ``"ipm"`` (the default): a primal-dual interior-point method that uses the rank-two
  structure of the constraint matrices (:mod:`.sdp_solver`), in torch float64 on the GPU when
  there is one;
- a cvxpy solver name (``"SCS"``, ``"CLARABEL"``): the LMI written in cvxpy
  (:mod:`.lipsdp_cvxpy`).

Whatever the solver, the value returned is :math:`\\sqrt{\\rho(\\lambda)}`, recomputed from the
multipliers alone in float64 (:mod:`.certify`). Dead units are dropped and the input is
compressed exactly before solving and certifying.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robustlaw.empirical.ensemble import resolve_device
from robustlaw.empirical.lipschitz.activation_bounds import activation_slope_bounds
from robustlaw.empirical.lipschitz.lipsdp_prepare import (
    LipSDPOptions,
    Prepared,
    as_torch,
    layer_scales,
    prepare,
)
from robustlaw.empirical.lipschitz.result import (
    EstimateStatus,
    LipschitzEstimate,
    resolve_options,
    stack_members,
)
from robustlaw.empirical.lipschitz.sdp_solver import IPMOptions, solve_ipm
from robustlaw.empirical.lipschitz.sdp_structure import LMIStructure
from robustlaw.empirical.lipschitz.weights import as_network, as_weight_list
from robustlaw.errors import ValidationError

__all__ = ["certify", "lipsdp_layer", "lipsdp_neuron"]


@dataclass(frozen=True, kw_only=True)
class _Outcome:
    """What a solver found: free multipliers and the solver's own view (original units)."""

    multipliers: np.ndarray
    solver_rho: float
    status: EstimateStatus
    n_iter: int
    solver: str
    details: dict[str, Any] = field(default_factory=dict)


def _run_ipm(prepared: Prepared, slopes, options: LipSDPOptions) -> _Outcome:
    dev = resolve_device(options.device)
    scales = layer_scales(prepared.weights)
    scaled = [w / s for w, s in zip(prepared.weights, scales, strict=True)]
    structure = LMIStructure(
        as_torch(scaled, dev),
        slopes,
        torch.as_tensor(prepared.groups, device=dev),
        prepared.n_multipliers,
    )
    result = solve_ipm(structure, IPMOptions(tol=options.ipm_tol, max_iter=options.ipm_max_iter))
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


def _run_cvxpy(prepared: Prepared, slopes, options: LipSDPOptions) -> _Outcome:
    from robustlaw.empirical.lipschitz.lipsdp_cvxpy import build_prepared, solve_lipsdp

    lam, rho, status, info = solve_lipsdp(build_prepared(prepared, slopes), options)
    return _Outcome(
        multipliers=lam,
        solver_rho=rho,
        status=status,
        n_iter=int(info.pop("n_iter") or 0),
        solver=f"cvxpy:{options.solver}",
        details=info,
    )


def _one(weights, variant: str, slopes, options: LipSDPOptions) -> LipschitzEstimate:
    """LipSDP on one network (2-D weights)."""
    start = time.perf_counter()
    prepared = prepare(weights, variant)
    method = f"lipsdp-{variant}"
    if prepared.closed_form is not None:
        value, reason = prepared.closed_form
        return LipschitzEstimate(
            value=value, kind="upper", method=method, status=EstimateStatus.OPTIMAL,
            certified=True, seconds=time.perf_counter() - start, solver="closed_form",
            details={"reason": reason, **prepared.details},
        )  # fmt: skip
    run = _run_ipm if options.solver == "ipm" else _run_cvxpy
    outcome = run(prepared, slopes, options)
    rho = prepared.certify(outcome.multipliers, slopes)
    details = {
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


def _lipsdp(net: Any, options: LipSDPOptions, variant: str) -> LipschitzEstimate:
    """Member by member; an ensemble's estimate stacks them (:func:`stack_members`)."""
    start = time.perf_counter()
    network = as_network(net)
    slopes = activation_slope_bounds(
        network.activation if options.activation is None else options.activation
    )
    members = [
        _one([w[k] for w in network.weights], variant, slopes, options)
        for k in range(network.n_members)
    ]
    return stack_members(members, time.perf_counter() - start) if network.batched else members[0]


_DOC = """A certified LipSDP-{Variant} upper bound on the l2 Lipschitz constant of an MLP.

    The ``"lipsdp-{variant}"`` method of
    :data:`~robustlaw.empirical.lipschitz.registry.LIPSCHITZ_METHODS`: {what}

    Parameters
    ----------
    net : weights, Ensemble, nn.Sequential or state dict
        See :func:`~robustlaw.empirical.lipschitz.weights.as_network` (masks applied; biases
        are ignored since they do not change the constant). An ensemble is solved member by
        member and gives one value per member.
    options : LipSDPOptions, optional
        Activation, solver and its limits; the defaults when omitted.
    X, generator
        Ignored (the bound needs neither data nor randomness); accepted for the common
        signature.

    Returns
    -------
    LipschitzEstimate
        ``kind="upper"``, ``certified=True``, method ``"lipsdp-{variant}"``. ``details`` holds
        the multipliers (original units, after preprocessing), ``solver_rho`` (the solver's
        own objective), ``certified_rho``, their relative ``gap``, the layer sizes before and
        after preprocessing and the dead units dropped (for an ensemble, per member in
        ``details["members"]``).

    Raises
    ------
    ValidationError
        Bad weights or options of another type.
    SolverUnavailableError
        A cvxpy solver that is not installed (the message lists the installed ones).
    SolverError
        The solver failed, or its multipliers certify nothing.

    Examples
    --------
    >>> est = lipsdp_{variant}([np.eye(2), np.array([[3.0, 4.0]])])
    >>> round(est.value, 6), est.kind, est.certified
    (5.0, 'upper', True)
    """


def lipsdp_neuron(
    net: Any,
    options: LipSDPOptions | None = None,
    *,
    X: Any = None,
    generator: torch.Generator | None = None,
) -> LipschitzEstimate:
    return _lipsdp(net, resolve_options(options, LipSDPOptions, "lipsdp-neuron"), "neuron")


def lipsdp_layer(
    net: Any,
    options: LipSDPOptions | None = None,
    *,
    X: Any = None,
    generator: torch.Generator | None = None,
) -> LipschitzEstimate:
    return _lipsdp(net, resolve_options(options, LipSDPOptions, "lipsdp-layer"), "layer")


lipsdp_neuron.__doc__ = _DOC.format(
    Variant="Neuron",
    variant="neuron",
    what="one multiplier per hidden unit, the tightest bound here. (LipSDP-Network is not\n"
    "    implemented: it is unsound.)",
)
lipsdp_layer.__doc__ = _DOC.format(
    Variant="Layer",
    variant="layer",
    what="one multiplier per hidden layer, looser than\n    :func:`lipsdp_neuron` and cheaper.",
)


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
    return math.sqrt(certify_rho(ws, lam, activation_slope_bounds(activation)))
