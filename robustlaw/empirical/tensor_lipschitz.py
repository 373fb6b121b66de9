r"""Lipschitz estimates of :math:`\sum_i y_i(x_i\cdot x)^q` and :math:`a^\top(Wx)^{\circ q}`.

The networks of the tensor construction (:mod:`robustlaw.empirical.tensor_construction`,
[BLN] Theorem 4) have the activation :math:`t^q`, which is not globally Lipschitz: the
toolkit's global certified bounds (spectral product, LipSDP) do not apply. The law uses the
constant on the support of the data (``THEORY.md`` §7.1), here the unit sphere, which the two
functions below bracket. :math:`f(x)=\langle T,x^{\otimes q}\rangle` with
:math:`T=\sum_i y_i x_i^{\otimes q}`, and :math:`\nabla f(x)=q\sum_i y_i(x_i\cdot x)^{q-1}x_i`.

* Certified. With :math:`M=\sum_i y_i z_i z_i^\top`, :math:`z_i=x_i^{\otimes q/2}` (the
  square unfolding of :math:`T`, order :math:`d^{q/2}`), for :math:`\|x\|\le1`,
  :math:`\|u\|=1` and any :math:`c`:
  :math:`\nabla f(x)\cdot u-cq\|x\|^{q-2}(x\cdot u)=q\,\langle x^{\otimes q/2},
  (M-cI)(x^{\otimes(q/2-1)}\otimes u)\rangle\le q\|M-cI\|_{op}`. With :math:`c=0` this bounds
  the constant on the unit ball by :math:`q\|M\|_{op}` (``details["ball_bound"]``). On the
  sphere :math:`f` equals :math:`g=f-c\|x\|^q`, and chords lie in the ball, so the sphere's
  chordal (hence geodesic) constant is at most :math:`q\|M-cI\|_{op}`, smallest at
  :math:`c=(\lambda_{\max}+\lambda_{\min})/2`:
  :math:`q(\lambda_{\max}(M)-\lambda_{\min}(M))/2` (the spectrum on all of
  :math:`\mathbb R^{d^{q/2}}`, so 0 counts when :math:`M` is singular). This is
  :func:`tensor_unfolding_bound`. For :math:`q=2` both are exact: :math:`2\|T\|_{op}` on the
  ball, and :math:`\lambda_{\max}(T)-\lambda_{\min}(T)` on the sphere (attained halfway
  between the two extreme eigenvectors). The nonzero spectrum of :math:`M` is that of
  :math:`K^{1/2}\operatorname{diag}(y)K^{1/2}`, :math:`K=(XX^\top)^{\circ q/2}`; the smaller of
  the two matrices is used, and a float64 rounding margin
  :math:`64(m+n)\,\varepsilon\sum_i\|x_i\|^q` is added (:math:`m` the order decomposed).
  Both never exceed the product bound :math:`q\|X\|_{op}^q` (``details["product_bound"]``;
  from :math:`\|\nabla f(x)\|\le q\|X\|_{op}\|(Xx)^{\circ(q-1)}\|_2` and
  :math:`\|v\|_{2(q-1)}\le\|v\|_2`, or :math:`\|M\|\le\|K\|\le\|XX^\top\|^{q/2}` by the Schur
  product bound). For :math:`q\ge4` the unfolding can be loose by up to :math:`\sqrt d`
  against the injective norm that [BLN]'s rate reflects.
* Lower, on the sphere (:func:`polynomial_sphere_lower_bound`, any network
  :math:`a^\top(Wx)^{\circ q}`): the largest tangential gradient norm
  :math:`\|(I-xx^\top)\nabla f(x)\|` found over the data projected to the sphere, uniform
  sphere points, closed-form projected ascent (:math:`h=\|P_x g\|^2` has
  :math:`\nabla h=2Hg-2q(g\cdot x)g`, using Euler's :math:`Hx=(q-1)g`) and random hops. Every
  value is attained, so it bounds the sphere's (geodesic, hence chordal) constant from below.

Reference: S. Bubeck, Y. Li, D. Nagaraj, "A law of robustness for two-layers neural networks",
COLT 2021 (arXiv:2009.14444), Theorem 4 ([BLN]).
"""

from __future__ import annotations

import math
import time

import torch

from robustlaw._validation import check_integer, check_tensor
from robustlaw.empirical.lipschitz.result import (
    EstimateStatus,
    LipschitzEstimate,
    resolve_options,
)
from robustlaw.empirical.lipschitz.sphere import SphereGradientOptions, _to_sphere
from robustlaw.errors import ValidationError

__all__ = ["polynomial_sphere_lower_bound", "tensor_unfolding_bound"]

_F64 = torch.float64
_EPS = torch.finfo(_F64).eps
_BLOCK = 2**22  # entries of one (points, neurons) block
_LOWER = "tensor-gradient-sphere"


def _values(W: torch.Tensor, a: torch.Tensor, q: int, Z: torch.Tensor) -> torch.Tensor:
    """``f`` at the rows of ``Z`` (m, d), in blocks of rows."""
    step = max(1, _BLOCK // max(W.shape[0], 1))
    parts = [((z @ W.T) ** q) @ a for z in Z.split(step)]
    return torch.cat(parts) if parts else Z.new_zeros(0)


def _gradients(W: torch.Tensor, a: torch.Tensor, q: int, Z: torch.Tensor) -> torch.Tensor:
    """``grad f`` at the rows of ``Z`` (m, d), in blocks of rows."""
    step = max(1, _BLOCK // max(W.shape[0], 1))
    parts = [(q * a * (z @ W.T) ** (q - 1)) @ W for z in Z.split(step)]
    return torch.cat(parts) if parts else Z.new_zeros(0, W.shape[1])


def _tangential_norms(W, a, q, Z) -> torch.Tensor:
    """``||(I - z z^T) grad f(z)||`` at unit rows ``z`` of ``Z``."""
    g = _gradients(W, a, q, Z)
    return (g - (g * Z).sum(-1, keepdim=True) * Z).norm(dim=-1)


def _unfolding_spectrum(
    X: torch.Tensor, y: torch.Tensor, q: int
) -> tuple[float, float, float, str]:
    """``lambda_max(M)``, ``lambda_min(M)``, a rounding margin, and the matrix used."""
    n, d = X.shape
    h = q // 2
    if d**h <= n:
        Z = X
        for _ in range(h - 1):
            Z = (Z[:, :, None] * X[:, None, :]).reshape(n, -1)
        eig = torch.linalg.eigvalsh(Z.T @ (y[:, None] * Z))
        how, size = f"unfolding of order d^(q/2) = {d**h}", d**h
    else:
        lam, U = torch.linalg.eigh((X @ X.T) ** h)
        R = U * lam.clamp_min(0).sqrt()  # R R^T = K: R^T D R has M's nonzero spectrum
        eig = torch.linalg.eigvalsh(R.T @ (y[:, None] * R))
        eig = torch.cat([eig, eig.new_zeros(1)])  # d^(q/2) > n: M is singular
        how, size = f"Gram form of order n = {n}", n
    trace = float((X.norm(dim=1) ** q).sum())  # sum ||z_i||^2 >= ||M||_op
    return float(eig.max()), float(eig.min()), 64 * (size + n) * _EPS * trace, how


class _Best:
    """The largest tangential gradient norm seen, and where."""

    def __init__(self, W, a, q):
        self.W, self.a, self.q = W, a, q
        self.value, self.point, self.n_evaluations = -1.0, None, 0

    def update(self, Z: torch.Tensor) -> torch.Tensor:
        vals = _tangential_norms(self.W, self.a, self.q, Z)
        self.n_evaluations += vals.numel()
        if vals.numel() and float(vals.max()) > self.value:
            self.value, self.point = float(vals.max()), Z[int(vals.argmax())].clone()
        return vals


def _ascend(best: _Best, x: torch.Tensor, steps: int, size: float) -> None:
    """Projected ascent on ``h(x) = ||P_x grad f(x)||^2`` along geodesics (closed form)."""
    W, a, q = best.W, best.a, best.q
    for t in range(steps):
        frac = t / max(steps - 1, 1)
        U = x @ W.T
        aU = a * U ** (q - 2)
        g = q * (aU * U) @ W
        Hg = q * (q - 1) * (aU * (g @ W.T)) @ W
        grad = 2 * Hg - 2 * q * (g * x).sum(-1, keepdim=True) * g
        grad = grad - (grad * x).sum(-1, keepdim=True) * x
        direction = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        angle = size * (1 - 0.99 * frac)
        x = _to_sphere(math.cos(angle) * x + math.sin(angle) * direction)
        best.update(x)


def _sphere_lower(W, a, q, X, opts: SphereGradientOptions, gen) -> LipschitzEstimate:
    """Largest tangential gradient norm found on the sphere (module docstring)."""
    start = time.perf_counter()
    d = W.shape[1]

    def draw(m):
        return _to_sphere(torch.randn(m, d, generator=gen, dtype=_F64))

    best = _Best(W, a, q)
    pool, data_value = draw(opts.n_points), None
    if X is not None and X.shape[0]:
        points = _to_sphere(X)
        zero = points.norm(dim=-1, keepdim=True) == 0
        points = torch.where(zero, draw(points.shape[0]), points)
        data_value = float(best.update(points).max())
        pool = torch.cat([points, pool])
    vals = best.update(pool)
    if opts.restarts:
        top = vals.topk(min(opts.restarts, pool.shape[0])).indices
        _ascend(
            best, torch.cat([pool[top], draw(opts.restarts)]), opts.ascent_steps, opts.step_size
        )
    for r in range(opts.hop_rounds):
        radius = 0.3 * (0.01 ** (r / max(opts.hop_rounds - 1, 1))) / d**0.5
        noise = torch.randn(8 * max(opts.restarts, 1), d, generator=gen, dtype=_F64)
        best.update(_to_sphere(best.point + radius * noise))
    return LipschitzEstimate(
        value=max(best.value, 0.0),
        kind="lower",
        method=_LOWER,
        status=EstimateStatus.OPTIMAL,
        certified=True,
        seconds=time.perf_counter() - start,
        n_iter=opts.ascent_steps,
        solver="closed_form",
        details={
            "x_star": best.point.numpy(),
            "data_value": data_value,
            "n_evaluations": best.n_evaluations,
        },
    )


def _real(x, name: str, ndim: int) -> torch.Tensor:
    return check_tensor(x, name, ndim=ndim).detach().to(device="cpu", dtype=_F64)


def tensor_unfolding_bound(X, y, degree: int) -> LipschitzEstimate:
    r"""Certified Lipschitz bound of :math:`f(x)=\sum_i y_i(x_i\cdot x)^q` on the unit sphere.

    The value is :math:`q(\lambda_{\max}(M)-\lambda_{\min}(M))/2` plus a float64 rounding
    margin, with :math:`M` the square unfolding of :math:`\sum_i y_i x_i^{\otimes q}` (module
    docstring): an upper bound of the constant of :math:`f` restricted to
    :math:`\mathbb S^{d-1}` for the chordal distance, hence also the geodesic one; exact for
    :math:`q=2`. The cost is an eigendecomposition of order :math:`\min(n, d^{q/2})`.

    Parameters
    ----------
    X : array_like of shape (n, d)
        The points :math:`x_i` (any norms).
    y : array_like of shape (n,)
        The coefficients :math:`y_i` (any reals; labels in the construction).
    degree : int
        q, even and at least 2.

    Returns
    -------
    LipschitzEstimate
        ``kind="upper"``, ``method="tensor-unfolding"``, ``certified=True``,
        ``solver="closed_form"``; ``details`` has ``ball_bound`` (:math:`q\|M\|_{op}`, a bound
        on the unit ball, output per unit input), ``product_bound`` (:math:`q\|X\|_{op}^q`),
        ``domain`` and ``matrix`` (which matrix was decomposed).

    Raises
    ------
    ValidationError
        For malformed ``X`` or ``y``, or a degree that is not an even integer ``>= 2``.

    Examples
    --------
    >>> import torch
    >>> X, y = torch.eye(2, dtype=torch.float64), torch.tensor([1.0, -1.0])
    >>> est = tensor_unfolding_bound(X, y, 2)  # f = x_1^2 - x_2^2: slope 2 on the circle
    >>> round(est.value, 9), round(est.details["ball_bound"], 9)
    (2.0, 2.0)
    """
    start = time.perf_counter()
    X, y = _real(X, "X", 2), _real(y, "y", 1)
    if y.shape[0] != X.shape[0]:
        raise ValidationError(
            f"y must have one entry per row of X ({X.shape[0]}), got {y.shape[0]}"
        )
    q = check_integer(degree, "degree", minimum=2)
    if q % 2:
        raise ValidationError(f"degree must be an even integer >= 2, got {q}")
    top, bottom, margin, how = _unfolding_spectrum(X, y, q)
    return LipschitzEstimate(
        value=q * ((top - bottom) / 2 + margin),
        kind="upper",
        method="tensor-unfolding",
        status=EstimateStatus.OPTIMAL,
        certified=True,
        seconds=time.perf_counter() - start,
        solver="closed_form",
        details={
            "domain": "unit sphere (chordal distance)",
            "matrix": how,
            "ball_bound": q * (max(top, -bottom) + margin),
            "product_bound": q * float(torch.linalg.matrix_norm(X, 2)) ** q if X.numel() else 0.0,
        },
    )


def polynomial_sphere_lower_bound(
    weights,
    degree: int,
    options: SphereGradientOptions | None = None,
    *,
    X=None,
    generator: torch.Generator | None = None,
) -> LipschitzEstimate:
    r"""Largest tangential gradient norm of :math:`a^\top(Wx)^{\circ q}` found on the sphere.

    A lower estimate of the constant of :math:`f(x)=\sum_l a_l(w_l\cdot x)^q` restricted to the
    unit sphere (geodesic distance, hence also chordal): every value is
    :math:`\|(I-xx^\top)\nabla f(x)\|` at a reported unit point. The search: the rows of ``X``
    projected to the sphere, ``n_points`` uniform points, closed-form projected ascent from
    the best ``restarts`` of them and as many fresh points, and ``hop_rounds`` rounds of random
    hops around the best point (``options.smooth`` has no effect: :math:`f` is a polynomial).

    Parameters
    ----------
    weights : tuple of array_like
        ``(W, a)``: ``W`` of shape ``(k, d)``, ``a`` of shape ``(k,)``.
    degree : int
        q, an integer ``>= 2``.
    options : SphereGradientOptions, optional
        The search's sizes; the defaults when omitted.
    X : array_like of shape (n, d), optional
        Points to start from (a row of norm 0 is replaced by a uniform point).
    generator : torch.Generator, optional
        Source of the random points (seed 0 when omitted).

    Returns
    -------
    LipschitzEstimate
        ``kind="lower"``, ``method="tensor-gradient-sphere"``, ``certified=True``,
        ``solver="closed_form"``; ``details`` has ``x_star`` (unit norm), ``data_value`` (the
        best over the projected ``X``; None without it) and ``n_evaluations``.

    Raises
    ------
    ValidationError
        For malformed weights or ``X``, a degree below 2, or options of another type.

    Examples
    --------
    >>> import torch
    >>> W, a = torch.eye(2, dtype=torch.float64), torch.tensor([1.0, -1.0])
    >>> round(polynomial_sphere_lower_bound((W, a), 2).value, 6)
    2.0
    """
    opts = resolve_options(options, SphereGradientOptions, _LOWER)
    if not isinstance(weights, (tuple, list)) or len(weights) != 2:
        raise ValidationError(f"weights must be a pair (W, a), got {type(weights).__name__}")
    W, a = _real(weights[0], "W", 2), _real(weights[1], "a", 1)
    if a.shape[0] != W.shape[0] or W.shape[1] < 1:
        raise ValidationError(
            f"W of shape (k, d) and a of shape (k,) with d >= 1 expected, got "
            f"{tuple(W.shape)} and {tuple(a.shape)}"
        )
    q = check_integer(degree, "degree", minimum=2)
    if X is not None:
        X = _real(X, "X", 2)
        if X.shape[1] != W.shape[1]:
            raise ValidationError(f"X must have {W.shape[1]} features, got shape {tuple(X.shape)}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    return _sphere_lower(W, a, q, X, opts, gen)
