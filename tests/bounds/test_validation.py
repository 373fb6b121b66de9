"""Bad inputs raise clear errors naming the argument; preconditions are reported and enforced."""

import inspect

import numpy as np
import pytest

from robustlaw import bounds as rb
from robustlaw.bounds import symbolic
from robustlaw.errors import AssumptionViolated, UnknownNameError, ValidationError

GOOD = dict(n=1e6, d=784, p=1e5, eps=0.5, delta=0.1, W=10.0, J=10.0, c=1.0, k=1)
SPARSE = dict(n=1e6, d=784, p_eff=1e5, eps=0.5, delta=0.1, c=1.0, k=1)
# (function, valid keyword arguments)
CASES = [
    (rb.lipschitz_lower_bound, GOOD),
    (rb.sparse_lipschitz_lower_bound, SPARSE),
    (rb.required_parameter_count, {k: v for k, v in GOOD.items() if k != "p"} | {"L": 1.0}),
    (
        rb.required_effective_parameter_count,
        {k: v for k, v in SPARSE.items() if k != "p_eff"} | {"L": 1.0},
    ),
    (rb.max_robust_samples, {k: v for k, v in GOOD.items() if k != "n"} | {"L": 1.0}),
    (rb.sparse_max_robust_samples, {k: v for k, v in SPARSE.items() if k != "n"} | {"L": 1.0}),
    (
        rb.finite_class_failure_probability,
        dict(n=1e4, d=10, log_card=5.0, L=1.0, eps=0.5, c=1.0, k=1),
    ),
    (rb.effective_parameter_count, dict(kept=10.0, mutual_information_bits=1.0, W=1, J=1, eps=0.5)),
]
# Values outside every argument's domain; eps and delta also reject 0, 1 and 1.5.
BAD = [0.0, -1.0, np.nan, np.inf, -np.inf, "x"]
UNIT_BAD = [0.0, 1.0, 1.5]


def _bad_calls():
    for function, good in CASES:
        for name in good:
            bads = BAD + (UNIT_BAD if name in ("eps", "delta") else [])
            for bad in bads:
                if bad == 0.0 and name in ("p_eff", "kept", "mutual_information_bits", "log_card"):
                    continue  # zero is valid for counts of bits
                yield pytest.param(
                    function, good, name, bad, id=f"{function.__name__}-{name}-{bad}"
                )


@pytest.mark.parametrize(("function", "good", "name", "bad"), list(_bad_calls()))
def test_bad_input_raises_naming_the_argument(function, good, name, bad):
    with pytest.raises(ValidationError, match=rf"^{name} must"):
        function(**good | {name: bad})


@pytest.mark.parametrize(("function", "good"), CASES)
def test_valid_input_is_finite_and_array_bad_entry_raises(function, good):
    assert np.isfinite(function(**good))
    name = next(iter(good))
    with pytest.raises(ValidationError, match=name):
        function(**good | {name: np.array([good[name], np.nan])})


@pytest.mark.parametrize(("function", "good"), CASES)
def test_mismatched_shapes_raise(function, good):
    a, b = list(good)[:2]
    with pytest.raises(ValidationError, match="do not broadcast"):
        function(**good | {a: np.ones(3) * good[a], b: np.ones(4) * good[b]})


def test_every_public_bound_is_keyword_only():
    for function, _ in CASES:
        kinds = {p.kind for p in inspect.signature(function).parameters.values()}
        assert kinds == {inspect.Parameter.KEYWORD_ONLY}


def test_non_integer_k_and_unknown_names():
    with pytest.raises(ValidationError, match="k must"):
        rb.lipschitz_lower_bound(**GOOD | {"k": 1.5})
    with pytest.raises(UnknownNameError, match="gaussian"):
        rb.isoperimetry_constant("boolean_cube", 10)
    with pytest.raises(ValidationError, match="d must be >= 2"):
        rb.isoperimetry_constant("sphere", 1)
    with pytest.raises(ValidationError, match="form"):
        rb.parameter_lipschitz_constant(R=1, W_inf=1, p=10, D=2, form="loose")
    with pytest.raises(ValidationError, match="kept must be at most p"):
        rb.mask_entropy_upper_bound(10, 11)
    with pytest.raises(ValidationError, match="widths"):
        rb.mlp_parameter_count([10])


def test_k_condition_violation_raises_unless_waived():
    small = GOOD | {"n": 1e4}  # n eps^2 = 2500 < 8^4 log 80
    with pytest.raises(AssumptionViolated, match="k-condition"):
        rb.lipschitz_lower_bound(**small)
    assert np.isfinite(rb.lipschitz_lower_bound(**small, check_assumptions=False))
    # NFP's constant 8^3 accepts it; BS's 8^4 does not; both are named options.
    assert np.isfinite(rb.lipschitz_lower_bound(**small, k_condition_const=8**3))
    with pytest.raises(AssumptionViolated, match="No Free Prune"):
        rb.sparse_lipschitz_lower_bound(**SPARSE | {"n": 1e3})
    with pytest.raises(AssumptionViolated, match="k-condition"):
        rb.lipschitz_lower_bound(**GOOD | {"k": np.array([1, 1000])})


def test_k_condition_is_checked_at_the_returned_sample_size():
    args = {k: v for k, v in GOOD.items() if k != "n"}
    with pytest.raises(AssumptionViolated, match="k-condition"):
        rb.max_robust_samples(**args, L=1e-4)
    assert rb.max_robust_samples(**args, L=1e-4, check_assumptions=False) > 0


def test_net_condition_cannot_be_waived():
    with pytest.raises(AssumptionViolated, match="60 W J / eps"):
        rb.lipschitz_lower_bound(**GOOD | {"W": 1e-3, "J": 1.0}, check_assumptions=False)


def test_assumptions_report_each_precondition():
    checks = rb.assumptions("bs-theorem3", **GOOD | {"n": 1e4, "eps": np.array([0.5, 1.5])})
    by_name = {c.name: c for c in checks}
    assert set(by_name) >= {"eps in domain", "delta in domain", "k-condition", "net size above 1"}
    assert by_name["eps in domain"].holds.tolist() == [True, False]
    assert by_name["k-condition"].holds.tolist() == [False, True]  # 1e4 * 1.5^2 >= 8^4 log 80
    ratio = 1e4 * 0.25 / (8**4 * np.log(80))
    assert by_name["k-condition"].value[0] == pytest.approx(ratio, rel=1e-12)
    assert by_name["n in domain"].holds is True
    assert by_name["net size above 1"].value[0] == pytest.approx(60 * 100 / 0.5)
    nan_checks = rb.assumptions("nfp-theorem4", **SPARSE | {"delta": np.nan})
    assert not {c.name: c for c in nan_checks}["delta in domain"].holds
    assert not {c.name: c for c in nan_checks}["k-condition"].holds


def test_assumptions_rejects_unknown_and_missing_arguments():
    with pytest.raises(ValidationError, match="unknown: \\['q'\\]"):
        rb.assumptions("bs-theorem3", **GOOD, q=1)
    with pytest.raises(ValidationError, match="missing: \\['p'\\]"):
        rb.assumptions("bs-theorem3", **{k: v for k, v in GOOD.items() if k != "p"})
    with pytest.raises(UnknownNameError, match="bs-theorem3"):
        rb.assumptions("theorem9", **GOOD)


@pytest.mark.parametrize(
    ("call", "old", "new"),
    [
        (lambda name: rb.assumptions(name, **GOOD), "bs_theorem3", "bs-theorem3"),
        (lambda name: rb.assumptions(name, **SPARSE), "nfp_theorem4", "nfp-theorem4"),
        (lambda name: rb.assumptions(name), "bs_theorem2", "bs-theorem2"),
        (lambda name: symbolic.derivation(name), "bs_theorem3", "bs-theorem3"),
        (lambda name: symbolic.derivation(name), "nfp_theorem4", "nfp-theorem4"),
        (lambda name: rb.isoperimetry_constant(name, 10), "gaussian_normalized",
         "gaussian-normalized"),
    ],
)  # fmt: skip
def test_underscore_names_are_refused_with_the_new_name(call, old, new):
    with pytest.raises(UnknownNameError) as info:
        call(old)
    assert str(info.value).endswith(f"{old!r}: it is now called {new!r}")


def test_named_things_use_hyphens():
    assert sorted(rb.THEOREMS) == ["bs-theorem2", "bs-theorem3", "nfp-theorem4"]
    assert sorted(rb.ISOPERIMETRY) == ["cube", "gaussian", "gaussian-normalized", "sphere"]
    assert {b.theorem for b in rb.BOUNDS.values()} == {"bs-theorem3", "nfp-theorem4"}
    assert rb.isoperimetry_constant("gaussian-normalized", 10) == 1.0


def test_overflow_is_an_error_not_inf():
    with pytest.raises(ValidationError, match="not finite"):
        rb.parameter_lipschitz_constant(R=1, W_inf=1e10, p=1e10, D=20)


def test_bounds_package_has_no_torch_or_sympy_at_import():
    import subprocess
    import sys

    code = "import sys, robustlaw.bounds; print('torch' in sys.modules, 'sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(("function", "good"), CASES)
@pytest.mark.parametrize("bad", ["60000", True, None, b"1", [1.0, "2"], 1j])
def test_non_numbers_are_refused_not_coerced(function, good, bad):
    # np.asarray turned "60000" into 60000.0 and True into 1.0, and None became "got nan"
    name = next(iter(good))
    with pytest.raises(ValidationError, match=rf"^{name} must be numeric: a real number"):
        function(**good | {name: bad})


def test_arrays_of_numbers_still_broadcast():
    n = np.array([1e6, 2e6])
    out = rb.lipschitz_lower_bound(**GOOD | {"n": n, "p": np.array([[1e5], [1e6]])})
    assert out.shape == (2, 2)
    assert rb.lipschitz_lower_bound(**GOOD | {"n": [1e6, 2e6]}).tolist() == pytest.approx(
        [rb.lipschitz_lower_bound(**GOOD | {"n": v}) for v in n]
    )


def test_overflow_message_names_the_arguments():
    with pytest.raises(ValidationError, match=r"J_BS is not finite.*R=1, W_inf=1e\+10"):
        rb.parameter_lipschitz_constant(R=1, W_inf=1e10, p=1e10, D=20)


@pytest.mark.parametrize("widths", [None, 784, "784", [784, 2.5], [784, True]])
def test_mlp_parameter_count_refuses_non_integers(widths):
    with pytest.raises(ValidationError, match="widths"):
        rb.mlp_parameter_count(widths)
