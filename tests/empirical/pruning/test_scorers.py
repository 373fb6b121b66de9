"""Scorers against independent computations (METHODS.md §8, tests 1–3)."""

import math

import pytest
import torch
import torch.nn.functional as F

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import (
    GraspOptions,
    PrunePlan,
    RandomOptions,
    SnipOptions,
    SynflowOptions,
    n_keep_for_density,
    prune,
)
from robustlaw.empirical.pruning.scorers import (
    grasp_hessian_gradient,
    grasp_scores,
    random_scores,
    snip_scores,
    synflow_scores,
)


def _member_forward(ens, k, x, weights=None, masks=None):
    """One member's forward pass, written out with a Python loop over layers."""
    h = x
    names = ens.spec.weight_names()
    for l, name in enumerate(names):
        w = (weights or {}).get(name, ens.params[name][k])
        m = (masks or {}).get(name, ens.masks[name][k])
        h = h @ (w * m).T + ens.params[f"{2 * l}.bias"][k]
        if l < len(names) - 1:
            h = torch.relu(h)
    return h


def test_snip_equals_gradient_with_respect_to_the_mask(
    small_ensemble, classification_data, context
):
    ens = small_ensemble()
    x, y = classification_data()
    ctx = context(ens, SnipOptions(samples_per_class=None), data=(x, y), loss="cross-entropy")
    scores = snip_scores(ctx)
    for k in range(ens.n_members):
        masks = {
            n: torch.ones_like(ens.params[n][k], requires_grad=True)
            for n in ens.spec.weight_names()
        }
        loss = F.cross_entropy(_member_forward(ens, k, x, masks=masks), y)
        grads = torch.autograd.grad(loss, list(masks.values()))
        for name, g in zip(masks, grads, strict=True):
            torch.testing.assert_close(scores[name][k], g.abs(), rtol=1e-10, atol=1e-14)


def test_snip_reductions_agree_for_one_batch_and_differ_for_several(
    small_ensemble, classification_data, context
):
    ens = small_ensemble()
    data = classification_data()
    runs = {
        (r, b): snip_scores(
            context(ens, SnipOptions(reduce=r, batch_size=b), data=data, loss="cross-entropy")
        )
        for r in ("abs-of-sum", "mean-of-abs")
        for b in (None, 6)
    }
    torch.testing.assert_close(runs[("abs-of-sum", None)], runs[("mean-of-abs", None)])
    torch.testing.assert_close(runs[("abs-of-sum", None)], runs[("abs-of-sum", 6)])
    # mean of |.| >= |mean| entry-wise (triangle inequality), strictly somewhere.
    diff = runs[("mean-of-abs", 6)]["0.weight"] - runs[("abs-of-sum", 6)]["0.weight"]
    assert bool((diff >= -1e-12).all())
    assert float(diff.max()) > 0


def _member_loss(ens, k, x, y, weights, temperature):
    return F.cross_entropy(_member_forward(ens, k, x, weights=weights) / temperature, y)


@pytest.mark.parametrize("batch_mode", ["same", "split-halves"])
def test_grasp_hg_matches_central_differences(
    small_ensemble, classification_data, context, batch_mode
):
    ens = small_ensemble()
    x, y = classification_data(n_per_class=4)
    temperature = 3.0
    opts = GraspOptions(temperature=temperature, samples_per_class=None, batch_mode=batch_mode)
    ctx = context(ens, opts, data=(x, y), loss="cross-entropy")
    _, hg = grasp_hessian_gradient(ctx)
    names = ens.spec.weight_names()
    n = len(y)
    parts = [slice(0, n)] if batch_mode == "same" else [slice(0, n // 2), slice(n // 2, n)]
    h = 1e-4
    for k in range(ens.n_members):
        theta = {name: ens.params[name][k].clone() for name in names}

        def grad_at(w, part, k=k):
            w = {name: v.clone().requires_grad_(True) for name, v in w.items()}
            loss = _member_loss(ens, k, x[part], y[part], w, temperature)
            return dict(zip(names, torch.autograd.grad(loss, list(w.values())), strict=True))

        g = {name: sum(grad_at(theta, p)[name] for p in parts) for name in names}
        plus = {name: theta[name] + h * g[name] for name in names}
        minus = {name: theta[name] - h * g[name] for name in names}
        for name in names:
            fd = sum((grad_at(plus, p)[name] - grad_at(minus, p)[name]) / (2 * h) for p in parts)
            torch.testing.assert_close(hg[name][k], fd, rtol=1e-5, atol=1e-9)


def test_grasp_prunes_the_highest_s(small_ensemble, classification_data, context):
    ens = small_ensemble()
    data = classification_data()
    kw = {"data": data, "loss": "cross-entropy"}
    res = prune(ens, PrunePlan(method="grasp", density=0.3, seed=0), **kw)
    other_subset = prune(ens, PrunePlan(method="grasp", density=0.3, seed=1), **kw)
    assert not torch.equal(res.ensemble.masks["0.weight"], other_subset.ensemble.masks["0.weight"])
    ctx = context(ens, GraspOptions(), seeds=[0] * ens.n_members, **kw)
    s = {n: -v for n, v in grasp_scores(ctx).items()}
    for k in range(ens.n_members):
        flat_s = torch.cat([s[n][k].flatten() for n in s])
        kept = torch.cat([res.ensemble.masks[n][k].flatten() for n in s])
        assert float(flat_s[~kept].min()) >= float(flat_s[kept].max())
        assert int(kept.sum()) == n_keep_for_density(0.3, kept.numel())


def test_grasp_abs_and_inverted_grasp_rankings(small_ensemble, classification_data, context):
    ens = small_ensemble(k=1)
    data = classification_data()
    kw = {"data": data, "loss": "cross-entropy"}
    keep = grasp_scores(context(ens, GraspOptions(), seeds=[0], **kw))
    flat = torch.cat([keep[n][0].flatten() for n in keep])
    results = {
        name: prune(ens, PrunePlan(method=method, density=0.5, invert=inv), **kw).ensemble.masks
        for name, method, inv in [
            ("plain", "grasp", False),
            ("inv", "grasp", True),
            ("abs", "grasp-abs", False),
        ]
    }
    kept = {name: torch.cat([m[n][0].flatten() for n in keep]) for name, m in results.items()}
    assert float(flat[kept["plain"]].min()) >= float(flat[~kept["plain"]].max())
    assert float(flat[kept["inv"]].max()) <= float(flat[~kept["inv"]].min())  # reversed ranking
    assert float(flat[kept["abs"]].abs().min()) >= float(flat[~kept["abs"]].abs().max())
    assert not torch.equal(kept["plain"], kept["abs"])


@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_synflow_layer_sums_equal_r(context, activation):
    sizes = (5, 7, 6, 3)
    ens = init_mlp_ensemble(
        MLPSpec(layer_sizes=sizes, bias=False, activation=activation),
        seeds=[3, 4],
        dtype=torch.float64,
    )
    ens = ens.with_params({n: v.abs() for n, v in ens.params.items()})
    gen = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(m.shape, generator=gen) < 0.7 for n, m in ens.masks.items()}
    ctx = context(ens, SynflowOptions())
    scores = synflow_scores(dict(ens.params), masks, ctx)
    for k in range(2):
        r = torch.ones(1, sizes[0], dtype=torch.float64)
        for name in ens.spec.weight_names():
            r = r @ (ens.params[name][k] * masks[name][k]).T
        for name in ens.spec.weight_names():
            torch.testing.assert_close(scores[name][k].sum(), r.sum(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("schedule", ["exponential", "linear"])
def test_synflow_lands_on_exact_count_and_restores_params(schedule):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(6, 12, 12, 2)), seeds=[0, 1, 2])
    densities = (0.05, 0.3, 0.77)
    plans = [
        PrunePlan(
            method="synflow", density=d, options=SynflowOptions(iterations=20, schedule=schedule)
        )
        for d in densities
    ]
    res = prune(ens, plans)
    n_total = ens.spec.n_weights()
    for k, d in enumerate(densities):
        kept = sum(int(m[k].sum()) for m in res.ensemble.masks.values())
        assert kept == n_keep_for_density(d, n_total)
    for name, p in res.ensemble.params.items():
        assert p.dtype == torch.float32
        mask = res.ensemble.masks.get(name, torch.ones_like(p, dtype=torch.bool))
        torch.testing.assert_close(p, ens.params[name] * mask, rtol=0, atol=0)
    assert bool((res.ensemble.params["0.weight"] < 0).any())


def test_synflow_one_iteration_is_single_shot_scores(context):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 8, 1)), seeds=[5], dtype=torch.float64)
    ctx = context(ens, SynflowOptions(iterations=1), densities=[0.4])
    abs_params = {n: v.abs() for n, v in ens.params.items()}
    expected = ctx.select(synflow_scores(abs_params, dict(ens.masks), ctx))
    got = prune(ens, PrunePlan(method="synflow", density=0.4, options=SynflowOptions(iterations=1)))
    for n in expected:
        assert torch.equal(got.ensemble.masks[n], expected[n])


def test_random_scores_seed_layer_l_with_seed_plus_l(small_ensemble, context):
    ens = small_ensemble(k=2)
    scores = random_scores(context(ens, RandomOptions(), seeds=[7, 11]))
    for l, name in enumerate(ens.spec.weight_names()):
        for k, seed in enumerate([7, 11]):
            ref = torch.rand(
                ens.params[name].shape[1:], generator=torch.Generator().manual_seed(seed + l)
            )
            assert torch.equal(scores[name][k], ref)


def test_random_exact_keeps_exact_per_layer_counts(small_ensemble):
    ens = small_ensemble(k=3)
    res = prune(
        ens,
        [
            PrunePlan(method="random-exact", density=d, seed=d_i)
            for d_i, d in enumerate((0.1, 0.5, 0.9))
        ],
    )
    for k, d in enumerate((0.1, 0.5, 0.9)):
        for name in ens.spec.weight_names():
            m = res.ensemble.masks[name][k]
            assert int(m.sum()) == n_keep_for_density(d, m.numel())
        assert res.info[k].scope == "layerwise"


def test_magnitude_keeps_largest_and_layerwise_scope(small_ensemble):
    ens = small_ensemble(k=1)
    res = prune(ens, PrunePlan(method="magnitude", density=0.25))
    flat = torch.cat([ens.params[n][0].abs().flatten() for n in ens.spec.weight_names()])
    kept = torch.cat([res.ensemble.masks[n][0].flatten() for n in ens.spec.weight_names()])
    assert float(flat[kept].min()) >= float(flat[~kept].max())
    lw = prune(ens, PrunePlan(method="magnitude", density=0.25, scope="layerwise"))
    for name in ens.spec.weight_names():
        m = lw.ensemble.masks[name][0]
        assert int(m.sum()) == n_keep_for_density(0.25, m.numel())
        assert lw.info[0].layer_densities[name] == pytest.approx(int(m.sum()) / m.numel())


def test_output_layer_excluded_when_asked(small_ensemble):
    ens = small_ensemble(k=1)
    res = prune(ens, PrunePlan(method="magnitude", density=0.1, prune_output_layer=False))
    assert bool(res.ensemble.masks["4.weight"].all())
    assert res.info[0].prunable == ("0.weight", "2.weight")
    n = 6 * 10 + 10 * 8
    kept = int(res.ensemble.masks["0.weight"].sum() + res.ensemble.masks["2.weight"].sum())
    assert kept == n_keep_for_density(0.1, n)
    assert res.info[0].density == pytest.approx(kept / n)
    assert math.isclose(res.info[0].layer_densities["4.weight"], 1.0)
