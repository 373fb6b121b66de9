"""The torch.func path: stacked modules, the two-patch network, a small CNN, training."""

import pytest
import torch

from robustlaw.empirical.modules import (
    TwoPatchNet,
    ensemble_from_modules,
    init_module_ensemble,
    small_cnn,
)
from robustlaw.empirical.training import SGD, Adam, TrainOptions, train_ensemble
from robustlaw.errors import UnknownNameError, ValidationError

F64 = torch.float64


def _two_patch_reference(w, x, d, m, n_classes, power):
    """F_j = (1/m) sum_r sum_p relu(<w_{j,r}, x_p>)^power, written with explicit loops."""
    out = torch.zeros(x.shape[0], n_classes, dtype=x.dtype)
    for i in range(x.shape[0]):
        for j in range(n_classes):
            for r in range(m):
                for p in range(2):
                    pre = torch.dot(w[j * m + r], x[i, p * d : (p + 1) * d])
                    out[i, j] += torch.relu(pre) ** power / m
    return out[:, 1:] - out[:, :1] if n_classes == 2 else out


@pytest.mark.parametrize(("n_classes", "activation", "power"), [(2, "relu", 1), (3, "relu-q", 3)])
def test_two_patch_net_matches_its_formula(n_classes, activation, power):
    d, m = 4, 3
    net = TwoPatchNet(d=d, m=m, n_classes=n_classes, activation=activation).double()
    torch.nn.init.normal_(net.weight, generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 2 * d, dtype=F64, generator=torch.Generator().manual_seed(1))
    expected = _two_patch_reference(net.weight.detach(), x, d, m, n_classes, power)
    torch.testing.assert_close(net(x), expected)


def test_stacked_modules_match_each_module():
    g = torch.Generator().manual_seed(0)
    nets = []
    for _ in range(3):
        net = small_cnn(2, 7, 4).double()
        for p in net.parameters():
            torch.nn.init.normal_(p, std=0.3, generator=g)
        nets.append(net)
    ens = ensemble_from_modules(nets, example_ndim=3)
    assert sorted(ens.masks) == ["0.weight", "2.weight", "5.weight"]
    x = torch.randn(5, 2, 7, 7, dtype=F64, generator=g)
    xk = torch.randn(3, 5, 2, 7, 7, dtype=F64, generator=g)
    shared, own = ens(x), ens(xk)
    for k, net in enumerate(nets):
        torch.testing.assert_close(shared[k], net(x))
        torch.testing.assert_close(own[k], net(xk[k]))


def test_masks_apply_and_member_init_is_independent():
    ens = init_module_ensemble(TwoPatchNet(d=5, m=2), seeds=[3, 4], init="normal", init_std=0.1)
    alone = init_module_ensemble(TwoPatchNet(d=5, m=2), seeds=[4], init="normal", init_std=0.1)
    assert torch.equal(ens.params["weight"][1], alone.params["weight"][0])
    assert abs(float(ens.params["weight"].std()) - 0.1) < 0.05
    mask = torch.zeros_like(ens.masks["weight"])
    pruned = ens.with_masks({"weight": mask})
    assert bool((pruned(torch.randn(4, 10)) == 0).all())
    with pytest.raises(ValidationError, match="shape"):
        ens.with_masks({"weight": mask[:, :1]})


def test_default_init_uses_torch_bounds():
    ens = init_module_ensemble(small_cnn(3, 8, 2), seeds=[0], example_ndim=3, dtype=F64)
    bound = 1 / (3 * 9) ** 0.5  # fan_in of the first conv: 3 channels x 3 x 3
    w, b = ens.params["0.weight"], ens.params["0.bias"]
    assert float(w.abs().max()) <= bound
    assert float(b.abs().max()) <= bound
    assert float(w.abs().max()) > 0.9 * bound


def test_kaiming_normal_init_is_he_normal_with_zero_biases():
    ens = init_module_ensemble(
        small_cnn(16, 8, 2, channels=(64, 8)), seeds=[0, 1], init="kaiming-normal", dtype=F64
    )
    w = ens.params["2.weight"]  # fan_in of the second conv: 64 channels x 3 x 3 = 576
    assert w.std().item() == pytest.approx((2 / 576) ** 0.5, rel=0.03)
    assert abs(w.mean().item()) < 0.003
    assert not ens.params["0.bias"].any()
    assert not torch.equal(w[0], w[1])
    fresh = ens.fresh_params([1])  # the reinit ablation redraws from the same distribution
    assert torch.equal(fresh["2.weight"][0], w[1])


@pytest.mark.parametrize("batch_size", [None, 5])
def test_module_training_batched_equals_one_by_one(batch_size):
    seeds = [1, 2, 3]
    net = TwoPatchNet(d=6, m=4)
    ens = init_module_ensemble(net, seeds=seeds, init="normal", init_std=0.1, dtype=F64)
    g = torch.Generator().manual_seed(0)
    ens = ens.with_masks({"weight": torch.rand(ens.params["weight"].shape, generator=g) < 0.7})
    X = torch.randn(10, 12, dtype=F64, generator=g)
    y = torch.randint(0, 2, (10,), generator=g).to(F64) * 2 - 1
    opts = TrainOptions(loss="logistic", optimizer=SGD(lr=0.5), max_steps=40, batch_size=batch_size)
    together = train_ensemble(ens, X, y, opts)
    assert bool((together.params["weight"][~ens.masks["weight"]] == 0).all())
    for k in range(3):
        one = init_module_ensemble(net, seeds=[seeds[k]], init="normal", init_std=0.1, dtype=F64)
        one = one.with_masks({"weight": ens.masks["weight"][k : k + 1]})
        alone = train_ensemble(one, X, y, opts)
        torch.testing.assert_close(together.params["weight"][k], alone.params["weight"][0])


def test_cnn_trains_with_adam_through_vmap():
    ens = init_module_ensemble(small_cnn(1, 6, 3), seeds=[0, 1], example_ndim=3)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(9, 1, 6, 6, generator=g)
    y = torch.arange(9) % 3
    opts = TrainOptions(
        loss="cross-entropy", optimizer=Adam(lr=1e-2), max_steps=300, stopping="memorized"
    )
    res = train_ensemble(ens, X, y, opts)
    assert res.record.rule_met.all()
    assert (res.record.fit_fraction == 1).all()
    trained = res.to_ensemble(ens)
    assert bool((trained(X).argmax(dim=-1) == y).all())


def test_bad_modules_raise():
    with pytest.raises(ValidationError, match="n_classes"):
        TwoPatchNet(d=3, m=2, n_classes=1)
    with pytest.raises(ValidationError, match="activation"):
        TwoPatchNet(d=3, m=2, activation="gelu")
    with pytest.raises(ValidationError, match="one architecture"):
        ensemble_from_modules([small_cnn(1, 6, 3), small_cnn(1, 12, 3)])
    with pytest.raises(ValidationError, match="init"):
        init_module_ensemble(small_cnn(1, 6, 3), seeds=[0], init="xavier")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_classes": 1}, "n_classes must be an integer >= 2, got 1"),
        ({"d": True}, "d must be an integer >= 1, got True"),
        ({"m": 2.0}, "m must be an integer >= 1, got 2.0"),
        ({"q": 0}, "q must be an integer >= 1, got 0"),
        ({"activation": "relu_q"}, "activation 'relu_q' is now called 'relu-q'"),
        ({"activation": "gelu"}, "activation must be one of 'relu', 'relu-q'; got 'gelu'"),
    ],
)
def test_bad_two_patch_nets_raise_naming_the_argument(kwargs, message):
    with pytest.raises(ValidationError) as info:
        TwoPatchNet(**({"d": 3, "m": 2} | kwargs))
    assert str(info.value) == message


def test_module_initializers_refuse_the_underscore_name():
    with pytest.raises(UnknownNameError, match="now called 'kaiming-uniform'"):
        init_module_ensemble(small_cnn(1, 6, 3), seeds=[0], init="kaiming_uniform")
