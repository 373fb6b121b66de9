"""Bias masks: ensembles whose masks also cover biases, and PrunePlan(prune_biases=True).

Known answers on a hand-built 3-4-1 net (16 weights + 5 biases = 21 parameters, the No Free
Prune Fig. 4 toy), scores checked against plain-torch autograd, and a pin of the default
(weights-only) masks computed before bias masks existed.
"""

import hashlib
import math

import pytest
import torch

from robustlaw.empirical.ensemble import Ensemble, MLPSpec, init_mlp_ensemble
from robustlaw.empirical.ensemble_io import load_ensemble, member_to_sequential, save_ensemble
from robustlaw.empirical.pruning import (
    PRUNERS,
    GraspOptions,
    ImpOptions,
    PrunePlan,
    SnipOptions,
    SynflowOptions,
    n_keep_for_density,
    prunable_names,
    prune,
)
from robustlaw.empirical.pruning._context import PruneContext
from robustlaw.empirical.pruning._data import prepare_scoring_data
from robustlaw.empirical.pruning.scorers import grasp_scores, snip_scores, synflow_scores
from robustlaw.empirical.training import SGD, TrainOptions, train_ensemble
from robustlaw.errors import ValidationError

SPEC = MLPSpec(layer_sizes=(3, 4, 1))
ALL = prunable_names(SPEC, prune_biases=True)
X = torch.tensor(
    [[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, -1.0]],
    dtype=torch.float64,
)
Y = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
TRAIN = TrainOptions(optimizer=SGD(lr=0.05), loss="mse", max_steps=200)
OPTIONS = {
    "snip": SnipOptions(samples_per_class=None),
    "grasp": GraspOptions(samples_per_class=None),
    "grasp-abs": GraspOptions(samples_per_class=None),
    "synflow": SynflowOptions(iterations=5),
}


def hand_built() -> Ensemble:
    """One 3-4-1 member: weights of magnitude 0.5..2, biases 0.01, 3, -0.02, 0.9 and 0.03."""
    w1 = torch.linspace(0.5, 2.0, 12, dtype=torch.float64).reshape(4, 3)
    w1 = w1 * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    params = {
        "0.weight": w1.unsqueeze(0),
        "0.bias": torch.tensor([[0.01, 3.0, -0.02, 0.9]], dtype=torch.float64),
        "2.weight": torch.tensor([[[1.0, -0.7, 1.5, 0.6]]], dtype=torch.float64),
        "2.bias": torch.tensor([[0.03]], dtype=torch.float64),
    }
    masks = {k: torch.ones_like(params[k], dtype=torch.bool) for k in SPEC.weight_names()}
    return Ensemble(spec=SPEC, params=params, masks=masks, seeds=(0,))


def random_net(n_members: int = 3) -> Ensemble:
    return init_mlp_ensemble(SPEC, seeds=range(n_members), dtype=torch.float64)


def plan(method: str, density: float, **kw) -> PrunePlan:
    return PrunePlan(method=method, density=density, options=OPTIONS.get(method), **kw)


def context(ens: Ensemble, method: str) -> PruneContext:
    """A PruneContext over the whole ensemble, biases prunable (full bias masks added)."""
    masks = {**ens.masks, **{k: torch.ones_like(ens.params[k], dtype=torch.bool) for k in ALL}}
    scoring = prepare_scoring_data((X, Y), loss="mse", ensemble=ens)
    return PruneContext(
        ensemble=ens.with_masks(masks),
        names=ALL,
        densities=(0.5,) * ens.n_members,
        seeds=(0,) * ens.n_members,
        options=OPTIONS[method],
        scope="global",
        invert=False,
        data=scoring,
    )


def plain_net(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The 3-4-1 ReLU net of a flat parameter vector in ALL order (w1, b1, w2, b2)."""
    w1, b1, w2, b2 = theta[:12].reshape(4, 3), theta[12:16], theta[16:20], theta[20]
    return torch.relu(x @ w1.T + b1) @ w2 + b2


def flat(ens: Ensemble, member: int) -> torch.Tensor:
    return torch.cat([ens.params[k][member].flatten() for k in ALL])


def unflat(values: torch.Tensor) -> dict[str, torch.Tensor]:
    sizes = [12, 4, 4, 1]
    parts = values.split(sizes)
    return {k: p for k, p in zip(ALL, parts, strict=True)}


def test_prunable_names_interleave_each_layers_bias_after_its_weight():
    assert ALL == ("0.weight", "0.bias", "2.weight", "2.bias")
    assert prunable_names(SPEC, prune_output_layer=False, prune_biases=True) == (
        "0.weight",
        "0.bias",
    )
    assert prunable_names(SPEC) == ("0.weight", "2.weight")
    assert prunable_names(MLPSpec(layer_sizes=(3, 4, 1), bias=False), prune_biases=True) == (
        "0.weight",
        "2.weight",
    )


def test_magnitude_with_biases_removes_exactly_the_three_small_biases():
    res = prune(hand_built(), plan("magnitude", 18 / 21, prune_biases=True))
    masks = res.ensemble.masks
    assert sorted(masks) == sorted(ALL)
    assert masks["0.bias"][0].tolist() == [False, True, False, True]
    assert masks["2.bias"][0].tolist() == [False]
    assert bool(masks["0.weight"].all())
    assert bool(masks["2.weight"].all())
    assert res.ensemble.params["0.bias"][0].tolist() == [0.0, 3.0, 0.0, 0.9]
    assert res.info[0].prunable == ALL
    assert res.info[0].flags["prune_biases"] is True
    # Without prune_biases the same density removes the three smallest weights instead.
    weights_only = prune(hand_built(), plan("magnitude", 13 / 16)).ensemble
    assert sorted(weights_only.masks) == ["0.weight", "2.weight"]
    pruned = [~weights_only.masks[k] for k in ("0.weight", "2.weight")]
    assert [int(m.sum()) for m in pruned] == [2, 1]  # |w| = 0.5, 0.636 and 0.6
    assert weights_only.params["2.weight"][pruned[1]].tolist() == [0.0]


def test_density_counts_all_21_parameters():
    ens = prune(random_net(), plan("random", 0.5, prune_biases=True)).ensemble
    kept = n_keep_for_density(0.5, 21)
    assert kept == 10
    assert ens.density().tolist() == pytest.approx([kept / 21] * 3, abs=0, rel=1e-15)
    full = random_net().with_masks(
        {k: torch.ones_like(random_net().params[k], dtype=torch.bool) for k in ALL}
    )
    assert full.density().tolist() == [1.0, 1.0, 1.0]
    assert random_net().density().tolist() == [1.0, 1.0, 1.0]


def test_pruned_bias_makes_the_output_independent_of_it():
    ens = prune(hand_built(), plan("magnitude", 18 / 21, prune_biases=True)).ensemble
    changed = {k: v.clone() for k, v in ens.params.items()}
    changed["0.bias"][0, 0] = 50.0  # a pruned hidden bias
    changed["2.bias"][0, 0] = -7.0  # the pruned output bias
    other = Ensemble(spec=SPEC, params=changed, masks=ens.masks, seeds=ens.seeds)
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(other(x), ens(x), rtol=0, atol=0)
    seq = member_to_sequential(other, 0)
    torch.testing.assert_close(seq(x), ens(x)[0], rtol=1e-15, atol=1e-15)
    kept = dict(changed)
    kept["0.bias"] = changed["0.bias"].clone()
    kept["0.bias"][0, 1] = -50.0  # a kept bias does change the output
    assert not torch.equal(Ensemble(spec=SPEC, params=kept, masks=ens.masks)(x), ens(x))


def test_pruned_bias_has_zero_gradient_and_stays_zero_through_training():
    ens = prune(random_net(), plan("random", 0.6, prune_biases=True, seed=4)).ensemble
    pruned = {k: ~ens.masks[k] for k in ALL}
    assert any(bool(pruned[k].any()) for k in ("0.bias", "2.bias"))
    params = {k: v.clone().requires_grad_(True) for k, v in ens.params.items()}
    loss = (Ensemble(spec=SPEC, params=params, masks=ens.masks)(X) ** 2).sum()
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
    for k in ALL:
        assert bool((grads[k][pruned[k]] == 0).all()), k
    trained = train_ensemble(ens, X, Y, TRAIN).to_ensemble(ens)
    for k in ALL:
        assert bool((trained.params[k][pruned[k]] == 0).all()), k
        assert torch.equal(trained.masks[k], ens.masks[k])
    assert not torch.equal(trained.params["0.bias"], ens.params["0.bias"])  # kept ones moved


def test_save_and_load_round_trip_bias_masks(tmp_path):
    ens = prune(random_net(), plan("random", 0.5, prune_biases=True)).ensemble
    save_ensemble(tmp_path / "ens.pt", ens)
    back = load_ensemble(tmp_path / "ens.pt")
    assert sorted(back.masks) == sorted(ALL)
    for k in ALL:
        assert torch.equal(back.masks[k], ens.masks[k])
        assert torch.equal(back.params[k], ens.params[k])


def test_bias_mask_keys_and_shapes_are_validated():
    ens = random_net(1)
    good = {k: torch.ones_like(ens.params[k], dtype=torch.bool) for k in ALL}
    with pytest.raises(ValidationError, match="optionally also"):
        ens.with_masks({"0.bias": good["0.bias"], "2.weight": good["2.weight"]})
    with pytest.raises(ValidationError, match=r"mask '0.bias' must have shape \(1, 4\)"):
        ens.with_masks({**good, "0.bias": torch.ones(1, 3, dtype=torch.bool)})


@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_every_method_prunes_biases_with_exact_counts_or_refuses(method):
    if not PRUNERS[method].prunes_biases:
        with pytest.raises(ValidationError, match="cannot prune biases"):
            plan(method, 0.5, prune_biases=True)
        return
    ens = random_net()
    plans = [plan(method, d, prune_biases=True, seed=s) for s, d in enumerate((0.8, 0.5, 0.2))]
    res = prune(ens, plans, data=(X, Y), loss="mse", train_options=TRAIN)
    for i, p in enumerate(plans):
        masks = res.ensemble.masks
        if method == "random-exact":  # exact per layer: 16 and 5 entries
            counts = [int(masks["0.weight"][i].sum() + masks["0.bias"][i].sum())]
            counts.append(int(masks["2.weight"][i].sum() + masks["2.bias"][i].sum()))
            assert counts == [n_keep_for_density(p.density, n) for n in (16, 5)]
        else:
            kept = sum(int(masks[k][i].sum()) for k in ALL)
            assert kept == n_keep_for_density(p.density, 21), (method, p.density)
        for k in ALL:
            assert bool((res.ensemble.params[k][i][~masks[k][i]] == 0).all())


def test_layerwise_scope_thresholds_each_layer_with_its_bias():
    res = prune(random_net(), plan("magnitude", 0.5, prune_biases=True, scope="layerwise"))
    m = res.ensemble.masks
    assert (m["0.weight"].flatten(1).sum(1) + m["0.bias"].sum(1)).tolist() == [8] * 3
    assert (m["2.weight"].flatten(1).sum(1) + m["2.bias"].sum(1)).tolist() == [2] * 3


def test_snip_bias_scores_match_plain_autograd():
    ens = random_net()
    scores = snip_scores(context(ens, "snip"))
    for i in range(ens.n_members):
        theta = flat(ens, i).requires_grad_(True)
        loss = (plain_net(theta, X) - Y).square().mean()
        (g,) = torch.autograd.grad(loss, theta)
        expected = unflat((theta.detach() * g).abs())
        for k in ALL:
            torch.testing.assert_close(scores[k][i], expected[k].reshape(scores[k][i].shape))


def test_grasp_bias_scores_match_a_plain_hessian_gradient_product():
    ens = random_net()
    scores = grasp_scores(context(ens, "grasp"))
    for i in range(ens.n_members):
        theta = flat(ens, i)

        def loss(t):
            return (plain_net(t, X) - Y).square().mean()

        g = torch.autograd.functional.jacobian(loss, theta)
        _, hg = torch.autograd.functional.hvp(loss, theta, g)
        expected = unflat(theta * hg)
        for k in ALL:
            torch.testing.assert_close(scores[k][i], expected[k].reshape(scores[k][i].shape))


def test_synflow_bias_scores_are_the_closed_form_of_the_3_4_1_net():
    """R = Σ_j |w2_j| (|W1_j|·1 + |b1_j|) + |b2|: dR/db2 = 1 and dR/db1_j = |w2_j|."""
    ens = hand_built()
    ctx = context(ens, "synflow")
    abs_params = {k: v.abs() for k, v in ctx.params.items()}
    scores = synflow_scores(abs_params, {k: ctx.masks[k] for k in ALL}, ctx)
    w2, b1 = ens.params["2.weight"][0, 0].abs(), ens.params["0.bias"][0].abs()
    torch.testing.assert_close(scores["0.bias"][0], w2 * b1)
    torch.testing.assert_close(scores["2.bias"][0], ens.params["2.bias"][0].abs())
    w1 = ens.params["0.weight"][0].abs()
    torch.testing.assert_close(scores["0.weight"][0], w2[:, None] * w1)
    torch.testing.assert_close(scores["2.weight"][0, 0], w2 * (w1.sum(1) + b1))


def test_imp_and_magnitude_after_rank_biases_by_trained_magnitude():
    """One IMP level at rate 0.2 (21 -> 16) is magnitude-after: the top 16 of |θ_T|."""
    ens = random_net()
    imp = prune(
        ens,
        plan("imp", 16 / 21, prune_biases=True),
        data=(X, Y),
        train_options=TRAIN,
    )
    after = prune(
        ens, plan("magnitude-after", 16 / 21, prune_biases=True), data=(X, Y), train_options=TRAIN
    )
    theta_t = train_ensemble(ens, X, Y, TRAIN).params
    for i in range(ens.n_members):
        values = torch.cat([theta_t[k][i].flatten().abs() for k in ALL])
        expected = torch.zeros(21, dtype=torch.bool)
        expected[torch.argsort(-values, stable=True)[:16]] = True
        for res in (imp, after):
            got = torch.cat([res.ensemble.masks[k][i].flatten() for k in ALL])
            assert torch.equal(got, expected)
    assert ImpOptions().rate == 0.2


# sha256 prefixes of the weight masks of these plans, computed with the code before bias masks
# existed (git HEAD 04b84b9): the default plans must keep giving exactly these masks.
DEFAULT_MASK_DIGESTS = {
    "random": "74946c359fe53cb2",
    "magnitude": "a69d2a607f41b9eb",
    "snip": "82240afbd90a7020",
    "grasp": "ebdaa7fc1118fd12",
    "synflow": "8995efd9bde99403",
}


@pytest.mark.parametrize("method", sorted(DEFAULT_MASK_DIGESTS))
def test_default_plans_give_the_masks_they_gave_before_bias_masks(method):
    spec = MLPSpec(layer_sizes=(3, 5, 2))
    ens = init_mlp_ensemble(spec, seeds=[0, 1, 2], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    opts = {**OPTIONS, "synflow": SynflowOptions(iterations=10)}.get(method)
    plans = [PrunePlan(method=method, density=0.4, seed=s, options=opts) for s in (0, 1, 2)]
    res = prune(ens, plans, data=(x, y))
    assert sorted(res.ensemble.masks) == ["0.weight", "2.weight"]
    bits = torch.cat([res.ensemble.masks[k].flatten() for k in spec.weight_names()])
    assert hashlib.sha256(bits.numpy().tobytes()).hexdigest()[:16] == DEFAULT_MASK_DIGESTS[method]
    assert math.isclose(float(res.ensemble.density()[0]), res.info[0].density)
