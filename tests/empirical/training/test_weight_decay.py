"""Optimizer parts against torch.optim, one member at a time, weight decay included."""

import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.ensemble_io import member_to_sequential
from robustlaw.empirical.training import SGD, Adam, AdamW, TrainOptions, train_ensemble
from robustlaw.empirical.training.optimizers import adam_init, adam_step, sgd_init, sgd_step

F64 = torch.float64
STEPS = 30


def _data(n=16, d=4):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g, dtype=F64)
    return X, torch.randn(n, generator=g, dtype=F64)


def _torch_run(net, make_opt, X, y):
    opt = make_opt(net.parameters())
    for _ in range(STEPS):
        opt.zero_grad()
        ((net(X).squeeze(-1) - y) ** 2).mean().backward()
        opt.step()
    return net.state_dict()


CASES = [
    (
        lambda lr: SGD(lr=lr, momentum=0.9, weight_decay=0.3),
        lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=0.3),
    ),
    (
        lambda lr: SGD(lr=lr, weight_decay=0.5),
        lambda p, lr: torch.optim.SGD(p, lr=lr, weight_decay=0.5),
    ),
    (
        lambda lr: Adam(lr=lr, weight_decay=0.2, betas=(0.8, 0.99)),
        lambda p, lr: torch.optim.Adam(p, lr=lr, weight_decay=0.2, betas=(0.8, 0.99)),
    ),
    (
        lambda lr: AdamW(lr=lr, weight_decay=0.2),
        lambda p, lr: torch.optim.AdamW(p, lr=lr, weight_decay=0.2),
    ),
]


@pytest.mark.parametrize("n_members", [2, 10])  # 10 learning rates: Adam's element-wise path
@pytest.mark.parametrize(("part", "reference"), CASES)
def test_matches_torch_optim_member_by_member(part, reference, n_members):
    rates = tuple(0.01 * (k + 1) for k in range(n_members))
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 8, 1)), seeds=range(n_members), dtype=F64)
    X, y = _data()
    ours = train_ensemble(ens, X, y, TrainOptions(optimizer=part(rates), max_steps=STEPS))
    for k, rate in enumerate(rates):
        want = _torch_run(
            member_to_sequential(ens, k), lambda p, rate=rate: reference(p, rate), X, y
        )
        for name, value in want.items():
            torch.testing.assert_close(ours.params[name][k], value, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize(
    "step",
    [
        lambda p, g, lr, a: sgd_step(p, g, sgd_init(p, momentum=0.9), lr, a, weight_decay=0.5),
        lambda p, g, lr, a: adam_step(p, g, adam_init(p), lr, a, weight_decay=0.5),
        lambda p, g, lr, a: adam_step(p, g, adam_init(p), lr, a, weight_decay=0.5, decoupled=True),
    ],
)
@pytest.mark.parametrize("lr", [(0.1, 0.1, 0.1), tuple(0.01 * k for k in range(1, 10))])
def test_weight_decay_leaves_inactive_members_and_pruned_entries_alone(step, lr):
    k = len(lr)
    p = {"w": torch.ones(k, 3, dtype=F64)}
    p["w"][:, 0] = 0.0  # a pruned entry: zero value, zero gradient
    g = {"w": torch.zeros(k, 3, dtype=F64)}
    active = torch.arange(k) % 2 == 0
    step(p, g, torch.tensor(lr, dtype=F64), active)
    assert bool((p["w"][~active] == 1.0)[:, 1:].all())
    assert bool((p["w"][active][:, 1:] < 1.0).all())
    assert bool((p["w"][:, 0] == 0.0).all())
