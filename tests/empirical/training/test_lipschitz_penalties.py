"""The Lipschitz-proxy penalties of THEORY §7.2: their values, their state, their effect."""

import math

import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.training import (
    PENALTIES,
    SGD,
    Adam,
    PathNormPenalty,
    PenaltyState,
    SpectralPenalty,
    TrainOptions,
    TwoLayerOperatorPenalty,
    train_ensemble,
)
from robustlaw.errors import ValidationError

F64 = torch.float64


def _diagonal_net():
    """Two members: first layers diag(3, 1) and diag(2, 5), last layers (2, -1) and (0, 4)."""
    w = torch.stack([torch.diag(torch.tensor([3.0, 1.0])), torch.diag(torch.tensor([2.0, 5.0]))])
    a = torch.tensor([[[2.0, -1.0]], [[0.0, 4.0]]])
    return {"0.weight": w.to(F64), "0.bias": torch.zeros(2, 2, dtype=F64), "2.weight": a.to(F64)}


def _problem(sizes=(3, 16, 1), seeds=(0, 1)):
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=sizes), seeds=list(seeds), dtype=F64)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(24, sizes[0], generator=g, dtype=F64)
    return ens, X, torch.randn(24, generator=g, dtype=F64)


def _spectral_product(params):
    weights = [v for k, v in sorted(params.items()) if k.endswith("weight")]
    return math.prod(torch.linalg.matrix_norm(w, ord=2) for w in weights)


def _carried(penalty, params, n_calls):
    state = penalty.init(params)
    for _ in range(n_calls):
        value = penalty(params, None, None, state=state)
    return value, state


def test_registered_by_name():
    assert PENALTIES["spectral"] is SpectralPenalty
    assert PENALTIES["two-layer-operator"] is TwoLayerOperatorPenalty
    assert PENALTIES["path-norm"] is PathNormPenalty
    assert TrainOptions(penalty="spectral").penalty == SpectralPenalty()


def test_spectral_penalty_is_weight_times_sum_of_log_singular_values():
    params = _diagonal_net()
    value, state = _carried(SpectralPenalty(weight=(1.0, 0.5)), params, 30)
    expected = [math.log(3.0) + math.log(math.sqrt(5.0)), 0.5 * (math.log(5.0) + math.log(4.0))]
    torch.testing.assert_close(value, torch.tensor(expected, dtype=F64), atol=1e-10, rtol=0)
    assert isinstance(state, PenaltyState)
    assert state.n_steps == 30
    assert set(state.vectors) == {"0.weight", "2.weight"}


def test_two_layer_operator_penalty_is_norm_a_times_operator_norm_w():
    params = _diagonal_net()
    value, _ = _carried(TwoLayerOperatorPenalty(weight=2.0), params, 30)
    expected = [2.0 * math.sqrt(5.0) * 3.0, 2.0 * 4.0 * 5.0]
    torch.testing.assert_close(value, torch.tensor(expected, dtype=F64), atol=1e-10, rtol=0)


def test_path_norm_is_sum_of_abs_a_times_row_norms_and_bounds_the_gradient():
    params = _diagonal_net()
    value = PathNormPenalty(weight=1.0)(params, None, None)
    torch.testing.assert_close(value, torch.tensor([2 * 3 + 1 * 1, 0 * 2 + 4 * 5], dtype=F64))
    ens, _, _ = _problem(sizes=(5, 12, 1))
    bound = PathNormPenalty(weight=1.0)(ens.params, None, None)
    x = torch.randn(200, 5, dtype=F64, requires_grad=True)
    for k in range(2):  # a ReLU net with biases: the gradient norm never exceeds the path norm
        w, b, a = (ens.params[n][k] for n in ("0.weight", "0.bias", "2.weight"))
        f = (torch.relu(x @ w.T + b) @ a.T).sum()
        (grad,) = torch.autograd.grad(f, x)
        assert float(grad.norm(dim=1).max()) <= float(bound[k]) + 1e-12


def test_power_iteration_carried_across_steps_converges_to_the_top_singular_value():
    g = torch.Generator().manual_seed(3)
    params = {"0.weight": torch.randn(2, 7, 5, generator=g, dtype=F64)}
    top = torch.linalg.matrix_norm(params["0.weight"], ord=2)
    penalty = SpectralPenalty(weight=1.0)
    state = penalty.init(params)
    errors = []
    for _ in range(200):
        value = penalty(params, None, None, state=state)
        errors.append(float((top.log() - value).abs().max()))
    assert errors[-1] < 1e-8 < errors[0]
    assert all(b <= a + 1e-12 for a, b in zip(errors, errors[1:], strict=False))  # from below
    u, v = state.vectors["0.weight"]
    assert not u.requires_grad
    assert not v.requires_grad


def test_spectral_gradient_is_weight_u_v_transposed_over_sigma():
    g = torch.Generator().manual_seed(4)
    w = torch.randn(2, 4, 3, generator=g, dtype=F64, requires_grad=True)
    penalty = SpectralPenalty(weight=0.7)
    state = penalty.init({"0.weight": w})
    value = penalty({"0.weight": w}, None, None, state=state)
    (grad,) = torch.autograd.grad(value.sum(), w)
    u, v = state.vectors["0.weight"]
    sigma = torch.einsum("ko,koi,ki->k", u, w.detach(), v)
    expected = 0.7 * u[:, :, None] * v[:, None, :] / sigma[:, None, None]
    torch.testing.assert_close(grad, expected, atol=1e-12, rtol=0)


def test_spectral_penalty_training_lowers_the_spectral_product():
    ens, X, y = _problem()
    base = dict(optimizer=Adam(lr=1e-2), max_steps=300)
    plain = train_ensemble(ens, X, y, TrainOptions(**base))
    penalized = train_ensemble(ens, X, y, TrainOptions(**base, penalty=SpectralPenalty(weight=0.5)))
    for k in range(2):
        ours = _spectral_product({n: v[k] for n, v in penalized.params.items()})
        assert ours < 0.8 * _spectral_product({n: v[k] for n, v in plain.params.items()})


@pytest.mark.parametrize("name", ["spectral", "two-layer-operator", "path-norm"])
def test_zero_weight_member_trains_bitwise_like_no_penalty(name):
    ens, X, y = _problem()
    base = dict(optimizer=Adam(lr=1e-2), max_steps=30, batch_size=8)
    plain = train_ensemble(ens, X, y, TrainOptions(**base))
    penalty = PENALTIES[name](weight=(0.0, 0.5))
    mixed = train_ensemble(ens, X, y, TrainOptions(**base, penalty=penalty))
    for n in ens.params:
        assert torch.equal(mixed.params[n][0], plain.params[n][0])
    assert not torch.equal(mixed.params["0.weight"][1], plain.params["0.weight"][1])


def test_hinge_fit_term_gets_the_targets_in_training():
    """With weight 0 and fit target 0 the objective is (1 + c) * MSE: SGD at lr * (1 + c)."""
    ens, X, y = _problem()
    c, lr = 0.5, 0.05
    penalty = SpectralPenalty(weight=0.0, fit_target=0.0, fit_weight=c)
    hinged = train_ensemble(
        ens, X, y, TrainOptions(optimizer=SGD(lr=lr), max_steps=1, penalty=penalty)
    )
    scaled = train_ensemble(ens, X, y, TrainOptions(optimizer=SGD(lr=lr * (1 + c)), max_steps=1))
    for n in ens.params:
        torch.testing.assert_close(hinged.params[n], scaled.params[n], atol=1e-12, rtol=1e-12)


def test_hinge_value_and_inactive_below_target():
    params = _diagonal_net()
    outputs = torch.tensor([[[1.0], [3.0]], [[0.0], [0.0]]], dtype=F64)
    targets = torch.zeros(1, 2, 1, dtype=F64)  # MSE 5 and 0
    penalty = PathNormPenalty(weight=0.0, fit_target=1.0, fit_weight=2.0)
    value = penalty(params, None, outputs, state=penalty.init(params), targets=targets)
    torch.testing.assert_close(value, torch.tensor([2.0 * 4.0, 0.0], dtype=F64))
    with pytest.raises(ValidationError, match="fit_target"):
        penalty(params, None, outputs, state=penalty.init(params), targets=None)
    with pytest.raises(ValidationError, match="fit_target"):
        penalty(params, None, outputs, targets=targets.long())


def test_bad_values_are_refused_naming_the_field():
    with pytest.raises(ValidationError, match="weight"):
        SpectralPenalty(weight=(0.1, -1.0))
    with pytest.raises(ValidationError, match="fit_target"):
        PathNormPenalty(fit_weight=1.0)
    with pytest.raises(ValidationError, match="power_iterations"):
        SpectralPenalty(power_iterations=0)
    with pytest.raises(ValidationError, match="weight has 3 entries"):
        SpectralPenalty(weight=(0.1, 0.2, 0.3)).init(_diagonal_net())


@pytest.mark.parametrize("cls", [TwoLayerOperatorPenalty, PathNormPenalty])
def test_two_layer_proxies_refuse_deeper_networks(cls):
    ens, X, y = _problem(sizes=(3, 4, 4, 1))
    with pytest.raises(ValidationError, match="exactly 2 layers"):
        cls().init(ens.params)
    with pytest.raises(ValidationError, match="exactly 2 layers"):
        train_ensemble(ens, X, y, TrainOptions(max_steps=2, penalty=cls()))
