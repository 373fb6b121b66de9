"""``nfp-mask-information`` (No Free Prune Fig. 4) at the tiny preset, against known answers.

The exact information is recomputed here by brute force: every dataset enumerated with
itertools in a shuffled point order, masks from ``prune`` itself (not the experiment's IMP
path), distinct masks counted with a Counter. Ceilings come from ``math.comb``.
"""

import collections
import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.information import mask_counts
from robustlaw.empirical.pruning import PrunePlan, prune
from robustlaw.empirical.training import SGD, TrainOptions
from robustlaw.errors import ValidationError
from robustlaw.experiments import get_experiment, load, run, settings_hash
from robustlaw.experiments.nfp_mask_information.datasets import dataset_space, sample_datasets
from robustlaw.experiments.nfp_mask_information.figures import information_figure
from robustlaw.experiments.nfp_mask_information.masks import method_masks
from robustlaw.experiments.nfp_mask_information.measure import build_problem, sampled_counts
from robustlaw.experiments.nfp_mask_information.settings import MaskInformationSettings

EXP = get_experiment("nfp-mask-information")
TINY = EXP.preset("tiny")
P = 21
H_DATA = math.log2(math.comb(8, 6) * 2**6)
PINNED_TINY = "bd023011d0f5e7b9"


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    store = tmp_path_factory.mktemp("mi") / "tiny.sqlite"
    run(EXP.name, "tiny", store=store, device="cpu", threads=1, progress=False)
    return load(store, EXP.name, as_frame=False)


def _bits(rows, method, k, estimator="exact"):
    (row,) = [
        r for r in rows if (r["method"], r["n_pruned"], r["estimator"]) == (method, k, estimator)
    ]
    return row["bits"]


def test_tiny_settings_hash_is_pinned():
    assert settings_hash(EXP.name, TINY) == PINNED_TINY


def test_every_cell_is_stored_once_with_consistent_counts(rows):
    cells = {(r["method"], r["n_pruned"], r["estimator"]) for r in rows}
    estimators = 1 + len(TINY.estimators)
    assert len(cells) == len(rows) == len(TINY.methods) * len(TINY.n_pruned) * estimators
    for r in rows:
        assert r["n_params"] == P
        assert r["n_pruned"] + r["n_kept"] == P
        assert r["n_datasets"] == (1792 if r["estimator"] == "exact" else TINY.n_sampled)
        assert r["ceiling_bits"] == pytest.approx(math.log2(math.comb(P, r["n_pruned"])), abs=1e-9)
        assert r["data_entropy_bits"] == pytest.approx(H_DATA, rel=1e-12)
        assert r["dense_fit_fraction"] > 0.95  # the dense net fits the 6 points almost always


def test_data_free_masks_carry_exactly_zero_bits(rows):
    free = [r for r in rows if r["method"] in ("synflow", "random")]
    assert {r["method"] for r in free} == {"synflow", "random"}
    for r in free:
        assert r["bits"] == 0.0
        assert r["n_distinct"] == 1


def test_nothing_or_everything_pruned_carries_zero_bits(rows):
    for r in rows:
        if r["n_pruned"] in (0, P):
            assert r["bits"] == 0.0, r


def test_every_estimate_is_below_both_ceilings(rows):
    for r in rows:
        ceiling = min(math.log2(math.comb(P, r["n_pruned"])), H_DATA)
        assert -1e-12 <= r["bits"] <= ceiling + 1e-9, r
        if r["ci_high"] is not None:
            assert r["ci_low"] <= r["ci_high"]


def test_training_based_masks_carry_information_in_a_hump(rows):
    """NFP Fig. 4's robust claims at tiny scale: a hump far below the ceiling; GraSP lowest."""
    inner = [k for k in TINY.n_pruned if 0 < k < P]
    for method in ("imp", "magnitude-after", "snip", "grasp"):
        assert min(_bits(rows, method, k) for k in inner) > 1.0, method
    for k in inner:
        assert _bits(rows, "imp", k) < math.log2(math.comb(P, k)) - 2
        assert _bits(rows, "grasp", k) < min(_bits(rows, m, k) for m in ("imp", "snip"))


def _brute_force_bits(method, n_pruned, shuffle):
    """H(mask) over all 1792 datasets (points in cube order or shuffled), masks from prune()."""
    rng = np.random.default_rng(1)
    cube = list(itertools.product((-1.0, 1.0), repeat=3))
    xs, ys = [], []
    for subset in itertools.combinations(cube, 6):
        for labels in itertools.product((-1.0, 1.0), repeat=6):
            order = rng.permutation(6) if shuffle else range(6)
            xs.append([subset[i] for i in order])
            ys.append([labels[i] for i in order])
    x, y = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 4, 1)), [0] * len(xs), dtype=torch.float64)
    opts = TrainOptions(optimizer=SGD(lr=TINY.lr), loss="mse", max_steps=TINY.steps)
    plan = PrunePlan(method=method, density=(P - n_pruned) / P, prune_biases=True)
    masks = prune(ens, plan, data=(x, y), loss="mse", train_options=opts).ensemble.masks
    flat = torch.cat([masks[k].flatten(1) for k in sorted(masks)], dim=1).numpy()
    counts = collections.Counter(row.tobytes() for row in flat)
    return sum(c / len(xs) * math.log2(len(xs) / c) for c in counts.values())


def test_exact_enumeration_matches_a_brute_force_count(rows):
    assert _brute_force_bits("imp", 6, shuffle=False) == pytest.approx(
        _bits(rows, "imp", 6), abs=1e-12
    )


def test_point_order_matters_only_through_rounding(rows):
    """Full-batch GD sums the examples' gradients, so the order of the points changes the
    trained weights only by rounding; a few near-ties of |θ_T| may flip (2 of 1792 IMP masks
    at 6 pruned), which moves the information by about a thousandth of a bit."""
    shuffled = _brute_force_bits("magnitude-after", 10, shuffle=True)
    assert shuffled == pytest.approx(_bits(rows, "magnitude-after", 10), abs=0.01)


@pytest.mark.parametrize("method", ["imp", "magnitude-after"])
def test_imp_path_equals_prune_at_every_count(method):
    """The experiment's one-walk IMP (and shared dense training) is prune() at every count."""
    settings = replace(TINY, steps=60)
    space = dataset_space(6, 3, replace=False)
    rows = np.arange(0, 1792, 149)  # 13 datasets
    problem = build_problem(settings, "regression", 3, space, rows)
    kept = list(range(1, P + 1))
    ours = method_masks(problem, method, kept)
    big = build_problem(settings, "regression", 3, space, np.repeat(rows, len(kept)))
    plans = [PrunePlan(method=method, density=t / P, prune_biases=True) for t in kept] * len(rows)
    theirs = prune(big.ensemble, plans, data=(big.x, big.y), train_options=big.train_options)
    theirs = problem.flat(theirs.ensemble).reshape(len(rows), len(kept), P)
    for j, t in enumerate(kept):
        assert np.array_equal(ours[t], theirs[:, j]), t
        assert (ours[t].sum(axis=1) == t).all()


def test_dataset_space_and_sampling():
    space = dataset_space(6, 3, replace=False)
    assert space.n_datasets == 1792
    pairs = np.stack([space.codes, space.labels], axis=-1)
    assert len({row.tobytes() for row in pairs}) == 1792
    assert all(len(set(c)) == 6 for c in space.codes)
    assert space.entropy_bits == pytest.approx(H_DATA, rel=1e-12)
    small = dataset_space(2, 1, replace=True)  # multisets of 2 of the 4 (vertex, label) pairs
    assert small.n_datasets == 10
    keys = np.stack([small.codes, small.labels], axis=-1).tolist()
    probs = {tuple(map(tuple, k)): p for k, p in zip(keys, small.probabilities, strict=True)}
    assert probs[(0, -1), (0, -1)] == pytest.approx(1 / 16)
    assert probs[(0, -1), (1, 1)] == pytest.approx(2 / 16)
    draws = sample_datasets(small, 40_000, seed=3)
    freq = np.bincount(draws, minlength=10) / 40_000
    np.testing.assert_allclose(freq, small.probabilities, atol=0.01)


def test_sampled_counts_equal_mask_counts():
    gen = np.random.default_rng(0)
    masks = gen.random((50, 21)) < 0.5
    masks[10:20] = masks[0]  # repeats
    sampled = gen.integers(0, 50, size=500)
    expected = mask_counts(masks[i] for i in sampled)
    assert sampled_counts(masks, sampled).tolist() == expected.tolist()


def test_parameter_counts_of_the_variants():
    s = MaskInformationSettings()
    assert s.model("regression").n_params(s) == 21
    assert s.model("classification").n_params(s) == 20  # two logits
    one = MaskInformationSettings(classification_head="one-logit")
    assert one.model("classification").n_params(one) == 16
    assert s.pruned_counts("classification") == tuple(range(21))


def test_classification_masks_cover_all_20_parameters():
    s = replace(TINY, variants=("classification",), n_pruned=None, steps=30)
    space = dataset_space(6, 3, replace=False)
    problem = build_problem(s, "classification", 0, space, np.arange(8))
    assert problem.loss == "cross-entropy"
    assert problem.y.dtype == torch.int64
    masks = method_masks(problem, "snip", [20, 7, 0])
    assert [m.shape for m in masks.values()] == [(8, 20)] * 3
    assert [int(masks[t][0].sum()) for t in (20, 7, 0)] == [20, 7, 0]


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("methods", ("erk",), "cannot prune biases"),
        ("n_pruned", (22,), "n_pruned entry"),
        ("variants", ("tabular",), "unknown variant"),
        ("n_sampled", 0, "estimates nothing"),
        ("n_samples", 9, "at most 2\\*\\*n_features"),
    ],
)
def test_bad_settings_raise_one_clear_error(field, value, match):
    kwargs = {field: value, **({"exact": False} if field == "n_sampled" else {})}
    with pytest.raises(ValidationError, match=match):
        MaskInformationSettings(**kwargs)


def test_figure_plots_the_exact_bits(rows):
    fig = information_figure(rows)
    (ax,) = [a for a in fig.axes if a.get_title().startswith("regression")]
    exact = [_bits(rows, "imp", k) for k in sorted(TINY.n_pruned)]
    curves = [line.get_ydata() for line in ax.get_lines() if line.get_marker() == "o"]
    assert any(np.allclose(c, exact) for c in curves)
