"""Mask information with the init fixed: hashing, sampled estimates, exact enumeration."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.entropy import ENTROPY_ESTIMATORS
from robustlaw.empirical.information import (
    estimate_mask_entropy,
    exact_mask_entropy,
    mask_counts,
)
from robustlaw.empirical.pruning import PrunePlan, SnipOptions, SynflowOptions, prune
from robustlaw.errors import ValidationError

CUBE_3 = list(itertools.product([-1, 1], repeat=3))


def _copy_first_bit(x):
    """Keep weight j of the first layer iff x_1 == +1; the second layer is always kept."""
    return {"b": torch.ones(2, dtype=torch.bool), "a": torch.full((2, 3), x[0] > 0)}


def _label_mask(label, n_bits=5):
    """A mask whose bits spell ``label`` (distinct labels, distinct masks)."""
    return np.array([(label >> j) & 1 for j in range(n_bits)], dtype=bool)


labels = st.lists(st.integers(min_value=0, max_value=7), min_size=2, max_size=40)


def test_mask_counts_accepts_arrays_tensors_and_dicts_in_any_key_order():
    m = np.array([[True, False], [False, True]])
    assert mask_counts([m, torch.from_numpy(m), ~m]).tolist() == [2, 1]
    a, b = torch.tensor([True, False]), torch.tensor([[False, False, True]])
    assert mask_counts([{"a": a, "b": b}, {"b": b, "a": a}, {"a": ~a, "b": b}]).tolist() == [2, 1]


@pytest.mark.parametrize("method", sorted(ENTROPY_ESTIMATORS))
def test_the_same_mask_every_time_has_zero_bits(method):
    mask = {"0.weight": torch.rand(4, 3, generator=torch.Generator().manual_seed(0)) > 0.5}
    est = estimate_mask_entropy([dict(mask) for _ in range(50)], method, n_boot=20)
    assert (est.bits, est.ci_low, est.ci_high, est.n_distinct) == (0.0, 0.0, 0.0, 1)


def test_copying_one_data_bit_is_exactly_one_bit():
    for d in (1, 2, 4):
        est = exact_mask_entropy(_copy_first_bit, itertools.product([-1, 1], repeat=d))
        assert (est.bits, est.method, est.n_samples, est.n_distinct) == (1.0, "exact", 2**d, 2)


def test_a_data_independent_rule_is_exactly_zero_bits():
    mask = np.array([True, False, True])
    est = exact_mask_entropy(lambda x: mask.copy(), CUBE_3)
    assert (est.bits, est.n_samples, est.n_distinct) == (0.0, 8, 1)


def test_two_copied_bits_and_weighted_spaces_have_their_exact_entropy():
    est = exact_mask_entropy(lambda x: np.array([x[0] > 0, x[1] > 0]), CUBE_3)
    assert est.bits == 2.0
    pairs = [("a", 0.5), ("b", 0.25), ("c", 0.125), ("d", 0.125), ("e", 0.0)]
    masks = {"a": [True, True], "b": [True, False], "c": [False, True], "d": [False, True]}
    est = exact_mask_entropy(lambda k: np.array(masks[k]), pairs, weighted=True)
    assert est.bits == pytest.approx(1.5, abs=1e-15)  # P = (1/2, 1/4, 1/4); "e" is never run
    assert (est.n_samples, est.n_distinct) == (4, 3)


def test_weighted_datasets_may_themselves_be_pairs():
    space = [((x, y), 0.25) for x, y in itertools.product([-1, 1], repeat=2)]
    est = exact_mask_entropy(lambda data: np.array([data[1] > 0]), space, weighted=True)
    assert est.bits == 1.0


def _pruned_mask(ens, X, method, options=None):
    plan = PrunePlan(method=method, density=0.5, seed=0, options=options)
    return lambda y: prune(ens, plan, data=(X, y)).ensemble.masks


@pytest.mark.parametrize(
    ("method", "options"),
    [("synflow", SynflowOptions(iterations=10)), ("random", None), ("magnitude", None)],
)
def test_data_independent_pruners_carry_no_information_given_the_init(method, options):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 4, 1)), seeds=[0])
    X = torch.tensor(CUBE_3[:4], dtype=torch.float32)
    space = [torch.tensor(y, dtype=torch.float32) for y in itertools.product([-1, 1], repeat=4)]
    est = exact_mask_entropy(_pruned_mask(ens, X, method, options), space)
    assert (est.bits, est.n_samples, est.n_distinct) == (0.0, 16, 1)


def test_snip_reads_the_labels_so_its_mask_carries_information():
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 4, 1)), seeds=[0])
    X = torch.tensor(CUBE_3[:4], dtype=torch.float32)
    space = [torch.tensor(y, dtype=torch.float32) for y in itertools.product([-1, 1], repeat=4)]
    est = exact_mask_entropy(
        _pruned_mask(ens, X, "snip", SnipOptions(samples_per_class=None)), space
    )
    assert 1.0 < est.bits <= math.log2(len(space))  # at most H(D) = 4 bits


@pytest.mark.parametrize("method", sorted(ENTROPY_ESTIMATORS))
def test_sampled_estimates_approach_the_exact_value(method):
    exact = exact_mask_entropy(lambda x: np.array([x[0] > 0, x[1] > 0 and x[2] > 0]), CUBE_3)
    rng = np.random.default_rng(4)
    samples = rng.choice([-1, 1], size=(20_000, 3))
    est = estimate_mask_entropy(
        (np.array([x[0] > 0, x[1] > 0 and x[2] > 0]) for x in samples),
        method,
        n_boot=200,
        level=0.999,
    )
    assert exact.bits == pytest.approx(1 + (0.25 * 2 + 0.75 * math.log2(4 / 3)), abs=1e-15)
    assert est.bits == pytest.approx(exact.bits, abs=0.02)
    assert est.ci_low < exact.bits < est.ci_high


@given(labels, st.randoms(use_true_random=False), st.permutations(range(8)))
def test_estimates_ignore_sample_order_and_mask_identity(sample, rnd, relabel):
    method = ["plug-in", "miller-madow", "jackknife"][sample[0] % 3]
    base = estimate_mask_entropy([_label_mask(v) for v in sample], method, n_boot=20)
    shuffled = list(sample)
    rnd.shuffle(shuffled)
    assert estimate_mask_entropy([_label_mask(v) for v in shuffled], method, n_boot=20) == base
    renamed = [_label_mask(relabel[v]) for v in sample]
    assert estimate_mask_entropy(renamed, method, n_boot=20) == base
    plugin = estimate_mask_entropy([_label_mask(v) for v in sample], "plug-in", n_boot=0)
    assert 0.0 <= plugin.bits <= math.log2(plugin.n_distinct) + 1e-12


def test_a_space_above_max_datasets_is_refused_before_any_mask_is_computed():
    calls = []
    with pytest.raises(ValidationError, match="holds 8 datasets, more than max_datasets=7"):
        exact_mask_entropy(calls.append, CUBE_3, max_datasets=7)
    assert calls == []
    with pytest.raises(ValidationError, match="more than max_datasets=7"):
        exact_mask_entropy(lambda x: np.array([True]), iter(CUBE_3), max_datasets=7)
    assert exact_mask_entropy(lambda x: np.array([True]), iter(CUBE_3), max_datasets=8).bits == 0


@pytest.mark.parametrize(
    ("datasets", "match"),
    [
        ([("a", 0.5), ("b", 0.25)], "sum to 1, got 0.75"),
        ([("a", 1.5), ("b", -0.5)], r"probability of datasets\[0\] must be in \[0, 1\]"),
        (["a", "b"], r"datasets\[0\] must be a \(dataset, probability\) pair"),
        ([], "at least one dataset"),
    ],
)
def test_bad_weighted_spaces_are_refused(datasets, match):
    with pytest.raises(ValidationError, match=match):
        exact_mask_entropy(lambda k: np.array([True]), datasets, weighted=True)


@pytest.mark.parametrize(
    ("masks", "match"),
    [
        ([], "at least one mask"),
        ([np.array([1, 0])], r"masks\[0\] must be a boolean array or tensor, got dtype int64"),
        ([np.ones(3, bool), np.ones(4, bool)], r"masks\[1\] has layers and shapes"),
        ([{"a": np.ones(2, bool)}, {"b": np.ones(2, bool)}], r"masks\[1\] has layers"),
        ([{"a": torch.ones(2)}], r"masks\[0\]\['a'\] must be a boolean"),
        ([{}], "must map layer names"),
    ],
)
def test_bad_masks_are_refused(masks, match):
    with pytest.raises(ValidationError, match=match):
        estimate_mask_entropy(masks, "plug-in")


def test_exact_enumeration_refuses_masks_of_another_shape():
    with pytest.raises(ValidationError, match=r"mask_of\(datasets\[1\]\) has layers and shapes"):
        exact_mask_entropy(lambda x: np.ones(x, dtype=bool), [2, 3])
