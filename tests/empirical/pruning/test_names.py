"""Pruning names use hyphens; the old underscore spellings are refused with the new name."""

import pytest

from robustlaw.empirical.pruning import (
    PRUNERS,
    GraspOptions,
    MagnitudeAfterOptions,
    PrunePlan,
    SnipOptions,
    SynflowOptions,
    get_pruner,
)
from robustlaw.errors import UnknownNameError, ValidationError


def test_registered_names_have_no_underscores():
    assert sorted(PRUNERS) == [
        "er", "erk", "grasp", "grasp-abs", "imp", "magnitude", "magnitude-after", "random",
        "random-exact", "snip", "synflow",
    ]  # fmt: skip


@pytest.mark.parametrize("old", ["random_exact", "grasp_abs", "magnitude_after"])
def test_old_method_names_are_refused_with_the_new_name(old):
    message = f"unknown pruning method '{old}': it is now called '{old.replace('_', '-')}'"
    with pytest.raises(UnknownNameError) as info:
        get_pruner(old)
    assert str(info.value) == message
    with pytest.raises(UnknownNameError, match="it is now called"):
        PrunePlan(method=old, density=0.5)


def test_new_option_values_are_the_defaults():
    assert SnipOptions().reduce == "abs-of-sum"
    assert MagnitudeAfterOptions().after_prune == "rewind-k"
    assert GraspOptions(batch_mode="split-halves").batch_mode == "split-halves"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SnipOptions(reduce="abs_of_sum"),
         "reduce 'abs_of_sum' is now called 'abs-of-sum'"),
        (lambda: SnipOptions(reduce="mean_of_abs"),
         "reduce 'mean_of_abs' is now called 'mean-of-abs'"),
        (lambda: GraspOptions(batch_mode="split_halves"),
         "batch_mode 'split_halves' is now called 'split-halves'"),
        (lambda: MagnitudeAfterOptions(after_prune="rewind_k"),
         "after_prune 'rewind_k' is now called 'rewind-k'"),
        (lambda: SnipOptions(samples_per_class=0),
         "samples_per_class must be an integer >= 1, got 0"),
        (lambda: SnipOptions(batch_size=2.0), "batch_size must be an integer >= 1, got 2.0"),
        (lambda: SynflowOptions(iterations=True), "iterations must be an integer >= 1, got True"),
    ],
)  # fmt: skip
def test_bad_options_raise_naming_the_fix(make, message):
    with pytest.raises(ValidationError) as info:
        make()
    assert str(info.value) == message


def test_shuffle_is_looked_up_in_its_registry():
    with pytest.raises(UnknownNameError, match="unknown shuffle 'random'; valid names: global, "):
        PrunePlan(method="random", density=0.5, shuffle="random")
