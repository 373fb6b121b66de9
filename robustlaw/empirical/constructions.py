"""Explicit interpolators of random labels, built without training (``THEORY.md`` §7.3).

Each function takes data ``X`` of shape ``(n, d)`` and labels ``y`` in ``{-1, +1}`` and
returns a :class:`ConstructionResult`: a one-member two-layer ReLU
:class:`~robustlaw.empirical.ensemble.Ensemble` (with biases) that the Lipschitz toolkit can
measure, whether it fits, whether the construction's conditions hold, and the constant the
construction states. Together with the theorem's floor they bracket the smallest achievable
Lipschitz constant at their parameter counts.

Reference: S. Bubeck, Y. Li, D. Nagaraj, "A law of robustness for two-layers neural networks",
COLT 2021 (arXiv:2009.14444), §3 ([BLN]).

The tensor construction of [BLN] Theorem 4 (``THEORY.md`` §7.3 (d)), ``f(x) = sum_i y_i
(x_i . x)^q`` with the activation ``t^q``, lives in
:mod:`robustlaw.empirical.tensor_construction` and is re-exported here:
:func:`~robustlaw.empirical.tensor_construction.tensor_network` returns a
:class:`~robustlaw.empirical.tensor_construction.TensorConstructionResult` with the same
common fields (``name`` to ``n_params``) but explicit weights instead of an ensemble, since
the toolkit's ensembles have no polynomial activation and its global certified bounds do not
apply to one; it carries its own certified upper bound and lower estimate of the constant on
the unit sphere (:mod:`robustlaw.empirical.tensor_lipschitz`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from robustlaw._validation import check_integer, check_interval, check_tensor
from robustlaw.empirical._construction_base import ConstructionFacts
from robustlaw.empirical.ensemble import Ensemble, MLPSpec
from robustlaw.empirical.tensor_construction import TensorConstructionResult, tensor_network
from robustlaw.errors import ValidationError

__all__ = [
    "ConstructionResult",
    "TensorConstructionResult",
    "caps_network",
    "grouped_min_norm_network",
    "min_norm_linear",
    "tensor_network",
]

_F64 = torch.float64
_RANK_TOL = 1e-10  # relative smallest-eigenvalue threshold of a Gram matrix


@dataclass(frozen=True, kw_only=True, eq=False)
class ConstructionResult(ConstructionFacts):
    """An explicit interpolator and what is known about it.

    Attributes
    ----------
    name : str
        ``"min-norm-linear"``, ``"caps"`` or ``"grouped-min-norm"``.
    ensemble : Ensemble
        One member, ``MLPSpec(layer_sizes=(d, k, 1), activation="relu", bias=True)``, float64.
    fits : bool
        Whether ``max_abs_error <= atol``.
    max_abs_error : float
        ``max_i |f(x_i) - y_i|`` of the built network.
    atol : float
        The tolerance ``fits`` uses.
    conditions_hold : bool
        Whether the construction's stated conditions hold on this data.
    conditions : str
        ``"all conditions hold"``, or which conditions failed and by how much.
    stated_lipschitz : float
        The construction's stated constant; ``lipschitz_scope`` says which constant it is.
        Valid only when ``conditions_hold``.
    lipschitz_scope : str
        What ``stated_lipschitz`` bounds (global on ``R^d``, or tangential on the sphere).
    n_hidden : int
        k, the number of hidden ReLU units.
    n_params : int
        Weights and biases of the network: ``d k + k + k + 1``.
    """

    ensemble: Ensemble


def _check_data(X, y) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` as float64 ``(n, d)`` and ``y`` as float64 ``(n,)`` with entries ``±1``."""
    if isinstance(X, (str, bytes)) or X is None:
        raise ValidationError(f"X must be an array of shape (n, d), got {X!r}")
    if isinstance(y, (str, bytes)) or y is None:
        raise ValidationError(f"y must be an array of shape (n,), got {y!r}")
    X = check_tensor(X, "X", ndim=2)
    y = check_tensor(y, "y", ndim=(1, 2))
    if not (X.is_floating_point() or X.dtype in (torch.int32, torch.int64)):
        raise ValidationError(f"X must hold real numbers, got dtype {X.dtype}")
    X = X.detach().to(device="cpu", dtype=_F64)
    y = y.detach().to(device="cpu", dtype=_F64)
    if y.ndim == 2:
        if y.shape[1] != 1:
            raise ValidationError(f"y must have shape (n,) or (n, 1), got {tuple(y.shape)}")
        y = y[:, 0]
    n, d = X.shape
    if n < 1 or d < 1:
        raise ValidationError(f"X must have at least one row and column, got {tuple(X.shape)}")
    if y.shape[0] != n:
        raise ValidationError(f"y must have one label per row of X ({n}), got {y.shape[0]}")
    if not bool(((y == 1) | (y == -1)).all()):
        bad = y[(y != 1) & (y != -1)][:3].tolist()
        raise ValidationError(f"y must hold labels -1 or +1, got values such as {bad}")
    return X, y


def _check_atol(atol) -> float:
    return float(check_interval(atol, "atol", 0, np.inf, closed="left", scalar=True))


def _network(
    W1: torch.Tensor, b1: torch.Tensor, a: torch.Tensor, b2: float
) -> tuple[Ensemble, int]:
    """The one-member ensemble ``x -> a . relu(W1 x + b1) + b2`` and its parameter count."""
    k, d = W1.shape
    spec = MLPSpec(layer_sizes=(d, k, 1), activation="relu", bias=True)
    params = {
        "0.weight": W1.reshape(1, k, d).clone(),
        "0.bias": b1.reshape(1, k).clone(),
        "2.weight": a.reshape(1, 1, k).clone(),
        "2.bias": torch.full((1, 1), float(b2), dtype=_F64),
    }
    masks = {key: torch.ones_like(params[key], dtype=torch.bool) for key in spec.weight_names()}
    return Ensemble(spec=spec, params=params, masks=masks), d * k + 2 * k + 1


def _result(name, X, y, W1, b1, a, b2, *, atol, failed, lip, scope) -> ConstructionResult:
    ens, n_params = _network(W1, b1, a, b2)
    err = float((ens(X)[0, :, 0] - y).abs().max())
    return ConstructionResult(
        name=name,
        ensemble=ens,
        fits=bool(err <= atol),
        max_abs_error=err,
        atol=atol,
        conditions_hold=not failed,
        conditions="; ".join(failed) if failed else "all conditions hold",
        stated_lipschitz=float(lip),
        lipschitz_scope=scope,
        n_hidden=W1.shape[0],
        n_params=n_params,
    )


def _min_norm_solution(XG: torch.Tensor, rhs: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``XG^T (XG XG^T)^{-1} rhs`` (pseudo-inverse when singular) and whether it is regular."""
    gram = XG @ XG.T
    eig = torch.linalg.eigvalsh(gram)
    regular = bool(eig[0] > _RANK_TOL * max(float(eig[-1]), 1e-300))
    if regular:
        return XG.T @ torch.linalg.solve(gram, rhs), True
    return torch.linalg.pinv(XG) @ rhs, False


def min_norm_linear(X, y, *, atol: float = 1e-6) -> ConstructionResult:
    """The minimum-norm linear interpolator ``w = X^T (X X^T)^{-1} y`` ([BLN] §3.1).

    [BLN] §3.1 (``THEORY.md`` §7.3 (a)): with ``n <= c d`` the linear map ``x -> w . x`` fits
    exactly, and ``Lip = ||w|| = sqrt(y^T (X X^T)^{-1} y) <= sqrt(2 n)`` w.h.p.

    The network has **one** hidden unit, ``f(x) = relu(w . x + R ||w||) - R ||w||`` with
    ``R = max_i ||x_i||``: it equals ``w . x`` on the ball of radius ``R`` (the sphere and the
    data included), and its global Lipschitz constant, and its spectral-product bound, are
    exactly ``||w||``. (The two-unit form ``relu(w . x) - relu(-w . x)`` is linear on all of
    ``R^d`` but its spectral product is ``2 ||w||``.)

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs.
    y : array_like of shape (n,)
        Labels in ``{-1, +1}``.
    atol : float
        Tolerance of ``fits``.

    Returns
    -------
    ConstructionResult
        ``stated_lipschitz = ||w||``, the global constant on ``R^d``. ``conditions_hold`` is
        False when ``n > d`` or ``X X^T`` is singular; ``w`` is then the least-squares
        minimum-norm solution (pseudo-inverse) and need not fit.

    Raises
    ------
    ValidationError
        If ``X`` is not a finite 2-D array, ``y`` not ``±1`` labels of matching length, or
        ``atol`` negative.

    Examples
    --------
    >>> from robustlaw.empirical.data import random_labels_data
    >>> data = random_labels_data(20, 50, inputs="sphere", seed=0)
    >>> res = min_norm_linear(data.X, data.y)
    >>> res.fits, res.conditions_hold, res.n_hidden
    (True, True, 1)
    """
    X, y = _check_data(X, y)
    atol = _check_atol(atol)
    n, d = X.shape
    failed = []
    if n > d:
        failed.append(f"n = {n} > d = {d}: no linear interpolator in general")
    w, regular = _min_norm_solution(X, y)
    if not regular and n <= d:
        failed.append("X X^T is singular (rows of X linearly dependent)")
    norm = float(w.norm())
    shift = float(X.norm(dim=1).max()) * norm
    return _result(
        "min-norm-linear",
        X,
        y,
        w.reshape(1, d),
        torch.tensor([shift], dtype=_F64),
        torch.ones(1, dtype=_F64),
        -shift,
        atol=atol,
        failed=failed,
        lip=norm,
        scope="global on R^d: ||w|| (exact)",
    )


def caps_network(
    X, y, *, threshold: float = 0.9, height: float = 10.0, atol: float = 1e-6
) -> ConstructionResult:
    """One ReLU cap per point: ``f(x) = sum_i height y_i relu(x_i . x - threshold)`` ([BLN] §3.2).

    [BLN] §3.2 (``THEORY.md`` §7.3 (b)), with ``k = n``: for unit ``x_i`` and
    ``height (1 - threshold) = 1``, ``f(x_i) = y_i`` as soon as no other point lies in the cap
    of ``x_i`` (``x_i . x_j < threshold``). For ``n = poly(d)`` the caps
    ``{x on the sphere: x_i . x >= threshold}`` are disjoint w.h.p.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs, on the unit sphere for the construction's conditions.
    y : array_like of shape (n,)
        Labels in ``{-1, +1}``.
    threshold : float
        The cap threshold, in ``(0, 1)``.
    height : float
        The slope of each cap, positive.
    atol : float
        Tolerance of ``fits``.

    Returns
    -------
    ConstructionResult
        ``stated_lipschitz = height sqrt(1 - threshold^2)`` (``10 sqrt(0.19) ~ 4.36`` by
        default): the largest tangential gradient on the sphere, the constant of ``f``
        restricted to ``S^{d-1}`` when the caps are disjoint. It is **not** the global constant
        on ``R^d``, which is ``height max_x ||sum_{i active at x} y_i x_i||`` and can be far
        larger; certified global bounds (spectral product, LipSDP) bound that one.
        ``conditions_hold`` requires unit-norm points, ``height (1 - threshold) = 1`` and
        disjoint caps (``x_i . x_j < 2 threshold^2 - 1``, i.e. the angle between any two points
        is more than twice the cap's angular radius); unit norm is checked to ``1e-6``.

    Raises
    ------
    ValidationError
        If the data are malformed, ``threshold`` is outside ``(0, 1)``, ``height <= 0`` or
        ``atol < 0``.

    Examples
    --------
    >>> from robustlaw.empirical.data import random_labels_data
    >>> data = random_labels_data(30, 200, inputs="sphere", seed=0)
    >>> res = caps_network(data.X, data.y)
    >>> res.fits, res.conditions_hold, round(res.stated_lipschitz, 2)
    (True, True, 4.36)
    """
    X, y = _check_data(X, y)
    threshold = float(check_interval(threshold, "threshold", 0, 1, scalar=True))
    height = float(check_interval(height, "height", 0, np.inf, scalar=True))
    atol = _check_atol(atol)
    n, _ = X.shape
    failed = []
    norms = X.norm(dim=1)
    off = float((norms - 1).abs().max())
    if off > 1e-6:
        failed.append(f"points are not on the unit sphere (max | ||x_i|| - 1 | = {off:.3g})")
    if abs(height * (1 - threshold) - 1) > 1e-12:
        failed.append(f"height * (1 - threshold) = {height * (1 - threshold):.6g}, not 1")
    if n > 1:
        gram = X @ X.T
        gram.fill_diagonal_(-math.inf)
        worst = float(gram.max())
        if worst >= 2 * threshold**2 - 1:
            i, j = divmod(int(gram.argmax()), n)
            inside = " (x_j inside the cap of x_i)" if worst >= threshold else ""
            failed.append(
                f"caps not disjoint: x_{i} . x_{j} = {worst:.4g} >= 2 threshold^2 - 1 = "
                f"{2 * threshold**2 - 1:.4g}{inside}"
            )
    return _result(
        "caps",
        X,
        y,
        X.clone(),
        torch.full((n,), -threshold, dtype=_F64),
        height * y,
        0.0,
        atol=atol,
        failed=failed,
        lip=height * math.sqrt(1 - threshold**2),
        scope="tangential on the unit sphere: height * sqrt(1 - threshold^2)",
    )


def _groups(y: torch.Tensor, k: int) -> tuple[list[np.ndarray], int]:
    """Split each label class into near-equal groups of at most ``m = ceil(n / k)`` points."""
    m = math.ceil(y.shape[0] / k)
    groups = []
    for label in (1.0, -1.0):
        idx = np.flatnonzero(y.numpy() == label)
        if idx.size:
            groups.extend(np.array_split(idx, math.ceil(idx.size / m)))
    return groups, m


def grouped_min_norm_network(X, y, *, k: int, atol: float = 1e-6) -> ConstructionResult:
    """Grouped minimum-norm neurons, ``f(x) = sum_l 2 xi_l relu(w_l . x - 1/2)`` ([BLN] Thm 3).

    [BLN] Theorem 3 and Appendix C (``THEORY.md`` §7.3 (c)): each label class is split into
    groups ``G_l`` of ``m = n / k`` points with common sign ``xi_l``, and
    ``w_l = X_G^T (X_G X_G^T)^{-1} 1``, so ``w_l . x_i = 1`` on ``G_l``. If moreover
    ``|w_l . x_j| <= 1/2`` for every ``j`` outside ``G_l`` (w.h.p. when
    ``C n log n / d <= k <= C n``), ``f(x_i) = y_i`` exactly. Proven:
    ``Lip on the sphere <= C n log d / k`` with an unspecified constant ``C``.

    Grouping: ``m = ceil(n / k)``; each class of size ``n_c`` is split into ``ceil(n_c / m)``
    groups of near-equal sizes (at most ``m``), so the network has ``k`` hidden units or, when
    the class sizes do not divide evenly, one more; ``n_hidden`` reports the count.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs.
    y : array_like of shape (n,)
        Labels in ``{-1, +1}``.
    k : int
        The target number of hidden units, in ``[1, n]``.
    atol : float
        Tolerance of ``fits``.

    Returns
    -------
    ConstructionResult
        ``stated_lipschitz`` is the computable global upper bound
        ``sum_l |a_l| ||w_l|| = 2 sum_l ||w_l||`` (the path norm), not the theorem's
        ``C n log d / k``, whose constant is not given. ``conditions_hold`` requires every
        group's Gram matrix to be regular (impossible when a group has more than ``d``
        points) and ``|w_l . x_j| <= 1/2`` off the group (the theorem's two-sided condition;
        exact fit needs only ``w_l . x_j <= 1/2``, so ``fits`` may hold without it).

    Raises
    ------
    ValidationError
        If the data are malformed, ``k`` is not an integer in ``[1, n]`` or ``atol < 0``.

    Examples
    --------
    >>> from robustlaw.empirical.data import random_labels_data
    >>> data = random_labels_data(40, 400, inputs="sphere", seed=0)
    >>> res = grouped_min_norm_network(data.X, data.y, k=10)
    >>> res.fits, res.conditions_hold
    (True, True)
    """
    X, y = _check_data(X, y)
    n, d = X.shape
    k = check_integer(k, "k", minimum=1, maximum=n)
    atol = _check_atol(atol)
    groups, m = _groups(y, k)
    failed = []
    largest = max(g.size for g in groups)
    if largest > d:
        failed.append(
            f"groups too large for d: a group of {largest} points (m = ceil(n / k) = {m}) "
            f"cannot be interpolated by one neuron in d = {d} dimensions"
        )
    rows, signs, worst, singular = [], [], 0.0, 0
    for g in groups:
        w, regular = _min_norm_solution(X[g], torch.ones(g.size, dtype=_F64))
        singular += not regular
        outside = np.setdiff1d(np.arange(n), g)
        if outside.size:
            worst = max(worst, float((X[outside] @ w).abs().max()))
        rows.append(w)
        signs.append(float(y[g[0]]))
    if singular and largest <= d:
        failed.append(f"{singular} group Gram matrices are singular")
    if worst > 0.5:
        failed.append(f"max |w_l . x_j| off the group = {worst:.4g} > 1/2")
    W1 = torch.stack(rows)
    a = 2 * torch.tensor(signs, dtype=_F64)
    return _result(
        "grouped-min-norm",
        X,
        y,
        W1,
        torch.full((len(groups),), -0.5, dtype=_F64),
        a,
        0.0,
        atol=atol,
        failed=failed,
        lip=float((a.abs() * W1.norm(dim=1)).sum()),
        scope="global on R^d: path norm sum_l |a_l| ||w_l|| (upper bound)",
    )
