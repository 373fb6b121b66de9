r"""Lower estimates of the Lipschitz constant, attained at reported points.

For an MLP the Jacobian has the closed form :math:`J(x) = W_L D_{L-1}(x) W_{L-1} \cdots
D_0(x) W_0`, with :math:`D_l` the diagonal of activation slopes (0/1 for ReLU). Every value
returned is :math:`\|J(x^\star)\|_2` of the real network, biases included, at a reported
point :math:`x^\star`, so it is a valid lower bound whatever the search did (``LIPSCHITZ.md``
§1). Biases can change the constant (they decide which activation patterns some input reaches),
so they are never dropped here.

Every layer is divided by a power of two first (exact), and the norm is computed from the
scaled factors and scaled back at the end, so weights of any scale work. For positively
homogeneous activations (ReLU, leaky ReLU, identity) the search runs on the network with
``W_l / 2^{e_l}`` and biases ``b_l / 2^{e_0 + ... + e_l}``, whose pre-activations are the
real ones times powers of two (the same activation pattern at every point, exactly); for the
others (tanh, sigmoid) rescaling would change the function, so the search runs on the real
network and only the Jacobian's product uses the scaled factors.

The search (all of it batched over members and start points):

1. the given points and random points at several scales (biases put the regions that matter
   at some distance from the origin);
2. gradient ascent on a smoothed surrogate (ReLU's slope ``1[z>0]`` replaced by
   ``sigmoid(beta z)``, the slope of ``softplus``, with ``beta`` driven up), from the best
   data points and from random points, evaluating the real ``||J||`` after every step;
3. region hopping: random perturbations of the best points with a shrinking radius;
4. a difference-quotient attack: ascent on ``||f(x) - f(x')|| / ||x - x'||`` over pairs, then
   the real ``||J||`` along each segment (by the mean value theorem some point of the segment
   has ``||J|| >=`` the quotient).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch

from robustlaw._validation import check_integer, check_tensor
from robustlaw.empirical.lipschitz.result import (
    EstimateStatus,
    LipschitzEstimate,
    resolve_options,
    scale_back,
)
from robustlaw.empirical.lipschitz.weights import Network, as_network, normalize_layers
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
    "leaky-relu": _leaky(0.01),
    "tanh": _smooth(torch.tanh, lambda z: 1 - torch.tanh(z) ** 2),
    "sigmoid": _smooth(torch.sigmoid, lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z))),
    "identity": _smooth(lambda z: z, torch.ones_like),
}

# phi(c z) = c phi(z) for c > 0: scaling the layers keeps every activation pattern
_HOMOGENEOUS = ("relu", "leaky-relu", "identity")


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
    zs, _ = _preactivations(net, x)
    return _chain(net.activation, zs, net.weights, x.shape[:2], beta)


def _chain(activation: str, zs, weights, lead: tuple[int, int], beta) -> torch.Tensor:
    """``W_L D_{L-1} ... D_0 W_0`` with the slopes at pre-activations ``zs``."""
    slope = _ACTIVATIONS[activation][1]
    k, n_points = lead
    n_out = weights[-1].shape[1]
    J = weights[-1].unsqueeze(1).expand(k, n_points, *weights[-1].shape[1:])
    for l in reversed(range(len(zs))):
        J = (J * slope(zs[l], beta).unsqueeze(-2)).reshape(k, n_points * n_out, -1)
        J = torch.bmm(J, weights[l]).reshape(k, n_points, n_out, -1)
    return J


def _norm(J: torch.Tensor) -> torch.Tensor:
    if J.shape[-2] == 1:
        return J.norm(dim=(-2, -1))
    return torch.linalg.matrix_norm(J, ord=2)


def _search_network(net: Network) -> tuple[Network, tuple[torch.Tensor, ...], torch.Tensor]:
    """The network the search runs on, the scaled factors of the Jacobian and the exponent
    ``E`` (per member) with ``||J_real(x)|| = 2^E ||J(x)||`` (module docstring)."""
    weights, exponents = normalize_layers(net.weights)
    total = exponents.sum(dim=1)
    if net.activation not in _HOMOGENEOUS:
        return net, tuple(weights), total
    shifts = exponents.cumsum(dim=1)
    biases = net.biases and tuple(
        torch.ldexp(b, -shifts[:, l : l + 1]) for l, b in enumerate(net.biases)
    )
    return dataclasses.replace(net, weights=tuple(weights), biases=biases), tuple(weights), total


class _Best:
    """The best real ``||J(x)||`` per member (times ``2^-E``), and where it was attained."""

    def __init__(self, net: Network, weights: tuple[torch.Tensor, ...]):
        self.net, self.weights = net, weights
        self.value = torch.full((net.n_members,), -1.0, dtype=torch.float64)
        self.point = torch.zeros(net.n_members, net.layer_sizes[0], dtype=torch.float64)
        self.n_evaluations = 0

    def update(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the real Jacobian norm at ``x`` (K, S, d); return it; keep the best."""
        x = x.detach()
        widths = self.net.weights[-1].shape[1] * max(self.net.layer_sizes)
        chunk = max(1, 2**22 // (x.shape[0] * widths))
        with torch.no_grad():
            vals = torch.cat([self._values(c) for c in x.split(chunk, dim=1)], dim=1)
        self.n_evaluations += vals.numel()
        top, idx = vals.max(dim=1)
        better = top > self.value
        members = torch.arange(x.shape[0])
        self.value = torch.where(better, top, self.value)
        self.point[better] = x[members, idx][better]
        return vals

    def _values(self, x: torch.Tensor) -> torch.Tensor:
        zs, _ = _preactivations(self.net, x)
        vals = self._measure(_chain(self.net.activation, zs, self.weights, x.shape[:2], None), x)
        # a point where a non-constant unit sits exactly on a ReLU kink is not reported
        for z, w in zip(zs, self.net.weights, strict=False):
            live = (w != 0).any(-1).unsqueeze(1)
            vals = torch.where(((z == 0) & live).any(-1), torch.zeros_like(vals), vals)
        return vals

    def _measure(self, J: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The norm reported for Jacobians ``J`` at ``x`` (a subclass may restrict it)."""
        return _norm(J)


@dataclass(frozen=True, kw_only=True)
class GradientOptions:
    """Options of the ``"gradient"`` method, :func:`gradient_lower_bound`.

    Attributes
    ----------
    ascent_steps : int
        Steps of surrogate ascent (and of the pair attack).
    restarts : int
        Random start points per member, and the number of best data points also ascended.
    hop_rounds : int
        Rounds of random region hopping around the best points.
    n_points : int
        Random points ``N(0, I/d)`` times a scale log-uniform in ``[r/3, 30 r]`` (``r`` the
        RMS norm of the data, 1 without data), evaluated beside the data.
    """

    ascent_steps: int = 100
    restarts: int = 16
    hop_rounds: int = 30
    n_points: int = 1024

    def __post_init__(self) -> None:
        for name in ("ascent_steps", "restarts", "hop_rounds"):
            check_integer(getattr(self, name), name, minimum=0)
        check_integer(self.n_points, "n_points", minimum=1)


def _ascend(best: _Best, x: torch.Tensor, steps: int, radius: float, smooth: bool) -> None:
    """Normalized gradient ascent on the (smoothed) Jacobian norm from ``x`` (K, S, d)."""
    size = 0.1 * x.norm(dim=-1, keepdim=True).clamp_min(radius)
    x = x.clone().requires_grad_(True)
    for t in range(steps):
        frac = t / max(steps - 1, 1)
        beta = 10 ** (4 * frac) if smooth else None
        with torch.enable_grad():
            objective = _norm(jacobian(best.net, x, beta=beta)).sum()
            if not objective.requires_grad:  # one linear layer: J is constant
                return
            (grad,) = torch.autograd.grad(objective, x)
        step = size * (1 - 0.99 * frac)
        with torch.no_grad():
            x += step * grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        best.update(x)


def _pair_attack(best: _Best, x: torch.Tensor, steps: int, radius: float, gen) -> torch.Tensor:
    """Ascent on the difference quotient over pairs; return the best quotient per member."""
    size = x.norm(dim=-1, keepdim=True).clamp_min(radius)
    d = torch.randn(x.shape, generator=gen, dtype=x.dtype) * (0.5 * size / x.shape[-1] ** 0.5)
    pair = torch.cat([x, x + d], dim=1).clone().requires_grad_(True)
    size = torch.cat([size, size], dim=1)
    s = x.shape[1]
    for t in range(steps):
        with torch.enable_grad():
            _, f = _preactivations(best.net, pair)
            gap = (pair[:, :s] - pair[:, s:]).norm(dim=-1).clamp_min(1e-300)
            q = (f[:, :s] - f[:, s:]).norm(dim=-1) / gap
            (grad,) = torch.autograd.grad(q.sum(), pair)
            grad = grad.nan_to_num(0.0)
        with torch.no_grad():
            step = 0.05 * size * (1 - 0.99 * t / max(steps, 1))
            pair += step * grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    with torch.no_grad():
        _, f = _preactivations(best.net, pair)
        a, b = pair[:, :s], pair[:, s:]
        q = (f[:, :s] - f[:, s:]).norm(dim=-1) / (a - b).norm(dim=-1).clamp_min(1e-300)
        ts = torch.linspace(0, 1, 33, dtype=x.dtype)
        seg = a.unsqueeze(2) + ts[:, None] * (b - a).unsqueeze(2)  # (K, S, 33, d)
        best.update(seg.reshape(x.shape[0], -1, x.shape[-1]))
    return q.max(dim=1).values


def _per_member(t: torch.Tensor | None, batched: bool):
    if t is None:
        return None
    return t.numpy() if batched else float(t[0])


def _check_points(X, k: int, dim: int) -> torch.Tensor | None:
    """``X`` as float64 of shape ``(k, n_samples, dim)`` (None stays None), or raise."""
    if X is None:
        return None
    X = check_tensor(X, "X", ndim=(2, 3), dtype=torch.float64)
    if X.shape[-1] != dim or (X.ndim == 3 and X.shape[0] != k):
        raise ValidationError(
            f"X must have shape (n_samples, {dim}) or ({k}, n_samples, {dim}), got {tuple(X.shape)}"
        )
    if X.shape[-2] == 0:
        raise ValidationError(
            f"X must have at least one row (n_samples >= 1), got shape {tuple(X.shape)}; "
            "pass X=None to search from random points only"
        )
    return X.expand(k, *X.shape[-2:]) if X.ndim == 2 else X


def gradient_lower_bound(
    net,
    options: GradientOptions | None = None,
    *,
    X=None,
    generator: torch.Generator | None = None,
) -> LipschitzEstimate:
    """Largest real Jacobian norm found: a lower estimate attained at ``details["x_star"]``.

    The ``"gradient"`` method of
    :data:`~robustlaw.empirical.lipschitz.registry.LIPSCHITZ_METHODS`.
    Biases are kept: they can change the constant, and the value is always the real
    network's Jacobian norm at ``x_star``, biases included.

    Parameters
    ----------
    net : weights, Ensemble, nn.Sequential or state dict
        See :func:`~robustlaw.empirical.lipschitz.weights.as_network`; an ensemble gives one
        value per member.
    options : GradientOptions, optional
        The search's sizes; the defaults when omitted.
    X : array_like, optional
        Points of shape ``(n_samples, n_features)`` (shared) or
        ``(n_members, n_samples, n_features)``. Optional: ``options.n_points`` random points
        are always added.
    generator : torch.Generator, optional
        Source of random points and perturbations (seed 0 when omitted).

    Returns
    -------
    LipschitzEstimate
        ``kind="lower"``, ``certified=True``; ``details`` has ``x_star`` (the point, one per
        member for an ensemble), ``data_value`` (the best over ``X`` alone),
        ``pair_quotient`` and ``n_evaluations``. A network with a layer of size 0 is constant:
        0. A value outside float64's range (it overflowed or underflowed) comes with status
        ``INACCURATE``, ``certified=False`` and ``details["log_value"]`` (natural log).

    Raises
    ------
    ValidationError
        For ``X`` of the wrong shape or with no rows.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([[3.0, 4.0]])
    >>> est = gradient_lower_bound([np.eye(2), w], generator=torch.Generator().manual_seed(0))
    >>> round(est.value, 9), est.kind
    (5.0, 'lower')
    """
    opts = resolve_options(options, GradientOptions, "gradient")
    ascent_steps, restarts = opts.ascent_steps, opts.restarts
    start = time.perf_counter()
    real = as_network(net)
    k, dim = real.n_members, real.layer_sizes[0]
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    X = _check_points(X, k, dim)
    if real.constant_by_shape:
        x_star = torch.zeros(k, dim, dtype=torch.float64).numpy()
        return LipschitzEstimate(
            value=torch.zeros(k).numpy() if real.batched else 0.0, kind="lower",
            method="gradient", status=EstimateStatus.OPTIMAL, certified=True,
            seconds=time.perf_counter() - start,
            details={"x_star": x_star if real.batched else x_star[0],
                     "reason": f"layer sizes {real.layer_sizes}"},
        )  # fmt: skip
    net, factors, exponent = _search_network(real)
    radius = 1.0 if X is None else float(X.norm(dim=-1).pow(2).mean().sqrt().clamp_min(1e-12))

    def draw(n):  # N(0, I/d) points at scales log-uniform in [radius/3, 30 radius]
        scale = radius * 10 ** (2 * torch.rand(k, n, 1, generator=gen, dtype=torch.float64) - 0.5)
        return torch.randn(k, n, dim, generator=gen, dtype=torch.float64) * scale / dim**0.5

    best = _Best(net, factors)
    data_value = best.update(X).max(dim=1).values if X is not None else None
    pool = draw(opts.n_points) if X is None else torch.cat([X, draw(opts.n_points)], dim=1)
    vals = best.update(pool)
    top = vals.topk(min(restarts, pool.shape[1]), dim=1).indices
    starts = torch.cat([pool[torch.arange(k)[:, None], top], draw(restarts)], dim=1)
    if restarts:
        _ascend(best, starts, ascent_steps, radius, net.activation in ("relu", "leaky-relu"))
    for r in range(opts.hop_rounds):
        scale = 0.3 * (0.01 ** (r / max(opts.hop_rounds - 1, 1)))
        size = best.point.norm(dim=-1).clamp_min(radius)[:, None, None] * scale / dim**0.5
        noise = torch.randn(k, 8 * max(restarts, 1), dim, generator=gen, dtype=torch.float64)
        best.update(best.point.unsqueeze(1) + size * noise)
    quotient = (
        _pair_attack(best, starts, ascent_steps, radius, gen)
        if restarts
        else torch.zeros(k, dtype=torch.float64)
    )
    e = exponent.numpy()
    value, ok, extra = scale_back(best.value.clamp_min(0.0).numpy(), e)
    status, certified = (
        (EstimateStatus.OPTIMAL, True) if ok.all() else (EstimateStatus.INACCURATE, False)
    )
    if net is not real:  # the quotient was measured on the scaled network
        quotient = torch.as_tensor(scale_back(quotient.numpy(), e)[0])
    if data_value is not None:
        data_value = torch.as_tensor(scale_back(data_value.numpy(), e)[0])
    x_star = best.point.numpy()
    return LipschitzEstimate(
        value=value if net.batched else float(value[0]),
        kind="lower",
        method="gradient",
        status=status,
        certified=certified,
        seconds=time.perf_counter() - start,
        n_iter=ascent_steps,
        solver="torch",
        details={
            "x_star": x_star if net.batched else x_star[0],
            "data_value": _per_member(data_value, net.batched),
            "pair_quotient": _per_member(quotient, net.batched),
            "n_evaluations": best.n_evaluations,
            **extra,
        },
    )
