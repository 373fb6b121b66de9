r"""LipSDP upper bounds on the l2 Lipschitz constant, every one of them certified.

LipSDP is Fazlyab, Robey, Hassani, Morari, Pappas, "Efficient and Accurate Estimation of
Lipschitz Constants for Deep Neural Networks" (NeurIPS 2019, arXiv 1906.04893). For an
activation slope-restricted in :math:`[\alpha,\beta]`, multipliers :math:`\lambda\ge0`
with :math:`M(\rho,\lambda)\preceq0` prove :math:`\operatorname{Lip}(f)\le\sqrt\rho`;
LipSDP minimizes :math:`\rho`.

The solver (:class:`~.lipsdp_prepare.LipSDPOptions`) searches for multipliers:

- ``"ipm"`` (the default): a primal-dual interior-point method that uses the rank-two
  structure of the constraint matrices (:mod:`.sdp_solver`), in torch float64 on the GPU when
  there is one;
- a cvxpy solver name (``"SCS"``, ``"CLARABEL"``): the LMI written in cvxpy
  (:mod:`.lipsdp_cvxpy`).

Whatever the solver, the value returned is :math:`\sqrt{\rho(\lambda)}`, recomputed from the
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
    multiplier_factors,
    prepare,
)
from robustlaw.empirical.lipschitz.result import (
    EstimateStatus,
    LipschitzEstimate,
    resolve_options,
    scale_back,
    stack_members,
    zero_estimate,
)
from robustlaw.empirical.lipschitz.sdp_solver import IPMOptions, solve_ipm
from robustlaw.empirical.lipschitz.sdp_structure import LMIStructure
from robustlaw.empirical.lipschitz.weights import as_network, as_weight_list, normalize_layers
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
    sq = scales**2  # undo the rescaling W_l -> W_l / s_l
    lam = result.multipliers.cpu().numpy() * multiplier_factors(prepared, sq)
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


def _in_range(value: float, exponent: int, status, details: dict, **fields) -> LipschitzEstimate:
    """The estimate for ``value * 2**exponent``; out of float64's range it is not certified."""
    scaled, ok, extra = scale_back(np.array([value]), np.array([exponent]))
    status, certified = (status, True) if ok.all() else (EstimateStatus.INACCURATE, False)
    return LipschitzEstimate(
        value=float(scaled[0]), kind="upper", status=status, certified=certified,
        details={**details, **{k: v[0] for k, v in extra.items()}}, **fields,
    )  # fmt: skip


def _one(weights, exponents, variant: str, slopes, options: LipSDPOptions) -> LipschitzEstimate:
    """LipSDP on one network (2-D weights ``W_l / 2^{e_l}``, ``exponents`` the ``e_l``)."""
    start = time.perf_counter()
    prepared = prepare(weights, variant)
    method = f"lipsdp-{variant}"
    total = int(exponents.sum())
    if prepared.closed_form is not None:
        value, reason = prepared.closed_form
        return _in_range(
            value, total, EstimateStatus.OPTIMAL, {"reason": reason, **prepared.details},
            method=method, seconds=time.perf_counter() - start, solver="closed_form",
        )  # fmt: skip
    run = _run_ipm if options.solver == "ipm" else _run_cvxpy
    outcome = run(prepared, slopes, options)
    rho = prepared.certify(outcome.multipliers, slopes)
    # back to the units of the network as given (exact: powers of two)
    with np.errstate(over="ignore", under="ignore"):  # details only: the value is checked
        squares = np.ldexp(1.0, 2 * exponents)
        lam = outcome.multipliers * multiplier_factors(prepared, squares)
        to_rho = float(np.ldexp(1.0, 2 * total))
    details = {
        "multipliers": lam.tolist(),
        "solver_rho": outcome.solver_rho * to_rho,
        "certified_rho": rho * to_rho,
        "gap": abs(rho - outcome.solver_rho) / max(rho, 1e-300),
        "slopes": slopes,
        **prepared.details,
        **outcome.details,
    }
    if "dual_rho" in details:
        details["dual_rho"] *= to_rho
    return _in_range(
        math.sqrt(rho), total, outcome.status, details, method=method,
        seconds=time.perf_counter() - start, n_iter=outcome.n_iter, solver=outcome.solver,
    )  # fmt: skip


def _lipsdp(net: Any, options: LipSDPOptions, variant: str) -> LipschitzEstimate:
    """Member by member; an ensemble's estimate stacks them (:func:`stack_members`)."""
    start = time.perf_counter()
    network = as_network(net)
    slopes = activation_slope_bounds(
        network.activation if options.activation is None else options.activation
    )
    if network.constant_by_shape:
        return zero_estimate(
            f"lipsdp-{variant}", "upper", n_members=network.n_members, batched=network.batched,
            seconds=time.perf_counter() - start, reason=f"layer sizes {network.layer_sizes}",
        )  # fmt: skip
    weights, exponents = normalize_layers(network.weights)
    members = [
        _one([w[k] for w in weights], exponents[k].numpy(), variant, slopes, options)
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
        are ignored: they can change the constant, but the bound holds for any biases). An
        ensemble is solved member by member and gives one value per member. Every layer is
        first scaled by a power of two (exact; LipSDP is homogeneous in each layer), so
        weights of any scale float64 can represent work.
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
        ``details["members"]``). A constant network gets 0. A bound outside float64's range
        comes with status ``INACCURATE``, ``certified=False`` and ``details["log_value"]``.

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
    r"""The Lipschitz bound :math:`\sqrt{\rho(\lambda)}` that given multipliers prove.

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
