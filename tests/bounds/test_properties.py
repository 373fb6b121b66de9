"""Properties of the bounds over random inputs (hypothesis)."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from robustlaw import bounds as rb
from robustlaw.errors import ValidationError

counts = st.floats(1.0, 1e8)
unit = st.floats(0.01, 0.99)
positive = st.floats(0.1, 1e3)
growth = st.floats(1.01, 100.0)


@st.composite
def bs_args(draw):
    args = dict(
        n=draw(counts),
        d=draw(counts),
        p=draw(counts),
        eps=draw(unit),
        delta=draw(unit),
        W=draw(positive),
        J=draw(positive),
        c=draw(st.floats(0.01, 1e3)),
        check_assumptions=False,
    )
    assume(60 * args["W"] * args["J"] / args["eps"] > 1.01)
    return args


@st.composite
def nfp_args(draw):
    return dict(
        n=draw(counts),
        d=draw(counts),
        p_eff=draw(st.floats(0.0, 1e9)),
        eps=draw(unit),
        delta=draw(unit),
        c=draw(st.floats(0.01, 1e3)),
        check_assumptions=False,
    )


L_BS = rb.lipschitz_lower_bound
L_NFP = rb.sparse_lipschitz_lower_bound


@given(args=bs_args(), r=growth)
def test_bs_monotone(args, r):
    base = L_BS(**args)
    assert L_BS(**args | {"p": args["p"] * r}) < base
    assert L_BS(**args | {"n": args["n"] * r}) > base
    assert L_BS(**args | {"d": args["d"] * r}) > base
    assert L_BS(**args | {"c": args["c"] * r}) < base
    eps2 = min(args["eps"] * r, 0.995)
    assume(eps2 > args["eps"] * 1.001 and 60 * args["W"] * args["J"] / eps2 > 1.01)
    assert L_BS(**args | {"eps": eps2}) > base


@given(args=bs_args(), r=growth)
def test_bs_exact_sqrt_scaling(args, r):
    base = L_BS(**args)
    # n, d and c do not enter the logarithm: exact square-root scaling.
    assert L_BS(**args | {"n": args["n"] * r}) == pytest.approx(base * np.sqrt(r), rel=1e-12)
    assert L_BS(**args | {"d": args["d"] * r}) == pytest.approx(base * np.sqrt(r), rel=1e-12)
    assert L_BS(**args | {"c": args["c"] * r}) == pytest.approx(base / np.sqrt(r), rel=1e-12)
    # W and J enter only through W*J.
    assert L_BS(**args | {"W": args["W"] * r, "J": args["J"] / r}) == pytest.approx(base, rel=1e-12)


@given(args=nfp_args(), r=growth)
def test_nfp_monotone_and_scaling(args, r):
    base = L_NFP(**args)
    assert L_NFP(**args | {"p_eff": args["p_eff"] * r + 1.0}) < base
    assert L_NFP(**args | {"n": args["n"] * r}) == pytest.approx(base * np.sqrt(r), rel=1e-12)
    assert L_NFP(**args | {"d": args["d"] * r}) == pytest.approx(base * np.sqrt(r), rel=1e-12)
    eps2 = min(args["eps"] * r, 0.995)
    assume(eps2 > args["eps"] * 1.001)
    assert L_NFP(**args | {"eps": eps2}) == pytest.approx(base * eps2 / args["eps"], rel=1e-12)


@given(
    kept=st.floats(1.0, 1e7),
    info=st.floats(0.0, 1e7),
    extra=st.floats(1.0, 1e7),
    W=positive,
    J=positive,
    eps=unit,
    delta=unit,
    n=counts,
    d=counts,
)
def test_nfp_strictly_decreasing_in_information(kept, info, extra, W, J, eps, delta, n, d):
    def bound(i):
        p_eff = rb.effective_parameter_count(
            kept=kept, mutual_information_bits=i, W=W, J=J, eps=eps
        )
        return L_NFP(n=n, d=d, p_eff=p_eff, eps=eps, delta=delta, check_assumptions=False)

    assert bound(info + extra) < bound(info)


@given(kept=st.floats(0.0, 1e7), W=positive, J=positive, eps=unit, delta=unit, n=counts, d=counts)
def test_nfp_at_zero_information_is_the_bs_type_form(kept, W, J, eps, delta, n, d):
    p_eff = rb.effective_parameter_count(kept=kept, W=W, J=J, eps=eps)
    got = L_NFP(n=n, d=d, p_eff=p_eff, eps=eps, delta=delta, check_assumptions=False)
    p_bits = kept * np.log2(1 + 60 * W * J / eps)
    bs_type = eps / 1152 * np.sqrt(n * d * delta / (p_bits + delta / 2 * np.log(4 / delta)))
    assert got == pytest.approx(bs_type, rel=1e-12)


@given(args=bs_args(), L=st.floats(1e-4, 1e2))
def test_bs_inverses_round_trip(args, L):
    p_args = {k: v for k, v in args.items() if k != "p"}
    p_star = rb.required_parameter_count(L=L, **p_args)
    assert p_star == int(p_star)  # a whole number of parameters
    if p_star >= 2:  # the smallest integer p at which the bound allows L
        assert L_BS(**p_args, p=p_star) <= L * (1 + 1e-9)
        assert L_BS(**p_args, p=p_star - 1) > L * (1 - 1e-9)
    else:  # no parameter count >= 1 forces Lipschitz above L
        assert L_BS(**p_args, p=1.0) <= L * (1 + 1e-12)
    n_args = {k: v for k, v in args.items() if k != "n"}
    n_star = rb.max_robust_samples(L=L, **n_args)
    if n_star >= 1:
        assert L_BS(**n_args, n=n_star) == pytest.approx(L, rel=1e-9)


@given(args=nfp_args(), L=st.floats(1e-6, 1e2))
def test_nfp_inverses_round_trip(args, L):
    q_args = {k: v for k, v in args.items() if k != "p_eff"}
    q_star = rb.required_effective_parameter_count(L=L, **q_args)
    if q_star > 0:
        assert L_NFP(**q_args, p_eff=q_star) == pytest.approx(L, rel=1e-9)
    n_args = {k: v for k, v in args.items() if k != "n"}
    n_star = rb.sparse_max_robust_samples(L=L, **n_args)
    if n_star >= 1:
        assert L_NFP(**n_args, n=n_star) == pytest.approx(L, rel=1e-9)


@given(
    vals=st.lists(
        st.one_of(st.floats(-1e3, 1e12), st.sampled_from([np.nan, np.inf, -np.inf, 0.0])),
        min_size=8,
        max_size=8,
    )
)
def test_never_returns_nan(vals):
    n, d, p, eps, delta, W, J, c = vals
    try:
        out = L_BS(n=n, d=d, p=p, eps=eps, delta=delta, W=W, J=J, c=c, check_assumptions=False)
    except ValidationError:
        return
    assert np.isfinite(out)
    assert out > 0


def test_broadcasting_matches_scalar_evaluation():
    n = np.array([1e4, 1e5, 1e6])[:, None]
    p = np.array([1e3, 1e4])[None, :]
    eps = np.array([0.3, 0.9])
    out = L_BS(n=n, d=100, p=p, eps=eps, delta=0.1, W=10, J=10, check_assumptions=False)
    assert out.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            ref = L_BS(
                n=n[i, 0],
                d=100,
                p=p[0, j],
                eps=eps[j],
                delta=0.1,
                W=10,
                J=10,
                check_assumptions=False,
            )
            assert out[i, j] == ref
    # Arguments that do not enter the formula still broadcast.
    out = L_BS(n=1e6, d=100, p=1e3, eps=0.5, delta=0.1, W=10, J=10, k=np.ones((2, 3)))
    assert out.shape == (2, 3)
    assert isinstance(L_BS(n=1e6, d=100, p=1e3, eps=0.5, delta=0.1, W=10, J=10), float)


@given(n=counts, d=counts, d1=unit, d2=unit)
def test_nfp_polynomial_in_delta_when_p_eff_dominates(n, d, d1, d2):
    # L_NFP is proportional to sqrt(delta) once p_eff >> delta/2 log(4/delta) (THEORY §3.4).
    args = dict(n=n, d=d, p_eff=1e12, eps=0.5, check_assumptions=False)
    ratio = L_NFP(**args, delta=d1) / L_NFP(**args, delta=d2)
    assert ratio == pytest.approx(np.sqrt(d1 / d2), rel=1e-9)
