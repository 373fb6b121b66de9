"""Explicit interpolators of [BLN] §3: exact fits, stated constants, failing conditions."""

import math

import numpy as np
import pytest
import torch

from robustlaw.empirical.constructions import (
    caps_network,
    grouped_min_norm_network,
    min_norm_linear,
)
from robustlaw.empirical.data import random_labels_data
from robustlaw.empirical.lipschitz import GradientOptions, estimate_lipschitz
from robustlaw.errors import ValidationError

F64 = torch.float64
FAST = GradientOptions(ascent_steps=20, restarts=4, hop_rounds=5, n_points=256)


def _sphere(n, d, seed=0):
    data = random_labels_data(n, d, inputs="sphere", seed=seed, dtype=F64)
    return data.X, data.y


def _bounds(res, X):
    upper = estimate_lipschitz("spectral", res.ensemble, raise_on_failure=True)
    lower = estimate_lipschitz("gradient", res.ensemble, FAST, X=X)
    return float(np.asarray(upper.value)[0]), float(np.asarray(lower.value)[0])


def _outputs(res, X):
    return res.ensemble(X)[0, :, 0]


def test_min_norm_linear_fits_and_constant_is_norm_of_w():
    X, y = _sphere(20, 50)
    res = min_norm_linear(X, y)
    assert res.fits
    assert res.conditions_hold
    assert res.max_abs_error < 1e-6
    assert res.conditions == "all conditions hold"
    w = X.T @ torch.linalg.solve(X @ X.T, y)
    assert res.stated_lipschitz == pytest.approx(float(w.norm()), abs=1e-9)
    assert res.stated_lipschitz == pytest.approx(
        math.sqrt(float(y @ torch.linalg.solve(X @ X.T, y)))
    )
    upper, lower = _bounds(res, X)
    assert upper == pytest.approx(float(w.norm()), abs=1e-9)
    assert upper >= lower - 1e-9
    assert res.n_hidden == 1
    assert res.n_params == 50 + 3


def test_min_norm_linear_is_linear_on_the_sphere():
    X, y = _sphere(20, 50)
    res = min_norm_linear(X, y)
    Z, _ = _sphere(100, 50, seed=1)
    w = res.ensemble.params["0.weight"][0, 0]
    assert torch.allclose(_outputs(res, Z), Z @ w, atol=1e-12)


def test_min_norm_linear_fails_when_n_exceeds_d():
    X, y = _sphere(60, 8)
    res = min_norm_linear(X, y)
    assert not res.conditions_hold
    assert not res.fits
    assert "n = 60 > d = 8" in res.conditions


def test_min_norm_linear_reports_singular_gram():
    X, y = _sphere(5, 10)
    X = torch.cat([X, X[:1]])
    y = torch.cat([y, y[:1]])
    res = min_norm_linear(X, y)
    assert not res.conditions_hold
    assert "singular" in res.conditions
    assert res.fits  # repeated point with the same label: pseudo-inverse still fits


def test_caps_network_values_are_labels():
    X, y = _sphere(30, 200)
    res = caps_network(X, y)
    assert res.fits
    assert res.conditions_hold
    assert res.max_abs_error < 1e-6
    assert torch.allclose(_outputs(res, X), y, atol=1e-12)
    assert res.stated_lipschitz == pytest.approx(10 * math.sqrt(1 - 0.81))
    assert "tangential" in res.lipschitz_scope
    upper, lower = _bounds(res, X)
    assert upper >= lower - 1e-9
    assert res.n_hidden == 30
    assert res.n_params == 200 * 30 + 2 * 30 + 1


def test_caps_network_tangential_gradient_inside_a_cap():
    X, y = _sphere(30, 200)
    res = caps_network(X, y)
    # Inside the cap of x_0 the tangential gradient of 10 y_0 (x_0 . x - 0.9) has norm
    # 10 sqrt(1 - (x_0 . x)^2), reaching the stated constant at the cap's edge.
    v = torch.randn(200, generator=torch.Generator().manual_seed(3), dtype=F64)
    v -= (v @ X[0]) * X[0]
    x = 0.9 * X[0] + math.sqrt(1 - 0.81) * v / v.norm()
    grad = 10 * y[0] * X[0]
    tangential = grad - (grad @ x) * x
    assert float(tangential.norm()) == pytest.approx(res.stated_lipschitz, rel=1e-12)


def test_caps_network_fails_on_nearly_identical_points():
    X, y = _sphere(30, 200)
    X = X.clone()
    X[1] = X[0] + 1e-3 * X[2]
    X[1] /= X[1].norm()
    y = y.clone()
    y[1] = -y[0]
    res = caps_network(X, y)
    assert not res.conditions_hold
    assert not res.fits
    assert "caps not disjoint" in res.conditions
    assert "x_0 . x_1" in res.conditions


def test_caps_network_reports_off_sphere_and_bad_height():
    X, y = _sphere(10, 50)
    res = caps_network(2 * X, y)
    assert not res.conditions_hold
    assert "unit sphere" in res.conditions
    res = caps_network(X, y, height=5.0)
    assert not res.fits
    assert "not 1" in res.conditions


def test_grouped_min_norm_network_fits():
    X, y = _sphere(40, 400)
    res = grouped_min_norm_network(X, y, k=10)
    assert res.fits
    assert res.conditions_hold
    assert res.max_abs_error < 1e-6
    W = res.ensemble.params["0.weight"][0]
    a = res.ensemble.params["2.weight"][0, 0]
    assert res.n_hidden in (10, 11)
    assert res.n_params == 400 * res.n_hidden + 2 * res.n_hidden + 1
    assert res.stated_lipschitz == pytest.approx(float((a.abs() * W.norm(dim=1)).sum()))
    # every point is exactly on the plane w_l . x = 1 of its own group's neuron
    active = (X @ W.T - 0.5).clamp_min(0)
    assert torch.allclose(active.max(dim=1).values, torch.full((40,), 0.5, dtype=F64))
    assert torch.equal(torch.sign(a[active.argmax(dim=1)]), y)
    upper, lower = _bounds(res, X)
    assert upper >= lower - 1e-9
    assert res.stated_lipschitz >= lower - 1e-9


def test_grouped_min_norm_network_groups_of_at_most_m():
    X, y = _sphere(37, 1000, seed=4)
    res = grouped_min_norm_network(X, y, k=5)
    assert res.n_hidden in (5, 6)
    sizes = res.ensemble.params["0.weight"].shape[1]
    assert sizes == res.n_hidden
    assert res.fits
    assert res.conditions_hold


def test_grouped_min_norm_network_fails_when_d_is_too_small():
    X, y = _sphere(60, 8)
    res = grouped_min_norm_network(X, y, k=6)
    assert not res.conditions_hold
    assert not res.fits
    assert "groups too large for d" in res.conditions


def test_results_are_float64_single_member_relu_mlps():
    X, y = _sphere(20, 50)
    for res in (
        min_norm_linear(X, y),
        caps_network(X, y),
        grouped_min_norm_network(X, y, k=4),
    ):
        ens = res.ensemble
        assert ens.n_members == 1
        assert ens.dtype == F64
        assert ens.spec.activation == "relu"
        assert ens.spec.bias
        assert ens.spec.layer_sizes == (50, res.n_hidden, 1)


def test_accepts_numpy_and_column_labels():
    X, y = _sphere(10, 30)
    res = min_norm_linear(X.numpy(), y.numpy().reshape(-1, 1))
    assert res.fits


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda X, y: min_norm_linear(X[0], y), "X must have 2 dimensions"),
        (lambda X, y: min_norm_linear("X", y), "X must be"),
        (lambda X, y: min_norm_linear(X, y[:-1]), "y must have one label per row"),
        (lambda X, y: min_norm_linear(X, 0.5 * y), "y must hold labels"),
        (lambda X, y: min_norm_linear(X * float("nan"), y), "X must be finite"),
        (lambda X, y: min_norm_linear(X, y, atol=-1.0), "atol"),
        (lambda X, y: caps_network(X, y, threshold=1.5), "threshold"),
        (lambda X, y: caps_network(X, y, height=0.0), "height"),
        (lambda X, y: grouped_min_norm_network(X, y, k=0), "k"),
        (lambda X, y: grouped_min_norm_network(X, y, k=11), "k"),
        (lambda X, y: grouped_min_norm_network(X, y, k=2.5), "k"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    X, y = _sphere(10, 30)
    with pytest.raises(ValidationError, match=match):
        call(X, y)
