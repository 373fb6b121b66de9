"""The lower estimate: attained at its reported point, exact where the constant is known."""

import numpy as np
import pytest
import torch

from robustlaw.empirical.lipschitz import (
    GradientOptions,
    as_network,
    gradient_lower_bound,
    jacobian,
)
from robustlaw.errors import ValidationError

FAST = GradientOptions(ascent_steps=40, restarts=8, hop_rounds=10, n_points=256)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("sizes", "seed"), [((20, 12, 12, 1), 0), ((15, 10, 4), 1)])
def test_nonnegative_net_reaches_product_norm_from_bad_data(random_weights, sizes, seed):
    ws = random_weights(sizes, seed, nonnegative=True)
    exact = np.linalg.norm(np.linalg.multi_dot(ws[::-1]), 2)
    X = -np.abs(np.random.default_rng(seed).standard_normal((16, sizes[0])))  # J = 0 here
    est = gradient_lower_bound(ws, FAST, X=X, generator=gen())
    assert est.details["data_value"] == 0.0
    assert est.value == pytest.approx(exact, rel=1e-10)
    assert est.value <= exact * (1 + 1e-12)


def test_identity_first_layer_gives_norm_of_w():
    w = np.random.default_rng(3).standard_normal((1, 12))
    est = gradient_lower_bound([np.eye(12), w], FAST, X=-np.ones((4, 12)), generator=gen())
    assert est.value == pytest.approx(np.linalg.norm(w), rel=1e-12)


def test_value_is_real_jacobian_norm_at_x_star_with_biases():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 3),
    ).double()  # fmt: skip
    est = gradient_lower_bound(model, FAST, generator=gen())
    x_star = torch.as_tensor(est.details["x_star"])
    J = torch.autograd.functional.jacobian(model, x_star)
    assert est.value == pytest.approx(float(torch.linalg.matrix_norm(J, 2)), rel=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_two_dimensional_bias_free_nets_match_angle_sweep(random_weights, seed):
    ws = random_weights((2, 10, 10, 1), seed)
    net = as_network(ws)
    theta = torch.linspace(0, 2 * np.pi, 100_001, dtype=torch.float64)
    x = torch.stack([theta.cos(), theta.sin()], -1)[None]
    sweep = float(jacobian(net, x).norm(dim=(-2, -1)).max())
    est = gradient_lower_bound(ws, FAST, generator=gen(seed))
    assert est.value <= sweep * (1 + 1e-12)
    assert est.value >= sweep * (1 - 1e-9)


def test_tanh_jacobian_matches_autograd():
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)
    ).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    J = jacobian(as_network(model), x[None])[0]
    ref = torch.stack([torch.autograd.functional.jacobian(model, xi) for xi in x])
    torch.testing.assert_close(J, ref)


def test_batched_data_gives_each_member_its_exact_constant(random_weights):
    ws = random_weights((4, 6, 1), 0, n_members=3, nonnegative=True)
    exact = [np.linalg.norm(ws[1][k] @ ws[0][k], 2) for k in range(3)]
    X = -np.abs(np.random.default_rng(0).standard_normal((3, 10, 4)))  # J = 0 at every point
    est = gradient_lower_bound(ws, FAST, X=X, generator=gen())
    np.testing.assert_array_equal(est.details["data_value"], np.zeros(3))
    np.testing.assert_allclose(est.values, exact, rtol=1e-10)
    x_star = torch.as_tensor(est.details["x_star"])[:, None]  # (3, 1, 4): one point per member
    attained = jacobian(as_network(ws), x_star).norm(dim=(-2, -1))[:, 0]
    np.testing.assert_allclose(attained.numpy(), est.values, rtol=1e-12)


def test_bad_data_shape_and_options_name_what_is_wrong(random_weights):
    ws = random_weights((4, 6, 1), 0, n_members=3)
    expected = r"X must have shape \(n_samples, 4\) or \(3, n_samples, 4\), got "
    with pytest.raises(ValidationError, match=expected + r"\(10, 5\)"):
        gradient_lower_bound(ws, X=np.ones((10, 5)))
    with pytest.raises(ValidationError, match=expected + r"\(2, 10, 4\)"):
        gradient_lower_bound(ws, X=np.ones((2, 10, 4)))
    with pytest.raises(ValidationError, match="restarts must be an integer >= 0, got -1"):
        GradientOptions(restarts=-1)
    with pytest.raises(ValidationError, match="n_points must be an integer >= 1, got 1.5"):
        GradientOptions(n_points=1.5)
