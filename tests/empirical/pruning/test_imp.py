"""IMP, magnitude after training and pruning at step t (METHODS.md §3.6–3.7, §4, §8 test 8)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import (
    ImpOptions,
    MagnitudeAfterOptions,
    PrunePlan,
    exact_top_k,
    imp_levels,
    n_keep_for_density,
    next_remaining,
    prune,
    prune_at_step,
)
from robustlaw.empirical.training import Adam, TrainOptions, train_ensemble
from robustlaw.errors import ValidationError

OPTS = TrainOptions(optimizer=Adam(lr=1e-2), max_steps=12)


@pytest.fixture
def setup():
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 16, 16, 1)), seeds=[0, 1], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (20,), generator=gen).to(torch.float64) * 2 - 1
    return ens, x, y


@given(st.integers(1, 10**6))
def test_rounding_rule_matches_integer_arithmetic(r):
    assert next_remaining(r, 0.2) == r - (r + 4) // 5  # R - ceil(R / 5), exactly


def test_level_densities_follow_powers_of_point_eight():
    counts = [10_000]
    for _ in range(18):
        counts.append(next_remaining(counts[-1]))
    for j, c in enumerate(counts):
        assert abs(c / 10_000 - 0.8**j) < 2.5e-4 * (j + 1)


def _top(theta, alive, counts, names):
    scores = {n: theta[n].abs() for n in names}
    return exact_top_k(scores, {n: alive[n] for n in names}, torch.tensor(counts))


def test_imp_levels_rewind_and_fresh_optimizer(setup, context):
    ens, x, y = setup
    k = 3
    ctx = context(ens, ImpOptions(rewind_step=k), data=(x, y), train_options=OPTS)
    tickets = imp_levels(ctx, n_levels=3)
    names = ens.spec.weight_names()
    dense = train_ensemble(
        ens, x, y, TrainOptions(optimizer=Adam(lr=1e-2), max_steps=12, snapshot_steps=(k,))
    )
    theta_k = dense.snapshots[k]
    alive, theta_t = dict(ens.masks), dense.params
    remaining = ens.spec.n_weights()
    for ticket in tickets:
        remaining = next_remaining(remaining)
        expected = _top(theta_t, alive, [remaining] * 2, names)
        for n in names:
            assert torch.equal(ticket.masks[n], expected[n])
        assert [sum(int(ticket.masks[n][m].sum()) for n in names) for m in range(2)] == [
            remaining
        ] * 2
        for n, v in ticket.params.items():  # survivors are exactly θ_k
            mask = ticket.masks.get(n, torch.ones_like(v, dtype=torch.bool))
            assert torch.equal(v, theta_k[n] * mask)
        # the next level retrains from θ_k for T - k steps with a fresh optimizer state
        alive = {n: ticket.masks[n] for n in names}
        theta_t = train_ensemble(
            ticket, x, y, TrainOptions(optimizer=Adam(lr=1e-2), max_steps=12 - k)
        ).params
    assert len(tickets) == 3


def test_imp_reaches_each_members_target(setup):
    ens, x, y = setup
    densities = (0.8, 0.8**3)
    plans = [PrunePlan(method="imp", density=d) for d in densities]
    res = prune(ens, plans, data=(x, y), train_options=OPTS)
    n = ens.spec.n_weights()
    for m, d in enumerate(densities):
        kept = sum(int(res.ensemble.masks[k][m].sum()) for k in ens.masks)
        assert kept == n_keep_for_density(d, n)
    alone = prune(
        init_mlp_ensemble(ens.spec, seeds=[0], dtype=torch.float64),
        plans[0],
        data=(x, y),
        train_options=OPTS,
    )
    for k in ens.masks:
        assert torch.equal(alone.ensemble.masks[k][0], res.ensemble.masks[k][0])


@pytest.mark.parametrize("after", ["rewind-k", "finetune"])
def test_magnitude_after(setup, after):
    ens, x, y = setup
    opts = MagnitudeAfterOptions(after_prune=after, rewind_step=2)
    res = prune(
        ens,
        PrunePlan(method="magnitude-after", density=0.3, options=opts),
        data=(x, y),
        train_options=OPTS,
    )
    dense = train_ensemble(
        ens, x, y, TrainOptions(optimizer=Adam(lr=1e-2), max_steps=12, snapshot_steps=(2,))
    )
    names = ens.spec.weight_names()
    expected = _top(
        dense.params, ens.masks, [n_keep_for_density(0.3, ens.spec.n_weights())] * 2, names
    )
    start = dense.snapshots[2] if after == "rewind-k" else dense.params
    for n, v in res.ensemble.params.items():
        mask = expected.get(n, torch.ones_like(v, dtype=torch.bool))
        assert torch.equal(res.ensemble.masks.get(n, mask), mask)
        torch.testing.assert_close(v, start[n] * mask, rtol=0, atol=0)


def test_prune_at_step(setup):
    ens, x, y = setup
    res = prune_at_step(
        ens,
        PrunePlan(method="magnitude", density=0.5),
        data=(x, y),
        train_options=OPTS,
        prune_step=4,
        state_step=2,
    )
    dense = train_ensemble(
        ens, x, y, TrainOptions(optimizer=Adam(lr=1e-2), max_steps=4, snapshot_steps=(2, 4))
    )
    names = ens.spec.weight_names()
    expected = _top(
        dense.snapshots[4], ens.masks, [n_keep_for_density(0.5, ens.spec.n_weights())] * 2, names
    )
    for n, v in res.ensemble.params.items():
        mask = expected.get(n, torch.ones_like(v, dtype=torch.bool))
        torch.testing.assert_close(v, dense.snapshots[2][n] * mask, rtol=0, atol=0)
    with pytest.raises(ValidationError, match="trains itself"):
        prune_at_step(
            ens, PrunePlan(method="imp", density=0.5), data=(x, y), train_options=OPTS, prune_step=1
        )


def test_training_methods_need_data_and_options(setup):
    ens, x, y = setup
    with pytest.raises(ValidationError, match="train_options"):
        prune(ens, PrunePlan(method="imp", density=0.5), data=(x, y))
    with pytest.raises(ValidationError, match="data"):
        prune(ens, PrunePlan(method="magnitude-after", density=0.5), train_options=OPTS)
    with pytest.raises(ValidationError, match="rate"):
        ImpOptions(rate=1.0)
