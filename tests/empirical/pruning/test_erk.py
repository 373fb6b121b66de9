"""ERK / ER layer densities and counts (METHODS.md §3.1, §8 test 4)."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import (
    ErkOptions,
    PrunePlan,
    erk_counts,
    erk_densities,
    n_keep_for_density,
    prune,
)
from robustlaw.errors import ValidationError

SHAPES = [(2, 2), (300, 2), (300, 300), (1, 300)]


def test_tiny_layer_triggers_redistribution():
    n = sum(math.prod(s) for s in SHAPES)
    n_keep = n_keep_for_density(0.3, n)
    raw = [sum(s) / math.prod(s) for s in SHAPES]
    first_eps = n_keep / sum(r * math.prod(s) for r, s in zip(raw, SHAPES, strict=True))
    assert first_eps * raw[0] > 1  # the first pass would give the 2x2 layer a density above 1
    dens = erk_densities(SHAPES, n_keep, ErkOptions())
    assert dens[0] == 1.0
    assert dens[1] == 1.0
    assert dens[3] == 1.0
    assert all(0 < d <= 1 for d in dens)
    assert sum(d * math.prod(s) for d, s in zip(dens, SHAPES, strict=True)) == pytest.approx(n_keep)


def test_non_dense_layers_are_proportional_to_raw_factor():
    shapes = [(40, 30), (50, 40), (10, 50)]
    n_keep = n_keep_for_density(0.1, sum(math.prod(s) for s in shapes))
    dens = erk_densities(shapes, n_keep, ErkOptions(power_scale=0.5))
    ratios = [d / ((sum(s) / math.prod(s)) ** 0.5) for d, s in zip(dens, shapes, strict=True)]
    assert max(ratios) == pytest.approx(min(ratios))


def test_er_ignores_kernel_dimensions():
    shapes = [(8, 4, 3, 3), (16, 8, 3, 3)]
    erk = erk_densities(shapes, 300, ErkOptions())
    er = erk_densities(shapes, 300, ErkOptions(kernel=False))
    assert erk != er
    ratio = er[0] / er[1]
    assert ratio == pytest.approx(((8 + 4) / 32) / ((16 + 8) / 128))


@given(
    shapes=st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=5),
    density=st.floats(0.001, 1.0),
    power=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_counts_sum_exactly_and_never_exceed_layer_size(shapes, density, power):
    n = sum(math.prod(s) for s in shapes)
    n_keep = n_keep_for_density(density, n)
    counts = erk_counts(shapes, n_keep, ErkOptions(power_scale=power))
    assert sum(counts) == n_keep
    assert all(0 <= c <= math.prod(s) for c, s in zip(counts, shapes, strict=True))
    assert all(
        d <= 1.0 + 1e-12 for d in erk_densities(shapes, n_keep, ErkOptions(power_scale=power))
    )


def test_erk_masks_follow_counts_and_depend_on_seed():
    spec = MLPSpec(layer_sizes=(2, 2, 300, 1))
    ens = init_mlp_ensemble(spec, seeds=[0, 0])
    res = prune(ens, [PrunePlan(method="erk", density=0.3, seed=s) for s in (1, 2)])
    shapes = [tuple(ens.params[n].shape[1:]) for n in spec.weight_names()]
    counts = erk_counts(shapes, n_keep_for_density(0.3, spec.n_weights()), ErkOptions())
    for k in range(2):
        assert [int(res.ensemble.masks[n][k].sum()) for n in spec.weight_names()] == counts
    assert not torch.equal(res.ensemble.masks["2.weight"][0], res.ensemble.masks["2.weight"][1])
    assert res.info[0].scope == "erk"


def test_bad_power_scale_rejected():
    with pytest.raises(ValidationError, match="power_scale"):
        ErkOptions(power_scale=math.nan)
