"""Bounds against values computed independently with mpmath (THEORY §5 worked examples, §3.6)."""

import mpmath as mp
import numpy as np
import pytest

from robustlaw import bounds as rb

RTOL = 1e-12


@pytest.fixture(autouse=True)
def _high_precision():
    """Reference values at 50 digits, without changing mpmath's global precision."""
    with mp.workdps(50):
        yield


def l_bs_ref(n, d, p, eps, delta, W, J, c=1):
    n, d, p, eps, delta, W, J, c = map(mp.mpf, (n, d, p, eps, delta, W, J, c))
    return (
        eps
        / (512 * mp.sqrt(c))
        * mp.sqrt(n * d / (p * mp.log(60 * W * J / eps) + mp.log(4 / delta)))
    )


def l_nfp_ref(n, d, p_eff, eps, delta, c=1):
    n, d, p_eff, eps, delta, c = map(mp.mpf, (n, d, p_eff, eps, delta, c))
    prefactor = eps / (96 * mp.sqrt(72) * mp.sqrt(2 * c))
    return prefactor * mp.sqrt(n * d * delta / (p_eff + delta / 2 * mp.log(4 / delta)))


def p_eff_ref(kept, info, W, J, eps):
    return mp.mpf(info) + mp.mpf(kept) * mp.log(1 + 60 * mp.mpf(W) * J / mp.mpf(eps), 2)


def log2_binom_ref(p, kept):
    p, kept = mp.mpf(p), mp.mpf(kept)
    return (mp.loggamma(p + 1) - mp.loggamma(kept + 1) - mp.loggamma(p - kept + 1)) / mp.log(2)


A = dict(n=1e4, d=100, p=1e3, eps=0.1, delta=0.01, W=10.0, J=10.0)
B = dict(n=6e4, d=784, p=1e5, eps=0.5, delta=0.1, W=1.0, J=1.0)
CLI = dict(n=6e4, d=784, p=1e6, eps=0.8, delta=0.1, W=10.0, J=10.0)


@pytest.mark.parametrize(("setting", "frozen"), [(A, 1.8617e-3), (B, 9.6804e-3), (CLI, 3.5876e-3)])
def test_lipschitz_lower_bound_matches_mpmath(setting, frozen):
    got = rb.lipschitz_lower_bound(**setting, check_assumptions=False)
    assert got == pytest.approx(float(l_bs_ref(**setting)), rel=RTOL)
    assert got == pytest.approx(frozen, rel=1e-4)


def test_example_a_k_condition_fails_under_both_constants():
    # n eps^2 = 100, while 8^3 log(800) ~ 3423 and 8^4 log(800) ~ 27382.
    for const in (rb.BS_K_CONDITION_CONST, rb.NFP_K_CONDITION_CONST):
        assert rb.k_condition_holds(n=1e4, eps=0.1, delta=0.01, k_condition_const=const) is False
    assert 512 * np.log(800) > 100


@pytest.mark.parametrize("info", [0.0, 5000.0])
def test_example_a_sparse(info):
    p_eff = rb.effective_parameter_count(
        kept=1e3, mutual_information_bits=info, W=10, J=10, eps=0.1
    )
    assert p_eff == pytest.approx(float(p_eff_ref(1e3, info, 10, 10, 0.1)), rel=RTOL)
    got = rb.sparse_lipschitz_lower_bound(
        n=1e4, d=100, p_eff=p_eff, eps=0.1, delta=0.01, check_assumptions=False
    )
    assert got == pytest.approx(float(l_nfp_ref(1e4, 100, p_eff, 0.1, 0.01)), rel=RTOL)
    # The NFP floor is far below the BS floor here (prefactor 1152 vs 512, sqrt(delta), bits).
    assert got < rb.lipschitz_lower_bound(**A, check_assumptions=False) / 10


def test_example_b_ratio_and_sqrt_d_loss():
    l1 = rb.lipschitz_lower_bound(**B, check_assumptions=False)
    ld = rb.lipschitz_lower_bound(**B, c=784, check_assumptions=False)
    assert l1 / np.sqrt(6e4 * 784 / 1e5) == pytest.approx(
        float(l_bs_ref(**B) / mp.sqrt(mp.mpf(6e4) * 784 / 1e5)), rel=RTOL
    )
    assert l1 / ld == pytest.approx(28.0, rel=1e-13)  # sqrt(784)


def test_example_c_deep_constants():
    p = rb.mlp_parameter_count([784, 200, 200, 10])
    assert p == 784 * 200 + 200 * 200 + 200 * 10 == 198800
    diameter = rb.box_to_euclidean_diameter(W_inf=1.0, p=p)
    assert diameter == pytest.approx(2 * np.sqrt(198800), rel=1e-15)
    j_bs = rb.parameter_lipschitz_constant(R=1, W_inf=1, p=p, D=3)
    j_tight = rb.parameter_lipschitz_constant(R=1, W_inf=1, p=p, D=3, form="tight")
    assert j_bs == pytest.approx(198800.0**3, rel=1e-15)
    assert j_tight == pytest.approx(float(mp.sqrt(198800) ** 3 * mp.sqrt(198800)), rel=1e-14)
    common = dict(n=6e4, d=784, p=p, eps=0.5, delta=0.1, W=diameter, check_assumptions=False)
    l_bs, l_tight = (rb.lipschitz_lower_bound(**common, J=j) for j in (j_bs, j_tight))
    for got, j in ((l_bs, j_bs), (l_tight, j_tight)):
        assert got == pytest.approx(float(l_bs_ref(6e4, 784, p, 0.5, 0.1, diameter, j)), rel=RTOL)
    # They differ only through the logarithm: the squared ratio is the ratio of denominators.
    denom = [p * np.log(60 * diameter * j / 0.5) + np.log(40) for j in (j_bs, j_tight)]
    assert (l_tight / l_bs) ** 2 == pytest.approx(denom[0] / denom[1], rel=1e-12)
    assert 1 < l_tight / l_bs < 1.2


# THEORY §3.6 table, p = 1e6: gamma, h2, exact log2 binom, rho.
TABLE = [
    (0.5, 1.0000, 999990, 3.000),
    (0.9, 0.4690, 468986, 5.690),
    (0.95, 0.2864, 286388, 6.728),
    (0.98, 0.1414, 141432, 8.072),
    (0.99, 0.0808, 80785, 9.079),
]


@pytest.mark.parametrize(("gamma", "h2", "log2_binom", "rho"), TABLE)
def test_imp_table(gamma, h2, log2_binom, rho):
    kept = round((1 - gamma) * 1e6)
    assert rb.binary_entropy(gamma) == pytest.approx(h2, abs=5e-5)
    exact = rb.mask_entropy_upper_bound(1e6, kept)
    assert exact == pytest.approx(float(log2_binom_ref(1e6, kept)), rel=1e-12)
    assert round(exact) == log2_binom
    assert rb.imp_to_pai_ratio(gamma) == pytest.approx(rho, abs=5e-4)
    h2_ref = -gamma * mp.log(gamma, 2) - (1 - gamma) * mp.log(1 - gamma, 2)
    assert rb.binary_entropy(gamma) == pytest.approx(float(h2_ref), rel=1e-14)


@pytest.mark.parametrize(("p", "kept"), [(1e15, 1), (1e15, 3e7), (1e12, 1e12 - 5), (30, 7), (5, 0)])
def test_mask_entropy_exact_for_huge_p(p, kept):
    got = rb.mask_entropy_upper_bound(p, kept)
    assert got == pytest.approx(float(log2_binom_ref(p, kept)), rel=1e-12, abs=1e-12)


def test_imp_ratio_limit_and_bits_per_weight():
    gamma = 1 - 1e-6
    # rho -> log2(1/(1-gamma)) + 1 + 1/ln 2 + o(1)
    assert rb.imp_to_pai_ratio(gamma) == pytest.approx(np.log2(1e6) + 1 + 1 / np.log(2), rel=1e-4)
    assert rb.imp_to_pai_ratio(0.0) == 1.0
    assert rb.imp_to_pai_ratio(0.9, bits_per_weight=2.0) == pytest.approx(
        1 + 0.4690 / 0.2, abs=5e-4
    )


def test_finite_class_failure_probability_matches_mpmath():
    n, d, log_card, L, eps, k = 4e4, 50, 30.0, 3.0, 0.9, 2
    ref = 4 * k * mp.exp(-n * mp.mpf(eps) ** 2 / (512 * k)) + 2 * mp.exp(
        log_card - mp.mpf(eps) ** 2 * n * d / (4096 * mp.mpf(L) ** 2)
    )
    got = rb.finite_class_failure_probability(n=n, d=d, log_card=log_card, L=L, eps=eps, k=k)
    assert got == pytest.approx(float(ref), rel=RTOL)
    # A different exponent denominator (THEORY §2.7) is a named option.
    alt = rb.finite_class_failure_probability(
        n=n, d=d, log_card=log_card, L=L, eps=eps, k=k, exponent_denominator=2 * 4096
    )
    assert alt > got
    # Vacuous bounds (including float overflow) are clipped to 1, never inf.
    assert rb.finite_class_failure_probability(n=10, d=1, log_card=1e4, L=1, eps=0.5) == 1.0


def test_p_eff_informal_and_isoperimetry_table():
    assert rb.p_eff_informal(kept=1e3, mutual_information_bits=5e3) == 6e3
    assert rb.isoperimetry_constant("gaussian-normalized", 784) == 1.0
    assert rb.isoperimetry_constant("gaussian", 784, scale=0.5) == 196.0
    assert rb.isoperimetry_constant("sphere", 101) == pytest.approx(101 / 100)
    assert rb.isoperimetry_constant("cube", 10) == pytest.approx(1 / (2 * np.pi))
    assert rb.isoperimetry_constant("cube", 10, scale=2.0) == pytest.approx(4 / (2 * np.pi))


def test_inverse_values_match_mpmath():
    L = mp.mpf(1)
    n, d, eps, delta, W, J = 6e4, 784, 0.8, 0.1, 10, 10
    p_ref = (mp.mpf(eps) ** 2 * n * d / (2**18 * L**2) - mp.log(4 / mp.mpf(delta))) / mp.log(
        60 * W * J / mp.mpf(eps)
    )
    got = rb.required_parameter_count(L=1, n=n, d=d, eps=eps, delta=delta, W=W, J=J)
    assert got == int(mp.ceil(p_ref)) == 13  # a whole number of parameters: p* = 12.46
    n_ref = 2**18 * (1e6 * mp.log(7500) + mp.log(40)) / (mp.mpf(0.8) ** 2 * 784)
    got = rb.max_robust_samples(L=1, d=784, p=1e6, eps=0.8, delta=0.1, W=10, J=10)
    assert got == pytest.approx(float(n_ref), rel=1e-12)
