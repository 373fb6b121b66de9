"""Batched training: equality with one-by-one training and torch.optim, masks, stopping."""

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.ensemble_io import member_to_sequential
from robustlaw.empirical.training import (
    SGD,
    Adam,
    BelowNoise,
    Converged,
    GaussianGradientNoise,
    TrainOptions,
    train_ensemble,
)
from robustlaw.empirical.training.optimizers import adam_init, adam_step
from robustlaw.errors import UnknownNameError, ValidationError

F64 = torch.float64


SPEC = MLPSpec(layer_sizes=(5, 12, 12, 1))


def _data(n=20, d=5, seed=0, k=None):
    g = torch.Generator().manual_seed(seed)
    shape = (n, d) if k is None else (k, n, d)
    X = torch.randn(*shape, generator=g, dtype=F64)
    y = torch.randint(0, 2, shape[:-1], generator=g).to(F64) * 2 - 1
    return X, y


def _random_masks(ens, density=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(v.shape, generator=g) < density for k, v in ens.masks.items()}


def _ens(seeds, spec=SPEC, masked=True):
    ens = init_mlp_ensemble(spec, seeds=seeds, dtype=F64)
    return ens.with_masks(_random_masks(ens)) if masked else ens


def _member(ens, k):
    """Member k of ``ens`` as an ensemble of one (same seed, same mask)."""
    one = init_mlp_ensemble(ens.spec, seeds=[ens.seeds[k]], dtype=ens.dtype)
    masks = {n: m[k : k + 1] for n, m in ens.masks.items()}
    return one.with_masks(masks).with_params({n: p[k : k + 1] for n, p in ens.params.items()})


BATCHED_CASES = {
    "adam-full": TrainOptions(optimizer=Adam(lr=1e-2), max_steps=60),
    "sgd-momentum-full": TrainOptions(optimizer=SGD(lr=5e-2, momentum=0.9), max_steps=60),
    "sgd-weight-decay-full": TrainOptions(
        optimizer=SGD(lr=5e-2, momentum=0.9, weight_decay=0.1), max_steps=60
    ),
    "adam-weight-decay-minibatch": TrainOptions(
        optimizer=Adam(lr=1e-2, weight_decay=0.1), max_steps=40, batch_size=6
    ),
    "adamw-full": TrainOptions(optimizer="adamw", max_steps=40, stopping="memorized"),
    "adam-l2-penalty": TrainOptions(optimizer=Adam(lr=1e-2), max_steps=40, penalty="l2"),
    "adam-minibatch": TrainOptions(optimizer=Adam(lr=1e-2), max_steps=40, batch_size=6),
    "adam-minibatch-noise": TrainOptions(
        optimizer=Adam(lr=1e-2),
        max_steps=30,
        batch_size=7,
        gradient_noise=GaussianGradientNoise(std=0.3),
    ),
    "adam-memorized": TrainOptions(optimizer=Adam(lr=3e-2), max_steps=400, stopping="memorized"),
    "sgd-per-member-lr": TrainOptions(optimizer=SGD(lr=(0.01, 0.05, 0.1)), max_steps=50),
}


@pytest.mark.parametrize("name", list(BATCHED_CASES))
@pytest.mark.parametrize("n_members", [1, 3])
def test_batched_equals_one_by_one(name, n_members):
    opts = BATCHED_CASES[name]
    if isinstance(opts.optimizer.lr, tuple) and n_members == 1:
        pytest.skip("per-member learning rates need three members")
    ens = _ens([11, 22, 33][:n_members])
    X, y = _data()
    together = train_ensemble(ens, X, y, opts)
    for k in range(n_members):
        one_opts = opts
        if isinstance(opts.optimizer.lr, tuple):
            one_opts = replace(opts, optimizer=SGD(lr=opts.optimizer.lr[k]))
        alone = train_ensemble(_member(ens, k), X, y, one_opts)
        assert together.record.n_steps[k] == alone.record.n_steps[0]
        for n, p in together.params.items():
            torch.testing.assert_close(p[k], alone.params[n][0], atol=1e-6, rtol=0)


def test_adam_elementwise_fallback_equals_fused_path():
    """Ten members with ten learning rates exceed the fused kernel's run limit, so the batched
    step takes the element-wise Adam path; each member alone (one run) takes the fused one."""
    from robustlaw.empirical.training._adam import _FUSED_MAX_RUNS

    rates = tuple(0.002 * (k + 1) for k in range(10))
    assert len(rates) > _FUSED_MAX_RUNS
    ens = _ens(list(range(100, 110)))
    X, y = _data()
    together = train_ensemble(ens, X, y, TrainOptions(optimizer=Adam(lr=rates), max_steps=25))
    for k, rate in enumerate(rates):
        alone = train_ensemble(
            _member(ens, k), X, y, TrainOptions(optimizer=Adam(lr=rate), max_steps=25)
        )
        for n, p in together.params.items():
            torch.testing.assert_close(p[k], alone.params[n][0], atol=1e-6, rtol=0)


def test_per_member_data_equals_one_by_one():
    ens = _ens([4, 5, 6])
    X, y = _data(k=3)
    opts = TrainOptions(optimizer=Adam(lr=1e-2), max_steps=30, batch_size=5)
    together = train_ensemble(ens, X, y, opts)
    for k in range(3):
        alone = train_ensemble(_member(ens, k), X[k], y[k], opts)
        torch.testing.assert_close(together.params["2.weight"][k], alone.params["2.weight"][0])


@pytest.mark.parametrize(
    ("opts", "make_opt"),
    [
        (
            TrainOptions(optimizer=Adam(lr=1e-2), max_steps=50),
            lambda p: torch.optim.Adam(p, lr=1e-2),
        ),
        (
            TrainOptions(optimizer=SGD(lr=0.05, momentum=0.9), max_steps=50),
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
        ),
    ],
)
def test_matches_torch_optim(opts, make_opt):
    ens = _ens([3], masked=False)
    X, y = _data()
    ours = train_ensemble(ens, X, y, opts).to_ensemble(ens)
    net = member_to_sequential(ens, 0)
    opt = make_opt(net.parameters())
    for _ in range(opts.max_steps):
        opt.zero_grad()
        ((net(X).squeeze(-1) - y) ** 2).mean().backward()
        opt.step()
    for n, p in net.state_dict().items():
        torch.testing.assert_close(ours.params[n][0], p, atol=1e-10, rtol=0)


def test_masked_weights_stay_zero_through_100_adam_steps():
    ens = _ens([0, 1])
    pruned = {k: ~m for k, m in ens.masks.items()}
    raw = {k: v.clone() for k, v in ens.params.items()}
    raw["0.weight"][pruned["0.weight"]] = 5.0  # nonzero raw values at pruned entries
    ens_raw = type(ens)(spec=ens.spec, params=raw, masks=ens.masks, seeds=ens.seeds)
    X, y = _data()
    opts = TrainOptions(
        optimizer=Adam(lr=1e-2),
        max_steps=100,
        gradient_noise=GaussianGradientNoise(std=1.0),
        snapshot_steps=(1, 50),
    )
    res = train_ensemble(ens_raw, X, y, opts)
    assert int(res.record.n_steps.min()) == 100
    for params in [res.params, *res.snapshots.values()]:
        for k, m in pruned.items():
            assert bool((params[k][m] == 0).all())
    # kept weights did move
    assert not torch.equal(res.params["0.weight"], ens.params["0.weight"])


def test_adam_state_does_not_revive_pruned_weights():
    p = {"w": torch.zeros(1, 3, dtype=F64)}
    state = adam_init(p)
    state["m"]["w"][:] = 0.0
    g = {"w": torch.zeros(1, 3, dtype=F64)}
    lr, active = torch.full((1,), 0.1, dtype=F64), torch.ones(1, dtype=torch.bool)
    adam_step(p, g, state, lr, active)
    assert bool((p["w"] == 0).all())  # zero grad and zero moments give exactly no update
    # With moments zeroed at pruned positions (the trainer's rule), a pruned entry stays put
    # even after its moments were non-zero before pruning.
    p = {"w": torch.ones(1, 3, dtype=F64)}
    state = adam_init(p)
    adam_step(p, {"w": torch.ones(1, 3, dtype=F64)}, state, lr, active)
    mask = torch.tensor([[True, False, True]])
    for slot in ("m", "v"):
        state[slot]["w"].mul_(mask)
    p["w"].mul_(mask)
    adam_step(p, {"w": torch.ones(1, 3, dtype=F64) * mask}, state, lr, active)
    assert float(p["w"][0, 1]) == 0.0


def test_same_seeds_identical_results():
    X, y = _data()
    opts = TrainOptions(
        optimizer=Adam(lr=1e-2),
        max_steps=20,
        batch_size=4,
        gradient_noise=GaussianGradientNoise(std=0.1),
    )
    a = train_ensemble(_ens([7, 8]), X, y, opts)
    b = train_ensemble(_ens([7, 8]), X, y, opts)
    for n in a.params:
        assert torch.equal(a.params[n], b.params[n])


def test_gradient_noise_changes_results_and_is_seeded():
    X, y = _data()
    ens = _ens([1, 2])
    base = train_ensemble(ens, X, y, TrainOptions(optimizer=Adam(lr=1e-2), max_steps=20))
    noisy = TrainOptions(optimizer=Adam(lr=1e-2), max_steps=20, gradient_noise="gaussian")
    a = train_ensemble(ens, X, y, noisy)
    b = train_ensemble(ens, X, y, noisy)
    assert not torch.allclose(a.params["0.weight"], base.params["0.weight"])
    assert torch.equal(a.params["0.weight"], b.params["0.weight"])
    other = ens.with_params(ens.params)
    other = type(ens)(spec=ens.spec, params=other.params, masks=ens.masks, seeds=(9, 10))
    c = train_ensemble(other, X, y, noisy)
    assert not torch.allclose(a.params["0.weight"], c.params["0.weight"])


def test_done_member_stops_changing():
    ens = _ens([0, 1, 2])
    X, y = _data()
    opts = TrainOptions(
        optimizer=Adam(lr=3e-2), max_steps=150, stopping="memorized", snapshot_steps=(120,)
    )
    res = train_ensemble(ens, X, y, opts)
    steps = res.record.n_steps
    assert res.record.rule_met.tolist() == [False, True, True]  # member 0 hits the cap
    assert steps.tolist()[0] == 150
    assert len(set(steps.tolist())) == 3
    # A member stopped at step s has exactly the parameters of s steps of training.
    for k in range(3):
        alone = train_ensemble(
            _member(ens, k), X, y, TrainOptions(optimizer=Adam(lr=3e-2), max_steps=int(steps[k]))
        )
        torch.testing.assert_close(res.params["0.weight"][k], alone.params["0.weight"][0])
    for k in (1, 2):
        torch.testing.assert_close(res.snapshots[120]["0.weight"][k], res.params["0.weight"][k])
    # memorized: every per-example squared error <= 0.1
    out = res.to_ensemble(ens)(X)[1:, :, 0]
    assert bool(((out - y) ** 2 <= 0.1).all())


def test_below_noise_rule_and_record():
    ens = _ens([0, 1], masked=False)
    X, y = _data()
    opts = TrainOptions(
        optimizer=Adam(lr=1e-2), max_steps=2000, stopping=BelowNoise(noise_level=1.0, eps=0.5)
    )
    res = train_ensemble(ens, X, y, opts)
    out = res.to_ensemble(ens)(X)[..., 0]
    clipped_mse = ((out.clamp(-1, 1) - y) ** 2).mean(dim=1)
    assert res.record.rule_met.all()
    assert bool((clipped_mse <= 0.5).all())
    # One step earlier it was not yet below: stopping is at the first check that passes.
    for k in range(2):
        early = train_ensemble(
            _member(ens, k),
            X,
            y,
            TrainOptions(optimizer=Adam(lr=1e-2), max_steps=int(res.record.n_steps[k]) - 1),
        )
        prev = early.to_ensemble(_member(ens, k))(X)[0, :, 0]
        assert float(((prev.clamp(-1, 1) - y) ** 2).mean()) > 0.5
    torch.testing.assert_close(res.record.final_loss, ((out - y) ** 2).mean(dim=1).numpy())
    fit = ((out - y) ** 2 <= 0.1).to(F64).mean(dim=1).numpy()
    torch.testing.assert_close(res.record.fit_fraction, fit)


def test_cross_entropy_fit_fraction_and_converged_rule():
    spec = MLPSpec(layer_sizes=(5, 8, 3))
    ens = init_mlp_ensemble(spec, seeds=[0, 1], dtype=F64)
    X, _ = _data()
    y = torch.arange(20) % 3
    res = train_ensemble(
        ens, X, y, TrainOptions(loss="cross-entropy", optimizer=Adam(lr=1e-2), max_steps=30)
    )
    logits = res.to_ensemble(ens)(X)
    ce = nn.functional.cross_entropy(logits.reshape(-1, 3), y.repeat(2), reduction="none")
    expected = (ce.reshape(2, 20) <= math.log(2) / 10).to(F64).mean(dim=1).numpy()
    torch.testing.assert_close(res.record.fit_fraction, expected)
    torch.testing.assert_close(res.record.final_loss, ce.reshape(2, 20).mean(dim=1).numpy())
    frozen = TrainOptions(
        loss="cross-entropy",
        optimizer=Adam(lr=1e-12),
        max_steps=100,
        stopping=Converged(window=5),
    )
    conv = train_ensemble(ens, X, y, frozen)
    assert conv.record.n_steps.tolist() == [4, 4]
    assert conv.record.rule_met.all()
    assert conv.history_steps.tolist() == [0, 1, 2, 3, 4]


def test_max_steps_rule_snapshots_and_history():
    ens = _ens([5])
    X, y = _data()
    res = train_ensemble(
        ens, X, y, TrainOptions(optimizer=Adam(lr=1e-2), max_steps=12, snapshot_steps=(0, 5))
    )
    assert res.record.n_steps.tolist() == [12]
    assert res.record.rule_met.all()
    assert torch.equal(res.snapshots[0]["0.weight"], ens.params["0.weight"])
    five = train_ensemble(ens, X, y, TrainOptions(optimizer=Adam(lr=1e-2), max_steps=5))
    assert torch.equal(res.snapshots[5]["0.weight"], five.params["0.weight"])
    assert res.history.shape == (13, 1)
    assert res.history_steps.tolist() == list(range(13))


def test_on_check_sees_every_check_and_lr_lists_become_tuples():
    ens = _ens([5, 6])
    X, y = _data()
    seen = []
    opts = TrainOptions(optimizer=Adam(lr=[0.01, 0.02]), max_steps=12, batch_size=5)
    assert opts.optimizer.lr == (0.01, 0.02)
    res = train_ensemble(ens, X, y, opts, on_check=lambda step, p: seen.append(step))
    assert seen == [0, 4, 8, 12]  # once per epoch of 20 // 5 = 4 steps, then the final pass
    assert res.history_steps.tolist() == seen


def test_logistic_loss_trains_pm1_labels():
    ens = _ens([0], spec=MLPSpec(layer_sizes=(5, 16, 1)), masked=False)
    X, y = _data()
    res = train_ensemble(
        ens,
        X,
        y,
        TrainOptions(
            loss="logistic", optimizer=Adam(lr=3e-2), max_steps=1000, stopping="memorized"
        ),
    )
    out = res.to_ensemble(ens)(X)[0, :, 0]
    assert res.record.rule_met[0]
    assert bool((nn.functional.softplus(-y * out) <= math.log(2) / 10).all())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": 3}, "optimizer must be"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_steps": 2.5}, "max_steps"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"stopping": "never"}, "stopping"),
        ({"loss": "cross-entropy", "stopping": "below-noise"}, "below-noise"),
        ({"check_every": 0}, "check_every"),
        ({"snapshot_steps": (-1,)}, "snapshot_steps"),
    ],
)
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        TrainOptions(**kwargs)


def test_bad_inputs_raise():
    ens = _ens([0, 1])
    X, y = _data()
    with pytest.raises(ValidationError, match="y must have shape"):
        train_ensemble(ens, X, y[:5])
    with pytest.raises(ValidationError, match="finite"):
        train_ensemble(ens, X.clone().fill_(math.nan), y)
    with pytest.raises(ValidationError, match="X must have"):
        train_ensemble(ens, X[0], y)
    with pytest.raises(ValidationError, match="one per member"):
        train_ensemble(ens, X, y, TrainOptions(optimizer=Adam(lr=(0.1, 0.2, 0.3))))
    with pytest.raises(ValidationError, match="class indices"):
        train_ensemble(ens, X, y, TrainOptions(loss="cross-entropy"))
    with pytest.raises(ValidationError, match="-1, \\+1"):
        train_ensemble(ens, X, y * 0.5, TrainOptions(loss="logistic"))
    assert issubclass(UnknownNameError, ValidationError)
