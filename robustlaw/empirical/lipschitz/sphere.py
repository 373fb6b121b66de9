r"""Lower estimates of the Lipschitz constant restricted to the unit sphere :math:`\mathbb S^{d-1}`.

For sphere data the proofs of the law of robustness (Bubeck & Sellke 2021, "A universal law of
robustness via isoperimetry") use the Lipschitz constant of :math:`f` on the support of the
data, :math:`\mathbb S^{d-1}` (``THEORY.md`` §7.1, "Which constant"), which can be far below
the constant on :math:`\mathbb R^d`. On the sphere only tangential directions count: with
:math:`P_x = I - x x^\top` the projection on the tangent space at :math:`x`, the rate of change
of :math:`f` along the sphere at :math:`x` is :math:`\|J(x) P_x\|_2` (the tangential gradient
norm :math:`\|P_x \nabla f(x)\|` for a scalar output).

Which constant is bounded. :math:`L_{\mathrm{geo}} = \sup_x \|J(x) P_x\|_2` (over the points
of differentiability on the sphere) is the Lipschitz constant of :math:`f|_{\mathbb S^{d-1}}`
for the geodesic distance. The constant for the Euclidean (chordal) distance restricted to the
sphere, :math:`L_{\mathrm{chord}} = \sup_{x \ne y \in \mathbb S^{d-1}} \|f(x) - f(y)\| / \|x -
y\|`, satisfies :math:`L_{\mathrm{geo}} \le L_{\mathrm{chord}} \le \frac{\pi}{2}
L_{\mathrm{geo}}`, because :math:`\|x - y\| \le \mathrm{geo}(x, y) \le \frac{\pi}{2}\|x -
y\|`; and :math:`L_{\mathrm{chord}}` is at most the constant on :math:`\mathbb R^d`. So every
value reported here, :math:`\|J(x^\star) P_{x^\star}\|_2` at a reported point of the sphere,
is a lower bound of :math:`L_{\mathrm{geo}}`, hence also of :math:`L_{\mathrm{chord}}` (the
constant the theorems use) and of the global constant.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from robustlaw._validation import check_bool, check_integer, check_interval
from robustlaw.empirical.lipschitz.lower import (
    _Best,
    _check_points,
    _norm,
    _per_member,
    _search_network,
    jacobian,
)
from robustlaw.empirical.lipschitz.result import (
    EstimateStatus,
    LipschitzEstimate,
    resolve_options,
    scale_back,
)
from robustlaw.empirical.lipschitz.weights import as_network

__all__ = ["SphereGradientOptions", "sphere_gradient_lower_bound"]

_METHOD = "gradient-sphere"


@dataclass(frozen=True, kw_only=True)
class SphereGradientOptions:
    """Options of the ``"gradient-sphere"`` method, :func:`sphere_gradient_lower_bound`.

    Attributes
    ----------
    ascent_steps : int
        Steps of projected ascent on the tangential Jacobian norm.
    restarts : int
        Random sphere start points per member, and the number of best points also ascended.
    hop_rounds : int
        Rounds of random perturbation of the best point (renormalized to the sphere) with a
        shrinking radius.
    n_points : int
        Uniform points on the sphere evaluated beside the data (and the only points when
        ``X`` is None).
    step_size : float
        First step of the ascent, in radians along the sphere (in ``(0, pi]``); it shrinks
        linearly to 1% of that.
    smooth : bool
        For ReLU and leaky ReLU, ascend a smoothed surrogate (slope ``sigmoid(beta z)`` with
        ``beta`` driven up) rather than the piecewise-constant real Jacobian. Values are always
        those of the real network.
    """

    ascent_steps: int = 100
    restarts: int = 16
    hop_rounds: int = 30
    n_points: int = 1024
    step_size: float = 0.3
    smooth: bool = True

    def __post_init__(self) -> None:
        for name in ("ascent_steps", "restarts", "hop_rounds"):
            check_integer(getattr(self, name), name, minimum=0)
        check_integer(self.n_points, "n_points", minimum=1)
        check_interval(self.step_size, "step_size", 0.0, math.pi, closed="right", scalar=True)
        check_bool(self.smooth, "smooth")


def _tangential(J: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``J P_x = J - (J x) x^T`` for Jacobians ``(K, S, o, d)`` at unit points ``(K, S, d)``."""
    return J - (J @ x.unsqueeze(-1)) * x.unsqueeze(-2)


class _SphereBest(_Best):
    """The best real tangential Jacobian norm per member, and where (on the sphere)."""

    def _measure(self, J: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _norm(_tangential(J, x))


def _to_sphere(x: torch.Tensor) -> torch.Tensor:
    """``x / ||x||`` row by row, safe for any finite scale (rows of norm 0 stay 0)."""
    x = x / x.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    return x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def _ascend(best: _SphereBest, x: torch.Tensor, steps: int, size: float, smooth: bool) -> None:
    """Projected ascent on the (smoothed) tangential norm, renormalized after every step."""
    x = x.clone()
    for t in range(steps):
        frac = t / max(steps - 1, 1)
        beta = 10 ** (4 * frac) if smooth else None
        with torch.enable_grad():
            x.requires_grad_(True)
            objective = _norm(_tangential(jacobian(best.net, x, beta=beta), x)).sum()
            (grad,) = torch.autograd.grad(objective, x)
        with torch.no_grad():
            x = x.detach()
            grad = grad.nan_to_num(0.0)
            grad = grad - (grad * x).sum(-1, keepdim=True) * x  # the tangential part
            direction = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-300)
            angle = size * (1 - 0.99 * frac)
            # a geodesic step: stays on the sphere up to rounding, then renormalized
            x = _to_sphere(math.cos(angle) * x + math.sin(angle) * direction)
        best.update(x)


def sphere_gradient_lower_bound(
    net,
    options: SphereGradientOptions | None = None,
    *,
    X=None,
    generator: torch.Generator | None = None,
) -> LipschitzEstimate:
    r"""Largest real tangential Jacobian norm found on :math:`\mathbb S^{d-1}`: a lower estimate.

    The ``"gradient-sphere"`` method of
    :data:`~robustlaw.empirical.lipschitz.registry.LIPSCHITZ_METHODS`. The value is
    :math:`\|J(x^\star)(I - x^\star x^{\star\top})\|_2` (output per unit input along the
    sphere) of the real network, biases included, at the reported unit point
    ``details["x_star"]``. It bounds from below the Lipschitz constant of :math:`f` restricted
    to the sphere for the geodesic distance, hence also for the Euclidean (chordal) distance,
    which is at least as large since chord :math:`\le` arc (module docstring; ``THEORY.md``
    §7.1; Bubeck & Sellke 2021), and the constant on :math:`\mathbb R^d`.

    The search, batched over members: the data points projected to the sphere (``X /
    ||X||``), ``n_points`` uniform sphere points, projected gradient ascent from the best of
    them and from fresh uniform points (tangential steps, renormalized after every step), and
    random hops around the best point. Weights of any scale work as for
    :func:`~robustlaw.empirical.lipschitz.lower.gradient_lower_bound`.

    Parameters
    ----------
    net : weights, Ensemble, nn.Sequential or state dict
        See :func:`~robustlaw.empirical.lipschitz.weights.as_network`; an ensemble gives one
        value per member.
    options : SphereGradientOptions, optional
        The search's sizes; the defaults when omitted.
    X : array_like, optional
        Points of shape ``(n_samples, n_features)`` (shared) or
        ``(n_members, n_samples, n_features)``, projected to the sphere (a row of norm 0 is
        replaced by a uniform point). When None, only random sphere points are used.
    generator : torch.Generator, optional
        Source of random points and perturbations (seed 0 when omitted).

    Returns
    -------
    LipschitzEstimate
        ``kind="lower"``, ``method="gradient-sphere"``, ``certified=True``; ``details`` has
        ``x_star`` (unit norm; one per member for an ensemble), ``data_value`` (the best over
        the projected ``X`` alone, None without ``X``) and ``n_evaluations``. A network with a
        layer of size 0 is constant: 0. A value outside float64's range comes with status
        ``INACCURATE``, ``certified=False`` and ``details["log_value"]`` (natural log).

    Raises
    ------
    ValidationError
        For ``X`` of the wrong shape or with no rows.

    Examples
    --------
    >>> import numpy as np
    >>> est = sphere_gradient_lower_bound([np.array([[3.0, 4.0]])])
    >>> round(est.value, 6), est.kind, est.method
    (5.0, 'lower', 'gradient-sphere')
    """
    opts = resolve_options(options, SphereGradientOptions, _METHOD)
    start = time.perf_counter()
    real = as_network(net)
    k, dim = real.n_members, real.layer_sizes[0]
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    X = _check_points(X, k, dim)
    if real.constant_by_shape:
        x_star = torch.zeros(k, dim, dtype=torch.float64)
        x_star[:, :1] = 1.0
        x_star = x_star.numpy()
        return LipschitzEstimate(
            value=torch.zeros(k).numpy() if real.batched else 0.0, kind="lower",
            method=_METHOD, status=EstimateStatus.OPTIMAL, certified=True,
            seconds=time.perf_counter() - start,
            details={"x_star": x_star if real.batched else x_star[0],
                     "reason": f"layer sizes {real.layer_sizes}"},
        )  # fmt: skip
    net, factors, exponent = _search_network(real)

    def draw(n):  # uniform on the sphere
        return _to_sphere(torch.randn(k, n, dim, generator=gen, dtype=torch.float64))

    best = _SphereBest(net, factors)
    data_value = None
    pool = draw(opts.n_points)
    if X is not None:
        points = _to_sphere(X)
        zero = points.norm(dim=-1, keepdim=True) == 0
        points = torch.where(zero, draw(points.shape[1]), points)
        data_value = best.update(points).max(dim=1).values
        pool = torch.cat([points, pool], dim=1)
    vals = best.update(pool)
    restarts = opts.restarts
    if restarts:
        top = vals.topk(min(restarts, pool.shape[1]), dim=1).indices
        starts = torch.cat([pool[torch.arange(k)[:, None], top], draw(restarts)], dim=1)
        smooth = opts.smooth and net.activation in ("relu", "leaky-relu")
        _ascend(best, starts, opts.ascent_steps, opts.step_size, smooth)
    for r in range(opts.hop_rounds):
        scale = 0.3 * (0.01 ** (r / max(opts.hop_rounds - 1, 1))) / dim**0.5
        noise = torch.randn(k, 8 * max(restarts, 1), dim, generator=gen, dtype=torch.float64)
        best.update(_to_sphere(best.point.unsqueeze(1) + scale * noise))
    e = exponent.numpy()
    value, ok, extra = scale_back(best.value.clamp_min(0.0).numpy(), e)
    status, certified = (
        (EstimateStatus.OPTIMAL, True) if ok.all() else (EstimateStatus.INACCURATE, False)
    )
    if data_value is not None:
        data_value = torch.as_tensor(scale_back(data_value.numpy(), e)[0])
    x_star = best.point.numpy()
    return LipschitzEstimate(
        value=value if net.batched else float(value[0]),
        kind="lower",
        method=_METHOD,
        status=status,
        certified=certified,
        seconds=time.perf_counter() - start,
        n_iter=opts.ascent_steps,
        solver="torch",
        details={
            "x_star": x_star if net.batched else x_star[0],
            "data_value": _per_member(data_value, net.batched),
            "n_evaluations": best.n_evaluations,
            **extra,
        },
    )
