"""The gradient penalty of THEORY §7.2: known values, independence, gradients, points, effect."""

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustlaw.empirical.data.synthetic import sample_inputs
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.ensemble_io import member_to_sequential
from robustlaw.empirical.modules import init_module_ensemble
from robustlaw.empirical.training import (
    PENALTIES,
    Adam,
    GradientPenalty,
    GradientPenaltyState,
    TrainOptions,
    train_ensemble,
)
from robustlaw.empirical.training._input_gradients import mlp_layers
from robustlaw.errors import ValidationError

F64 = torch.float64


def _sphere(n, d, seed):
    return sample_inputs("sphere", n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _ensemble(sizes=(4, 8, 1), seeds=(0, 1), activation="relu"):
    spec = MLPSpec(layer_sizes=sizes, activation=activation)
    return init_mlp_ensemble(spec, seeds=list(seeds), dtype=F64)


def _jacobian_norms(ens, x, *, tangential=False):
    """Per member and point ``||J P||_F`` from ``nn.Sequential`` copies (an independent path)."""
    out = []
    for k in range(ens.n_members):
        net = member_to_sequential(ens, k)
        xs = x[k] if x.ndim == 3 else x
        rows = []
        for point in xs:
            jac = torch.autograd.functional.jacobian(net, point)  # (n_outputs, d)
            if tangential:
                u = point / point.norm()
                jac = jac - torch.outer(jac @ u, u)
            rows.append(float(jac.norm()))
        out.append(rows)
    return torch.tensor(out, dtype=F64)


def _one_off(penalty, params, x):
    return penalty(params, x, None)


def test_registered_by_name_with_a_state():
    assert PENALTIES["gradient"] is GradientPenalty
    assert TrainOptions(penalty="gradient").penalty == GradientPenalty()
    ens = _ensemble()
    state = GradientPenalty().init(ens.params)
    assert isinstance(state, GradientPenaltyState)
    assert isinstance(state.generator, torch.Generator)
    assert state.n_steps == 0
    assert state.multipliers is None


@given(
    w=st.lists(st.floats(-3, 3), min_size=2, max_size=5),
    bias=st.floats(-2, 2),
    seed=st.integers(0, 2**16),
)
def test_linear_network_value_is_the_norm_of_w_and_tangential_is_w_minus_w_dot_x_x(w, bias, seed):
    w = torch.tensor(w, dtype=F64)
    params = {"0.weight": w.reshape(1, 1, -1), "0.bias": torch.tensor([[bias]], dtype=F64)}
    x = _sphere(7, w.numel(), seed)
    for reduction in ("mean", "max"):
        value = _one_off(GradientPenalty(weight=2.0, reduction=reduction), params, x)
        torch.testing.assert_close(value, 2.0 * w.norm().reshape(1))
    tangential = (w - (x @ w)[:, None] * x).norm(dim=1)  # ||w - (w.x) x|| per point
    mean = _one_off(GradientPenalty(weight=1.0, tangential=True), params, x)
    top = _one_off(GradientPenalty(weight=1.0, tangential=True, reduction="max"), params, x)
    torch.testing.assert_close(mean, tangential.mean().reshape(1))
    torch.testing.assert_close(top, tangential.max().reshape(1))


def test_several_outputs_use_the_frobenius_norm_of_the_jacobian():
    W = torch.tensor([[[1.0, 2.0, 0.0], [0.0, -2.0, 4.0]]], dtype=F64)  # Frobenius norm 5
    x = _sphere(5, 3, 0)
    assert _one_off(GradientPenalty(weight=1.0), {"0.weight": W}, x).tolist() == [5.0]
    P = torch.eye(3, dtype=F64) - x[:, :, None] * x[:, None, :]
    expected = torch.linalg.matrix_norm(W[0] @ P).mean()
    value = _one_off(GradientPenalty(weight=1.0, tangential=True), {"0.weight": W}, x)
    torch.testing.assert_close(value, expected.reshape(1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_layer_relu_value_matches_the_closed_form(seed):
    """``grad f(x) = W^T (a * 1[W x + b > 0])`` for ``f(x) = a . relu(W x + b) + c``."""
    ens = _ensemble(sizes=(5, 12, 1), seeds=(seed, seed + 7))
    x = _sphere(9, 5, seed).numpy()
    W, b = ens.params["0.weight"].numpy(), ens.params["0.bias"].numpy()
    a = ens.params["2.weight"].numpy()[:, 0]
    grads = np.einsum("kho,kh,kph->kpo", W, a, (np.einsum("kho,po->kph", W, x) + b[:, None] > 0))
    norms = np.linalg.norm(grads, axis=2)
    xt = torch.from_numpy(x)
    mean = _one_off(GradientPenalty(weight=1.0), ens.params, xt)
    top = _one_off(GradientPenalty(weight=1.0, reduction="max"), ens.params, xt)
    np.testing.assert_allclose(mean.detach().numpy(), norms.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(top.detach().numpy(), norms.max(axis=1), rtol=1e-12)


@pytest.mark.parametrize(("activation", "tangential"), [("relu", True), ("tanh", False)])
def test_deep_networks_match_per_point_jacobians_of_sequential_copies(activation, tangential):
    ens = _ensemble(sizes=(4, 6, 5, 2), seeds=(3, 4), activation=activation)
    x = _sphere(6, 4, 3)
    pen = GradientPenalty(weight=1.0, activation=activation, tangential=tangential)
    value = pen(ens.params, x, ens(x))  # the network check passes: the activation matches
    expected = _jacobian_norms(ens, x, tangential=tangential).mean(dim=1)
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)


def test_batched_members_equal_members_one_by_one():
    ens = _ensemble(sizes=(4, 8, 1), seeds=(0, 1, 2))
    x = _sphere(10, 4, 5)
    per_member_x = torch.stack([_sphere(10, 4, s) for s in (6, 7, 8)])
    pen = GradientPenalty(
        weight=(0.5, 1.0, 2.0),
        points=("data", "fresh", "adversarial"),
        tangential=True,
        ascent_steps=2,
    )
    for inputs in (x, per_member_x):
        together = pen(ens.params, inputs, None)
        for k in range(3):
            alone = {key: v[k : k + 1] for key, v in ens.params.items()}
            x_k = inputs[k : k + 1] if inputs.ndim == 3 else inputs
            one = dataclasses.replace(pen, weight=pen.weight[k])
            torch.testing.assert_close(
                together[k : k + 1], one(alone, x_k, None), rtol=1e-12, atol=0
            )


@pytest.mark.parametrize(
    "options",
    [
        {"points": "data"},
        {"points": ("data", "fresh"), "tangential": True},
        {"points": "data", "reduction": "max"},
        {"points": "fresh", "activation": "tanh", "n_fresh": 4},
    ],
)
def test_gradients_with_respect_to_parameters_match_finite_differences(options):
    """Double backward, checked by ``gradcheck`` in float64 on a tiny net away from kinks."""
    ens = _ensemble(sizes=(3, 4, 1), seeds=(0,), activation=options.get("activation", "relu"))
    x = _sphere(5, 3, 1)
    W, b = ens.params["0.weight"], ens.params["0.bias"]
    pre = (x @ W[0].T + b[0]).abs()
    assert float(pre.min()) > 1e-3  # no data point on a ReLU kink: f is smooth in the params
    names = list(ens.params)
    pen = GradientPenalty(weight=1.0, **options)

    def value(*tensors):
        return pen(dict(zip(names, tensors, strict=True)), x, None)

    leaves = [v.detach().clone().requires_grad_(True) for v in ens.params.values()]
    assert torch.autograd.gradcheck(value, leaves, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_fresh_samples_are_sphere_draws_from_the_seed_new_every_step_and_reproducible():
    ens = _ensemble(sizes=(6, 8, 1))
    pen = GradientPenalty(points="fresh", seed=3, n_fresh=11)
    layers = mlp_layers(ens.params, "test")
    state = pen.init(ens.params)
    first = pen._points(layers, None, state)
    second = pen._points(layers, None, state)
    expected = sample_inputs("sphere", 11, 6, generator=torch.Generator().manual_seed(3), dtype=F64)
    assert first.shape == (2, 11, 6)
    torch.testing.assert_close(first[0], expected, rtol=0, atol=0)  # the seed's first draw
    torch.testing.assert_close(first[1], expected, rtol=0, atol=0)  # shared by the members
    torch.testing.assert_close(second.norm(dim=-1), torch.ones(2, 11, dtype=F64))
    assert not torch.equal(first, second)  # new points every call

    def run(seed):
        penalty = GradientPenalty(points="fresh", seed=seed)
        state = penalty.init(ens.params)
        return [
            penalty(ens.params, torch.zeros(5, 6, dtype=F64), None, state=state) for _ in range(3)
        ]

    again, other = run(3), run(3)
    assert all(torch.equal(a, b) for a, b in zip(again, other, strict=True))
    assert not torch.equal(again[0], again[1])
    assert not torch.equal(run(3)[0], run(4)[0])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("tangential", [False, True])
def test_adversarial_points_stay_on_the_sphere_and_never_lower_the_gradient(seed, tangential):
    ens = _ensemble(sizes=(5, 16, 1), seeds=(seed, seed + 10))
    x = _sphere(20, 5, seed)
    pen = GradientPenalty(points="adversarial", tangential=tangential, ascent_steps=5)
    adversarial = pen._points(mlp_layers(ens.params, "test"), x, pen.init(ens.params))
    torch.testing.assert_close(adversarial.norm(dim=-1), torch.ones(2, 20, dtype=F64))
    at_data = _jacobian_norms(ens, x, tangential=tangential)
    at_adversarial = _jacobian_norms(ens, adversarial, tangential=tangential)
    assert bool((at_adversarial >= at_data - 1e-12).all())  # point by point
    assert bool((at_adversarial.mean(dim=1) > at_data.mean(dim=1)).all())  # the ascent moved
    values = pen(ens.params, x, None)
    torch.testing.assert_close(values, 1e-3 * at_adversarial.mean(dim=1), rtol=1e-10, atol=0)


def test_training_with_the_penalty_lowers_the_largest_gradient_on_the_data():
    gen = torch.Generator().manual_seed(0)
    X = sample_inputs("sphere", 24, 4, generator=gen, dtype=F64)
    y = torch.sign(torch.randn(24, generator=gen, dtype=F64))
    ens = _ensemble(sizes=(4, 32, 1), seeds=(0, 1))
    results = {}
    for name, penalty in [("none", None), ("gradient", GradientPenalty(weight=0.05))]:
        opts = TrainOptions(optimizer=Adam(lr=1e-2), max_steps=150, penalty=penalty)
        trained = train_ensemble(ens, X, y, opts).to_ensemble(ens)
        results[name] = _jacobian_norms(trained, X).max(dim=1).values
    assert bool((results["gradient"] < 0.9 * results["none"]).all())


def test_a_network_the_penalty_cannot_rebuild_is_refused():
    X = _sphere(8, 4, 0)
    y = torch.ones(8, dtype=F64)
    tanh = _ensemble(activation="tanh")
    with pytest.raises(ValidationError, match="activation='relu'"):
        train_ensemble(tanh, X, y, TrainOptions(penalty="gradient", max_steps=2))
    trained = train_ensemble(
        tanh, X, y, TrainOptions(penalty=GradientPenalty(activation="tanh"), max_steps=2)
    )
    assert trained.record.n_steps.tolist() == [2, 2]
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    cnn = init_module_ensemble(flat, seeds=[0, 1], example_ndim=3)
    with pytest.raises(ValidationError, match="GradientPenalty needs inputs of shape"):
        GradientPenalty()(cnn.params, torch.zeros(3, 1, 2, 2), torch.zeros(2, 3, 1))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"points": "everywhere"}, "GradientPenalty.points"),
        ({"points": ()}, "GradientPenalty.points"),
        ({"points": ("data", "data")}, "repeated"),
        ({"reduction": "median"}, "GradientPenalty.reduction"),
        ({"distribution": "gaussian", "tangential": True}, "tangential"),
        ({"distribution": "uniform"}, "GradientPenalty.distribution"),
        ({"n_fresh": 0}, "GradientPenalty.n_fresh"),
        ({"ascent_step_size": 0.0}, "GradientPenalty.ascent_step_size"),
        ({"activation": "gelu"}, "GradientPenalty.activation"),
        ({"seed": -1}, "GradientPenalty.seed"),
        ({"fit_constraint": "augmented_lagrangian"}, "now called 'augmented-lagrangian'"),
    ],
)
def test_bad_options_name_the_field(options, match):
    with pytest.raises(ValidationError, match=match):
        GradientPenalty(**options)


def test_points_given_as_a_list_become_a_tuple_and_fresh_points_need_a_count():
    pen = GradientPenalty(points=["fresh", "data"])
    assert pen.points == ("fresh", "data")
    assert pen.point_sets == ("fresh", "data")
    assert GradientPenalty().point_sets == ("data",)
    with pytest.raises(ValidationError, match="n_fresh"):
        GradientPenalty(points="fresh")(_ensemble().params, None, None)
