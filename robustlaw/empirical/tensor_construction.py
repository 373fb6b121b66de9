r"""The tensor construction of [BLN] Theorem 4: :math:`f(x)=\sum_i y_i (x_i\cdot x)^q`, q even.

``THEORY.md`` §7.3 (d). With the activation :math:`\psi(t)=t^q` (:math:`q` even) the function
:math:`f(x)=\sum_{i\le n} y_i(x_i\cdot x)^q=\langle T, x^{\otimes q}\rangle`,
:math:`T=\sum_i y_i x_i^{\otimes q}`, is a two-layer network :math:`a^\top\psi(Wx)` (no
biases). [BLN] write it with :math:`k=2^q d^{q-1}` neurons and show
:math:`\operatorname{Lip}\le C_q\sqrt{n/k}` when :math:`n\approx d^q`: the law's floor up to
:math:`C_q`, at about one neuron per :math:`d` points.

**Fit (approximate only).** For unit :math:`x_i`,
:math:`f(x_i)-y_i=c_i:=\sum_{j\ne i}y_j(x_j\cdot x_i)^q`. Given :math:`X` and independent
uniform signs, :math:`c_i` is a Rademacher sum of variance
:math:`s_i^2=\sum_{j\ne i}(x_j\cdot x_i)^{2q}`; for uniform sphere points
:math:`\mathbb E s_i^2=(n-1)\prod_{r<q}\frac{2r+1}{d+2r}\approx(2q-1)!!\,n/d^q`, small only when
:math:`n\ll d^q`. The condition checked is the Gaussian-tail prediction of the largest cross
term, :math:`\sqrt{2\ln(2n)\,\overline{s^2}}\le` ``atol`` (:math:`\overline{s^2}` the mean of
:math:`s_i^2`); the achieved :math:`\max_i|f(x_i)-y_i|` is reported as well.

**Neurons (exact decompositions; the count is the construction's p).**

* ``"per-point"``: :math:`W=X`, :math:`a=y`, :math:`k=n`.
* ``"tensor"``: with :math:`v_J=T(e_{j_1},\dots,e_{j_{q-1}},\cdot)=\sum_i y_i x_{i,j_1}\cdots
  x_{i,j_{q-1}}x_i`, :math:`f(x)=\sum_{J\in[d]^{q-1}}x_{j_1}\cdots x_{j_{q-1}}(v_J\cdot x)`.
  Each product of :math:`q` linear forms is expanded by polarization, valid for even :math:`q`
  and any vectors :math:`u_m`:

  .. math::

     \prod_{m=1}^q (u_m\cdot x) = \frac{1}{2^{q-1} q!}
     \sum_{\varepsilon\in\{\pm1\}^q,\ \varepsilon_q=1}
     \Big(\prod_{m<q}\varepsilon_m\Big)\Big(\sum_{m}\varepsilon_m u_m\cdot x\Big)^q

  (the full sum over :math:`\{\pm1\}^q` keeps only the multilinear monomial, coefficient
  :math:`q!\prod\varepsilon_m`, and the patterns :math:`\pm\varepsilon` give equal terms).
  Terms are grouped by the multiset of :math:`J` (weight: the number of its orderings) and
  equal neurons are merged, which leaves :math:`\prod_t(\mu_t+1)` neurons for a multiset of
  multiplicities :math:`\mu_t`, in all :math:`\binom{2d+q-2}{q-1}\approx
  2^{q-1}d^{q-1}/(q-1)!` (the coefficient of :math:`z^{q-1}` in :math:`(1-z)^{-2d}`):
  :math:`2d` for :math:`q=2` and :math:`\binom{2d+2}{3}\approx\frac43 d^3` for :math:`q=4`,
  against [BLN]'s :math:`4d` and :math:`16d^3`. Each factor pair is rescaled to equal norms
  (the product is unchanged); multisets with :math:`v_J=0` are dropped.
* ``"fewest"`` (default): the smaller of the two (``per-point`` on a tie). All forms are the
  same function; only :math:`k` differs, and :math:`k\le n` makes :math:`\sqrt{n/k}\ge1`.

**Lipschitz constant** (:mod:`robustlaw.empirical.tensor_lipschitz`, with the proofs):
``certified_upper`` is :math:`q(\lambda_{\max}(M)-\lambda_{\min}(M))/2`, a certified bound on
the sphere from the square unfolding :math:`M` of :math:`T` (exact for :math:`q=2`; the bound
on the unit ball, :math:`q\|M\|_{op}`, and the product bound :math:`q\|X\|_{op}^q` are in its
``details``), and ``sphere_lower`` the largest tangential gradient norm found on the sphere.
Near a data point, :math:`f` along a great circle is about :math:`y_i\cos^q\theta`, of slope up
to :math:`\sqrt q\,((q-1)/q)^{(q-1)/2}` (1 for :math:`q=2`): the sphere constant is
:math:`\Omega(1)` whatever :math:`n/k`.

Reference: S. Bubeck, Y. Li, D. Nagaraj, "A law of robustness for two-layers neural networks",
COLT 2021 (arXiv:2009.14444), Theorem 4 ([BLN]).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from robustlaw._validation import check_choice, check_integer, check_tensor
from robustlaw.empirical._construction_base import ConstructionFacts
from robustlaw.empirical.lipschitz.result import LipschitzEstimate, resolve_options
from robustlaw.empirical.lipschitz.sphere import SphereGradientOptions
from robustlaw.empirical.tensor_lipschitz import (
    _gradients,
    _sphere_lower,
    _values,
    tensor_unfolding_bound,
)
from robustlaw.errors import ValidationError

__all__ = ["FORMS", "TensorConstructionResult", "tensor_network", "tensor_neuron_count"]

#: The neuron layouts of :func:`tensor_network` (module docstring).
FORMS = ("fewest", "tensor", "per-point")

_F64 = torch.float64
_BLOCK = 2**22  # entries of one (points, neurons) block
_MAX_TENSOR_WEIGHTS = 50_000_000  # entries of W in the "tensor" form (400 MB in float64)


@dataclass(frozen=True, kw_only=True, eq=False)
class TensorConstructionResult(ConstructionFacts):
    """The tensor construction of [BLN] Theorem 4 and what is known about it.

    The fields shared with :class:`~robustlaw.empirical.constructions.ConstructionResult`
    (``name`` to ``n_params``) have the same names and meanings, so callers can treat both
    alike; the network is held as explicit weights since the toolkit's ensembles have no
    polynomial activation.

    Attributes
    ----------
    name : str
        ``"tensor"``.
    fits : bool
        Whether ``max_abs_error <= atol``.
    max_abs_error : float
        ``max_i |f(x_i) - y_i|`` of the network (output units).
    atol : float
        The accuracy ``fits`` and the conditions use.
    conditions_hold : bool
        Whether the construction's conditions hold: unit-norm points and a predicted largest
        cross term ``sqrt(2 ln(2n) mean_i s_i^2) <= atol`` (the regime ``n << d^q``).
    conditions : str
        ``"all conditions hold"``, or which conditions failed and by how much.
    stated_lipschitz : float
        ``certified_upper.value``; ``lipschitz_scope`` says which constant it bounds. Valid
        whether or not the conditions hold.
    lipschitz_scope : str
        What ``stated_lipschitz`` bounds.
    n_hidden : int
        k, the number of neurons of the chosen form.
    n_params : int
        ``k d + k`` (no biases).
    hidden_weights : torch.Tensor
        ``W`` of shape ``(k, d)``, float64, CPU: row ``l`` is neuron ``l``'s ``w_l``.
    output_weights : torch.Tensor
        ``a`` of shape ``(k,)``, float64, CPU: ``f(x) = sum_l a_l (w_l . x)^q``.
    degree : int
        q, the even degree of the activation ``t^q``.
    form : str
        ``"tensor"`` or ``"per-point"``, the decomposition used.
    certified_upper : LipschitzEstimate
        ``q (lambda_max(M) - lambda_min(M)) / 2`` (method ``"tensor-unfolding"``,
        ``kind="upper"``, certified): the Lipschitz constant of ``f`` on the unit sphere
        (chordal distance, hence also geodesic) is at most this. ``details`` has
        ``ball_bound`` (``q ||M||_op``, the constant on the unit ball), ``product_bound``
        (``q ||X||_op^q``), ``domain`` and ``matrix``.
    sphere_lower : LipschitzEstimate
        The largest tangential gradient norm found on the sphere (method
        ``"tensor-gradient-sphere"``, ``kind="lower"``); ``details`` has ``x_star``,
        ``data_value`` and ``n_evaluations``.
    train_mse : float
        ``mean_i (clip(f(x_i), -1, 1) - y_i)^2`` (``THEORY.md`` §1.1; squared output units):
        the fit is below the noise level when ``train_mse <= sigma^2 - eps``.
    sqrt_n_over_k : float
        ``sqrt(n / n_hidden)``, the law's rate at this network's size.
    """

    hidden_weights: torch.Tensor
    output_weights: torch.Tensor
    degree: int
    form: str
    certified_upper: LipschitzEstimate
    sphere_lower: LipschitzEstimate
    train_mse: float
    sqrt_n_over_k: float

    def __call__(self, x) -> torch.Tensor:
        """``f(x) = sum_l a_l (w_l . x)^q`` for ``x`` of shape ``(m, d)`` or ``(d,)``, float64."""
        x = self._points(x)
        W, a = self.hidden_weights, self.output_weights
        out = _values(W, a, self.degree, x.reshape(-1, W.shape[1]))
        return out.reshape(x.shape[:-1])

    def gradient(self, x) -> torch.Tensor:
        """``grad f(x) = q sum_l a_l (w_l . x)^(q-1) w_l``, same leading shape as ``x``."""
        x = self._points(x)
        W, a = self.hidden_weights, self.output_weights
        return _gradients(W, a, self.degree, x.reshape(-1, W.shape[1])).reshape(x.shape)

    def _points(self, x) -> torch.Tensor:
        x = check_tensor(x, "x", ndim=(1, 2)).detach().to(device="cpu", dtype=_F64)
        d = self.hidden_weights.shape[1]
        if x.shape[-1] != d:
            raise ValidationError(f"x must have {d} features, got shape {tuple(x.shape)}")
        return x


def tensor_neuron_count(n_features: int, degree: int) -> int:
    """Neurons of the ``"tensor"`` form: ``C(2d + q - 2, q - 1)`` (module docstring).

    At most ``2^(q-1) C(d + q - 2, q - 1)``, against [BLN]'s ``2^q d^(q-1)``; the form drops
    the neurons of multisets with ``v_J = 0``, so a network may have fewer.

    Parameters
    ----------
    n_features : int
        d, at least 1.
    degree : int
        q, even and at least 2.

    Returns
    -------
    int
        The neuron count.

    Raises
    ------
    ValidationError
        For ``n_features < 1`` or a degree that is not an even integer ``>= 2``.

    Examples
    --------
    >>> tensor_neuron_count(20, 2), tensor_neuron_count(20, 4), 2**4 * 20**3
    (40, 11480, 128000)
    """
    d = check_integer(n_features, "n_features", minimum=1)
    q = _check_degree(degree)
    return math.comb(2 * d + q - 2, q - 1)


def _check_degree(degree) -> int:
    q = check_integer(degree, "degree", minimum=2)
    if q % 2:
        raise ValidationError(f"degree must be an even integer >= 2, got {q}")
    return q


def _polarization_patterns(mults: tuple[int, ...], q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficient vectors ``c`` (P, r) and weights (P,) for one multiset of multiplicities.

    ``prod_t x_{j_t}^{mu_t} (v . x) = sum_c w_c (sum_t c_t x_{j_t} + v . x)^q`` with the
    merged polarization weights ``w_c = (q-1)!/prod mu_t! * prod_t (-1)^{m_t} C(mu_t, m_t)
    / (2^{q-1} q!)``, ``m_t = (mu_t - c_t) / 2``.
    """
    orderings = math.factorial(q - 1) // math.prod(math.factorial(m) for m in mults)
    scale = orderings / (2 ** (q - 1) * math.factorial(q))
    coeffs, weights = [], []
    for minus in itertools.product(*(range(m + 1) for m in mults)):
        pairs = list(zip(mults, minus, strict=True))
        coeffs.append([m - 2 * k for m, k in pairs])
        weights.append(scale * math.prod((-1) ** k * math.comb(m, k) for m, k in pairs))
    return torch.tensor(coeffs, dtype=_F64), torch.tensor(weights, dtype=_F64)


def _tensor_weights(X: torch.Tensor, y: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W, a)`` of the ``"tensor"`` form (module docstring)."""
    n, d = X.shape
    multisets = list(itertools.combinations_with_replacement(range(d), q - 1))
    idx = torch.tensor(multisets, dtype=torch.long).reshape(len(multisets), q - 1)
    V = torch.empty(len(multisets), d, dtype=_F64)
    yX = y[:, None] * X
    step = max(1, _BLOCK // max(n, 1))
    for start in range(0, len(multisets), step):
        block = idx[start : start + step]
        V[start : start + step] = X[:, block].prod(dim=-1).T @ yX  # v_S = T(e_S, .)
    norms = V.norm(dim=1)
    groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
    for s, S in enumerate(multisets):
        if norms[s] > 0:
            runs = [(j, len(list(g))) for j, g in itertools.groupby(S)]
            groups.setdefault(tuple(m for _, m in runs), []).append((s, [j for j, _ in runs]))
    Ws, As = [], []
    for mults, members in groups.items():
        coeffs, weights = _polarization_patterns(mults, q)
        rows = torch.tensor([s for s, _ in members], dtype=torch.long)
        coords = torch.tensor([c for _, c in members], dtype=torch.long)  # (G, r)
        s = norms[rows] ** (1.0 / q)  # u_m = s e_j and v / s^(q-1): equal norms, same product
        block = (V[rows] / s[:, None] ** (q - 1))[:, None, :].repeat(1, coeffs.shape[0], 1)
        shift = s[:, None, None] * coeffs[None, :, :]  # (G, P, r)
        block.scatter_add_(2, coords[:, None, :].expand_as(shift), shift)
        Ws.append(block.reshape(-1, d))
        As.append(weights.repeat(len(members)))
    if not Ws:
        return torch.zeros(0, d, dtype=_F64), torch.zeros(0, dtype=_F64)
    return torch.cat(Ws), torch.cat(As)


def _cross_term_prediction(X: torch.Tensor, q: int) -> float:
    """``sqrt(2 ln(2n) mean_i s_i^2)``, ``s_i^2 = sum_{j != i} (x_j . x_i)^(2q)``."""
    n = X.shape[0]
    total = 0.0
    for rows in torch.arange(n).split(max(1, _BLOCK // n)):
        G = (X[rows] @ X.T) ** (2 * q)
        G[torch.arange(rows.numel()), rows] = 0.0
        total += float(G.sum())
    return math.sqrt(2 * math.log(2 * n) * total / n)


def tensor_network(
    X,
    y,
    *,
    degree: int = 2,
    atol: float = 0.5,
    form: str = "fewest",
    sphere_options: SphereGradientOptions | None = None,
    generator: torch.Generator | None = None,
) -> TensorConstructionResult:
    r"""The tensor construction ``f(x) = sum_i y_i (x_i . x)^q`` of [BLN] Theorem 4.

    ``THEORY.md`` §7.3 (d); the module docstring gives the decompositions, the fit condition
    and both Lipschitz estimates with their proofs. The fit is approximate: for unit points
    ``f(x_i) - y_i`` is the cross term ``sum_{j != i} y_j (x_j . x_i)^q``, small when
    ``n << d^q`` and the labels are independent uniform signs.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs, on the unit sphere for the construction's conditions.
    y : array_like of shape (n,)
        Labels in ``{-1, +1}``.
    degree : int
        q, the even degree of the activation ``psi(t) = t^q`` (at least 2).
    atol : float
        The stated accuracy (output units): ``fits`` is ``max_abs_error <= atol``, and the
        conditions require the predicted largest cross term to be at most ``atol``. The default
        0.5 keeps every sign and the clipped MSE at most 0.25, below the noise level 1 of
        random labels with ``eps = 0.75``.
    form : {"fewest", "tensor", "per-point"}
        Which exact decomposition gives the neurons: ``"tensor"`` (``C(2d + q - 2, q - 1)``
        neurons at most), ``"per-point"`` (``n``), or the smaller (default).
    sphere_options : SphereGradientOptions, optional
        Sizes of the sphere search for ``sphere_lower`` (``smooth`` has no effect: the network
        is a polynomial). The defaults when omitted.
    generator : torch.Generator, optional
        Source of the random sphere points (seed 0 when omitted).

    Returns
    -------
    TensorConstructionResult
        ``stated_lipschitz`` is the certified bound on the sphere,
        ``q (lambda_max(M) - lambda_min(M)) / 2``; [BLN]'s ``C_q sqrt(n/k)`` has no explicit
        ``C_q`` (``sqrt_n_over_k`` gives the rate).
        ``conditions_hold`` is False, with the reason, for points off the unit sphere or
        cross terms predicted above ``atol`` (``n`` not ``<< d^q``).

    Raises
    ------
    ValidationError
        If the data are malformed, ``degree`` is not an even integer ``>= 2``, ``atol < 0``,
        ``form`` is unknown, or the ``"tensor"`` form would need more than 5e7 weights.

    References
    ----------
    S. Bubeck, Y. Li, D. Nagaraj, "A law of robustness for two-layers neural networks",
    COLT 2021 (arXiv:2009.14444), Theorem 4.

    Examples
    --------
    >>> from robustlaw.empirical.data import random_labels_data
    >>> data = random_labels_data(30, 60, inputs="sphere", seed=0)
    >>> res = tensor_network(data.X, data.y, degree=2)
    >>> res.fits, res.conditions_hold, res.form, res.n_hidden
    (True, True, 'per-point', 30)
    >>> res.sphere_lower.value <= res.certified_upper.value
    True
    """
    # imported here: constructions imports this module to re-export it
    from robustlaw.empirical.constructions import _check_atol, _check_data

    X, y = _check_data(X, y)
    q = _check_degree(degree)
    atol = _check_atol(atol)
    form = check_choice(form, "form", FORMS)
    opts = resolve_options(sphere_options, SphereGradientOptions, "tensor-gradient-sphere")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    n, d = X.shape
    k_tensor = tensor_neuron_count(d, q)
    if form == "fewest":
        small = k_tensor < n and k_tensor * d <= _MAX_TENSOR_WEIGHTS
        form = "tensor" if small else "per-point"
    if form == "tensor":
        if k_tensor * d > _MAX_TENSOR_WEIGHTS:
            raise ValidationError(
                f"the tensor form needs {k_tensor} neurons x d = {d} weights, more than "
                f"{_MAX_TENSOR_WEIGHTS}; use form='fewest' or 'per-point'"
            )
        W, a = _tensor_weights(X, y, q)
    else:
        W, a = X.clone(), y.clone()
    k = W.shape[0]
    out = _values(W, a, q, X)
    err = float((out - y).abs().max())
    failed = []
    off = float((X.norm(dim=1) - 1).abs().max())
    if off > 1e-6:
        failed.append(f"points are not on the unit sphere (max | ||x_i|| - 1 | = {off:.3g})")
    predicted = _cross_term_prediction(X, q)
    if predicted > atol:
        failed.append(
            f"cross terms too large: predicted max_i |sum_(j != i) y_j (x_j . x_i)^q| = "
            f"{predicted:.3g} > atol = {atol:g} (needs n << d^q; n = {n}, d^q = {d**q})"
        )
    certified = tensor_unfolding_bound(X, y, q)
    return TensorConstructionResult(
        name="tensor",
        fits=bool(err <= atol),
        max_abs_error=err,
        atol=atol,
        conditions_hold=not failed,
        conditions="; ".join(failed) if failed else "all conditions hold",
        stated_lipschitz=certified.value,
        lipschitz_scope=(
            "on the unit sphere (chordal, hence geodesic): q (lambda_max - lambda_min) / 2 of "
            "the unfolding mat(T), certified, exact for q = 2; [BLN]'s C_q sqrt(n/k) has no "
            "explicit C_q"
        ),
        n_hidden=k,
        n_params=k * d + k,
        hidden_weights=W,
        output_weights=a,
        degree=q,
        form=form,
        certified_upper=certified,
        sphere_lower=_sphere_lower(W, a, q, X, opts, gen),
        train_mse=float((out.clamp(-1.0, 1.0) - y).square().mean()),
        sqrt_n_over_k=math.sqrt(n / k) if k else math.inf,
    )
