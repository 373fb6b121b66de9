"""Fast numpy versions of the Lipschitz bounds and their inverses.

Every function here evaluates an expression of :mod:`robustlaw.bounds.symbolic` compiled with
:func:`sympy.lambdify` (one source of truth per formula). Arguments are keyword-only, broadcast
with numpy rules and computed in float64; a scalar input gives a ``float``. Natural logarithms
throughout. Arguments are validated once (domain, finiteness, broadcastable shapes) and the
theorem's preconditions are checked (:mod:`robustlaw.bounds.assumptions`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from robustlaw.bounds._core import as_arrays, evaluate, finish
from robustlaw.bounds.assumptions import (
    A1_SQUARED,
    BS_K_CONDITION_CONST,
    NFP_K_CONDITION_CONST,
    THEOREM2_DENOMINATOR,
    check_conditions,
)

__all__ = [
    "BOUNDS",
    "BoundFunction",
    "finite_class_failure_probability",
    "lipschitz_lower_bound",
    "max_robust_samples",
    "required_effective_parameter_count",
    "required_parameter_count",
    "sparse_lipschitz_lower_bound",
    "sparse_max_robust_samples",
]


def _theorem_value(
    formula: str,
    theorem: str,
    values: Mapping[str, ArrayLike],
    *,
    check: bool,
    solve: str | None = None,
) -> float | np.ndarray:
    """Validate, check the theorem's conditions, evaluate the formula (or its inverse).

    ``values`` are the public function's numeric keyword arguments, in signature order (the
    first invalid one is named); ``check`` is its ``check_assumptions``.
    """
    arrays, shape = as_arrays(values)
    check_conditions(theorem, arrays, check_assumptions=check)
    out = evaluate(formula, arrays, solve)
    if solve == "n":  # the k-condition is about the sample size returned
        check_conditions(theorem, arrays | {"n": out}, check_assumptions=check)
    return finish(np.maximum(out, 0.0) if solve else out, shape, solve or formula, arrays)


def lipschitz_lower_bound(
    *,
    n: ArrayLike,
    d: ArrayLike,
    p: ArrayLike,
    eps: ArrayLike,
    delta: ArrayLike,
    W: ArrayLike,
    J: ArrayLike,
    c: ArrayLike = 1.0,
    k: ArrayLike = 1,
    k_condition_const: ArrayLike = BS_K_CONDITION_CONST,
    check_assumptions: bool = True,
) -> float | np.ndarray:
    r"""Bubeck–Sellke Theorem 3: the Lipschitz floor of a p-parameter fit below the noise level.

    .. math::

        L_{BS} = \frac{\epsilon}{2^9\sqrt{c}}
                 \sqrt{\frac{nd}{p\log(60WJ/\epsilon) + \log(4/\delta)}}

    With probability at least ``1 - delta`` over the data, every member of the class that fits
    the ``n`` noisy labels with mean squared error at most ``sigma^2 - eps`` has Lipschitz
    constant at least ``L_BS`` (THEORY §2.3).

    Parameters
    ----------
    n, d, p : array_like
        Sample size, input dimension, number of parameters (each >= 1).
    eps, delta : array_like
        Fit margin below the noise level and failure probability, each in (0, 1).
    W : array_like
        **Euclidean** diameter of the weight set (> 0); for a box ``[-W_inf, W_inf]^p`` use
        :func:`~robustlaw.bounds.box_to_euclidean_diameter`.
    J : array_like
        Parameter-Lipschitz constant: ``||f_w1 - f_w2||_inf <= J ||w1 - w2||_2`` (> 0).
    c : array_like
        Isoperimetry constant of each mixture component (> 0; 1 for ``N(0, I_d/d)``).
    k : array_like
        Number of mixture components (integer >= 1).
    k_condition_const : array_like
        Constant of the k-condition ``C k log(8k/delta) <= n eps^2``; default ``8**4``
        (BS NeurIPS version, THEORY §2.7).
    check_assumptions : bool
        Raise when the k-condition fails (default). False evaluates the formula anyway.

    Returns
    -------
    float or numpy.ndarray
        ``L_BS`` (units of the output per unit of input norm), broadcast over the arguments.

    Raises
    ------
    ValidationError
        If an argument is outside its domain, not finite, or shapes do not broadcast.
    AssumptionViolated
        If ``60 W J / eps <= 1``, or the k-condition fails and ``check_assumptions`` is True.

    References
    ----------
    Bubeck, Sellke, arXiv:2105.12806, Theorem 3.

    Examples
    --------
    >>> round(lipschitz_lower_bound(n=6e4, d=784, p=1e6, eps=0.8, delta=0.1, W=10, J=10), 6)
    0.003588
    >>> lipschitz_lower_bound(n=6e4, d=784, p=[1e5, 1e6], eps=0.8, delta=0.1, W=10, J=10).shape
    (2,)
    """
    values = dict(n=n, d=d, p=p, eps=eps, delta=delta, W=W, J=J, c=c, k=k)
    values |= dict(k_condition_const=k_condition_const)
    return _theorem_value("L_BS", "bs-theorem3", values, check=check_assumptions)


def sparse_lipschitz_lower_bound(
    *,
    n: ArrayLike,
    d: ArrayLike,
    p_eff: ArrayLike,
    eps: ArrayLike,
    delta: ArrayLike,
    c: ArrayLike = 1.0,
    k: ArrayLike = 1,
    k_condition_const: ArrayLike = NFP_K_CONDITION_CONST,
    a1_squared: ArrayLike = A1_SQUARED,
    check_assumptions: bool = True,
) -> float | np.ndarray:
    r"""No Free Prune Theorem 4: the Lipschitz floor of a pruned network's output.

    .. math::

        L_{NFP} = \frac{\epsilon}{96 a_1\sqrt{2c}}
                  \sqrt{\frac{nd\,\delta}{p_{\mathrm{eff}} + \frac{\delta}{2}\log(4/\delta)}},
        \qquad 96 a_1 \sqrt 2 = 1152 \text{ for } a_1^2 = 72.

    It bounds the learning algorithm's output (not the whole class) with probability at least
    ``1 - delta`` (THEORY §3.4).

    Parameters
    ----------
    n, d : array_like
        Sample size and input dimension (each >= 1).
    p_eff : array_like
        Effective parameter count in **bits** (>= 0), see
        :func:`~robustlaw.bounds.effective_parameter_count`.
    eps, delta : array_like
        Fit margin and failure probability, each in (0, 1).
    c, k : array_like
        Isoperimetry constant (> 0) and number of mixture components (integer >= 1).
    k_condition_const : array_like
        k-condition constant, default ``8**3`` (NFP arXiv v1, THEORY §3.8).
    a1_squared : array_like
        ``a_1^2`` of NFP Lemma 1, default 72.
    check_assumptions : bool
        Raise when the k-condition fails (default).

    Returns
    -------
    float or numpy.ndarray
        ``L_NFP``, broadcast over the arguments.

    Raises
    ------
    ValidationError, AssumptionViolated
        As :func:`lipschitz_lower_bound`.

    References
    ----------
    Kumar, Luo, Sellke, arXiv:2402.01089, Theorem 4.

    Examples
    --------
    >>> round(sparse_lipschitz_lower_bound(n=6e4, d=784, p_eff=1e5, eps=0.5, delta=0.1), 6)
    0.002977
    """
    values = dict(n=n, d=d, p_eff=p_eff, eps=eps, delta=delta, c=c, k=k)
    values |= dict(k_condition_const=k_condition_const, a1_squared=a1_squared)
    return _theorem_value("L_NFP", "nfp-theorem4", values, check=check_assumptions)


def finite_class_failure_probability(
    *,
    n: ArrayLike,
    d: ArrayLike,
    log_card: ArrayLike,
    L: ArrayLike,
    eps: ArrayLike,
    c: ArrayLike = 1.0,
    k: ArrayLike = 1,
    exponent_denominator: ArrayLike = THEOREM2_DENOMINATOR,
) -> float | np.ndarray:
    r"""Bubeck–Sellke Theorem 2: probability that a finite class holds an L-Lipschitz fit.

    .. math::

        P \le 4k\,e^{-n\epsilon^2/(8^3 k)}
              + 2\exp\Big(\log|\mathcal F| - \frac{\epsilon^2 nd}{T_2\, c L^2}\Big),
        \qquad T_2 = 8^4,

    the probability that some ``f`` in ``F`` with ``Lip(f) <= L`` fits below ``sigma^2 - eps``
    (THEORY §2.2). Values above 1 (a vacuous bound, including overflow) are returned as 1.

    Parameters
    ----------
    n, d : array_like
        Sample size and input dimension (each >= 1).
    log_card : array_like
        ``log |F|`` in nats (>= 0).
    L : array_like
        The Lipschitz constant (> 0).
    eps : array_like
        Fit margin in (0, 1).
    c, k : array_like
        Isoperimetry constant and number of mixture components.
    exponent_denominator : array_like
        ``T_2``; default ``8**4`` (BS; NFP's re-derivation of the subgaussian constant differs,
        THEORY §2.7).

    Returns
    -------
    float or numpy.ndarray
        The failure probability bound, in (0, 1].

    Examples
    --------
    >>> finite_class_failure_probability(n=1e6, d=100, log_card=1e3, L=10.0, eps=0.5)
    1.0
    >>> p = finite_class_failure_probability(n=1e6, d=100, log_card=1e3, L=1.0, eps=0.5)
    >>> bool(p < 1e-100)
    True
    """
    values = dict(n=n, d=d, log_card=log_card, L=L, eps=eps, c=c, k=k)
    arrays, shape = as_arrays(values | dict(exponent_denominator=exponent_denominator))
    out = evaluate("finite_class_failure", arrays)
    return finish(
        np.where(np.isfinite(out), np.minimum(out, 1.0), 1.0), shape, "probability", arrays
    )


def required_parameter_count(
    *,
    L: ArrayLike,
    n: ArrayLike,
    d: ArrayLike,
    eps: ArrayLike,
    delta: ArrayLike,
    W: ArrayLike,
    J: ArrayLike,
    c: ArrayLike = 1.0,
    k: ArrayLike = 1,
    k_condition_const: ArrayLike = BS_K_CONDITION_CONST,
    check_assumptions: bool = True,
) -> float | np.ndarray:
    r"""The smallest integer p at which BS Theorem 3 allows Lipschitz constant L.

    The real root of :math:`L_{BS}(p) = L` (from :func:`~robustlaw.bounds.symbolic.solve_for`),

    .. math::

        p^* = \frac{\epsilon^2 nd/(2^{18} c L^2) - \log(4/\delta)}{\log(60WJ/\epsilon)},

    rounded up to a whole number of parameters, :math:`\lceil p^* \rceil`, and clipped at 0
    (0 means no parameter count is ruled out). The bound decreases in p, so with
    :math:`\lceil p^* \rceil` parameters it is at most L, and with one fewer above L.
    Arguments as :func:`lipschitz_lower_bound`, with the target Lipschitz constant ``L > 0``.

    Returns
    -------
    float or numpy.ndarray
        :math:`\lceil p^* \rceil` (parameters; integer-valued floats).

    Examples
    --------
    >>> args = dict(n=6e4, d=784, eps=0.8, delta=0.1, W=10, J=10)
    >>> p = required_parameter_count(L=1.0, **args)
    >>> p
    13.0
    >>> lipschitz_lower_bound(p=p, **args) <= 1.0 < lipschitz_lower_bound(p=p - 1, **args)
    True
    """
    values = dict(L=L, n=n, d=d, eps=eps, delta=delta, W=W, J=J, c=c, k=k)
    values |= dict(k_condition_const=k_condition_const)
    p_star = _theorem_value("L_BS", "bs-theorem3", values, check=check_assumptions, solve="p")
    return float(np.ceil(p_star)) if np.ndim(p_star) == 0 else np.ceil(p_star)


def required_effective_parameter_count(
    *,
    L: ArrayLike,
    n: ArrayLike,
    d: ArrayLike,
    eps: ArrayLike,
    delta: ArrayLike,
    c: ArrayLike = 1.0,
    k: ArrayLike = 1,
    k_condition_const: ArrayLike = NFP_K_CONDITION_CONST,
    a1_squared: ArrayLike = A1_SQUARED,
    check_assumptions: bool = True,
) -> float | np.ndarray:
    r"""Smallest p_eff (bits) for which NFP Theorem 4 does not rule out an L-Lipschitz output.

    The root of :math:`L_{NFP}(p_{\mathrm{eff}}) = L`, clipped at 0. Arguments as
    :func:`sparse_lipschitz_lower_bound`, with the target ``L > 0``.

    Examples
    --------
    >>> round(required_effective_parameter_count(L=0.01, n=6e4, d=784, eps=0.5, delta=0.1), 1)
    8861.2
    """
    values = dict(L=L, n=n, d=d, eps=eps, delta=delta, c=c, k=k)
    values |= dict(k_condition_const=k_condition_const, a1_squared=a1_squared)
    return _theorem_value("L_NFP", "nfp-theorem4", values, check=check_assumptions, solve="p_eff")


def max_robust_samples(
    *,
    L: ArrayLike,
    d: ArrayLike,
    p: ArrayLike,
    eps: ArrayLike,
    delta: ArrayLike,
    W: ArrayLike,
    J: ArrayLike,
    c: ArrayLike = 1.0,
    k: ArrayLike = 1,
    k_condition_const: ArrayLike = BS_K_CONDITION_CONST,
    check_assumptions: bool = True,
) -> float | np.ndarray:
    r"""Largest n for which BS Theorem 3 does not rule out an L-Lipschitz fit.

    The root of :math:`L_{BS}(n) = L`:
    :math:`n^* = 2^{18} c L^2 (p\log(60WJ/\epsilon) + \log(4/\delta)) / (\epsilon^2 d)`.
    The k-condition is checked at ``n = n*`` (below it the theorem says nothing).

    Examples
    --------
    >>> round(max_robust_samples(L=1.0, d=784, p=1e6, eps=0.8, delta=0.1, W=10, J=10) / 1e9, 3)
    4.662
    """
    values = dict(L=L, d=d, p=p, eps=eps, delta=delta, W=W, J=J, c=c, k=k)
    values |= dict(k_condition_const=k_condition_const)
    return _theorem_value("L_BS", "bs-theorem3", values, check=check_assumptions, solve="n")


def sparse_max_robust_samples(
    *,
    L: ArrayLike,
    d: ArrayLike,
    p_eff: ArrayLike,
    eps: ArrayLike,
    delta: ArrayLike,
    c: ArrayLike = 1.0,
    k: ArrayLike = 1,
    k_condition_const: ArrayLike = NFP_K_CONDITION_CONST,
    a1_squared: ArrayLike = A1_SQUARED,
    check_assumptions: bool = True,
) -> float | np.ndarray:
    r"""Largest n for which NFP Theorem 4 does not rule out an L-Lipschitz output.

    The root of :math:`L_{NFP}(n) = L`; the k-condition is checked at that ``n``.

    Examples
    --------
    >>> round(sparse_max_robust_samples(L=1.0, d=784, p_eff=1e5, eps=0.5, delta=0.1) / 1e9, 3)
    6.771
    """
    values = dict(L=L, d=d, p_eff=p_eff, eps=eps, delta=delta, c=c, k=k)
    values |= dict(k_condition_const=k_condition_const, a1_squared=a1_squared)
    return _theorem_value("L_NFP", "nfp-theorem4", values, check=check_assumptions, solve="n")


@dataclass(frozen=True, kw_only=True)
class BoundFunction:
    """A registered bound: what it computes, under which theorem, by which function."""

    quantity: str
    theorem: str
    function: Callable[..., float | np.ndarray]
    description: str


#: The Lipschitz bounds and their inverses, keyed by ``(quantity, theorem)``.
BOUNDS: dict[tuple[str, str], BoundFunction] = {
    (b.quantity, b.theorem): b
    for b in (
        BoundFunction(
            quantity="L",
            theorem="bs-theorem3",
            function=lipschitz_lower_bound,
            description="Lipschitz lower bound L_BS",
        ),
        BoundFunction(
            quantity="L",
            theorem="nfp-theorem4",
            function=sparse_lipschitz_lower_bound,
            description="Lipschitz lower bound L_NFP",
        ),
        BoundFunction(
            quantity="p",
            theorem="bs-theorem3",
            function=required_parameter_count,
            description="smallest integer parameter count allowing an L-Lipschitz fit",
        ),
        BoundFunction(
            quantity="p_eff",
            theorem="nfp-theorem4",
            function=required_effective_parameter_count,
            description="smallest effective parameter count (bits) allowing an L-Lipschitz fit",
        ),
        BoundFunction(
            quantity="n",
            theorem="bs-theorem3",
            function=max_robust_samples,
            description="largest sample size allowing an L-Lipschitz fit",
        ),
        BoundFunction(
            quantity="n",
            theorem="nfp-theorem4",
            function=sparse_max_robust_samples,
            description="largest sample size allowing an L-Lipschitz fit",
        ),
    )
}
