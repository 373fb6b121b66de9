"""prune(): per-member plans, batched equals one-by-one, determinism, bad input, metadata."""

import dataclasses
import json

import pytest
import torch

from robustlaw.empirical.data import random_labels_data
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import (
    PRUNERS,
    GraspOptions,
    MagnitudeAfterOptions,
    PrunePlan,
    SnipOptions,
    SynflowOptions,
    get_pruner,
    n_keep_for_density,
    prune,
    select_members,
)
from robustlaw.empirical.pruning.scorers import grasp_scores
from robustlaw.empirical.training import Adam, TrainOptions
from robustlaw.errors import UnknownNameError, ValidationError

SPEC = MLPSpec(layer_sizes=(6, 12, 10, 3))
TRAIN = TrainOptions(loss="cross-entropy", optimizer=Adam(lr=1e-2), max_steps=5)

PLANS = [
    PrunePlan(method="random", density=0.3, seed=1),
    PrunePlan(method="random-exact", density=0.5, seed=2),
    PrunePlan(method="erk", density=0.2, seed=3, shuffle="global"),
    PrunePlan(method="magnitude", density=0.7, scope="layerwise", reinit_seed=4),
    PrunePlan(method="snip", density=0.25, seed=5, options=SnipOptions(samples_per_class=3)),
    PrunePlan(method="grasp", density=0.4, seed=6, options=GraspOptions(samples_per_class=4)),
    PrunePlan(method="grasp-abs", density=0.4, seed=7, invert=True),
    PrunePlan(
        method="synflow", density=0.1, options=SynflowOptions(iterations=10), shuffle="layerwise"
    ),
    PrunePlan(method="snip", density=0.6, seed=8, prune_output_layer=False),
    PrunePlan(
        method="magnitude-after",
        density=0.5,
        options=MagnitudeAfterOptions(rewind_step=2),
    ),
    PrunePlan(method="imp", density=0.64),
]


@pytest.fixture
def mixed(classification_data):
    ens = init_mlp_ensemble(SPEC, seeds=range(10, 10 + len(PLANS)), dtype=torch.float64)
    return ens, classification_data(n_per_class=10)


def _run(ens, plans, data):
    return prune(ens, plans, data=data, loss="cross-entropy", train_options=TRAIN)


def test_mixed_plans_batched_equal_one_by_one(mixed):
    ens, data = mixed
    together = _run(ens, PLANS, data)
    for i, plan in enumerate(PLANS):
        alone = _run(select_members(ens, [i]), plan, data)
        for k in ens.masks:
            assert torch.equal(together.ensemble.masks[k][i], alone.ensemble.masks[k][0]), (
                plan.method,
                k,
            )
        for k in ens.params:
            torch.testing.assert_close(
                together.ensemble.params[k][i], alone.ensemble.params[k][0], rtol=1e-12, atol=1e-12
            )
        assert together.info[i] == alone.info[0]


def test_counts_exact_and_metadata(mixed):
    ens, data = mixed
    res = _run(ens, PLANS, data)
    for i, (plan, info) in enumerate(zip(PLANS, res.info, strict=True)):
        n = sum(ens.masks[k][0].numel() for k in info.prunable)
        kept = sum(int(res.ensemble.masks[k][i].sum()) for k in info.prunable)
        assert kept == n_keep_for_density(plan.density, n), plan.method
        assert info.density == pytest.approx(kept / n)
        assert info.method == plan.method
        assert info.seed == plan.seed
        assert info.target_density == plan.density
        for k, m in res.ensemble.masks.items():
            assert bool((res.ensemble.params[k][i][~m[i]] == 0).all())
        json.dumps(dataclasses.asdict(info))  # JSON-friendly record
    assert res.info[2].flags["shuffle"] == "global"
    assert res.info[8].flags["prune_output_layer"] is False


def test_same_seeds_identical_results(mixed):
    ens, data = mixed
    a, b = _run(ens, PLANS, data), _run(ens, PLANS, data)
    for k in ens.masks:
        assert torch.equal(a.ensemble.masks[k], b.ensemble.masks[k])
    for k in ens.params:
        assert torch.equal(a.ensemble.params[k], b.ensemble.params[k])


def test_existing_mask_stays_pruned():
    ens = init_mlp_ensemble(SPEC, seeds=[0])
    first = prune(ens, PrunePlan(method="random", density=0.5)).ensemble
    second = prune(first, PrunePlan(method="magnitude", density=0.2)).ensemble
    for k in ens.masks:
        assert not bool((second.masks[k] & ~first.masks[k]).any())
    with pytest.raises(ValidationError, match="exceeds the current density"):
        prune(first, PrunePlan(method="magnitude", density=0.8))


def test_registry_lists_all_methods():
    assert set(PRUNERS) == {
        "random", "random-exact", "erk", "er", "magnitude", "snip", "grasp", "grasp-abs",
        "synflow", "magnitude-after", "imp",
    }  # fmt: skip
    with pytest.raises(UnknownNameError, match="valid names: er, erk, grasp"):
        get_pruner("lottery")


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5, float("nan")])
def test_density_outside_unit_interval_rejected(density):
    with pytest.raises(ValidationError, match="density"):
        PrunePlan(method="random", density=density)


def test_bad_plans_and_data_rejected(classification_data):
    ens = init_mlp_ensemble(SPEC, seeds=[0, 1])
    with pytest.raises(UnknownNameError, match="snip"):
        PrunePlan(method="snipp", density=0.5)
    with pytest.raises(ValidationError, match="SnipOptions"):
        PrunePlan(method="snip", density=0.5, options=GraspOptions())
    with pytest.raises(ValidationError, match="one per member"):
        prune(ens, [PrunePlan(method="random", density=0.5)] * 3)
    with pytest.raises(ValidationError, match="needs data"):
        prune(ens, PrunePlan(method="grasp", density=0.5))
    x, y = classification_data()
    with pytest.raises(ValidationError, match="samples_per_class"):
        prune(
            ens,
            PrunePlan(method="snip", density=0.5, options=SnipOptions(samples_per_class=50)),
            data=(x, y),
            loss="cross-entropy",
        )
    with pytest.raises(ValidationError, match="finite"):
        prune(
            ens,
            PrunePlan(method="snip", density=0.5),
            data=(x * float("nan"), y),
            loss="cross-entropy",
        )
    with pytest.raises(ValidationError, match="reduce"):
        SnipOptions(reduce="sum")


def test_regression_subset_is_seeded_uniform(context):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 4, 1)), seeds=[0, 1], dtype=torch.float64)
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.sign(x[:, 0])
    ctx = context(ens, SnipOptions(samples_per_class=5), seeds=[3, 3], data=(x, y))
    idx = ctx.data.indices(ctx.seeds, 5)
    assert idx.shape == (2, 1, 10)
    assert torch.equal(idx[0], idx[1])
    assert len(set(idx[0].flatten().tolist())) == 10
    other = ctx.data.indices((4, 4), 5)
    assert not torch.equal(idx, other)


def test_dataset_records_are_accepted_as_data():
    data = random_labels_data(40, 6, seed=0)
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(6, 8, 1)), seeds=[0])
    plan = PrunePlan(method="snip", density=0.5, options=SnipOptions(samples_per_class=None))
    from_record = prune(ens, plan, data=data).ensemble.masks
    from_pair = prune(ens, plan, data=(data.X, data.y)).ensemble.masks
    assert all(torch.equal(from_record[k], from_pair[k]) for k in from_record)


def test_grasp_temperature_only_divides_classification_logits(context):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 5, 1)), seeds=[0], dtype=torch.float64)
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.sign(x[:, 0])
    scores = {}
    for loss in ("mse", "logistic"):
        for t in (1.0, 200.0):
            opts = GraspOptions(temperature=t, samples_per_class=None)
            scores[loss, t] = grasp_scores(context(ens, opts, data=(x, y), loss=loss))["0.weight"]
    torch.testing.assert_close(scores["mse", 1.0], scores["mse", 200.0], rtol=0, atol=0)
    assert not torch.allclose(scores["logistic", 1.0], scores["logistic", 200.0])


@pytest.mark.parametrize("density", ["0.5", True, None, [0.5], b"0.5"])
def test_density_must_be_a_real_number(density):
    # "0.5" was accepted and failed later with a raw TypeError
    with pytest.raises(ValidationError, match="^density must be (numeric|a single real number)"):
        PrunePlan(method="magnitude", density=density)


@pytest.mark.parametrize(
    ("scope", "density", "n"), [("global", 1e-6, 40), ("global", 0.02, 40), ("layerwise", 0.05, 8)]
)
def test_density_keeping_no_weight_is_refused_with_the_smallest_valid_one(scope, density, n):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 8, 1)), seeds=[0])
    with pytest.raises(ValidationError, match=rf"keeps 0 of the {n} .*1/{n} = {1 / n:g}"):
        prune(ens, PrunePlan(method="magnitude", density=density, scope=scope))
    kept = prune(ens, PrunePlan(method="magnitude", density=1 / n, scope=scope)).ensemble
    per_layer = [int(m.sum()) for m in kept.masks.values()]
    assert sum(per_layer) == 1 if scope == "global" else min(per_layer) == 1


@pytest.mark.parametrize("method", ["snip", "grasp"])
def test_scoring_data_with_the_wrong_feature_count_is_refused(method):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 8, 1)), seeds=[0, 1])
    X, y = torch.randn(10, 5), torch.ones(10)  # was a raw RuntimeError from bmm
    with pytest.raises(ValidationError, match=r"X must have shape \(n_samples, 4\)"):
        prune(ens, PrunePlan(method=method, density=0.5), data=(X, y))
