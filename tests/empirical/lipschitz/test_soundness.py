"""Orderings and invariances of every estimate, on seeded random networks (240 + a few)."""

import numpy as np
import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.lipschitz import (
    EclipseOptions,
    GradientOptions,
    eclipse,
    eclipse_fast,
    estimate_lipschitz,
    gradient_lower_bound,
    lipsdp_layer,
    lipsdp_neuron,
    spectral_product,
)

FAST = GradientOptions(ascent_steps=30, restarts=4, hop_rounds=10, n_points=128)
TOL = 1e-9
ARCHITECTURES = [(3, 8, 1), (4, 10, 10, 2), (6, 12, 8, 3), (2, 6, 6, 6, 1)]


def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_lower_below_eclipse_fast_below_spectral_on_60_nets(random_weights, sizes):
    ws = random_weights(sizes, sum(sizes), n_members=60)
    lower = gradient_lower_bound(ws, FAST, generator=gen()).values
    sdp = eclipse(ws, EclipseOptions(max_iter=30)).values
    fast = eclipse_fast(ws).values
    upper = spectral_product(ws).values
    assert np.all(lower <= sdp * (1 + TOL))
    assert np.all(sdp <= fast * (1 + TOL))
    assert np.all(fast <= upper * (1 + TOL))
    assert np.all(lower > 0)


@pytest.mark.parametrize("seed", range(8))
def test_full_ordering_with_lipsdp(random_weights, seed):
    ws = random_weights((4, 8, 8, 2), 100 + seed)
    lower = gradient_lower_bound(ws, FAST, generator=gen()).value
    neuron = lipsdp_neuron(ws).value
    layer = lipsdp_layer(ws).value
    ecl = eclipse(ws).value
    fast = eclipse_fast(ws).value
    upper = spectral_product(ws).value
    tol = 1e-6
    assert lower <= neuron * (1 + tol)
    assert neuron <= layer * (1 + tol)
    assert neuron <= ecl * (1 + tol)
    assert max(layer, ecl) <= fast * (1 + tol)
    assert fast <= upper * (1 + tol)


@pytest.mark.parametrize("method", ["gradient", "spectral", "eclipse-fast", "eclipse"])
def test_single_linear_layer_is_its_norm(random_weights, method):
    (w,) = random_weights((7, 3), 1)
    est = estimate_lipschitz(method, [w], generator=gen())
    assert est.value == pytest.approx(np.linalg.norm(w, 2), rel=1e-9)


@pytest.mark.parametrize(
    "method", ["gradient", "spectral", "eclipse-fast", "eclipse", "lipsdp-layer", "lipsdp-neuron"]
)
def test_identity_first_layer_gives_norm_of_w(method):
    w = np.random.default_rng(5).standard_normal((1, 9))
    est = estimate_lipschitz(method, [np.eye(9), w], generator=gen())
    assert est.value == pytest.approx(np.linalg.norm(w), rel=1e-6)


def test_lipsdp_fixture_constant(fixture_net):
    exact = 36.4822296
    lower = gradient_lower_bound(fixture_net, generator=gen())
    assert lower.value == pytest.approx(exact, abs=1e-6)
    assert np.linalg.norm(np.linalg.multi_dot(fixture_net[::-1]), 2) == pytest.approx(exact, 1e-8)
    for est in (
        eclipse_fast(fixture_net),
        eclipse(fixture_net),
        spectral_product(fixture_net),
    ):
        assert est.value >= exact - 1e-6


@pytest.mark.parametrize("sizes", [(5, 9, 9, 2), (3, 7, 1)])
def test_nonnegative_nets_uppers_above_product(random_weights, sizes):
    ws = random_weights(sizes, 7, nonnegative=True)
    exact = np.linalg.norm(np.linalg.multi_dot(ws[::-1]), 2)
    assert gradient_lower_bound(ws, FAST, generator=gen()).value == pytest.approx(exact, 1e-10)
    for method in (eclipse_fast, eclipse):
        assert method(ws).value >= exact * (1 - 1e-12)
    assert spectral_product(ws).value >= exact


@pytest.mark.parametrize("method", ["gradient", "spectral", "eclipse-fast", "eclipse"])
def test_permuting_hidden_units_changes_nothing(random_weights, method):
    w0, w1, w2 = random_weights((4, 7, 6, 2), 3)
    p, q = np.random.default_rng(0).permutation(7), np.random.default_rng(1).permutation(6)
    permuted = [w0[p], w1[q][:, p], w2[:, q]]
    a = estimate_lipschitz(method, [w0, w1, w2], generator=gen()).value
    b = estimate_lipschitz(method, permuted, generator=gen()).value
    assert b == pytest.approx(a, rel=1e-9)


@pytest.mark.parametrize("method", ["spectral", "eclipse-fast", "eclipse", "gradient"])
def test_scaling_weights_scales_by_a_to_the_depth(random_weights, method):
    ws = random_weights((3, 6, 6, 1), 4)
    a = 1.7
    base = estimate_lipschitz(method, ws, generator=gen()).value
    scaled = estimate_lipschitz(method, [a * w for w in ws], generator=gen()).value
    assert scaled == pytest.approx(a**3 * base, rel=1e-8)


def test_masked_ensemble_is_what_methods_see():
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 8, 1), bias=False), seeds=[0, 1, 2])
    masks = {
        k: torch.rand(v.shape, generator=torch.Generator().manual_seed(i)) > 0.4
        for i, (k, v) in enumerate(ens.masks.items())
    }
    ens = type(ens)(spec=ens.spec, params=ens.params, masks=masks, seeds=ens.seeds)
    dense = [(ens.params[k] * masks[k]).double().numpy() for k in ens.spec.weight_names()]
    for method in ("spectral", "eclipse-fast", "lipsdp-neuron"):
        a = estimate_lipschitz(method, ens).values
        b = estimate_lipschitz(method, dense).values
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_batched_gradient_equals_one_by_one(random_weights):
    ws = random_weights((3, 5, 5, 1), 9, n_members=3)
    X = np.random.default_rng(0).standard_normal((20, 3))
    data_only = GradientOptions(ascent_steps=0, restarts=0, hop_rounds=0)
    batched = gradient_lower_bound(ws, data_only, X=X)
    for k in range(3):
        single = gradient_lower_bound([w[k] for w in ws], data_only, X=X)
        assert single.details["data_value"] == pytest.approx(batched.details["data_value"][k])
