"""Entropy estimators from counts: known values, bias correction, convergence, bootstrap."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustlaw.empirical.entropy import ENTROPY_ESTIMATORS, entropy_from_counts
from robustlaw.errors import UnknownNameError, ValidationError

UNIFORM_8 = np.full(8, 1 / 8)  # 3 bits
SKEWED = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])  # 1.875 bits
DISTRIBUTIONS = [(UNIFORM_8, 3.0), (SKEWED, 1.875)]

counts_lists = st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=12)


def _bits(counts, method):
    return entropy_from_counts(counts, method, n_boot=0).bits


def _brute_force_jackknife(counts):
    """N H_N - (N - 1) * mean of the plug-in entropies with each sample deleted in turn."""
    samples = np.repeat(np.arange(len(counts)), counts)
    n = samples.size
    plugin = ENTROPY_ESTIMATORS["plug-in"]
    loo = [plugin(np.unique(np.delete(samples, i), return_counts=True)[1]) for i in range(n)]
    return n * _bits(counts, "plug-in") - (n - 1) * float(np.mean(loo))


def _estimates(p, n_samples, method, n_reps, seed):
    rng = np.random.default_rng(seed)
    return np.array([_bits(rng.multinomial(n_samples, p), method) for _ in range(n_reps)])


@pytest.mark.parametrize("method", sorted(ENTROPY_ESTIMATORS))
def test_constant_outcome_has_zero_entropy_for_every_estimator(method):
    est = entropy_from_counts([40], method, n_boot=50, seed=1)
    assert (est.bits, est.ci_low, est.ci_high) == (0.0, 0.0, 0.0)
    assert (est.n_samples, est.n_distinct, est.level) == (40, 1, 0.95)


def test_known_values_of_each_estimator():
    assert _bits([5, 5], "plug-in") == 1.0
    assert _bits([2, 1, 1], "plug-in") == pytest.approx(1.5, abs=1e-15)
    assert _bits([5, 5], "miller-madow") == pytest.approx(1 + 1 / (20 * math.log(2)), abs=1e-15)
    # Delete one of 10: counts (4, 5), with entropy h; every deletion gives the same h.
    h = 4 / 9 * math.log2(9 / 4) + 5 / 9 * math.log2(9 / 5)
    assert _bits([5, 5], "jackknife") == pytest.approx(10 - 9 * h, abs=1e-13)


@given(counts_lists.filter(lambda c: sum(c) >= 2))
def test_jackknife_equals_deleting_each_sample_in_turn(counts):
    assert _bits(counts, "jackknife") == pytest.approx(_brute_force_jackknife(counts), abs=1e-9)


@given(counts_lists, st.randoms(use_true_random=False))
def test_estimates_ignore_order_and_zeros_and_plugin_is_bounded(counts, rnd):
    shuffled = [*counts, 0]
    rnd.shuffle(shuffled)
    for method in ("plug-in", "miller-madow"):
        assert _bits(shuffled, method) == pytest.approx(_bits(counts, method), abs=1e-12)
    plugin = _bits(counts, "plug-in")
    assert -1e-12 <= plugin <= math.log2(len(counts)) + 1e-12
    assert _bits(counts, "miller-madow") >= plugin


@pytest.mark.parametrize(("p", "truth"), DISTRIBUTIONS)
def test_bias_correction_moves_small_sample_estimates_toward_the_truth(p, truth):
    bias = {m: abs(_estimates(p, 12, m, 500, seed=7).mean() - truth) for m in ENTROPY_ESTIMATORS}
    assert bias["miller-madow"] < bias["plug-in"]
    assert bias["jackknife"] < bias["plug-in"]
    assert bias["plug-in"] > 0.2  # the plug-in bias is large at N = 12


@pytest.mark.parametrize(("p", "truth"), DISTRIBUTIONS)
@pytest.mark.parametrize("method", sorted(ENTROPY_ESTIMATORS))
def test_estimates_converge_as_the_sample_grows(p, truth, method):
    errors = [
        np.abs(_estimates(p, n, method, 100, seed=3) - truth).mean() for n in (30, 300, 30_000)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.01


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    counts = np.random.default_rng(0).multinomial(2000, UNIFORM_8)
    est = entropy_from_counts(counts, "plug-in", n_boot=400, seed=5)
    assert est.ci_low < est.bits < est.ci_high
    assert est.ci_high - est.ci_low < 0.05
    assert entropy_from_counts(counts, "plug-in", n_boot=400, seed=5) == est
    assert entropy_from_counts(counts, "plug-in", n_boot=400, seed=6) != est
    narrow = entropy_from_counts(counts, "plug-in", n_boot=400, seed=5, level=0.5)
    assert est.ci_low < narrow.ci_low < narrow.ci_high < est.ci_high
    assert narrow.level == 0.5


@pytest.mark.parametrize("method", sorted(ENTROPY_ESTIMATORS))
def test_bootstrap_interval_covers_the_truth_of_a_well_sampled_distribution(method):
    counts = np.random.default_rng(1).multinomial(5000, SKEWED)
    est = entropy_from_counts(counts, method, n_boot=300, seed=0)
    assert est.ci_low < 1.875 < est.ci_high


def test_no_bootstrap_gives_no_interval():
    est = entropy_from_counts([3, 1], "plug-in", n_boot=0)
    assert (est.ci_low, est.ci_high, est.level) == (None, None, None)


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        ([3, -1], "non-negative integers"),
        ([1.5, 2], "non-negative integers"),
        ([0, 0], "positive sum"),
        ([[1, 2]], "1-D"),
        ([1, float("nan")], "finite"),
        (["3"], "numeric"),
    ],
)
def test_bad_counts_are_refused(counts, match):
    with pytest.raises(ValidationError, match=match):
        entropy_from_counts(counts, "plug-in")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_boot": -1}, "n_boot"),
        ({"n_boot": 1.5}, "n_boot"),
        ({"level": 1.0}, "level"),
        ({"seed": -2}, "seed"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        entropy_from_counts([3, 1], "plug-in", **kwargs)


def test_unknown_and_old_method_names_are_refused():
    with pytest.raises(UnknownNameError, match="jackknife, miller-madow, plug-in"):
        entropy_from_counts([3, 1], "nsb")
    with pytest.raises(UnknownNameError, match="now called 'miller-madow'"):
        entropy_from_counts([3, 1], "miller_madow")


def test_jackknife_needs_two_samples():
    with pytest.raises(ValidationError, match="at least 2"):
        entropy_from_counts([1], "jackknife")
