"""Lower estimates of the Lipschitz constant, attained at reported points.

For an MLP the Jacobian has the closed form :math:`J(x) = W_L D_{L-1}(x) W_{L-1} \\cdots
D_0(x) W_0`, with :math:`D_l` the diagonal of activation slopes (0/1 for ReLU). Every value
returned is :math:`\\|J(x^\\star)\\|_2` of the real network at a reported point
:math:`x^\\star`, so it is a valid lower bound whatever the search did (``LIPSCHITZ.md`` §1).

The search (all of it batched over members and start points):

1. the given points;
2. gradient ascent on a smoothed surrogate (ReLU's slope ``1[z>0]`` replaced by
   ``sigmoid(beta z)``, the slope of ``softplus``, with ``beta`` driven up), from the best
   data points and from random points, evaluating the real ``||J||`` after every step;
3. region hopping: random perturbations of the best points with a shrinking radius;
4. a difference-quotient attack: ascent on ``||f(x) - f(x')|| / ||x - x'||`` over pairs, then
   the real ``||J||`` along each segment (by the mean value theorem some point of the segment
   has ``||J|| >=`` the quotient).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from robustlaw._validation import check_interval, check_tensor
from robustlaw.empirical.lipschitz.result import EstimateStatus, LipschitzEstimate
from robustlaw.empirical.lipschitz.weights import Network, as_network
from robustlaw.errors import ValidationError

__all__ = ["GradientOptions", "gradient_lower_bound", "jacobian"]


def _leaky(a: float):
    return (
        lambda z: torch.where(z > 0, z, a * z),
        lambda z, beta: a + (1 - a) * (z > 0 if beta is None else torch.sigmoid(beta * z)),
    )


def _smooth(fn, slope):
    return fn, lambda z, beta: slope(z)


# activation -> (function, slope(z, beta)); beta=None is the real slope, else the surrogate's.
_ACTIVATIONS = {
    "relu": _leaky(0.0),
    "leaky_relu": _leaky(0.01),
    "tanh": _smooth(torch.tanh, lambda z: 1 - torch.tanh(z) ** 2),
    "sigmoid": _smooth(torch.sigmoid, lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z))),
    "identity": _smooth(lambda z: z, torch.ones_like),
}


def _preactivations(net: Network, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Hidden pre-activations (each ``(K, S, n_l)``) and outputs ``(K, S, n_out)``."""
    act = _ACTIVATIONS[net.activation][0]
    h, zs = x, []
    for l, w in enumerate(net.weights):
        z = h @ w.transpose(-1, -2)
        if net.biases is not None:
            z = z + net.biases[l].unsqueeze(1)
        if l == len(net.weights) - 1:
            return zs, z
        zs.append(z)
        h = act(z)
    raise AssertionError("unreachable")


def jacobian(net: Network, x: torch.Tensor, *, beta: float | None = None) -> torch.Tensor:
    """Closed-form Jacobians ``W_L D_{L-1} ... D_0 W_0`` at points ``x`` of shape ``(K, S, d)``.

    Returns shape ``(K, S, n_out, d)``. ``beta=None`` uses the real slopes (``1[z > 0]`` for
    ReLU); a number uses the smoothed surrogate ``sigmoid(beta z)``.

    Examples
    --------
    >>> import numpy as np
    >>> net = as_network([np.eye(2), np.array([[3.0, 4.0]])])
    >>> x = torch.tensor([[[1.0, -1.0], [1.0, 1.0]]], dtype=torch.float64)
    >>> jacobian(net, x)[0, :, 0].tolist()
    [[3.0, 0.0], [3.0, 4.0]]
    """
    slope = _ACTIVATIONS[net.activation][1]
    zs, _ = _preactivations(net, x)
    J = net.weights[-1].unsqueeze(1)
    for l in reversed(range(len(zs))):
        J = (J * slope(zs[l], beta).unsqueeze(-2)) @ net.weights[l].unsqueeze(1)
    return J


def _norm(J: torch.Tensor) -> torch.Tensor:
    if J.shape[-2] == 1:
        return J.norm(dim=(-2, -1))
    return torch.linalg.matrix_norm(J, ord=2)


class _Best:
    """The best real ``||J(x)||`` per member, and where it was attained."""

    def __init__(self, net: Network):
        self.net = net
        self.value = torch.full((net.n_members,), -1.0, dtype=torch.float64)
        self.point = torch.zeros(net.n_members, net.layer_sizes[0], dtype=torch.float64)
        self.n_evaluations = 0

    def update(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the real Jacobian norm at ``x`` (K, S, d); return it; keep the best."""
        x = x.detach()
        with torch.no_grad():
            zs, _ = _preactivations(self.net, x)
            vals = _norm(jacobian(self.net, x))
            # a point where a non-constant ReLU unit sits exactly on its kink is not reported
            for z, w in zip(zs, self.net.weights, strict=False):
                live = (w != 0).any(-1).unsqueeze(1)
                vals = torch.where(((z == 0) & live).any(-1), torch.zeros_like(vals), vals)
        self.n_evaluations += vals.numel()
        top, idx = vals.max(dim=1)
        better = top > self.value
        members = torch.arange(x.shape[0])
        self.value = torch.where(better, top, self.value)
        self.point[better] = x[members, idx][better]
        return vals


@dataclass(frozen=True, kw_only=True)
class GradientOptions:
    """Options of :func:`gradient_lower_bound` (its keyword arguments of the same names).

    Parameters
    ----------
    ascent_steps : int
        Steps of surrogate ascent (and of the pair attack).
    restarts : int
        Random start points per member, and the number of best data points also ascended.
    hop_rounds : int
        Rounds of random region hopping around the best points.
    n_points : int
        Random points drawn from ``N(0, I/d)`` when no data is given.
    """

    ascent_steps: int = 100
    restarts: int = 8
    hop_rounds: int = 30
    n_points: int = 256

    def __post_init__(self) -> None:
        for name in ("ascent_steps", "restarts", "hop_rounds"):
            check_interval(getattr(self, name), name, 0, closed="left")
        check_interval(self.n_points, "n_points", 1, closed="left")


def _ascend(best: _Best, x: torch.Tensor, steps: int, radius: float, smooth: bool) -> None:
    """Normalized gradient ascent on the (smoothed) Jacobian norm from ``x`` (K, S, d)."""
    x = x.clone().requires_grad_(True)
    for t in range(steps):
        frac = t / max(steps - 1, 1)
        beta = 10 ** (4 * frac) if smooth else None
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(_norm(jacobian(best.net, x, beta=beta)).sum(), x)
        step = radius * 0.1 * (1 - 0.99 * frac)
        with torch.no_grad():
            x += step * grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        best.update(x)


def _pair_attack(best: _Best, x: torch.Tensor, steps: int, radius: float, gen) -> torch.Tensor:
    """Ascent on the difference quotient over pairs; return the best quotient per member."""
    d = torch.randn(x.shape, generator=gen, dtype=x.dtype) * (0.5 * radius / x.shape[-1] ** 0.5)
    pair = torch.cat([x, x + d], dim=1).clone().requires_grad_(True)
    s = x.shape[1]
    for t in range(steps):
        with torch.enable_grad():
            _, f = _preactivations(best.net, pair)
            q = (f[:, :s] - f[:, s:]).norm(dim=-1) / (pair[:, :s] - pair[:, s:]).norm(dim=-1)
            (grad,) = torch.autograd.grad(q.sum(), pair)
        with torch.no_grad():
            step = radius * 0.05 * (1 - 0.99 * t / max(steps, 1))
            pair += step * grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    with torch.no_grad():
        _, f = _preactivations(best.net, pair)
        a, b = pair[:, :s], pair[:, s:]
        q = (f[:, :s] - f[:, s:]).norm(dim=-1) / (a - b).norm(dim=-1).clamp_min(1e-300)
        ts = torch.linspace(0, 1, 33, dtype=x.dtype)
        seg = a.unsqueeze(2) + ts[:, None] * (b - a).unsqueeze(2)  # (K, S, 33, d)
        best.update(seg.reshape(x.shape[0], -1, x.shape[-1]))
    return q.max(dim=1).values


def gradient_lower_bound(
    model_or_weights,
    X=None,
    *,
    ascent_steps: int = 100,
    restarts: int = 8,
    hop_rounds: int = 30,
    n_points: int = 256,
    generator: torch.Generator | None = None,
) -> LipschitzEstimate:
    """Largest real Jacobian norm found: a lower estimate attained at ``details["x_star"]``.

    Biases are kept: they move the linear regions, not the constant.

    Parameters
    ----------
    model_or_weights : weights, Ensemble or nn.Sequential
        See :func:`~robustlaw.empirical.lipschitz.weights.as_network`.
    X : array_like, optional
        Points of shape ``(n_samples, n_features)`` (shared) or
        ``(n_members, n_samples, n_features)``. Without data, ``n_points`` points are drawn
        from ``N(0, I/d)``.
    ascent_steps, restarts, hop_rounds, n_points
        See :class:`GradientOptions`.
    generator : torch.Generator, optional
        Source of random points and perturbations.

    Returns
    -------
    LipschitzEstimate
        ``kind="lower"``, ``certified=True``; ``details`` has ``x_star`` (the point, one per
        member for an ensemble), ``data_value`` (the best over ``X`` alone),
        ``pair_quotient`` and ``n_evaluations``.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([[3.0, 4.0]])
    >>> est = gradient_lower_bound([np.eye(2), w], generator=torch.Generator().manual_seed(0))
    >>> round(est.value, 9), est.kind
    (5.0, 'lower')
    """
    options = GradientOptions(
        ascent_steps=ascent_steps, restarts=restarts, hop_rounds=hop_rounds, n_points=n_points
    )
    start = time.perf_counter()
    net = as_network(model_or_weights)
    k, dim = net.n_members, net.layer_sizes[0]
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    if X is None:
        X = torch.randn(options.n_points, dim, generator=gen, dtype=torch.float64) / dim**0.5
    X = check_tensor(X, "X", ndim=(2, 3), dtype=torch.float64)
    if X.shape[-1] != dim or (X.ndim == 3 and X.shape[0] != k):
        raise ValidationError(
            f"X must have shape (n_samples, {dim}) or ({k}, n_samples, {dim}), got {tuple(X.shape)}"
        )
    X = X.expand(k, *X.shape[-2:]) if X.ndim == 2 else X
    radius = float(X.norm(dim=-1).pow(2).mean().sqrt().clamp_min(1e-12))
    best = _Best(net)
    vals = best.update(X)
    data_value = best.value.clone()
    top = vals.topk(min(restarts, X.shape[1]), dim=1).indices
    starts = torch.cat(
        [
            X[torch.arange(k)[:, None], top],
            torch.randn(k, restarts, dim, generator=gen, dtype=torch.float64) * radius / dim**0.5,
        ],
        dim=1,
    )
    smooth = net.activation in ("relu", "leaky_relu")
    _ascend(best, starts, ascent_steps, radius, smooth)
    for r in range(hop_rounds):
        scale = radius * 0.3 * (0.01 ** (r / max(hop_rounds - 1, 1)))
        noise = torch.randn(k, 4 * max(restarts, 1), dim, generator=gen, dtype=torch.float64)
        best.update(best.point.unsqueeze(1) + scale * noise / dim**0.5)
    quotient = _pair_attack(best, starts, ascent_steps, radius, gen)
    value = best.value.clamp_min(0.0).numpy()
    x_star = best.point.numpy()
    return LipschitzEstimate(
        value=value if net.batched else float(value[0]),
        kind="lower",
        method="gradient",
        status=EstimateStatus.OPTIMAL,
        certified=True,
        seconds=time.perf_counter() - start,
        n_iter=ascent_steps,
        solver="torch",
        details={
            "x_star": x_star if net.batched else x_star[0],
            "data_value": data_value.numpy() if net.batched else float(data_value[0]),
            "pair_quotient": quotient.numpy() if net.batched else float(quotient[0]),
            "n_evaluations": best.n_evaluations,
        },
    )
