"""The tensor construction of [BLN] Theorem 4: exact decompositions, fit, certified constants."""

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlaw.empirical import constructions
from robustlaw.empirical.constructions import ConstructionResult
from robustlaw.empirical.data import random_labels_data
from robustlaw.empirical.lipschitz.sphere import SphereGradientOptions
from robustlaw.empirical.tensor_construction import (
    TensorConstructionResult,
    tensor_network,
    tensor_neuron_count,
)
from robustlaw.empirical.tensor_lipschitz import (
    polynomial_sphere_lower_bound,
    tensor_unfolding_bound,
)
from robustlaw.errors import ValidationError

F64 = torch.float64
QUICK = SphereGradientOptions(ascent_steps=10, restarts=2, hop_rounds=2, n_points=64)


def _sphere(n, d, seed=0):
    data = random_labels_data(n, d, inputs="sphere", seed=seed, dtype=F64)
    return data.X, data.y


def _closed_form(X, y, q, Z):
    return ((Z @ X.T) ** q) @ y


def _closed_gradient(X, y, q, Z):
    return (q * y * (Z @ X.T) ** (q - 1)) @ X


def _tangential_norms(grad, Z):
    return (grad - (grad * Z).sum(-1, keepdim=True) * Z).norm(dim=-1)


def _cross_terms(X, y, q):
    G = (X @ X.T) ** q
    return G @ y - torch.diagonal(G) * y


@pytest.mark.parametrize(("n", "d", "q"), [(30, 7, 2), (50, 20, 2), (30, 6, 4), (12, 4, 6)])
def test_tensor_form_equals_the_closed_form(n, d, q):
    X, y = _sphere(n, d)
    res = tensor_network(X, y, degree=q, form="tensor", sphere_options=QUICK)
    gen = torch.Generator().manual_seed(1)
    Z = torch.cat([torch.randn(200, d, generator=gen, dtype=F64) / math.sqrt(d), X])
    expected = _closed_form(X, y, q, Z)
    scale = max(1.0, float(expected.abs().max()))
    assert float((res(Z) - expected).abs().max()) <= 1e-10 * scale
    grad = _closed_gradient(X, y, q, Z)
    assert float((res.gradient(Z) - grad).abs().max()) <= 1e-10 * max(1.0, float(grad.abs().max()))
    assert res.form == "tensor"
    assert res.n_hidden == tensor_neuron_count(d, q)
    assert res.n_hidden <= 2 ** (q - 1) * math.comb(d + q - 2, q - 1) <= 2**q * d ** (q - 1) // 2
    W, a = res.hidden_weights, res.output_weights
    assert W.shape == (res.n_hidden, d)
    assert a.shape == (res.n_hidden,)
    assert res.n_params == res.n_hidden * (d + 1)


def test_single_point_call_and_network_formula():
    X, y = _sphere(20, 6)
    res = tensor_network(X, y, degree=4, form="tensor", sphere_options=QUICK)
    x = X[3] * 0.7
    W, a = res.hidden_weights, res.output_weights
    assert res(x).shape == ()
    assert float(res(x)) == pytest.approx(float(((W @ x) ** 4) @ a), abs=1e-12)
    assert float(res(x)) == pytest.approx(float(_closed_form(X, y, 4, x[None])[0]), abs=1e-10)
    assert res.gradient(x).shape == (6,)


def test_per_point_form_is_the_data():
    X, y = _sphere(30, 40)
    res = tensor_network(X, y, degree=2, form="per-point", sphere_options=QUICK)
    W, a = res.hidden_weights, res.output_weights
    assert torch.equal(W, X)
    assert torch.equal(a, y)
    assert res.n_hidden == 30
    assert res.sqrt_n_over_k == 1.0


@pytest.mark.parametrize(
    ("n", "d", "q", "form"),
    [(50, 20, 2, "tensor"), (40, 20, 2, "per-point"), (50, 20, 4, "per-point")],
)
def test_fewest_picks_the_smaller_form(n, d, q, form):
    X, y = _sphere(n, d)
    res = tensor_network(X, y, degree=q, sphere_options=QUICK)
    assert res.form == form
    assert res.n_hidden == min(n, tensor_neuron_count(d, q))


def test_neuron_count_against_bln():
    assert tensor_neuron_count(20, 2) == 40  # [BLN]: 4 d = 80
    assert tensor_neuron_count(20, 4) == math.comb(42, 3) == 11480  # [BLN]: 16 d^3 = 128000
    assert tensor_neuron_count(1, 2) == 2
    for d in (3, 10, 50):
        for q in (2, 4, 6):
            assert tensor_neuron_count(d, q) <= 2 ** (q - 1) * math.comb(d + q - 2, q - 1)
            assert tensor_neuron_count(d, q) < 2**q * d ** (q - 1)


@pytest.mark.parametrize(("n", "d", "q"), [(50, 100, 2), (50, 20, 4)])
def test_fits_where_conditions_hold(n, d, q):
    X, y = _sphere(n, d)
    res = tensor_network(X, y, degree=q)
    assert res.conditions_hold, res.conditions
    assert res.conditions == "all conditions hold"
    assert res.fits
    assert res.atol == 0.5
    cross = _cross_terms(X, y, q)
    assert res.max_abs_error == pytest.approx(float(cross.abs().max()), abs=1e-10)
    assert res.max_abs_error <= res.atol
    clipped = ((y + cross).clamp(-1, 1) - y).square().mean()
    assert res.train_mse == pytest.approx(float(clipped), abs=1e-10)
    assert res.train_mse <= 0.25  # below the noise level 1 with eps = 0.75
    lower, upper = res.sphere_lower.value, res.certified_upper.value
    assert 0 < lower <= upper
    assert upper == res.stated_lipschitz
    assert upper <= res.certified_upper.details["ball_bound"]
    assert res.certified_upper.details["ball_bound"] <= res.certified_upper.details["product_bound"]
    assert res.certified_upper.certified
    assert res.certified_upper.kind == "upper"
    assert res.sphere_lower.kind == "lower"
    # the certified bound holds for the chordal constant: every data difference quotient
    out = res(X)
    quotients = (out[:, None] - out[None, :]).abs() / torch.cdist(X, X).fill_diagonal_(math.inf)
    assert float(quotients.max()) <= upper
    assert float(quotients.max()) >= (2 - 2 * res.max_abs_error) / 2  # opposite labels fit


def test_degree_two_sphere_bound_is_exact_and_attained():
    X, y = _sphere(50, 100)
    res = tensor_network(X, y, degree=2)
    eig = torch.linalg.eigvalsh(X.T @ (y[:, None] * X))
    exact = float(eig[-1] - eig[0])
    assert res.certified_upper.value == pytest.approx(exact, rel=1e-9)
    ball = res.certified_upper.details["ball_bound"]
    assert ball == pytest.approx(2 * float(eig.abs().max()), rel=1e-9)
    assert res.sphere_lower.value == pytest.approx(exact, rel=1e-6)
    x = torch.as_tensor(res.sphere_lower.details["x_star"])
    assert float(x.norm()) == pytest.approx(1.0, abs=1e-12)
    assert float(_tangential_norms(res.gradient(x[None]), x[None])[0]) == pytest.approx(
        res.sphere_lower.value, rel=1e-12
    )


def test_tensor_regime_against_the_stated_constant():
    # n = 1000 > k = 2d = 600 and n << d^2 = 90000: the regime [BLN] Theorem 4 is about
    X, y = _sphere(1000, 300)
    res = tensor_network(X, y, degree=2, atol=1.0, sphere_options=QUICK)
    assert res.form == "tensor"
    assert res.n_hidden == 600
    assert res.sqrt_n_over_k == pytest.approx(math.sqrt(1000 / 600))
    assert res.conditions_hold, res.conditions
    assert res.fits
    assert res.train_mse <= 0.1
    # q = 2: certified = lambda_max - lambda_min of T = sum_i y_i x_i x_i^T <= 2 ||T||, and by
    # matrix Rademacher (given X) ||T|| <= ||X||_op sqrt(2 ln(2 d / delta)) w.p. 1 - delta:
    # C_2 sqrt(n/k) up to sqrt(log d), since ||X||_op ~ 1 + sqrt(n/d) = 1 + sqrt(2 n/k)
    stated = 2 * float(torch.linalg.matrix_norm(X, 2)) * math.sqrt(2 * math.log(2 * 300 / 0.01))
    assert res.sphere_lower.value <= res.certified_upper.value <= stated
    assert res.certified_upper.value <= 8 * res.sqrt_n_over_k  # observed about 6.2


def test_conditions_fail_when_n_is_not_small_against_d_power_q():
    X, y = _sphere(200, 5)
    res = tensor_network(X, y, degree=2, sphere_options=QUICK)
    assert not res.conditions_hold
    assert "cross terms too large" in res.conditions
    assert "n = 200, d^q = 25" in res.conditions
    assert not res.fits
    assert res.max_abs_error > res.atol
    assert res.sphere_lower.value <= res.certified_upper.value


def test_conditions_fail_off_the_sphere():
    X, y = _sphere(30, 100)
    res = tensor_network(2 * X, y, degree=2, sphere_options=QUICK)
    assert not res.conditions_hold
    assert "not on the unit sphere" in res.conditions


def test_large_atol_accepts_the_regime():
    X, y = _sphere(50, 20)
    strict = tensor_network(X, y, degree=2, sphere_options=QUICK)
    loose = tensor_network(X, y, degree=2, atol=5.0, sphere_options=QUICK)
    assert not strict.conditions_hold
    assert loose.conditions_hold
    assert loose.fits
    assert loose.max_abs_error == strict.max_abs_error


def test_same_generator_seed_same_lower_estimate():
    X, y = _sphere(20, 10)
    runs = [
        tensor_network(
            X, y, degree=4, sphere_options=QUICK, generator=torch.Generator().manual_seed(3)
        )
        for _ in range(2)
    ]
    assert runs[0].sphere_lower.value == runs[1].sphere_lower.value


def test_shares_the_common_fields_of_construction_result():
    common = [f.name for f in dataclasses.fields(ConstructionResult) if f.name != "ensemble"]
    names = [f.name for f in dataclasses.fields(TensorConstructionResult)]
    assert names[: len(common)] == common
    assert constructions.tensor_network is tensor_network
    assert "tensor_network" in constructions.__all__
    assert "TensorConstructionResult" in constructions.__all__


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 30),
    d=st.integers(2, 12),
    q=st.sampled_from([2, 4]),
    form=st.sampled_from(["tensor", "per-point"]),
)
def test_certified_bounds_dominate_gradients(seed, n, d, q, form):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=F64)
    X = X / X.norm(dim=1, keepdim=True)
    y = torch.randint(0, 2, (n,), generator=gen).to(F64) * 2 - 1
    res = tensor_network(X, y, degree=q, form=form, sphere_options=QUICK, generator=gen)
    Z = torch.randn(500, d, generator=gen, dtype=F64)
    Z = Z / Z.norm(dim=1, keepdim=True)
    grad = _closed_gradient(X, y, q, Z)
    upper = res.certified_upper.value
    assert float(_tangential_norms(grad, Z).max()) <= upper * (1 + 1e-9)
    assert res.sphere_lower.value <= upper * (1 + 1e-9)
    ball = Z * torch.rand(500, 1, generator=gen, dtype=F64)
    ball_grad = float(_closed_gradient(X, y, q, ball).norm(dim=1).max())
    assert ball_grad <= res.certified_upper.details["ball_bound"] * (1 + 1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"degree": 3}, "even integer"),
        ({"degree": 0}, "degree"),
        ({"degree": 2.0}, "degree"),
        ({"atol": -1.0}, "atol"),
        ({"form": "cp"}, "form"),
        ({"sphere_options": QUICK.__dict__}, "SphereGradientOptions"),
    ],
)
def test_rejects_bad_options(kwargs, match):
    X, y = _sphere(10, 5)
    with pytest.raises(ValidationError, match=match):
        tensor_network(X, y, **kwargs)


def test_rejects_bad_data():
    X, y = _sphere(10, 5)
    with pytest.raises(ValidationError, match="labels -1 or \\+1"):
        tensor_network(X, 0.5 * y)
    with pytest.raises(ValidationError, match="one label per row"):
        tensor_network(X, y[:-1])
    with pytest.raises(ValidationError, match="dimensions"):
        tensor_network(X[0], y)
    with pytest.raises(ValidationError, match="NaN|finite|infinity"):
        tensor_network(X.clone().fill_(math.nan), y)


def test_rejects_a_tensor_form_too_large():
    X, y = _sphere(10, 300)
    with pytest.raises(ValidationError, match="tensor form needs"):
        tensor_network(X, y, degree=4, form="tensor")


def test_rejects_bad_points_and_counts():
    X, y = _sphere(10, 5)
    res = tensor_network(X, y, sphere_options=QUICK)
    with pytest.raises(ValidationError, match="5 features"):
        res(torch.zeros(3, 4, dtype=F64))
    with pytest.raises(ValidationError, match="dimensions"):
        res.gradient(torch.zeros(2, 3, 5, dtype=F64))
    with pytest.raises(ValidationError, match="even integer"):
        tensor_neuron_count(5, 5)
    with pytest.raises(ValidationError, match="n_features"):
        tensor_neuron_count(0, 2)


def test_unfolding_bound_known_answers():
    # f = x_1^4 - x_2^4 on the circle: f(theta) = cos(2 theta), slope 2 at most; the unfolding
    # M = e_11 e_11^T - e_22 e_22^T has spectrum {1, -1, 0, 0}: the bound 4 (1 - (-1)) / 2 = 4
    X, y = torch.eye(2, dtype=F64), torch.tensor([1.0, -1.0], dtype=F64)
    est = tensor_unfolding_bound(X, y, 4)
    assert est.value == pytest.approx(4.0, abs=1e-9)
    assert est.details["ball_bound"] == pytest.approx(4.0, abs=1e-9)
    assert est.details["product_bound"] == pytest.approx(4.0)
    low = polynomial_sphere_lower_bound((X, y), 4)
    assert low.value <= est.value
    assert low.value == pytest.approx(2.0, rel=1e-6)
    # one point: f = (x_1)^2 on the sphere has slope 1, and the ball slope is 2
    one = tensor_unfolding_bound(torch.tensor([[1.0, 0.0, 0.0]], dtype=F64), [1.0], 2)
    assert one.value == pytest.approx(1.0, abs=1e-9)
    assert one.details["ball_bound"] == pytest.approx(2.0, abs=1e-9)


def test_unfolding_bound_same_value_from_either_matrix():
    # d^(q/2) <= n decomposes the d^2 unfolding; d^(q/2) > n the n x n Gram form
    X, y = _sphere(30, 5)
    big = tensor_unfolding_bound(X, y, 4)  # 25 <= 30
    small = tensor_unfolding_bound(X[:20], y[:20], 4)  # 25 > 20
    Z = torch.stack([torch.kron(x, x) for x in X[:20]])
    eig = torch.linalg.eigvalsh(Z.T @ (y[:20, None] * Z))
    assert "d^(q/2)" in big.details["matrix"]
    assert "Gram" in small.details["matrix"]
    assert small.value == pytest.approx(float(2 * (eig[-1] - eig[0])), rel=1e-9)


def test_lipschitz_functions_reject_bad_input():
    X, y = _sphere(5, 3)
    with pytest.raises(ValidationError, match="even integer"):
        tensor_unfolding_bound(X, y, 3)
    with pytest.raises(ValidationError, match="one entry per row"):
        tensor_unfolding_bound(X, y[:2], 2)
    with pytest.raises(ValidationError, match="pair"):
        polynomial_sphere_lower_bound(X, 2)
    with pytest.raises(ValidationError, match="shape"):
        polynomial_sphere_lower_bound((X, y[:2]), 2)
    with pytest.raises(ValidationError, match="3 features"):
        polynomial_sphere_lower_bound((X, y), 2, QUICK, X=torch.zeros(2, 4))
    with pytest.raises(ValidationError, match="degree"):
        polynomial_sphere_lower_bound((X, y), 1)
