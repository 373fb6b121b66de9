"""The symbolic layer: derivations that sympy checks, inverses, and symbolic == numeric."""

import functools

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from robustlaw import bounds as rb
from robustlaw.bounds import symbolic as sym
from robustlaw.errors import UnknownNameError, ValidationError

S = sym.SYMBOLS


@pytest.mark.parametrize("theorem", ["bs-theorem3", "nfp-theorem4"])
def test_every_derivation_step_holds(theorem):
    steps = sym.derivation(theorem)
    assert len(steps) >= 4
    assert all(step.holds() for step in steps)


def test_a_false_step_is_detected():
    wrong = sym.Step(description="wrong", equation=sp.Eq(sym.expression("L_BS"), 2 * S["L"]))
    assert not wrong.holds()


def test_bs_failure_term_at_l_bs_is_half_delta():
    failure = sym.expression("bs_failure").subs(S["L"], sym.expression("L_BS"))
    n_k = 8**4 * S["k"] * sp.log(8 * S["k"] / S["delta"]) / S["eps"] ** 2
    total = sp.simplify(sp.expand_log(failure.subs(S["n"], n_k), force=True))
    # Both terms equal delta/2 at equality in the k-condition and L = L_BS: total delta.
    assert sp.simplify(total - S["delta"]) == 0


@pytest.mark.parametrize(
    ("symbol", "bound"), [("p", "L_BS"), ("n", "L_BS"), ("p_eff", "L_NFP"), ("n", "L_NFP")]
)
def test_solve_for_inverts_the_bound(symbol, bound):
    root = sym.solve_for(symbol, bound)
    back = sym.expression(bound).subs(S[symbol], root)
    assert sp.simplify(sp.powsimp(back - S["L"], force=True)) == 0
    assert not root.has(S[symbol])


def test_solve_for_rejects_absent_symbols_and_unknown_names():
    with pytest.raises(ValidationError, match="W"):
        sym.solve_for("W", "L_NFP")
    with pytest.raises(UnknownNameError, match="L_BS"):
        sym.expression("L_XX")


def test_latex_uses_paper_symbols():
    text = sym.latex("L_NFP")
    for symbol in (r"\epsilon", r"p_{\mathrm{eff}}", r"\delta"):
        assert symbol in text
    assert "512" in sym.latex("L_BS")


@functools.cache
def _mpmath_function(name):
    expr = sym.expression(name)
    names = sorted(s.name for s in expr.free_symbols)
    return sp.lambdify([S[x] for x in names], expr, modules="mpmath"), names


def _evalf(name, values):
    """The sympy expression evaluated by mpmath at 30 digits (independent of numpy)."""
    function, names = _mpmath_function(name)
    with mp.workdps(30):
        return float(function(*(mp.mpf(values[x]) for x in names)))


positive = st.floats(1e-2, 1e2)
counts = st.floats(1.0, 1e7)
unit = st.floats(0.01, 0.99)


@given(n=counts, d=counts, p=counts, eps=unit, delta=unit, W=positive, J=positive, c=positive)
def test_l_bs_symbolic_equals_numeric(n, d, p, eps, delta, W, J, c):
    vals = dict(n=n, d=d, p=p, eps=eps, delta=delta, W=W, J=J, c=c)
    if 60 * W * J / eps <= 1.01:
        return
    got = rb.lipschitz_lower_bound(**vals, check_assumptions=False)
    assert got == pytest.approx(_evalf("L_BS", vals), rel=1e-11)


@given(n=counts, d=counts, p_eff=st.floats(0.0, 1e8), eps=unit, delta=unit, c=positive)
def test_l_nfp_symbolic_equals_numeric(n, d, p_eff, eps, delta, c):
    vals = dict(n=n, d=d, p_eff=p_eff, eps=eps, delta=delta, c=c)
    got = rb.sparse_lipschitz_lower_bound(**vals, check_assumptions=False)
    assert got == pytest.approx(_evalf("L_NFP", vals | {"a1_squared": 72}), rel=1e-11)


@given(kept=counts, info=st.floats(0, 1e7), W=positive, J=positive, eps=unit, g=unit)
def test_peff_entropy_and_ratio_symbolic_equal_numeric(kept, info, W, J, eps, g):
    got = rb.effective_parameter_count(kept=kept, mutual_information_bits=info, W=W, J=J, eps=eps)
    vals = dict(kept=kept, mutual_information_bits=info, W=W, J=J, eps=eps)
    assert got == pytest.approx(_evalf("p_eff", vals), rel=1e-11)
    assert rb.binary_entropy(g) == pytest.approx(_evalf("binary_entropy", {"gamma": g}), rel=1e-11)
    ratio = _evalf("imp_to_pai_ratio", {"gamma": g, "bits_per_weight": W})
    assert rb.imp_to_pai_ratio(g, bits_per_weight=W) == pytest.approx(ratio, rel=1e-11)


@given(p=st.integers(1, 10**6), frac=st.floats(0, 1))
def test_mask_entropy_symbolic_equals_numeric(p, frac):
    kept = int(frac * p)
    ref = _evalf("mask_entropy", {"p": p, "kept": kept}) if 0 < kept < p else 0.0
    assert rb.mask_entropy_upper_bound(p, kept) == pytest.approx(ref, rel=1e-11, abs=1e-9)


@given(
    n=counts,
    d=counts,
    log_card=st.floats(0, 1e3),
    L=positive,
    eps=unit,
    c=positive,
    k=st.integers(1, 5),
)
def test_finite_class_symbolic_equals_numeric(n, d, log_card, L, eps, c, k):
    vals = dict(n=n, d=d, log_card=log_card, L=L, eps=eps, c=c, k=k)
    ref = _evalf("finite_class_failure", vals | {"exponent_denominator": 4096})
    got = rb.finite_class_failure_probability(**vals)
    assert got == pytest.approx(min(ref, 1.0), rel=1e-10, abs=1e-300)


@given(R=positive, W_inf=positive, p=st.floats(1, 1e4), D=st.integers(1, 4), Q=st.integers(1, 3))
def test_deep_constants_symbolic_equal_numeric(R, W_inf, p, D, Q):
    vals = dict(R=R, W_inf=W_inf, p=p, D=D, Q=Q)
    for form, name in rb.deep.J_FORMS.items():
        got = rb.parameter_lipschitz_constant(**vals, form=form)
        assert got == pytest.approx(_evalf(name, vals), rel=1e-11)
    # J_BS dominates J_tight when D >= 2 or Q = 1 (THEORY §2.4), for W_inf >= 1 and R > 0.
    if W_inf >= 1 and (D >= 2 or Q == 1):
        tight = rb.parameter_lipschitz_constant(**vals, form="tight")
        assert rb.parameter_lipschitz_constant(**vals) >= tight * (1 - 1e-12)
    diam = rb.box_to_euclidean_diameter(W_inf=W_inf, p=p)
    assert diam == pytest.approx(2 * W_inf * np.sqrt(p), rel=1e-14)
