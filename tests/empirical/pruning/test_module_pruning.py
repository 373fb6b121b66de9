"""Pruning on the torch.func module path: every method and ablation, checked three ways.

1. An ``nn.Sequential`` MLP stacked as a ModuleEnsemble is pruned exactly as the same weights
   in the MLP fast path (the path checked against Synaptic-Flow, open_lth and RigL).
2. On a CNN, scores equal an independent single-module autograd computation.
3. On a CNN, counts are exact, masks hold through training, batched equals one by one.
"""

import dataclasses

import pytest
import torch
from torch import nn

from robustlaw.empirical.ensemble import Ensemble, MLPSpec, init_mlp_ensemble
from robustlaw.empirical.modules import ensemble_from_modules, init_module_ensemble, small_cnn
from robustlaw.empirical.pruning import (
    GraspOptions,
    ImpOptions,
    MagnitudeAfterOptions,
    PrunePlan,
    SnipOptions,
    SynflowOptions,
    ablate,
    concat_members,
    imp_path,
    n_keep_for_density,
    prunable_names,
    prune,
    prune_at_step,
    select_members,
)
from robustlaw.empirical.training import SGD, TrainOptions, train_ensemble
from robustlaw.errors import ValidationError

F64 = torch.float64
SPEC = MLPSpec(layer_sizes=(6, 12, 10, 3))
TRAIN = TrainOptions(loss="cross-entropy", optimizer=SGD(lr=0.05), max_steps=6)

PLANS = [
    PrunePlan(method="random", density=0.3, seed=1),
    PrunePlan(method="random-exact", density=0.5, seed=2),
    PrunePlan(method="erk", density=0.2, seed=3, shuffle="global"),
    PrunePlan(method="magnitude", density=0.7, scope="layerwise"),
    PrunePlan(method="snip", density=0.25, seed=5, options=SnipOptions(samples_per_class=3)),
    PrunePlan(method="grasp", density=0.4, seed=6, options=GraspOptions(samples_per_class=4)),
    PrunePlan(method="grasp-abs", density=0.4, seed=7, invert=True),
    PrunePlan(
        method="synflow", density=0.1, options=SynflowOptions(iterations=10), shuffle="layerwise"
    ),
    PrunePlan(method="snip", density=0.6, seed=8, prune_output_layer=False, prune_biases=True),
    PrunePlan(method="magnitude-after", density=0.5, options=MagnitudeAfterOptions(rewind_step=2)),
    PrunePlan(method="imp", density=0.64, options=ImpOptions(rewind_step=1)),
]


def _sequential_twins(ens: Ensemble):
    """The MLP ensemble's members as nn.Sequential modules with the same parameter names."""
    sizes = ens.spec.layer_sizes
    models = []
    for k in range(ens.n_members):
        layers = []
        for l in range(len(sizes) - 1):
            layers += [nn.Linear(sizes[l], sizes[l + 1]).double(), nn.ReLU()]
        model = nn.Sequential(*layers[:-1])
        model.load_state_dict({name: v[k] for name, v in ens.params.items()})
        models.append(model)
    return ensemble_from_modules(models, ens.seeds, example_shape=(sizes[0],))


@pytest.fixture
def twins(classification_data):
    mlp = init_mlp_ensemble(SPEC, seeds=range(10, 10 + len(PLANS)), dtype=F64)
    return mlp, _sequential_twins(mlp), classification_data(n_per_class=10)


def test_module_path_prunes_an_mlp_exactly_as_the_mlp_path(twins):
    mlp, module, data = twins
    kw = dict(data=data, loss="cross-entropy", train_options=TRAIN)
    ours, reference = prune(module, PLANS, **kw), prune(mlp, PLANS, **kw)
    assert sorted(ours.ensemble.masks) == sorted(reference.ensemble.masks)
    for k, m in reference.ensemble.masks.items():
        assert torch.equal(ours.ensemble.masks[k], m), k
    for k, v in reference.ensemble.params.items():
        torch.testing.assert_close(ours.ensemble.params[k], v, rtol=1e-9, atol=1e-12)
    assert [i.density for i in ours.info] == [i.density for i in reference.info]
    assert [i.prunable for i in ours.info] == [i.prunable for i in reference.info]


def test_prune_at_step_and_imp_path_agree_with_the_mlp_path(twins):
    mlp, module, data = twins
    plans = PrunePlan(method="snip", density=0.3, seed=2)
    kw = dict(data=data, loss="cross-entropy", train_options=TRAIN, prune_step=4, state_step=1)
    ours, reference = prune_at_step(module, plans, **kw), prune_at_step(mlp, plans, **kw)
    for k, m in reference.ensemble.masks.items():
        assert torch.equal(ours.ensemble.masks[k], m), k
    path_kw = dict(data=data, train_options=TRAIN, n_levels=3)
    for ours_level, ref_level in zip(
        imp_path(module, **path_kw), imp_path(mlp, **path_kw), strict=True
    ):
        for k, m in ref_level.masks.items():
            assert torch.equal(ours_level.masks[k], m), k


# --- a CNN ------------------------------------------------------------------------------------

EXAMPLE = (2, 6, 6)


def _cnn(seeds, **kw):
    return init_module_ensemble(
        small_cnn(2, 6, 3, channels=(4, 5)), seeds, example_shape=EXAMPLE, dtype=F64, **kw
    )


@pytest.fixture
def images():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat_interleave(12)
    x = torch.randn(len(y), *EXAMPLE, generator=gen, dtype=F64) + y[:, None, None, None]
    return x, y


def _n_prunable(ens, names):
    return sum(ens.masks[k][0].numel() for k in names)


CNN_PLANS = [
    PrunePlan(method="random", density=0.2, seed=1),
    PrunePlan(method="magnitude", density=0.3, scope="layerwise", invert=True),
    PrunePlan(method="snip", density=0.25, seed=3, options=SnipOptions(samples_per_class=4)),
    PrunePlan(method="grasp", density=0.4, seed=4, options=GraspOptions(samples_per_class=4)),
    PrunePlan(method="grasp-abs", density=0.4, seed=5, shuffle="layerwise"),
    PrunePlan(method="synflow", density=0.1, options=SynflowOptions(iterations=5), reinit_seed=9),
    PrunePlan(method="erk", density=0.3, seed=6),
    PrunePlan(method="magnitude-after", density=0.5),
    PrunePlan(method="imp", density=0.5, prune_biases=True),
]


def test_cnn_every_method_keeps_exact_counts_and_batched_equals_one_by_one(images):
    ens = _cnn(range(len(CNN_PLANS)))
    kw = dict(data=images, loss="cross-entropy", train_options=TRAIN)
    together = prune(ens, CNN_PLANS, **kw)
    names = prunable_names(ens)
    assert names == ("0.weight", "2.weight", "5.weight")
    for i, plan in enumerate(CNN_PLANS):
        alone = prune(select_members(ens, [i]), plan, **kw)
        for k, m in alone.ensemble.masks.items():
            assert torch.equal(together.ensemble.masks[k][i], m[0]), (plan.method, k)
        member_names = together.info[i].prunable
        kept = sum(int(together.ensemble.masks[k][i].sum()) for k in member_names)
        if plan.scope == "global":
            n = _n_prunable(together.ensemble, member_names)
            assert kept == n_keep_for_density(plan.density, n)
        for k, v in together.ensemble.params.items():  # pruned entries are zero
            if k in together.ensemble.masks:
                assert not v[i][~together.ensemble.masks[k][i]].any()
    layerwise = 1  # the magnitude member thresholds every layer on its own
    for k in names:
        n = ens.masks[k][0].numel()
        assert int(together.ensemble.masks[k][layerwise].sum()) == n_keep_for_density(0.3, n)


def test_cnn_scores_match_single_module_autograd(images):
    """SNIP and SynFlow keep-scores against torch.autograd on one plain nn.Module."""
    x, y = images
    ens = _cnn([3])
    model = small_cnn(2, 6, 3, channels=(4, 5)).double()
    model.load_state_dict({k: v[0] for k, v in ens.params.items()})
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    snip = {
        k: (p.detach() * g).abs() for (k, p), g in zip(model.named_parameters(), grads, strict=True)
    }
    plan = PrunePlan(method="snip", density=0.2, options=SnipOptions(samples_per_class=None))
    res = prune(ens, plan, data=images, loss="cross-entropy")
    flat = torch.cat([snip[k].flatten() for k in prunable_names(ens)])
    threshold = flat.sort(descending=True).values[n_keep_for_density(0.2, flat.numel()) - 1]
    for k in prunable_names(ens):
        assert torch.equal(res.ensemble.masks[k][0], snip[k] >= threshold), k
    # SynFlow's first round: R = sum f(1; |θ|) on the all-ones image
    for p in model.parameters():
        p.data.abs_()
    total = model(torch.ones(1, *EXAMPLE, dtype=F64)).sum()
    grads = torch.autograd.grad(total, list(model.parameters()))
    syn = {k: (p * g).abs() for (k, p), g in zip(model.named_parameters(), grads, strict=True)}
    one_round = PrunePlan(method="synflow", density=0.2, options=SynflowOptions(iterations=1))
    res = prune(ens, one_round)
    flat = torch.cat([syn[k].flatten() for k in prunable_names(ens)])
    threshold = flat.sort(descending=True).values[n_keep_for_density(0.2, flat.numel()) - 1]
    for k in prunable_names(ens):
        assert torch.equal(res.ensemble.masks[k][0], syn[k].detach() >= threshold), k


def test_cnn_ablations_shuffle_keeps_layer_counts_and_reinit_redraws(images):
    ens = _cnn([0, 1, 2])
    plans = [
        PrunePlan(method="snip", density=0.3, seed=1),
        PrunePlan(method="snip", density=0.3, seed=1, shuffle="layerwise"),
        PrunePlan(method="snip", density=0.3, seed=1, reinit_seed=42),
    ]
    same = select_members(ens, [0, 0, 0])
    res = prune(same, plans, data=images, loss="cross-entropy")
    masks = res.ensemble.masks
    for k in prunable_names(ens):
        assert int(masks[k][1].sum()) == int(masks[k][0].sum())
        assert torch.equal(masks[k][2], masks[k][0])
    assert any(not torch.equal(masks[k][1], masks[k][0]) for k in prunable_names(ens))
    fresh = _cnn([42])
    for k, v in res.ensemble.params.items():
        expected = fresh.params[k][0] * masks[k][2] if k in masks else fresh.params[k][0]
        assert torch.equal(v[2], expected), k


def test_cnn_masks_hold_exactly_through_training(images):
    res = prune(_cnn([0, 1]), PrunePlan(method="random", density=0.2, seed=4))
    trained = train_ensemble(res.ensemble, *images, TRAIN).to_ensemble(res.ensemble)
    for k, m in res.ensemble.masks.items():
        assert not trained.params[k][~m].any()
        assert trained.params[k][m].ne(res.ensemble.params[k][m]).any()


def test_concat_and_select_keep_module_ensembles_whole():
    a, b = _cnn([1]), _cnn([7, 8])
    both = concat_members([a, b])
    assert both.seeds == (1, 7, 8)
    assert both.example_shape == EXAMPLE
    torch.testing.assert_close(
        select_members(both, [2]).params["0.weight"], _cnn([8]).params["0.weight"]
    )
    with pytest.raises(ValidationError, match="one kind, architecture"):
        concat_members([a, init_module_ensemble(small_cnn(2, 6, 3), [0], example_shape=EXAMPLE)])
    with pytest.raises(ValidationError, match="one kind, architecture"):
        concat_members([a, init_mlp_ensemble(SPEC, [0])])


def test_module_pruning_refuses_what_it_cannot_do_with_one_clear_error(images):
    stacked = ensemble_from_modules([small_cnn(2, 6, 3).double()], example_ndim=3)
    with pytest.raises(ValidationError, match="example_shape="):
        prune(stacked, PrunePlan(method="synflow", density=0.5))
    with pytest.raises(ValidationError, match="init distribution is unknown"):
        prune(stacked, PrunePlan(method="random", density=0.5, reinit_seed=1))
    with pytest.raises(ValidationError, match=r"example shape \(2, 6, 6\)"):
        prune(_cnn([0]), PrunePlan(method="snip", density=0.5), data=(images[0][:, :1], images[1]),
              loss="cross-entropy")  # fmt: skip
    with pytest.raises(ValidationError, match="Ensemble .* or a ModuleEnsemble"):
        prune(nn.Linear(2, 2), PrunePlan(method="random", density=0.5))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_ablate_on_finished_masks_is_what_prune_does(kind, images):
    """prune(plan with ablations) == ablate(prune(plan without), plan) from the same start."""
    start = init_mlp_ensemble(SPEC, [5, 6, 7], dtype=F64) if kind == "mlp" else _cnn([5, 6, 7])
    plans = [
        PrunePlan(method="magnitude", density=0.3, seed=5, shuffle="layerwise"),
        PrunePlan(method="magnitude", density=0.3, seed=6, reinit_seed=77),
        PrunePlan(method="magnitude", density=0.3, seed=7, shuffle="global", prune_biases=True),
    ]
    plain = [dataclasses.replace(p, shuffle=None, reinit_seed=None) for p in plans]
    by_prune = prune(start, plans).ensemble
    by_ablate = ablate(prune(start, plain).ensemble, plans, params=start.params)
    assert sorted(by_prune.masks) == sorted(by_ablate.masks)
    for k, v in by_prune.params.items():
        assert torch.equal(by_ablate.params[k], v), k
    for k, m in by_prune.masks.items():
        assert torch.equal(by_ablate.masks[k], m), k
    with pytest.raises(ValidationError, match="inversion acts on scores"):
        ablate(by_prune, dataclasses.replace(plans[0], invert=True))
    with pytest.raises(ValidationError, match="params must have the ensemble's keys"):
        ablate(by_prune, plans, params={"0.weight": start.params["0.weight"]})
