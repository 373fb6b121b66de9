"""The preconditions of each theorem, and whether given inputs satisfy them.

Each theorem of ``THEORY.md`` is a :class:`Theorem` record in :data:`THEOREMS`: its arguments,
their defaults (including the constants that differ between paper versions, THEORY §2.7 and
§3.8) and its preconditions beyond the argument domains. :func:`assumptions` reports every
precondition with its value; the numeric functions raise
:class:`~robustlaw.errors.AssumptionViolated` when one fails, unless the caller passes
``check_assumptions=False`` (only the ``optional`` conditions can be waived that way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from robustlaw._validation import get_registered, real_array
from robustlaw.bounds._core import DOMAINS, as_arrays, evaluate
from robustlaw.errors import AssumptionViolated, ValidationError

__all__ = [
    "A1_SQUARED",
    "BS_K_CONDITION_CONST",
    "NFP_K_CONDITION_CONST",
    "THEOREM2_DENOMINATOR",
    "THEOREMS",
    "AssumptionCheck",
    "Condition",
    "Theorem",
    "assumptions",
    "k_condition_holds",
]

#: k-condition constant of BS Theorem 3 (NeurIPS / arXiv v1): 8^4 k log(8k/delta) <= n eps^2.
BS_K_CONDITION_CONST = 8.0**4
#: k-condition constant of NFP Theorem 4 (arXiv v1): 8^3.
NFP_K_CONDITION_CONST = 8.0**3
#: a_1^2 of NFP Lemma 1 (= [XR] Theorem 3).
A1_SQUARED = 72.0
#: Denominator of the exponent of BS Theorem 2's second term (8^4; NFP's re-derivation differs).
THEOREM2_DENOMINATOR = 8.0**4


@dataclass(frozen=True, kw_only=True)
class AssumptionCheck:
    """One precondition evaluated at given inputs.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"k-condition"`` or ``"eps in domain"``.
    formula : str
        The condition as text.
    holds : bool or numpy.ndarray of bool
        Whether it holds (element-wise for array inputs).
    value : float or numpy.ndarray
        The quantity tested: the argument itself for a domain, a ratio for the conditions
        (``n eps^2 / (C k log(8k/delta))`` must be >= 1; ``60 W J / eps`` must be > 1).
    """

    name: str
    formula: str
    holds: bool | np.ndarray
    value: float | np.ndarray


@dataclass(frozen=True, kw_only=True)
class Condition:
    """A precondition beyond the argument domains: ``value(inputs) >= 1`` (``> 1`` if strict)."""

    name: str
    formula: str
    inputs: tuple[str, ...]
    value: Callable[[Mapping[str, np.ndarray]], np.ndarray]
    strict: bool = False
    optional: bool = True

    def holds(self, arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(holds, value)`` for validated arrays; NaN values never hold."""
        with np.errstate(all="ignore"):
            value = np.asarray(self.value(arrays), dtype=np.float64)
            ok = value > 1.0 if self.strict else value >= 1.0
        return ok & np.isfinite(value), value


K_CONDITION = Condition(
    name="k-condition",
    formula="k_condition_const * k * log(8 k / delta) <= n * eps^2",
    inputs=("n", "eps", "delta", "k", "k_condition_const"),
    value=lambda a: a["n"] / evaluate("k_condition_n", a),
)
NET_CONDITION = Condition(
    name="net size above 1",
    formula="60 W J / eps > 1",
    inputs=("W", "J", "eps"),
    value=lambda a: 60.0 * a["W"] * a["J"] / a["eps"],
    strict=True,
    optional=False,
)


@dataclass(frozen=True, kw_only=True)
class Theorem:
    """A theorem's arguments, defaults and preconditions."""

    name: str
    title: str
    arguments: tuple[str, ...]
    defaults: tuple[tuple[str, float], ...]
    conditions: tuple[Condition, ...] = ()


#: The theorems whose preconditions are checked, keyed by name.
THEOREMS: dict[str, Theorem] = {
    "bs-theorem3": Theorem(
        name="bs-theorem3",
        title="Bubeck-Sellke Theorem 3",
        arguments=("n", "d", "p", "eps", "delta", "W", "J", "c", "k", "k_condition_const"),
        defaults=(("c", 1.0), ("k", 1.0), ("k_condition_const", BS_K_CONDITION_CONST)),
        conditions=(K_CONDITION, NET_CONDITION),
    ),
    "nfp-theorem4": Theorem(
        name="nfp-theorem4",
        title="No Free Prune Theorem 4",
        arguments=("n", "d", "p_eff", "eps", "delta", "c", "k", "k_condition_const", "a1_squared"),
        defaults=(
            ("c", 1.0),
            ("k", 1.0),
            ("k_condition_const", NFP_K_CONDITION_CONST),
            ("a1_squared", A1_SQUARED),
        ),
        conditions=(K_CONDITION,),
    ),
    "bs-theorem2": Theorem(
        name="bs-theorem2",
        title="Bubeck-Sellke Theorem 2",
        arguments=("n", "d", "log_card", "L", "eps", "c", "k", "exponent_denominator"),
        defaults=(("c", 1.0), ("k", 1.0), ("exponent_denominator", THEOREM2_DENOMINATOR)),
    ),
}


def check_conditions(
    theorem: str, arrays: Mapping[str, np.ndarray], *, check_assumptions: bool
) -> None:
    """Raise AssumptionViolated for the first failing condition whose inputs are all given.

    Conditions marked ``optional`` are skipped when ``check_assumptions`` is False.
    """
    spec = THEOREMS[theorem]
    for cond in spec.conditions:
        if not set(cond.inputs) <= arrays.keys() or (cond.optional and not check_assumptions):
            continue
        ok, value = cond.holds(arrays)
        if not np.all(ok):
            bad = np.atleast_1d(np.broadcast_to(value, ok.shape)[~ok])[:3].tolist()
            waive = "; pass check_assumptions=False to evaluate anyway" if cond.optional else ""
            raise AssumptionViolated(
                f"{spec.title}: the {cond.name} fails ({cond.formula}); "
                f"ratio {bad} must be {'>' if cond.strict else '>='} 1{waive}"
            )


def assumptions(theorem: str = "bs-theorem3", /, **inputs: Any) -> list[AssumptionCheck]:
    """Evaluate every precondition of a theorem at given inputs, without raising on failure.

    Parameters
    ----------
    theorem : {"bs-theorem3", "nfp-theorem4", "bs-theorem2"}
        Which theorem (THEORY §2.3, §3.4, §2.2).
    **inputs : array_like
        The theorem's arguments (those of the matching numeric function); omitted optional
        ones take their defaults (``c=1``, ``k=1``, the version constants).

    Returns
    -------
    list of AssumptionCheck
        One record per argument domain, then one per condition (k-condition, net size).

    Raises
    ------
    ValidationError
        If an argument is unknown, missing or not a real number (or array of them), or the
        shapes do not broadcast.

    Examples
    --------
    >>> checks = assumptions("bs-theorem3", n=1e4, d=100, p=1e3, eps=0.1, delta=0.01, W=10, J=10)
    >>> [(c.name, bool(c.holds)) for c in checks][-2:]
    [('k-condition', False), ('net size above 1', True)]
    """
    spec = get_registered(THEOREMS, theorem, "theorem")
    values = dict(spec.defaults) | inputs
    unknown = sorted(values.keys() - set(spec.arguments))
    missing = [a for a in spec.arguments if a not in values]
    if unknown or missing:
        raise ValidationError(
            f"{spec.title} takes {', '.join(spec.arguments)}; "
            f"unknown: {unknown or 'none'}, missing: {missing or 'none'}"
        )
    arrays = {name: real_array(values[name], name) for name in spec.arguments}
    try:
        np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        raise ValidationError("argument shapes do not broadcast together") from None
    checks = [
        AssumptionCheck(
            name=f"{name} in domain",
            formula=DOMAINS[name].formula(name),
            holds=_scalar(DOMAINS[name].contains(arr)),
            value=_scalar(arr),
        )
        for name, arr in arrays.items()
    ]
    for cond in spec.conditions:
        ok, value = cond.holds(arrays)
        checks.append(
            AssumptionCheck(
                name=cond.name, formula=cond.formula, holds=_scalar(ok), value=_scalar(value)
            )
        )
    return checks


def k_condition_holds(
    *, n: Any, eps: Any, delta: Any, k: Any = 1, k_condition_const: Any = BS_K_CONDITION_CONST
) -> bool | np.ndarray:
    """Whether the k-mixture condition ``C k log(8k/delta) <= n eps^2`` holds.

    Parameters
    ----------
    n, eps, delta, k : array_like
        Sample size, fit margin in (0, 1), failure probability in (0, 1), mixture components.
    k_condition_const : array_like
        ``C``: ``8**4`` for BS Theorem 3 (the default, :data:`BS_K_CONDITION_CONST`), ``8**3``
        for NFP Theorem 4 (:data:`NFP_K_CONDITION_CONST`).

    Returns
    -------
    bool or numpy.ndarray of bool

    Examples
    --------
    >>> k_condition_holds(n=6e4, eps=0.5, delta=0.1)
    False
    >>> k_condition_holds(n=6e4, eps=0.5, delta=0.1, k_condition_const=NFP_K_CONDITION_CONST)
    True
    """
    arrays, shape = as_arrays(
        {"n": n, "eps": eps, "delta": delta, "k": k, "k_condition_const": k_condition_const}
    )
    ok, _ = K_CONDITION.holds(arrays)
    return _scalar(np.broadcast_to(ok, shape))


def _scalar(x: np.ndarray) -> Any:
    """A 0-d array as a Python scalar; other arrays unchanged."""
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x
