"""The theorems as exact sympy expressions: the single source of every formula in robustlaw.bounds.

Each formula of ``THEORY.md`` exists here once, as a sympy expression over named symbols whose
names equal the keyword arguments of the numeric functions (``n``, ``d``, ``p``, ``p_eff``,
``eps``, ``delta``, ``W``, ``J``, ``c``, ``k``, ``L``, ``kept``, ``mutual_information_bits``,
...). :mod:`robustlaw.bounds.numeric` compiles them with :func:`sympy.lambdify`; the docs render
them with :func:`latex`. The derivations from a failure-probability bound to a Lipschitz bound
are lists of :class:`Step` equations that sympy itself checks, and the inverses (smallest ``p``,
largest ``n``) come from :func:`solve_for`.

Symbols are declared positive, so ``sqrt(x**2) == x`` simplifies as the theorems intend.

References: Bubeck, Sellke, "A Universal Law of Robustness via Isoperimetry", arXiv:2105.12806
(BS); Kumar, Luo, Sellke, "No Free Prune", arXiv:2402.01089 (NFP).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from robustlaw._validation import get_registered
from robustlaw.errors import ValidationError

__all__ = [
    "EXPRESSIONS",
    "SYMBOLS",
    "Step",
    "derivation",
    "expression",
    "latex",
    "solve_for",
]

_NAMES = (
    "n d p p_eff eps delta W J c k L kept mutual_information_bits log_card a1_squared "
    "exponent_denominator k_condition_const R Q D W_inf gamma bits_per_weight"
)
#: Every symbol, keyed by its name (which is also the numeric functions' keyword).
SYMBOLS: dict[str, sp.Symbol] = {s.name: s for s in sp.symbols(_NAMES, positive=True)}
_S = SYMBOLS
n, d, p, p_eff, eps, delta = (_S[x] for x in ("n", "d", "p", "p_eff", "eps", "delta"))
W, J, c, k, L, kept = (_S[x] for x in ("W", "J", "c", "k", "L", "kept"))
I_bits, log_card, a1_sq, t2_den = (
    _S[x] for x in ("mutual_information_bits", "log_card", "a1_squared", "exponent_denominator")
)

_LATEX_NAMES = {
    eps: r"\epsilon",
    delta: r"\delta",
    p_eff: r"p_{\mathrm{eff}}",
    I_bits: r"I",
    log_card: r"\log|\mathcal{F}|",
    a1_sq: r"a_1^2",
    t2_den: r"T_2",
    _S["k_condition_const"]: r"C_k",
    kept: r"\|\mathbf{m}\|_1",
    _S["W_inf"]: r"W_\infty",
    _S["gamma"]: r"\gamma",
    _S["bits_per_weight"]: r"b",
}

#: Named expressions with a one-line description each.
EXPRESSIONS: dict[str, str] = {
    "L_BS": "BS Theorem 3: Lipschitz lower bound for a p-parameter class",
    "L_NFP": "NFP Theorem 4: Lipschitz lower bound from the effective parameter count",
    "p_eff": "NFP Theorem 4: effective parameter count in bits",
    "p_eff_informal": "NFP abstract: informal effective parameter count E|m|_1 + I",
    "finite_class_failure": "BS Theorem 2: failure probability of a finite class",
    "bs_failure": "BS Theorem 3, proof step (3): failure probability of the p-parameter class",
    "nfp_threshold": "NFP Theorem 4, proof step (4): Lemma 1's deviation at probability delta/2",
    "k_condition_n": "Smallest n satisfying the k-condition (BS: const 8^4; NFP: 8^3)",
    "binary_entropy": "Binary entropy h_2(gamma) in bits",
    "mask_entropy": "log2 of binomial(p, kept): the mask-entropy ceiling in bits",
    "imp_to_pai_ratio": "THEORY 3.6: IMP-to-PaI ratio of effective counts at sparsity gamma",
    "J_BS": "BS Lemma 3.1: parameter-Lipschitz constant R (W Q p)^D",
    "J_tight": "BS Lemma 3.1: tighter parameter-Lipschitz constant (W sqrt(pQ))^D Q R sqrt(p)",
    "box_diameter": "Euclidean diameter 2 W_inf sqrt(p) of the box [-W_inf, W_inf]^p",
}


def _log2(x: sp.Expr) -> sp.Expr:
    return sp.log(x) / sp.log(2)


def _h2(g: sp.Expr) -> sp.Expr:
    return -g * _log2(g) - (1 - g) * _log2(1 - g)


def _build(name: str) -> sp.Expr:
    R, Q, D, W_inf, gamma, b = (_S[x] for x in ("R", "Q", "D", "W_inf", "gamma", "bits_per_weight"))
    net_log = sp.log(60 * W * J / eps)
    formulas = {
        "L_BS": eps / (2**9 * sp.sqrt(c)) * sp.sqrt(n * d / (p * net_log + sp.log(4 / delta))),
        "L_NFP": eps
        / (96 * sp.sqrt(a1_sq) * sp.sqrt(2 * c))
        * sp.sqrt(n * d * delta / (p_eff + delta / 2 * sp.log(4 / delta))),
        "p_eff": I_bits + kept * _log2(1 + 60 * W * J / eps),
        "p_eff_informal": kept + I_bits,
        "finite_class_failure": 4 * k * sp.exp(-n * eps**2 / (8**3 * k))
        + 2 * sp.exp(log_card - eps**2 * n * d / (t2_den * c * L**2)),
        "bs_failure": 4 * k * sp.exp(-n * eps**2 / (8**4 * k))
        + 2 * sp.exp(p * net_log - eps**2 * n * d / (8**6 * c * L**2)),
        "nfp_threshold": sp.sqrt(a1_sq)
        * sp.sqrt(144 * c * L**2 / (n * d) * (2 * p_eff / delta + sp.log(4 / delta))),
        "k_condition_n": _S["k_condition_const"] * k * sp.log(8 * k / delta) / eps**2,
        "binary_entropy": _h2(gamma),
        "mask_entropy": _log2(sp.binomial(p, kept)),
        "imp_to_pai_ratio": 1 + _h2(gamma) / (b * (1 - gamma)),
        "J_BS": R * (W_inf * Q * p) ** D,
        "J_tight": (W_inf * sp.sqrt(p * Q)) ** D * Q * R * sp.sqrt(p),
        "box_diameter": 2 * W_inf * sp.sqrt(p),
    }
    return formulas[name]


@functools.cache
def expression(name: str) -> sp.Expr:
    """Return the named formula as a sympy expression.

    Parameters
    ----------
    name : str
        A key of :data:`EXPRESSIONS`, e.g. ``"L_BS"`` or ``"L_NFP"``.

    Returns
    -------
    sympy.Expr
        The formula over the symbols of :data:`SYMBOLS`.

    Raises
    ------
    UnknownNameError
        If ``name`` is not a known expression.

    Examples
    --------
    >>> expression("p_eff_informal")
    kept + mutual_information_bits
    """
    get_registered(EXPRESSIONS, name, "expression")
    return _build(name)


def latex(expr: str | sp.Basic) -> str:
    r"""Render a named expression (or any sympy object) as LaTeX with the paper's symbols.

    Examples
    --------
    >>> latex("p_eff_informal")
    '\\|\\mathbf{m}\\|_1 + I'
    """
    obj = expression(expr) if isinstance(expr, str) else expr
    a1 = sp.Symbol("a_1", positive=True)  # display sqrt(a_1^2) as a_1
    return sp.latex(obj.xreplace({a1_sq: a1**2}), symbol_names=_LATEX_NAMES)


@dataclass(frozen=True, kw_only=True)
class Step:
    """One step of a derivation: an equation that sympy checks.

    Attributes
    ----------
    description : str
        What the step says, in words.
    equation : sympy.Eq
        The identity claimed by the step (built with ``evaluate=False``).
    """

    description: str
    equation: sp.Eq

    def holds(self) -> bool:
        """Return True when sympy proves ``lhs - rhs == 0``.

        Logarithms are expanded and radicals combined as for positive arguments, which every
        quantity is on the theorems' domain (``0 < delta < 1``, so ``log(4/delta) > 0``).
        """
        diff = sp.expand_log((self.equation.lhs - self.equation.rhs).doit(), force=True)
        return sp.simplify(sp.powsimp(diff, force=True)) == 0


def _eq(lhs: sp.Expr, rhs: sp.Expr) -> sp.Eq:
    return sp.Eq(lhs, rhs, evaluate=False)


def _positive_root(equation: sp.Eq, symbol: sp.Symbol) -> sp.Expr:
    """Solve an equation in ``symbol**2`` for the positive ``symbol``."""
    square = sp.Dummy(positive=True)
    roots = sp.solve(equation.subs(symbol, sp.sqrt(square)), square)
    if len(roots) != 1:
        raise ValidationError(f"cannot solve {equation} uniquely for {symbol}")
    return sp.sqrt(roots[0])


def _at(expr: sp.Expr, values: dict) -> sp.Subs:
    """``expr`` evaluated at ``values``, kept unevaluated so that the docs show the substitution."""
    return sp.Subs(expr, tuple(values), tuple(values.values()))


def _split(failure: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Split a two-term failure bound into (label-balance term, information term with L)."""
    (first,) = (t for t in failure.args if not t.has(L))
    return first, failure - first


def _bs_steps() -> tuple[Step, ...]:
    net_log = sp.log(60 * W * J / eps)
    first, second = _split(expression("bs_failure"))
    n_k = 8**4 * k * sp.log(8 * k / delta) / eps**2
    bound = expression("L_BS")
    theorem2 = _split(expression("finite_class_failure"))[1]
    solved = _positive_root(_eq(second, delta / 2), L)
    return (
        Step(
            description="(1) The eps/(6J)-net of the weight set has at most (60WJ/eps)^p "
            "points, so log|F_net| = p log(60WJ/eps).",
            equation=_eq(sp.log((60 * W * J / eps) ** p), p * net_log),
        ),
        Step(
            description="(3) BS Theorem 2 at level eps/2 on the net, with the exponent "
            "denominator T_2 = 8^4: the information term has denominator 4*8^4 <= 8^6.",
            equation=_eq(
                _at(theorem2, {eps: eps / 2, log_card: p * net_log, t2_den: 8**4}),
                2 * sp.exp(p * net_log - eps**2 * n * d / (4 * 8**4 * c * L**2)),
            ),
        ),
        Step(
            description="(4a) At equality in the k-condition 8^4 k log(8k/delta) = n eps^2, the "
            "label-balance term equals delta/2.",
            equation=_eq(_at(first, {n: n_k}), delta / 2),
        ),
        Step(
            description="(4b) Setting the information term to delta/2 and solving for L "
            "gives L_BS (since 8^6 = (2^9)^2).",
            equation=_eq(solved, bound),
        ),
        Step(
            description="(4c) Check: at L = L_BS the information term equals delta/2.",
            equation=_eq(_at(second, {L: bound}), delta / 2),
        ),
    )


def _nfp_steps() -> tuple[Step, ...]:
    threshold = expression("nfp_threshold")
    bound = expression("L_NFP")
    n_k = 8**3 * k * sp.log(8 * k / delta) / eps**2
    reduced = (
        eps
        / (1152 * sp.sqrt(c))
        * sp.sqrt(
            n * d * delta / (expression("p_eff").subs(I_bits, 0) + delta / 2 * sp.log(4 / delta))
        )
    )
    return (
        Step(
            description="(3) At equality in the k-condition 8^3 k log(8k/delta) = n eps^2, the "
            "label-balance term (2k+2) exp(-n eps^2/(8^3 k)) equals (2k+2) delta/(8k) <= delta/2.",
            equation=_eq(
                _at((2 * k + 2) * sp.exp(-n * eps**2 / (8**3 * k)), {n: n_k}),
                (2 * k + 2) * delta / (8 * k),
            ),
        ),
        Step(
            description="(4a) Lemma 1 at probability delta/2 with C_0 = 144 c L^2/(nd) and "
            "I = p_eff: solving a_1 sqrt(C_0 (2I/delta + log(4/delta))) = eps/8 for L gives L_NFP.",
            equation=_eq(_positive_root(_eq(threshold, eps / 8), L), bound),
        ),
        Step(
            description="(4b) Check: at L = L_NFP the deviation equals eps/8.",
            equation=_eq(_at(threshold, {L: bound}), eps / 8),
        ),
        Step(
            description="(4c) With a_1^2 = 72 the prefactor is 1/(96 a_1 sqrt 2) = 1/1152.",
            equation=_eq(_at(96 * sp.sqrt(a1_sq) * sp.sqrt(2), {a1_sq: 72}), sp.Integer(1152)),
        ),
        Step(
            description="(5) With I = 0 the bound is the BS-type form with "
            "p -> E|m|_1 log2(1 + 60WJ/eps) and prefactor eps/(1152 sqrt(c)).",
            equation=_eq(
                _at(bound, {a1_sq: 72, p_eff: expression("p_eff").subs(I_bits, 0)}), reduced
            ),
        ),
    )


_DERIVATIONS = {"bs-theorem3": _bs_steps, "nfp-theorem4": _nfp_steps}


@functools.cache
def derivation(theorem: str) -> tuple[Step, ...]:
    """Return the derivation of a theorem's Lipschitz bound as checkable steps.

    Parameters
    ----------
    theorem : {"bs-theorem3", "nfp-theorem4"}
        Which derivation (THEORY §2.3 proof skeleton, §3.4 proof outline).

    Returns
    -------
    tuple of Step
        The steps, in order; each ``step.holds()`` is True.

    Examples
    --------
    >>> all(step.holds() for step in derivation("bs-theorem3"))
    True
    """
    return get_registered(_DERIVATIONS, theorem, "derivation")()


@functools.cache
def solve_for(symbol: str, bound: str = "L_BS") -> sp.Expr:
    """Solve ``bound == L`` for ``symbol``: the inverse of a Lipschitz bound.

    Logarithms that do not involve ``symbol`` are held fixed while solving, so the result keeps
    them intact (``log(4/delta)``, ``log(60WJ/eps)``).

    Parameters
    ----------
    symbol : str
        The unknown, e.g. ``"p"``, ``"n"`` or ``"p_eff"``.
    bound : {"L_BS", "L_NFP"}
        The Lipschitz bound to invert.

    Returns
    -------
    sympy.Expr
        The unique real solution, as a function of ``L`` and the other symbols. It can be
        negative, meaning that the bound cannot exceed ``L`` for any positive ``symbol``.

    Raises
    ------
    ValidationError
        If ``symbol`` does not occur in the bound or sympy finds no unique solution.

    Examples
    --------
    >>> solve_for("n")
    262144*L**2*c*(p*log(60*J*W/eps) + log(4/delta))/(d*eps**2)
    """
    expr = expression(bound)
    target = get_registered(SYMBOLS, symbol, "symbol")
    if target not in expr.free_symbols:
        raise ValidationError(f"symbol {symbol!r} does not occur in {bound}")
    frozen = {f: sp.Dummy() for f in expr.atoms(sp.log) if not f.has(target)}
    unknown = sp.Dummy(real=True)
    squared = (expr.subs(frozen).subs(target, unknown)) ** 2
    roots = sp.solve(sp.Eq(L**2, squared), unknown)
    if len(roots) != 1:
        raise ValidationError(f"cannot solve {bound} = L uniquely for {symbol}")
    return sp.factor(roots[0]).subs({v: f for f, v in frozen.items()})
