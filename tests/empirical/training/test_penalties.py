"""The penalty slot: a registered penalty changes the gradient as its formula says."""

import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.training import (
    PENALTIES,
    SGD,
    L2Penalty,
    Penalty,
    TrainOptions,
    train_ensemble,
)

F64 = torch.float64


def _problem():
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 6, 1)), seeds=[0, 1], dtype=F64)
    g = torch.Generator().manual_seed(0)
    ens = ens.with_masks({k: torch.rand(v.shape, generator=g) < 0.6 for k, v in ens.masks.items()})
    X = torch.randn(10, 3, generator=g, dtype=F64)
    return ens, X, torch.randn(10, generator=g, dtype=F64)


def test_l2_penalty_adds_two_weight_p_to_the_gradient():
    ens, X, y = _problem()
    lr, weight = 0.1, 0.25
    plain = train_ensemble(ens, X, y, TrainOptions(optimizer=SGD(lr=lr), max_steps=1))
    penalized = train_ensemble(
        ens, X, y, TrainOptions(optimizer=SGD(lr=lr), max_steps=1, penalty=L2Penalty(weight=weight))
    )
    for name, p0 in ens.params.items():
        p0 = p0 * ens.masks[name] if name in ens.masks else p0
        expected = plain.params[name] - lr * 2 * weight * p0
        torch.testing.assert_close(penalized.params[name], expected, atol=1e-12, rtol=0)
        if name in ens.masks:
            assert bool((penalized.params[name][~ens.masks[name]] == 0).all())


def test_penalty_by_name_and_zero_weight_is_no_penalty():
    ens, X, y = _problem()
    assert PENALTIES["l2"] is L2Penalty
    opts = TrainOptions(optimizer=SGD(lr=0.1), max_steps=3, penalty="l2")
    assert opts.penalty == L2Penalty()
    zero = TrainOptions(optimizer=SGD(lr=0.1), max_steps=3, penalty=L2Penalty(weight=0.0))
    plain = TrainOptions(optimizer=SGD(lr=0.1), max_steps=3)
    a, b = train_ensemble(ens, X, y, zero), train_ensemble(ens, X, y, plain)
    for name in a.params:
        assert torch.equal(a.params[name], b.params[name])


def test_a_penalty_sees_params_inputs_and_outputs():
    """A user penalty on the outputs: ``c * mean(f^2)`` pulls the outputs towards zero."""
    seen = []

    class OutputPenalty(Penalty):
        name = "output"

        def __call__(self, params, inputs, outputs):
            seen.append((set(params), inputs.shape, outputs.shape))
            return 0.5 * outputs.square().mean(dim=(1, 2))

    ens, X, y = _problem()
    opts = TrainOptions(optimizer=SGD(lr=0.1), max_steps=2, batch_size=5, penalty=OutputPenalty())
    train_ensemble(ens, X, y, opts)
    assert seen == [(set(ens.params), torch.Size([2, 5, 3]), torch.Size([2, 5, 1]))] * 2
