"""Vertices of {±1}^d: exact entries, distinct rows, seeds, limits, label balance, constants."""

import math

import pytest
import torch

from robustlaw.empirical.data import (
    DATASETS,
    MAX_ENUMERATED_FEATURES,
    all_vertices,
    hypercube_data,
    sample_vertices,
)
from robustlaw.errors import ValidationError

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _codes(X):
    """Integer code of each ±1 row, most significant bit first (as all_vertices orders)."""
    bits = (X > 0).to(torch.int64)
    weights = 2 ** torch.arange(X.shape[1] - 1, -1, -1, dtype=torch.int64)
    return (bits * weights).sum(dim=1)


# (n, d) reaching each path without replacement: a permutation of every vertex (small cube),
# deduplicated integer codes (2^d > max(4 n, 2^16)), deduplicated rows (d > 62)
PATHS = [(8, 3), (5, 3), (1000, 20), (300, 40), (200, 70)]


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("scale", [1.0, 0.5, 1 / math.sqrt(7)])
def test_entries_are_exactly_plus_or_minus_scale(replace, scale):
    X = sample_vertices(50, 7, replace=replace, scale=scale, generator=_gen(), dtype=F64)
    assert X.shape == (50, 7)
    assert X.dtype == F64
    assert torch.all(X.abs() == scale)
    assert X.device.type == "cpu"


@pytest.mark.parametrize(("n", "d"), PATHS)
def test_rows_are_distinct_without_replacement(n, d):
    X = sample_vertices(n, d, replace=False, generator=_gen(1), dtype=F64)
    assert X.shape == (n, d)
    assert torch.all(X.abs() == 1)
    assert torch.unique(X, dim=0).shape[0] == n


def test_a_full_draw_without_replacement_is_every_vertex_once():
    X = sample_vertices(16, 4, replace=False, generator=_gen(), dtype=F64)
    assert sorted(_codes(X).tolist()) == list(range(16))


def test_with_replacement_rows_repeat_on_a_small_cube():
    X = sample_vertices(100, 3, replace=True, generator=_gen(), dtype=F64)
    assert torch.unique(X, dim=0).shape[0] == 8  # 100 draws of 8 vertices: all seen, repeats


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize(("n", "d"), PATHS)
def test_same_seed_same_points_other_seed_other_points(replace, n, d):
    a = sample_vertices(n, d, replace=replace, generator=_gen(3), dtype=F64)
    b = sample_vertices(n, d, replace=replace, generator=_gen(3), dtype=F64)
    c = sample_vertices(n, d, replace=replace, generator=_gen(4), dtype=F64)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_dataset_is_reproducible_from_its_seed():
    a, b = hypercube_data(6, 3, replace=False, seed=5), hypercube_data(6, 3, replace=False, seed=5)
    assert torch.equal(a.X, b.X)
    assert torch.equal(a.y, b.y)
    assert a.seed == 5


def test_more_points_than_vertices_without_replacement_is_an_error():
    with pytest.raises(ValidationError, match=r"at most 2\*\*n_features = 8 .* got 9"):
        sample_vertices(9, 3, replace=False, generator=_gen())
    with pytest.raises(ValidationError, match="replace=True"):
        hypercube_data(9, 3, replace=False)
    assert hypercube_data(9, 3, replace=True).n_samples == 9  # with replacement: any n


def test_vertices_are_uniform_with_and_without_replacement():
    # with replacement: 8000 draws on {±1}^3, each vertex count ~ Bin(8000, 1/8)
    X = sample_vertices(8000, 3, replace=True, generator=_gen(), dtype=F64)
    counts = torch.bincount(_codes(X), minlength=8)
    assert torch.all((counts - 1000).abs() < 5 * math.sqrt(8000 / 8 * 7 / 8))
    # without replacement: 3 of 8 vertices, 1000 seeds; each vertex is in with probability 3/8
    seen = torch.zeros(8)
    for seed in range(1000):
        seen[_codes(sample_vertices(3, 3, replace=False, generator=_gen(seed)))] += 1
    assert torch.all((seen - 375).abs() < 5 * math.sqrt(1000 * 3 / 8 * 5 / 8))


@pytest.mark.parametrize(("n", "d"), [(1000, 20), (300, 40), (200, 70)])
def test_distinct_draws_are_unbiased_and_in_random_order(n, d):
    # deduplication sorts; the rows must come back shuffled: no trend along the row index
    X = sample_vertices(n, d, replace=False, generator=_gen(2), dtype=F64)
    half = n // 2
    bound = 5 / math.sqrt(half)
    assert abs(float(X[:half, 0].mean())) < bound
    assert abs(float(X[half:, 0].mean())) < bound
    assert float(X.mean(dim=0).abs().max()) < 5 / math.sqrt(n) * math.sqrt(2 * math.log(d) + 1)


def test_labels_are_balanced_signs_over_many_seeds():
    ys = torch.cat([hypercube_data(6, 3, replace=False, seed=s, dtype=F64).y for s in range(500)])
    assert set(ys.tolist()) == {-1.0, 1.0}
    # 3000 fair signs: mean 0, standard error 1/sqrt(3000); generous 5 standard errors
    assert abs(float(ys.mean())) < 5 / math.sqrt(ys.numel())


def test_labels_are_independent_of_the_points():
    data = hypercube_data(20000, 2, replace=True, seed=0, dtype=F64)
    for j in range(2):  # E[x_j y] = 0 for independent fair signs
        assert abs(float((data.X[:, j] * data.y).mean())) < 5 / math.sqrt(20000)


def test_all_vertices_lists_the_cube_in_lexicographic_order():
    for d in (1, 3, 5):
        V = all_vertices(d, dtype=F64)
        assert V.shape == (2**d, d)
        assert torch.equal(_codes(V), torch.arange(2**d))
        assert torch.all(V.abs() == 1)
    expected = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]) / 2
    assert torch.equal(all_vertices(2, scale=0.5), expected)


def test_all_vertices_has_a_size_limit():
    assert MAX_ENUMERATED_FEATURES == 20
    with pytest.raises(ValidationError, match=r"n_features must be an integer >= 1 and <= 20"):
        all_vertices(MAX_ENUMERATED_FEATURES + 1)
    with pytest.raises(ValidationError, match="n_features"):
        all_vertices(0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_features": 0}, "n_features"),
        ({"replace": "no"}, "replace"),
        ({"scale": 0.0}, "scale"),
        ({"n_samples": 2**32, "n_features": 2**31}, "n_samples x n_features"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    args = {"n_samples": 4, "n_features": 3, **kwargs}
    with pytest.raises(ValidationError, match=name):
        sample_vertices(args.pop("n_samples"), args.pop("n_features"), generator=_gen(), **args)


@pytest.mark.parametrize(("d", "scale"), [(3, 1.0), (3, 1 / math.sqrt(3)), (30, 2.0)])
def test_dataset_reports_noise_one_and_the_mcdiarmid_constant(d, scale):
    data = hypercube_data(6, d, replace=False, scale=scale, seed=0, dtype=F64)
    assert data.kind == "hypercube"
    assert data.noise_level == 1.0
    assert data.isoperimetry_constant == pytest.approx(d**2 * scale**2, rel=1e-12)
    assert (data.n_classes, data.labels_bounded) == (2, True)
    assert dict(data.extras) == {"replace": False, "scale": scale}
    assert torch.equal(data.class_targets(), (data.y > 0).long())
    assert DATASETS["hypercube"] is hypercube_data


def test_mcdiarmid_constant_holds_for_the_normalized_coordinate_sum():
    # f(x) = sum(x) / sqrt(d) is 1-Lipschitz; its exact tail on {±1}^d (binomial) must obey
    # P(|f - E f| >= t) <= 2 exp(-d t^2 / (2 c)) with c = d^2 at scale 1 (THEORY §1.4)
    for d in range(1, 13):
        c = hypercube_data(1, d).isoperimetry_constant
        values = [(2 * k - d) / math.sqrt(d) for k in range(d + 1)]
        probs = [math.comb(d, k) / 2**d for k in range(d + 1)]
        for t in {abs(v) for v in values} - {0.0}:
            tail = sum(p for v, p in zip(values, probs, strict=True) if abs(v) >= t)
            assert tail <= 2 * math.exp(-d * t**2 / (2 * c)) + 1e-12


def test_dtype_and_float32_default_are_kept():
    assert hypercube_data(4, 3).X.dtype == torch.float32
    assert hypercube_data(4, 3, dtype=F64).y.dtype == F64
