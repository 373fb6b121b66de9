"""Fuzzing the public API's numeric arguments: a clear error naming the argument, or a right value.

Every call gets one argument replaced by a drawn value (NaN, infinities, negatives, zero, huge
numbers, strings, None, bools, lists, arrays of the wrong shape) and must either raise a
``ValueError`` subclass whose message names that argument, or return a finite value that agrees
with the formula. The Lipschitz estimators have their own suite.
"""

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustlaw import bounds as rb

torch = pytest.importorskip("torch")

from robustlaw.empirical.data import random_labels_data  # noqa: E402
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble  # noqa: E402
from robustlaw.empirical.pruning import PrunePlan  # noqa: E402
from robustlaw.empirical.training import (  # noqa: E402
    SGD,
    Adam,
    AdamW,
    BelowNoise,
    TrainOptions,
)
from robustlaw.errors import ValidationError  # noqa: E402

NOT_NUMBERS = st.sampled_from(["1", "", "nan", None, True, False, b"1", [1.0, "x"], [None], 1j])
SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e308, 1e-308, -1e300])
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
INTS = st.integers(min_value=-(2**70), max_value=2**70)
ARRAYS = st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=3)
WRONG_SHAPE = st.sampled_from([np.ones((2, 3)), np.ones((3, 2)), np.ones(5), np.zeros((0,))])
NUMERIC = st.one_of(NOT_NUMBERS, SPECIAL, FLOATS, INTS, ARRAYS, WRONG_SHAPE)


def _names_argument(err: Exception, name: str) -> bool:
    """Whether the message names ``name`` as a word (``n`` in ``"n must be"``, not ``"an"``)."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", str(err)) is not None


def _call(function, kwargs, name):
    """Call; a ValueError must name ``name``; return the value or None after a clean refusal."""
    try:
        return function(**kwargs)
    except ValueError as err:
        _check_refusal(err, name)
    return None


def _check_refusal(err: ValueError, *names: str) -> None:
    """A refusal is a ValidationError whose message names one of ``names``."""
    if not isinstance(err, ValidationError):
        pytest.fail(f"raw {type(err).__name__}: {err}")
    if not any(_names_argument(err, n) for n in names):
        pytest.fail(f"none of {names} named in: {err}")


# ---- bounds -------------------------------------------------------------------------------

BS = dict(n=6e4, d=784, p=1e6, eps=0.8, delta=0.1, W=10.0, J=10.0, c=1.0, k=1)
NFP = dict(n=6e4, d=784, p_eff=1e5, eps=0.5, delta=0.1, c=1.0, k=1)
OFF = dict(check_assumptions=False)


def _l_bs(n, d, p, eps, delta, W, J, c, k, **_):
    den = p * np.log(60 * W * J / eps) + np.log(4 / delta)
    return eps / (2**9 * np.sqrt(c)) * np.sqrt(n) * np.sqrt(d) / np.sqrt(den)


def _l_nfp(n, d, p_eff, eps, delta, c, k, a1_squared=72.0, **_):
    den = p_eff + delta / 2 * np.log(4 / delta)
    scale = 96 * np.sqrt(a1_squared) * np.sqrt(2) * np.sqrt(c)
    return eps / scale * np.sqrt(n) * np.sqrt(d) * np.sqrt(delta) / np.sqrt(den)


def _p_eff(kept, W, J, eps, mutual_information_bits=0.0):
    return mutual_information_bits + kept * np.log2(1 + 60 * W * J / eps)


def _assert_positive(value):
    out = np.asarray(value, dtype=np.float64)
    assert np.all(np.isfinite(out)), value
    assert np.all(out > 0), value


def _assert_non_negative(value):
    out = np.asarray(value, dtype=np.float64)
    assert np.all(np.isfinite(out)), value
    assert np.all(out >= 0), value


def _close(expected):
    def check(value, kwargs):
        _assert_non_negative(value)  # 0.0 only where the true value underflows float64
        with np.errstate(all="ignore"):  # the direct formula may overflow where sympy's did not
            want = expected(**{k: np.asarray(v, dtype=np.float64) for k, v in kwargs.items()})
        value, want = np.broadcast_arrays(np.asarray(value), want)
        ok = np.isfinite(want)
        assert np.allclose(value[ok], want[ok], rtol=1e-9, atol=1e-300)

    return check


# (function, valid keyword arguments, check of a returned value)
BOUND_CASES = [
    (rb.lipschitz_lower_bound, BS | OFF, _close(_l_bs)),
    (rb.sparse_lipschitz_lower_bound, NFP | OFF, _close(_l_nfp)),
    (
        rb.required_parameter_count,
        {k: v for k, v in BS.items() if k != "p"} | {"L": 1e-3} | OFF,
        lambda v, kw: _assert_non_negative(v),
    ),
    (
        rb.required_effective_parameter_count,
        {k: v for k, v in NFP.items() if k != "p_eff"} | {"L": 1e-3} | OFF,
        lambda v, kw: _assert_non_negative(v),
    ),
    (
        rb.max_robust_samples,
        {k: v for k, v in BS.items() if k != "n"} | {"L": 1.0} | OFF,
        lambda v, kw: _assert_non_negative(v),
    ),
    (
        rb.sparse_max_robust_samples,
        {k: v for k, v in NFP.items() if k != "n"} | {"L": 1.0} | OFF,
        lambda v, kw: _assert_non_negative(v),
    ),
    (
        rb.finite_class_failure_probability,
        dict(n=1e4, d=10, log_card=5.0, L=1.0, eps=0.5, c=1.0, k=1),
        lambda v, kw: (_assert_non_negative(v), np.all(np.asarray(v) <= 1) or pytest.fail(str(v))),
    ),
    (
        rb.effective_parameter_count,
        dict(kept=10.0, mutual_information_bits=1.0, W=1.0, J=1.0, eps=0.5),
        _close(_p_eff),
    ),
    (
        rb.p_eff_informal,
        dict(kept=10.0, mutual_information_bits=1.0),
        lambda v, kw: _assert_positive(v),
    ),
    (rb.binary_entropy, dict(g=0.3), lambda v, kw: _assert_non_negative(v)),
    (rb.mask_entropy_upper_bound, dict(p=100.0, kept=10.0), lambda v, kw: _assert_non_negative(v)),
    (rb.imp_to_pai_ratio, dict(gamma=0.5, bits_per_weight=1.0), lambda v, kw: _assert_positive(v)),
    (
        rb.mask_information,
        dict(p=21, kept=10, data_dependent=True, measured=3.0),
        lambda v, kw: _assert_non_negative(v.bits),
    ),
    (
        rb.parameter_lipschitz_constant,
        dict(R=1.0, W_inf=1.0, p=100.0, D=2, Q=1),
        lambda v, kw: _assert_non_negative(v),
    ),
    (rb.box_to_euclidean_diameter, dict(W_inf=1.0, p=100.0), lambda v, kw: _assert_non_negative(v)),
    (
        lambda **kw: rb.isoperimetry_constant("gaussian", **kw),
        dict(d=10.0, scale=1.0),
        lambda v, kw: _assert_non_negative(v),
    ),
    (
        rb.k_condition_holds,
        dict(n=6e4, eps=0.5, delta=0.1, k=1, k_condition_const=512.0),
        lambda v, kw: None,
    ),
]
BOUND_ARGS = [
    pytest.param(function, good, check, name, id=f"{getattr(function, '__name__', 'iso')}-{name}")
    for function, good, check in BOUND_CASES
    for name in good
    if name != "check_assumptions"
]


def test_every_public_bound_function_is_fuzzed():
    fuzzed = {getattr(f, "__name__", "") for f, _, _ in BOUND_CASES} | {"isoperimetry_constant"}
    skipped = {"assumptions", "mlp_parameter_count"}  # tested in tests/bounds/test_validation.py
    public = {n for n in rb.__all__ if callable(getattr(rb, n)) and n[0].islower()}
    assert public - skipped <= fuzzed


@pytest.mark.parametrize(("function", "good", "assert_valid", "name"), BOUND_ARGS)
@given(value=NUMERIC)
def test_bounds_refuse_or_compute(function, good, assert_valid, name, value):
    kwargs = good | {name: value}
    out = _call(function, kwargs, name)
    if out is not None:
        assert_valid(out, {k: v for k, v in kwargs.items() if k != "check_assumptions"})


@pytest.mark.parametrize(("function", "good", "assert_valid", "name"), BOUND_ARGS[:9])
@given(value=st.floats(min_value=1e-3, max_value=1e9))
def test_bounds_agree_with_the_formula_at_valid_points(function, good, assert_valid, name, value):
    out = _call(function, good | {name: value}, name)
    if out is not None:
        assert_valid(
            out, {k: v for k, v in (good | {name: value}).items() if k != "check_assumptions"}
        )


# ---- empirical options ----------------------------------------------------------------------


@given(value=NUMERIC)
def test_prune_plan_density(value):
    plan = _call(PrunePlan, dict(method="magnitude", density=value), "density")
    if plan is not None:
        assert 0 < float(plan.density) <= 1


@given(value=st.one_of(NUMERIC, st.lists(st.floats(0.01, 1), min_size=1, max_size=3)))
def test_optimizer_learning_rate(value):
    for cls in (SGD, Adam, AdamW):
        opt = _call(cls, dict(lr=value), "lr")
        if opt is not None:
            lrs = np.atleast_1d(np.asarray(opt.lr, dtype=np.float64))
            _assert_positive(lrs)


@given(value=NUMERIC)
def test_stopping_eps(value):
    rule = _call(BelowNoise, dict(eps=value), "eps")
    if rule is not None:
        _assert_non_negative(rule.eps)


@pytest.mark.parametrize("name", ["batch_size", "max_steps", "check_every"])
@given(value=NUMERIC)
def test_train_options_counts(name, value):
    opts = _call(TrainOptions, {name: value}, name)
    if opts is not None and value is not None:  # None: full batch, default checks
        assert isinstance(getattr(opts, name), int)
        assert getattr(opts, name) >= 0


@given(
    n=st.one_of(NOT_NUMBERS, SPECIAL, st.integers(-3, 12), st.just(2**70)),
    d=st.one_of(NOT_NUMBERS, SPECIAL, st.integers(-3, 12), st.just(2**70)),
)
def test_random_labels_data_sizes(n, d):
    try:
        data = random_labels_data(n, d)
    except ValueError as err:
        _check_refusal(err, "n_samples", "n_features")
        return
    assert tuple(data.X.shape) == (n, d)
    assert bool(torch.isfinite(data.X).all())
    assert set(data.y.unique().tolist()) <= {-1.0, 1.0}


@given(
    sizes=st.one_of(
        NOT_NUMBERS,
        st.lists(st.one_of(NOT_NUMBERS, SPECIAL, st.integers(-2, 6), st.just(2**70)), max_size=4),
    )
)
def test_mlp_spec_layer_sizes(sizes):
    spec = _call(MLPSpec, dict(layer_sizes=sizes), "layer_sizes")
    if spec is not None:
        assert len(spec.layer_sizes) >= 2
        assert all(s >= 1 for s in spec.layer_sizes)


@given(
    seeds=st.one_of(
        NOT_NUMBERS,
        st.lists(st.one_of(NOT_NUMBERS, SPECIAL, st.integers(-3, 2**66)), max_size=3),
    )
)
def test_init_mlp_ensemble_seeds(seeds):
    ens = _call(
        lambda seeds: init_mlp_ensemble(MLPSpec(layer_sizes=(2, 3, 1)), seeds),
        {"seeds": seeds},
        "seeds",
    )
    if ens is not None:
        assert ens.seeds == tuple(seeds)
        assert all(bool(torch.isfinite(v).all()) for v in ens.params.values())
