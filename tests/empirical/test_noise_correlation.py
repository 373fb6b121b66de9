"""The correlation with the noise: hand values, batching, constants, validation."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from robustlaw.empirical.noise_correlation import noise_correlation
from robustlaw.errors import ValidationError

values = st.floats(min_value=-10, max_value=10, allow_nan=False, allow_subnormal=False)


def _assert_batched_equals_one_by_one(train, shared_noise, own_noise, fresh):
    batched = noise_correlation(train, shared_noise, fresh)
    own = noise_correlation(train, own_noise, fresh)
    assert batched.shape == own.shape == (train.shape[0],)
    for k in range(train.shape[0]):
        assert batched[k] == noise_correlation(train[k], shared_noise, fresh[k])
        assert own[k] == noise_correlation(train[k], own_noise[k], fresh[k])


def test_equals_a_hand_computation():
    # E_mu f = (0 + 2) / 2 = 1; centered outputs (0, 1, 2); times z = (1, -1, 2): (0, -1, 4).
    assert noise_correlation([1.0, 2.0, 3.0], [1.0, -1.0, 2.0], [0.0, 2.0]) == 1.0


def test_outputs_that_copy_the_noise_reach_its_mean_square():
    z = np.random.default_rng(0).standard_normal(1000)
    assert noise_correlation(z, z, np.zeros(10)) == pytest.approx(np.mean(z**2), rel=1e-14)


@given(
    st.integers(1, 4).flatmap(
        lambda k: st.tuples(
            arrays(np.float64, (k, 6), elements=values),
            arrays(np.float64, (6,), elements=values),
            arrays(np.float64, (k, 6), elements=values),
            arrays(np.float64, (k, 5), elements=values),
        )
    )
)
def test_batched_equals_one_by_one(arrays_):
    train, shared_noise, own_noise, fresh = arrays_
    _assert_batched_equals_one_by_one(train, shared_noise, own_noise, fresh)


@given(st.integers(1, 5), st.integers(1, 400), st.integers(1, 400), st.integers(0, 2**32 - 1))
def test_batched_equals_one_by_one_at_any_size(k, n, m, seed):
    rng = np.random.default_rng(seed)
    normal = rng.standard_normal
    _assert_batched_equals_one_by_one(normal((k, n)), normal(n), normal((k, n)), normal((k, m)))


@given(values, arrays(np.float64, (7,), elements=values), st.integers(1, 20))
def test_a_constant_function_has_zero_correlation(c, z, m):
    corr = noise_correlation(np.full(7, c), z, np.full(m, c))
    assert corr == pytest.approx(0.0, abs=1e-14 * (1 + abs(c)) * (1 + np.abs(z).max()))


def test_tensors_give_the_numpy_value():
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(3, 8, generator=gen, requires_grad=True)
    z, fresh = torch.randn(8, generator=gen), torch.randn(3, 20, generator=gen)
    expected = noise_correlation(train.detach().double().numpy(), z.numpy(), fresh.numpy())
    np.testing.assert_array_equal(noise_correlation(train, z, fresh), expected)


@pytest.mark.parametrize(
    ("train", "noise", "fresh", "match"),
    [
        (np.zeros((2, 4, 1)), np.zeros(4), np.zeros((2, 3)), "squeeze the trailing output axis"),
        (np.zeros(4), np.zeros(5), np.zeros(3), r"noise must have shape \(n,\)"),
        (np.zeros(4), np.zeros((2, 4)), np.zeros(3), "noise must have shape"),
        (np.zeros((2, 4)), np.zeros((3, 4)), np.zeros((2, 3)), "noise must have shape"),
        (np.zeros((2, 4)), np.zeros(4), np.zeros(3), "one row per member"),
        (np.zeros((2, 4)), np.zeros(4), np.zeros((3, 3)), "one row per member"),
        (np.zeros(4), np.zeros(4), np.zeros(0), r"fresh_outputs must have shape \(m,\)"),
        (np.zeros(4), [0, 0, np.nan, 0], np.zeros(3), "noise must be finite"),
        (["1", "2"], np.zeros(2), np.zeros(3), "train_outputs must be numeric"),
        (3.0, np.zeros(1), np.zeros(3), "train_outputs must have shape"),
    ],
)
def test_bad_inputs_are_refused(train, noise, fresh, match):
    with pytest.raises(ValidationError, match=match):
        noise_correlation(train, noise, fresh)
