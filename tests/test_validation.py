"""The boundary checks: every message names the argument and what was expected."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustlaw._validation import (
    check_choice,
    check_integer,
    check_interval,
    check_seed,
    check_tensor,
    get_registered,
)
from robustlaw.errors import UnknownNameError, ValidationError


@pytest.mark.parametrize(
    ("value", "closed", "ok"),
    [(0.0, "neither", False), (0.0, "left", True), (1.0, "right", True), (1.0, "left", False)],
)
def test_check_interval_end_points(value, closed, ok):
    if ok:
        assert float(check_interval(value, "eps", 0, 1, closed=closed)) == value
    else:
        with pytest.raises(ValidationError, match="eps must be in"):
            check_interval(value, "eps", 0, 1, closed=closed)


def test_check_interval_names_the_scalar():
    with pytest.raises(ValidationError, match=r"eps must be in \(0, 1\), got 1.8$"):
        check_interval(1.8, "eps", 0, 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, [0.5, np.nan]])
def test_check_interval_rejects_non_finite(bad):
    with pytest.raises(ValidationError, match="delta must be finite"):
        check_interval(bad, "delta", 0, 1)


def test_check_interval_rejects_strings_and_reports_bad_entries():
    with pytest.raises(ValidationError, match="n must be numeric"):
        check_interval("many", "n", 0)
    with pytest.raises(
        ValidationError, match=r"got array of shape \(3,\) \(first bad values \[-2.0\]\)"
    ):
        check_interval([1.0, -2.0, 3.0], "n", 0)


def test_check_choice_and_registry_list_valid_names():
    with pytest.raises(ValidationError, match="'neuron', 'layer'"):
        check_choice("network", "variant", ("neuron", "layer"))
    with pytest.raises(UnknownNameError, match="valid names: a, b"):
        get_registered({"b": 2, "a": 1}, "c", "method")
    assert isinstance(UnknownNameError("x"), ValueError)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_check_seed_rejects_non_integers(bad):
    with pytest.raises(ValidationError, match=r"seed must be an integer >= 0, got"):
        check_seed(bad)


def test_check_tensor_rank_finiteness_and_conversion():
    x = check_tensor(np.ones((2, 3)), "X", ndim=2, dtype=torch.float64)
    assert x.dtype == torch.float64
    assert x.shape == (2, 3)
    with pytest.raises(ValidationError, match=r"X must have 2 dimensions, got shape \(3,\)"):
        check_tensor(np.ones(3), "X", ndim=2)
    with pytest.raises(ValidationError, match="X must be finite"):
        check_tensor(torch.tensor([1.0, float("nan")]), "X")


def test_check_tensor_accepts_finite_entries_whose_sum_overflows():
    big = torch.tensor([3e38, 3e38], dtype=torch.float32)
    assert not torch.isfinite(big.sum())
    assert check_tensor(big, "W") is big
    with pytest.raises(ValidationError, match="W must be finite"):
        check_tensor(torch.tensor([3e38, float("inf"), -3e38]), "W")


@pytest.mark.parametrize("value", [True, np.bool_(False), 3.0, "3", None, 0, np.int64(-4)])
def test_check_integer_refuses_non_integers_and_small_values(value):
    with pytest.raises(ValidationError) as info:
        check_integer(value, "width", minimum=1)
    assert str(info.value) == f"width must be an integer >= 1, got {value!r}"


def test_check_integer_limits_and_open_sides():
    with pytest.raises(ValidationError, match=r"^k must be an integer >= 0 and <= 2, got 3$"):
        check_integer(3, "k", maximum=2)
    with pytest.raises(ValidationError, match=r"^shift must be an integer <= 5, got 6$"):
        check_integer(6, "shift", minimum=None, maximum=5)
    assert check_integer(-(10**30), "shift", minimum=None) == -(10**30)
    value = check_integer(np.int32(7), "n")
    assert value == 7
    assert type(value) is int


@given(
    value=st.integers(-50, 50),
    minimum=st.none() | st.integers(-20, 20),
    maximum=st.none() | st.integers(-20, 20),
)
def test_check_integer_accepts_exactly_the_integers_in_range(value, minimum, maximum):
    inside = (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    for x in (value, np.int64(value)):
        if inside:
            assert check_integer(x, "n", minimum=minimum, maximum=maximum) == value
        else:
            with pytest.raises(ValidationError, match="n must be an integer"):
                check_integer(x, "n", minimum=minimum, maximum=maximum)


@given(st.floats(allow_nan=True) | st.text() | st.booleans() | st.none())
def test_check_integer_refuses_every_non_integer(value):
    with pytest.raises(ValidationError, match=r"^n must be an integer >= 0, got "):
        check_integer(value, "n")


def test_underscore_names_are_refused_with_their_hyphenated_spelling():
    with pytest.raises(UnknownNameError, match=r"^unknown method 'grasp_abs': it is now called"):
        get_registered({"grasp-abs": 1}, "grasp_abs", "method")
    with pytest.raises(ValidationError, match=r"^reduce 'abs_of_sum' is now called 'abs-of-sum'$"):
        check_choice("abs_of_sum", "reduce", ("abs-of-sum", "mean-of-abs"))
    with pytest.raises(ValidationError, match="must be one of 'a-b'; got 'a_c'"):
        check_choice("a_c", "x", ("a-b",))
