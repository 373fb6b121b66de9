r"""ECLipsE and ECLipsE-Fast: the LipSDP-Neuron LMI decomposed layer by layer.

Xu and Sivaranjani, "ECLipsE: Efficient Compositional Lipschitz Constant Estimation for Deep
Neural Networks", NeurIPS 2024 (arXiv 2404.04375). The LMI of LipSDP-Neuron is block
tridiagonal; eliminating its blocks one by one (Schur complements) leaves, with
:math:`m = (\alpha + \beta)/2`, :math:`X_0 = I` and a diagonal multiplier :math:`L_i \ge 0`
per hidden layer,

.. math::

    X_i = L_i - m^2 L_i W_{i-1} X_{i-1}^{-1} W_{i-1}^\top L_i \succ 0, \qquad
    \operatorname{Lip}(f)^2 \le \lambda_{\max}(W_L^\top W_L X_L^{-1}).

Any multipliers for which every :math:`X_i` is positive definite certify the bound, so the
value is recomputed from them in float64 whatever chose them. ECLipsE-Fast takes
:math:`L_i = l_i I` with :math:`l_i = 1/(2 m^2 \lambda_{\max}(W_{i-1} X_{i-1}^{-1}
W_{i-1}^\top))`, the scalar that maximizes :math:`\lambda_{\min}(X_i)`; ECLipsE chooses
diagonal :math:`L_i` by a small SDP per layer (size :math:`2 n_i`), so its cost grows linearly
with depth. That SDP, maximize :math:`s` with :math:`X_i \succeq s W_i^\top W_i`, equals
minimizing :math:`\lambda_{\max}(W_i X_i^{-1} W_i^\top)` over :math:`L_i`, which is solved here
by batched descent (or through cvxpy, as the reference).

For activations with :math:`\alpha\beta > 0` (leaky ReLU) the LMI has extra terms
:math:`2\alpha\beta W^\top T W` on its diagonal blocks; they are positive semidefinite in the
negated LMI, so leaving them out (as done here) keeps the bound sound, only looser.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from robustlaw._validation import check_integer
from robustlaw.empirical.lipschitz.activation_bounds import activation_slope_bounds
from robustlaw.empirical.lipschitz.result import (
    EstimateStatus,
    LipschitzEstimate,
    resolve_options,
    scale_back,
    zero_estimate,
)
from robustlaw.empirical.lipschitz.weights import (
    as_network,
    compress_input,
    constant_members,
    normalize_layers,
    zero_dead_units,
)
from robustlaw.errors import SolverError, SolverUnavailableError, ValidationError

__all__ = ["EclipseFastOptions", "EclipseOptions", "eclipse", "eclipse_fast"]

logger = logging.getLogger(__name__)


def _next_gram(chol: torch.Tensor | None, W: torch.Tensor, m: float) -> torch.Tensor:
    """``m^2 W X^{-1} W^T`` for ``X = chol chol^T`` (``X = I`` when ``chol`` is None)."""
    wt = W.transpose(-1, -2)
    f = wt if chol is None else torch.linalg.solve_triangular(chol, wt, upper=False)
    return m**2 * (f.transpose(-1, -2) @ f)


def _fast_multipliers(gram: torch.Tensor) -> torch.Tensor:
    """ECLipsE-Fast's ``l_i I`` as a diagonal ``(K, n)``: ``1 / (2 lambda_max(m^2 W X^-1 W^T))``."""
    top = torch.linalg.eigvalsh(gram)[..., -1]
    l = 1.0 / (2.0 * top.clamp_min(torch.finfo(gram.dtype).tiny))
    return l.unsqueeze(-1).expand(gram.shape[:-1])


def _check_solver(solver: str) -> None:
    import cvxpy as cp

    if solver not in cp.installed_solvers():
        raise SolverUnavailableError(
            f"solver {solver!r} is not installed; installed: torch, "
            f"{', '.join(cp.installed_solvers())}"
        )


def _sdp_multipliers(gram: torch.Tensor, w_next: torch.Tensor, solver: str) -> torch.Tensor:
    """ECLipsE's per-layer SDP for one member: maximize ``s`` subject to
    ``[[L - s W_next^T W_next, L K^(1/2)], [K^(1/2) L, I]] >= 0`` with ``L = diag(lam) >= 0``."""
    import cvxpy as cp

    # dead units (zeroed by zero_dead_units) couple to nothing: any positive multiplier fits
    live = np.flatnonzero(np.any(w_next != 0, axis=0))
    full = np.ones(gram.shape[0])
    gram, w_next = gram[np.ix_(live, live)], w_next[:, live]
    evals, evecs = np.linalg.eigh(gram)
    half = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    n = gram.shape[0]
    lam, s = cp.Variable(n, nonneg=True), cp.Variable()
    big = w_next.T @ w_next
    scaled = cp.multiply(cp.reshape(lam, (n, 1), order="C"), half)  # diag(lam) K^(1/2)
    block = cp.bmat([[cp.diag(lam) - s * big, scaled], [scaled.T, np.eye(n)]])
    problem = cp.Problem(cp.Maximize(s), [(block + block.T) / 2 >> 0, s >= 0])
    try:
        problem.solve(solver=solver)
    except cp.error.SolverError as err:
        raise SolverError(f"ECLipsE layer SDP: {solver} failed ({err})") from err
    if problem.status not in ("optimal", "optimal_inaccurate") or lam.value is None:
        raise SolverError(f"ECLipsE layer SDP ended with status {problem.status!r}")
    full[live] = np.clip(lam.value, 0, None)
    return torch.as_tensor(full)


def _layer_objective(theta: torch.Tensor, gram: torch.Tensor, w_next: torch.Tensor, power):
    """``log ||eig(W_next X^-1 W_next^T)||_power`` (``power=None``: the largest eigenvalue) with
    ``X = L - L K L``, ``L = diag(e^theta)``; ``+inf`` where ``X`` is not positive definite."""
    lam = theta.exp()
    x = torch.diag_embed(lam) - lam.unsqueeze(-1) * gram * lam.unsqueeze(-2)
    chol, info = torch.linalg.cholesky_ex(x)
    ok = info == 0
    chol = torch.where(ok[:, None, None], chol, torch.eye(x.shape[-1], dtype=x.dtype))
    eig = torch.linalg.eigvalsh(_next_gram(chol, w_next, 1.0)).clamp_min(1e-300).log()
    value = eig[..., -1] if power is None else torch.logsumexp(power * eig, -1) / power
    return torch.where(ok, value, torch.full_like(value, float("inf")))


def _descent_multipliers(gram: torch.Tensor, w_next: torch.Tensor, steps: int) -> torch.Tensor:
    """ECLipsE's layer problem, batched: maximize ``s`` with ``X_i >= s W_next^T W_next``, i.e.
    minimize ``lambda_max(W_next X_i^{-1} W_next^T)`` over diagonal ``L_i > 0``.

    Normalized gradient steps on ``log L_i`` with per-member step control, from
    ECLipsE-Fast's ``l_i I``, on the eigenvalues' ``p``-norm with ``p`` driven from 8 to 1024
    (``lambda_max`` itself is not smooth where eigenvalues meet); the best multipliers for the
    real ``lambda_max`` are kept, and every step keeps ``X_i`` positive definite."""
    theta = _fast_multipliers(gram).log().clone()
    best, best_value = theta, _layer_objective(theta, gram, w_next, None)
    step = torch.full_like(best_value, 0.1)
    for t in range(steps):
        power = 8.0 * 128.0 ** (t / max(steps - 1, 1))
        probe = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            smooth = _layer_objective(probe, gram, w_next, power)
            (grad,) = torch.autograd.grad(smooth.sum(), probe)
        direction = grad / grad.abs().amax(-1, keepdim=True).clamp_min(1e-300)
        trial = theta - step[:, None] * direction
        better = _layer_objective(trial, gram, w_next, power) < smooth.detach()
        theta = torch.where(better[:, None], trial, theta)
        step = torch.where(better, step * 1.5, step * 0.5)
        value = _layer_objective(theta, gram, w_next, None)
        improved = value < best_value
        best = torch.where(improved[:, None], theta, best)
        best_value = torch.where(improved, value, best_value)
    return best.exp()


def _certify(weights, multipliers_fn, m: float):
    """Run the block recursion; return ``(rho, notes)`` with ``rho`` of shape ``(K,)``.

    ``multipliers_fn(i, gram)`` gives the diagonal multipliers ``(K, n_i)`` of hidden layer
    ``i``. A member whose ``X_i`` is not positive definite falls back to the fast multipliers.
    """
    chol, notes = None, []
    for i, W in enumerate(weights[:-1]):
        gram = _next_gram(chol, W, m)
        lam = multipliers_fn(i, gram)
        x = torch.diag_embed(lam) - lam.unsqueeze(-1) * gram * lam.unsqueeze(-2)
        chol, info = torch.linalg.cholesky_ex(x)
        if bool((info != 0).any()):
            notes.append(f"layer {i}: X not positive definite for some members; fast multipliers")
            lam = torch.where((info != 0).unsqueeze(-1), _fast_multipliers(gram), lam)
            x = torch.diag_embed(lam) - lam.unsqueeze(-1) * gram * lam.unsqueeze(-2)
            chol, info = torch.linalg.cholesky_ex(x)
            if bool((info != 0).any()):
                raise SolverError(f"ECLipsE: X_{i + 1} is not positive definite")
    rho = torch.linalg.matrix_norm(_next_gram(chol, weights[-1], 1.0), ord=2)
    return rho, notes


@dataclass(frozen=True, kw_only=True)
class EclipseFastOptions:
    """Options of the ``"eclipse-fast"`` method, :func:`eclipse_fast`.

    Attributes
    ----------
    activation : str or (alpha, beta), optional
        Slope bounds (see
        :func:`~robustlaw.empirical.lipschitz.activation_bounds.activation_slope_bounds`); by
        default (None) the network's own activation (``"relu"`` for plain weights).
    """

    activation: str | tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.activation is not None:
            activation_slope_bounds(self.activation)


@dataclass(frozen=True, kw_only=True)
class EclipseOptions:
    """Options of the ``"eclipse"`` method, :func:`eclipse` (per-layer multipliers).

    Attributes
    ----------
    activation : str or (alpha, beta), optional
        As for :class:`EclipseFastOptions`.
    solver : str
        ``"torch"`` solves each layer's problem in its equivalent form
        ``min lambda_max(W_{i+1} X_i^{-1} W_{i+1}^T)`` by batched descent on ``log L_i``
        (seconds; all members at once); a cvxpy solver name (``"CLARABEL"``, ``"SCS"``) solves
        the SDP as written in the paper, one member at a time (the reference; Clarabel takes
        minutes once a layer has about 50 units).
    max_iter : int
        Descent steps per layer for ``solver="torch"``.
    """

    activation: str | tuple[float, float] | None = None
    solver: str = "torch"
    max_iter: int = 100

    def __post_init__(self) -> None:
        if self.activation is not None:
            activation_slope_bounds(self.activation)
        if not isinstance(self.solver, str):
            raise ValidationError(
                f"solver must be 'torch' or a cvxpy solver name, got {self.solver!r}"
            )
        check_integer(self.max_iter, "max_iter", minimum=0)


def _bound(net, activation, method: str, choose, *, n_iter: int, solver: str):
    """The shared body: ``choose(safe)`` gives ``multipliers_fn(i, gram)`` for :func:`_certify`."""
    start = time.perf_counter()
    net = as_network(net)
    alpha, beta = activation_slope_bounds(net.activation if activation is None else activation)
    if net.constant_by_shape:
        return zero_estimate(
            method, "upper", n_members=net.n_members, batched=net.batched,
            seconds=time.perf_counter() - start, reason=f"layer sizes {net.layer_sizes}",
        )  # fmt: skip
    m = (alpha + beta) / 2
    # dead units out (zeroed, so that members keep one shape), then every layer scaled by a
    # power of two (exact; the bound is homogeneous in each layer), then the input compressed
    alive = zero_dead_units(net.weights)
    weights, exponents = normalize_layers(alive)
    weights = compress_input(weights)
    dead = constant_members(alive)
    safe = [torch.where(dead[:, None, None], torch.ones_like(W), W) for W in weights]
    rho, notes = _certify(safe, choose(safe), m)
    n = max(max(W.shape[-2:]) for W in weights)
    margin = 1.0 + 4.0 * n**1.5 * float(np.finfo(np.float64).eps)
    scaled = torch.where(dead, torch.zeros_like(rho), rho.sqrt() * margin).numpy()
    if not np.all(np.isfinite(scaled)):
        raise SolverError("ECLipsE produced a non-finite bound")
    value, ok, extra = scale_back(scaled, exponents.sum(dim=1).numpy())
    status, certified = (
        (EstimateStatus.OPTIMAL, True) if ok.all() else (EstimateStatus.INACCURATE, False)
    )
    for note in notes:
        logger.info(note)
    return LipschitzEstimate(
        value=value if net.batched else float(value[0]),
        kind="upper",
        method=method,
        status=status,
        certified=certified,
        seconds=time.perf_counter() - start,
        n_iter=n_iter,
        solver=solver,
        details={"slope_bounds": (alpha, beta), "notes": notes, **extra},
    )


def eclipse_fast(
    net,
    options: EclipseFastOptions | None = None,
    *,
    X=None,
    generator: torch.Generator | None = None,
) -> LipschitzEstimate:
    """ECLipsE-Fast: the closed-form multipliers, batched over members (milliseconds).

    The ``"eclipse-fast"`` method of
    :data:`~robustlaw.empirical.lipschitz.registry.LIPSCHITZ_METHODS`.
    Its tightness is about that of LipSDP-Layer.

    Parameters
    ----------
    net : weights, Ensemble, nn.Sequential or state dict
        See :func:`~robustlaw.empirical.lipschitz.weights.as_network`; biases are dropped (the
        bound holds for any biases); an ensemble gives one value per member. Dead units are
        removed per member first (:func:`~.weights.zero_dead_units`; left in, they made the
        bound up to 150x looser on pruned nets), and every layer is scaled by a power of two
        (:func:`~.weights.normalize_layers`), so weights of any scale work.
    options : EclipseFastOptions, optional
        The defaults when omitted.
    X, generator
        Ignored (the bound needs neither data nor randomness); accepted for the common
        signature.

    Returns
    -------
    LipschitzEstimate
        ``kind="upper"``, ``certified=True``: the value is recomputed in float64 from the
        multipliers by the block recursion, and only positive definite ``X_i`` are accepted.
        A constant network gets 0. A bound outside float64's range comes with status
        ``INACCURATE``, ``certified=False`` and ``details["log_value"]``.

    Raises
    ------
    SolverError
        If no multipliers certify the bound.

    Examples
    --------
    >>> import numpy as np
    >>> est = eclipse_fast([np.eye(2), np.array([[3.0, 4.0]])])
    >>> round(est.value, 9), est.method
    (5.0, 'eclipse-fast')
    """
    opts = resolve_options(options, EclipseFastOptions, "eclipse-fast")

    def choose(safe):
        return lambda i, gram: _fast_multipliers(gram)

    return _bound(net, opts.activation, "eclipse-fast", choose, n_iter=0, solver="closed_form")


def eclipse(
    net,
    options: EclipseOptions | None = None,
    *,
    X=None,
    generator: torch.Generator | None = None,
) -> LipschitzEstimate:
    """ECLipsE: diagonal multipliers chosen per hidden layer by a small optimization.

    The ``"eclipse"`` method of
    :data:`~robustlaw.empirical.lipschitz.registry.LIPSCHITZ_METHODS`.
    Tighter than :func:`eclipse_fast`, between it and LipSDP-Neuron.

    Parameters
    ----------
    net : weights, Ensemble, nn.Sequential or state dict
        See :func:`~robustlaw.empirical.lipschitz.weights.as_network`; biases are dropped (the
        bound holds for any biases); an ensemble gives one value per member. Dead units are
        removed per member first (:func:`~.weights.zero_dead_units`; left in, they made the
        bound up to 150x looser on pruned nets), and every layer is scaled by a power of two
        (:func:`~.weights.normalize_layers`), so weights of any scale work.
    options : EclipseOptions, optional
        Solver and steps; the defaults when omitted.
    X, generator
        Ignored (the bound needs neither data nor randomness); accepted for the common
        signature.

    Returns
    -------
    LipschitzEstimate
        ``kind="upper"``, ``certified=True``, as for :func:`eclipse_fast`.

    Raises
    ------
    SolverUnavailableError
        For a cvxpy solver that is not installed.
    SolverError
        If no multipliers certify the bound.

    Examples
    --------
    >>> import numpy as np
    >>> est = eclipse([np.eye(2), np.array([[3.0, 4.0]])], EclipseOptions(max_iter=10))
    >>> round(est.value, 9), est.method
    (5.0, 'eclipse')
    """
    opts = resolve_options(options, EclipseOptions, "eclipse")
    net = as_network(net)
    if opts.solver == "torch":

        def choose(safe):
            return lambda i, gram: _descent_multipliers(gram, safe[i + 1], opts.max_iter)

        return _bound(net, opts.activation, "eclipse", choose, n_iter=opts.max_iter, solver="torch")
    _check_solver(opts.solver)

    def choose(safe):
        def per_member(i, gram):
            pairs = zip(gram.numpy(), safe[i + 1].numpy(), strict=True)
            return torch.stack([_sdp_multipliers(g, w, opts.solver) for g, w in pairs])

        return per_member

    n_layers = len(net.weights) - 1
    return _bound(
        net, opts.activation, "eclipse", choose, n_iter=n_layers, solver=f"cvxpy:{opts.solver}"
    )
