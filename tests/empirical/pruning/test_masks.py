"""Exact top-k thresholding, counting rule, densities and mask validation."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlaw.empirical.ensemble import check_masks
from robustlaw.empirical.pruning import (
    exact_top_k,
    layer_densities,
    mask_density,
    n_keep_for_density,
)
from robustlaw.errors import ValidationError

EXTREMES = (math.inf, -math.inf, -0.0)
"""Scores that tie with dead entries (-inf), beat every finite one (inf) or equal 0.0 (-0.0)."""


def _reference_keep(scores, alive, n_keep):
    """Keep set by a plain Python sort: alive first, then score descending, then index."""
    order = sorted(range(len(scores)), key=lambda i: (not alive[i], -scores[i], i))
    return set(order[:n_keep])


@pytest.mark.parametrize(
    ("density", "n", "expected"),
    [(1.0, 10, 10), (0.5, 3, 1), (0.8**5, 1000, 327), (0.1, 7, 0), (1e-9, 5, 0), (0.2, 5, 1)],
)
def test_n_keep_rule(density, n, expected):
    assert n_keep_for_density(density, n) == expected
    assert expected == n - math.ceil((1 - density) * n - 1e-9)


def test_grid_tolerance_absorbs_float_error():
    # (1 - 0.7) * 10 = 3.0000000000000004 in float64; without the tolerance ceil gives 4.
    assert (1 - 0.7) * 10 > 3
    assert n_keep_for_density(0.7, 10) == 7


def test_ties_keep_lower_flat_index_across_layers():
    scores = {"a": torch.tensor([[1.0, 2.0]]), "b": torch.tensor([[2.0, 2.0, 0.5]])}
    alive = {k: torch.ones_like(v, dtype=torch.bool) for k, v in scores.items()}
    out = exact_top_k(scores, alive, torch.tensor([2]))
    assert out["a"].tolist() == [[False, True]]
    assert out["b"].tolist() == [[True, False, False]]


def test_all_equal_scores_are_deterministic():
    scores = {"w": torch.zeros(3, 50)}
    alive = {"w": torch.ones(3, 50, dtype=torch.bool)}
    first = exact_top_k(scores, alive, torch.tensor([0, 17, 50]))
    again = exact_top_k(scores, alive, torch.tensor([0, 17, 50]))
    assert torch.equal(first["w"], again["w"])
    assert first["w"].sum(1).tolist() == [0, 17, 50]
    assert first["w"][1, :17].all()
    assert not first["w"][1, 17:].any()


def test_negative_zero_ties_with_zero():
    scores = {"w": torch.tensor([[-0.0, 0.0, 0.0]])}
    alive = {"w": torch.ones(1, 3, dtype=torch.bool)}
    assert exact_top_k(scores, alive, torch.tensor([1]))["w"].tolist() == [[True, False, False]]


def test_pruned_entries_stay_pruned_even_with_top_or_infinite_scores():
    scores = {"w": torch.tensor([[9.0, -math.inf, 1.0, math.inf]])}
    alive = {"w": torch.tensor([[False, True, True, False]])}
    out = exact_top_k(scores, alive, torch.tensor([2]))
    assert out["w"].tolist() == [[False, True, True, False]]


def test_nan_scores_and_too_many_kept_raise():
    alive = {"w": torch.ones(1, 3, dtype=torch.bool)}
    with pytest.raises(ValidationError, match="NaN"):
        exact_top_k({"w": torch.tensor([[1.0, math.nan, 0.0]])}, alive, torch.tensor([1]))
    alive["w"][0, 0] = False
    with pytest.raises(ValidationError, match="alive"):
        exact_top_k({"w": torch.zeros(1, 3)}, alive, torch.tensor([3]))


@given(
    shapes=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=3),
    n_members=st.integers(1, 3),
    data=st.data(),
)
@settings(max_examples=300, deadline=None)
def test_exact_counts_match_reference_sort(shapes, n_members, data):
    scores, alive = {}, {}
    for i, shape in enumerate(shapes):
        n = shape[0] * shape[1]
        value = st.one_of(st.integers(-3, 3).map(float), st.sampled_from(EXTREMES))
        vals = data.draw(st.lists(value, min_size=n * n_members, max_size=n * n_members))
        live = data.draw(st.lists(st.booleans(), min_size=n * n_members, max_size=n * n_members))
        scores[f"{i}.weight"] = torch.tensor(vals, dtype=torch.float32).reshape(n_members, *shape)
        alive[f"{i}.weight"] = torch.tensor(live).reshape(n_members, *shape)
    flat_s = torch.cat([v.flatten(1) for v in scores.values()], 1)
    flat_a = torch.cat([v.flatten(1) for v in alive.values()], 1)
    n_alive = flat_a.sum(1).tolist()
    n_keep = torch.tensor([data.draw(st.integers(0, a)) for a in n_alive])
    out = exact_top_k(scores, alive, n_keep)
    flat_o = torch.cat([v.flatten(1) for v in out.values()], 1)
    for k in range(n_members):
        kept = set(torch.nonzero(flat_o[k]).flatten().tolist())
        ref = _reference_keep(flat_s[k].tolist(), flat_a[k].tolist(), int(n_keep[k]))
        assert kept == ref


@given(density=st.floats(1e-6, 1.0), n=st.integers(1, 10**6))
def test_n_keep_is_within_one_of_real_value(density, n):
    keep = n_keep_for_density(density, n)
    assert 0 <= keep <= n
    assert abs(keep - density * n) < 1 + 1e-6


def test_densities_per_layer_and_global():
    masks = {
        "0.weight": torch.tensor([[[True, False]], [[True, True]]]),
        "2.weight": torch.tensor([[[False, False, False]], [[True, False, False]]]),
    }
    assert layer_densities(masks)["2.weight"].tolist() == [0.0, 1 / 3]
    assert mask_density(masks).tolist() == [0.2, 0.6]
    assert mask_density(masks, ["0.weight"]).tolist() == [0.5, 1.0]


def test_check_masks_rejects_mismatch():
    params = {"0.weight": torch.zeros(2, 3, 4)}
    names = ["0.weight"]
    check_masks({"0.weight": torch.ones(2, 3, 4, dtype=torch.bool)}, params, required=names)
    with pytest.raises(ValidationError, match="shape"):
        check_masks({"0.weight": torch.ones(2, 4, 3, dtype=torch.bool)}, params, required=names)
    with pytest.raises(ValidationError, match="bool"):
        check_masks({"0.weight": torch.ones(2, 3, 4)}, params, required=names)
    with pytest.raises(ValidationError, match="keys"):
        check_masks({}, params, required=names)
