"""The ``"gradient-sphere"`` lower estimate: the Lipschitz constant restricted to the sphere
(THEORY §7.1), attained at reported unit points of the real network."""

import numpy as np
import pytest
import torch

from robustlaw.empirical.lipschitz import (
    LIPSCHITZ_METHODS,
    SphereGradientOptions,
    estimate_lipschitz,
    gradient_lower_bound,
    spectral_product,
    sphere_gradient_lower_bound,
)
from robustlaw.errors import ValidationError


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _mlp(sizes, seed, activation=torch.nn.ReLU):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), activation()]
    return torch.nn.Sequential(*layers[:-1]).double()


def _tangential_norm(model, x):
    """``||J(x) (I - x x^T)||_2`` by autograd."""
    x = torch.as_tensor(x, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(model, x)  # (n_out, d)
    P = torch.eye(x.shape[0], dtype=torch.float64) - torch.outer(x, x)
    return float(torch.linalg.matrix_norm(J @ P, ord=2))


def test_registered_as_a_lower_method():
    entry = LIPSCHITZ_METHODS["gradient-sphere"]
    assert entry.function is sphere_gradient_lower_bound
    assert (entry.options, entry.kind) == (SphereGradientOptions, "lower")
    est = estimate_lipschitz("gradient-sphere", [np.array([[1.0, 2.0, 2.0]])])
    assert (est.method, est.kind, est.certified) == ("gradient-sphere", "lower", True)


@pytest.mark.parametrize("seed", range(3))
def test_linear_function_has_sphere_constant_norm_w(seed):
    w = np.random.default_rng(seed).standard_normal((1, 5))
    X = np.random.default_rng(seed + 10).standard_normal((7, 5))
    est = sphere_gradient_lower_bound([w], X=X, generator=_gen(seed))
    assert est.value == pytest.approx(np.linalg.norm(w), abs=1e-6)
    assert est.value <= np.linalg.norm(w) * (1 + 1e-12)
    x = est.details["x_star"]
    assert abs(float(w[0] @ x)) < 1e-2 * np.linalg.norm(w)  # attained near x orthogonal to w


def test_linear_map_has_sphere_constant_its_top_singular_value():
    W = np.random.default_rng(4).standard_normal((3, 6))
    est = sphere_gradient_lower_bound([W], generator=_gen())
    assert est.value == pytest.approx(np.linalg.norm(W, 2), abs=1e-6)


def test_a_function_constant_on_the_sphere_has_constant_zero_there():
    # relu(x_1 - 2) vanishes on the unit sphere, yet has slope 1 on R^d (x_1 > 2)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.ReLU(), torch.nn.Linear(1, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
        model[0].bias.fill_(-2.0)
        model[2].weight.fill_(1.0)
        model[2].bias.fill_(0.0)
    model = model.double()
    assert sphere_gradient_lower_bound(model, generator=_gen()).value == 0.0
    assert gradient_lower_bound(model, generator=_gen()).value == pytest.approx(1.0)


def test_a_bias_moves_the_sphere_constant_below_the_global_one():
    # relu(x_1 - 1/2): on the sphere the tangential gradient is e_1 - x_1 x on the cap
    # x_1 > 1/2, of norm sqrt(1 - x_1^2) < sqrt(3)/2, approached at the cap's edge
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.ReLU(), torch.nn.Linear(1, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
        model[0].bias.fill_(-0.5)
        model[2].weight.fill_(1.0)
        model[2].bias.fill_(0.0)
    model = model.double()
    est = sphere_gradient_lower_bound(model, generator=_gen())
    assert est.value <= np.sqrt(0.75)
    assert est.value >= 0.99 * np.sqrt(0.75)
    assert est.details["x_star"][0] > 0.5


@pytest.mark.parametrize(
    ("sizes", "activation"),
    [((4, 16, 16, 1), torch.nn.ReLU), ((5, 12, 3), torch.nn.Tanh), ((3, 8, 8, 2), torch.nn.ReLU)],
)
@pytest.mark.parametrize("seed", range(2))
def test_value_is_the_tangential_norm_at_a_unit_x_star(sizes, activation, seed):
    model = _mlp(sizes, seed, activation)
    X = torch.randn(20, sizes[0], generator=_gen(seed), dtype=torch.float64) * 3
    options = SphereGradientOptions(ascent_steps=30, restarts=4, hop_rounds=5, n_points=128)
    est = sphere_gradient_lower_bound(model, options, X=X, generator=_gen(seed))
    x = torch.as_tensor(est.details["x_star"])
    assert float(x.norm()) == pytest.approx(1.0, abs=1e-9)
    assert est.value == pytest.approx(_tangential_norm(model, x), rel=1e-9)
    assert est.value >= est.details["data_value"]
    # tangential <= full Jacobian at the same point <= a certified global upper bound
    full = gradient_lower_bound(model, X=x[None], generator=_gen()).details["data_value"]
    assert est.value <= full * (1 + 1e-9)
    assert est.value <= spectral_product(model).value * (1 + 1e-9)


def test_ensemble_members_get_their_own_values_and_points():
    ws = np.random.default_rng(5).standard_normal((3, 1, 4))  # three linear members
    est = sphere_gradient_lower_bound([ws], generator=_gen())
    np.testing.assert_allclose(est.values, np.linalg.norm(ws[:, 0], axis=-1), atol=1e-6)
    x_star = np.asarray(est.details["x_star"])
    assert x_star.shape == (3, 4)
    np.testing.assert_allclose(np.linalg.norm(x_star, axis=-1), 1.0, atol=1e-9)


def test_data_are_projected_to_the_sphere_and_zero_rows_replaced():
    w = np.array([[1.0, 2.0, 0.0]])
    X = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 0.0]])  # x = e_3 is orthogonal to w: ||w||
    options = SphereGradientOptions(restarts=0, hop_rounds=0, n_points=1)
    est = sphere_gradient_lower_bound([w], options, X=X, generator=_gen())
    assert est.details["data_value"] == pytest.approx(np.sqrt(5.0), rel=1e-12)
    huge = sphere_gradient_lower_bound([w], options, X=X * 1e300, generator=_gen())
    assert huge.details["data_value"] == pytest.approx(np.sqrt(5.0), rel=1e-12)


def test_one_input_dimension_has_no_tangent_directions():
    assert sphere_gradient_lower_bound([np.array([[3.0]])]).value == 0.0


@pytest.mark.parametrize(
    ("field", "bad"),
    [("step_size", 0.0), ("step_size", 4.0), ("smooth", 1), ("n_points", 0), ("restarts", -1)],
)
def test_options_name_the_bad_field(field, bad):
    with pytest.raises(ValidationError, match=field):
        SphereGradientOptions(**{field: bad})


def test_x_of_the_wrong_shape_is_refused():
    with pytest.raises(ValidationError, match="X must have shape"):
        sphere_gradient_lower_bound([np.ones((1, 3))], X=np.ones((4, 2)))
