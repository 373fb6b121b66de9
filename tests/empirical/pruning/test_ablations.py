"""Ablations: shuffles, reinitialization, inversion (METHODS.md §4, §8 tests 6–7)."""

import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import (
    PrunePlan,
    exact_top_k,
    invert_scores,
    prune,
    shuffle_global,
    shuffle_layerwise,
)


def _mask(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {
        "0.weight": torch.rand(20, 10, generator=gen) < 0.3,
        "2.weight": torch.rand(5, 20, generator=gen) < 0.6,
    }


def test_layerwise_shuffle_keeps_counts_and_moves_positions():
    mask = _mask()
    out = shuffle_layerwise(mask, seed=4)
    for k in mask:
        assert int(out[k].sum()) == int(mask[k].sum())
        assert out[k].shape == mask[k].shape
        assert not torch.equal(out[k], mask[k])  # the Synaptic-Flow no-op pitfall
    assert all(
        torch.equal(a, b)
        for a, b in zip(out.values(), shuffle_layerwise(mask, 4).values(), strict=True)
    )
    assert any(not torch.equal(out[k], shuffle_layerwise(mask, 5)[k]) for k in mask)


def test_global_shuffle_keeps_total_only():
    mask = {"a": torch.ones(100, dtype=torch.bool), "b": torch.zeros(100, dtype=torch.bool)}
    out = shuffle_global(mask, seed=0)
    assert int(out["a"].sum() + out["b"].sum()) == 100
    assert 20 < int(out["a"].sum()) < 80  # counts move toward uniform


def test_inversion_is_negation_with_zeros_and_signed_scores():
    scores = {"w": torch.tensor([[0.0, -2.0, 3.0, 0.0, -0.5, 1.0]])}
    alive = {"w": torch.ones(1, 6, dtype=torch.bool)}
    inv = invert_scores(scores)
    assert inv["w"].tolist() == [[-0.0, 2.0, -3.0, -0.0, 0.5, -1.0]]
    # reversed ranking: the inverted top-3 are the three lowest scores (ties: lower index)
    assert exact_top_k(inv, alive, torch.tensor([3]))["w"].tolist() == [
        [True, True, False, False, True, False]
    ]
    # 1/score would send zeros to inf and rank -2 above 3; negation does not
    assert exact_top_k(scores, alive, torch.tensor([3]))["w"].tolist() == [
        [True, False, True, False, False, True]
    ]


def test_plan_ablations_in_prune():
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(5, 12, 1)), seeds=[0, 0, 0, 0])
    plans = [
        PrunePlan(method="magnitude", density=0.4, seed=3),
        PrunePlan(method="magnitude", density=0.4, seed=3, shuffle="layerwise"),
        PrunePlan(method="magnitude", density=0.4, seed=3, reinit_seed=9),
        PrunePlan(method="magnitude", density=0.4, invert=True),
    ]
    res = prune(ens, plans).ensemble
    base = {k: v[0] for k, v in res.masks.items()}
    for k in base:
        assert int(res.masks[k][1].sum()) == int(base[k].sum())
        assert not torch.equal(res.masks[k][1], base[k])
        torch.testing.assert_close(res.params[k][1], ens.params[k][1] * res.masks[k][1])
    fresh = init_mlp_ensemble(ens.spec, [9])
    for k in base:
        assert torch.equal(res.masks[k][2], base[k])
    for k, v in res.params.items():
        mask = res.masks[k][2] if k in res.masks else torch.ones_like(v[2], dtype=torch.bool)
        torch.testing.assert_close(v[2], fresh.params[k][0] * mask, rtol=0, atol=0)
    flat = torch.cat([ens.params[k][0].abs().flatten() for k in base])
    kept_inv = torch.cat([res.masks[k][3].flatten() for k in base])
    assert float(flat[kept_inv].max()) <= float(flat[~kept_inv].min())


@pytest.mark.parametrize("shuffle", ["layerwise", "global"])
def test_shuffle_is_seeded(shuffle):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(5, 12, 1)), seeds=[0])
    a = prune(ens, PrunePlan(method="magnitude", density=0.3, seed=1, shuffle=shuffle)).ensemble
    b = prune(ens, PrunePlan(method="magnitude", density=0.3, seed=1, shuffle=shuffle)).ensemble
    c = prune(ens, PrunePlan(method="magnitude", density=0.3, seed=2, shuffle=shuffle)).ensemble
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert any(not torch.equal(a.masks[k], c.masks[k]) for k in a.masks)
