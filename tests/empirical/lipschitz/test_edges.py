"""Certified means certified: constant and degenerate nets, extreme scales, dead units, biases,
and lower estimates that stay lower in low precision (issue 12). Every case runs over every
registered method, so a new method is covered when it is registered."""

import numpy as np
import pytest
import torch

from robustlaw.empirical.lipschitz import (
    LIPSCHITZ_METHODS,
    EclipseOptions,
    EstimateStatus,
    GradientOptions,
    as_network,
    drop_dead_units,
    eclipse,
    eclipse_fast,
    jacobian,
    lanczos,
    lipsdp_neuron,
    power_iteration,
)
from robustlaw.errors import ValidationError

# small searches and descents: the cases are about soundness, not tightness
_FAST = {
    "gradient": GradientOptions(ascent_steps=10, restarts=2, hop_rounds=3, n_points=64),
    "eclipse": EclipseOptions(max_iter=20),
}


def _run(name, net, **kw):
    entry = LIPSCHITZ_METHODS[name]
    return entry.function(net, _FAST.get(name), generator=torch.Generator().manual_seed(0), **kw)


def _gaussian(sizes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((b, a)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]


_CONSTANT = {
    "zero layer in the middle": [np.eye(3), np.zeros((4, 3)), np.ones((2, 4))],
    "all units dead": [np.eye(2), np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 1.0]])],
    "hidden layer of 0 units": [np.zeros((0, 3)), np.zeros((2, 0))],
    "input of 0 features": [np.zeros((4, 0)), np.ones((1, 4))],
}


@pytest.mark.parametrize("name", list(LIPSCHITZ_METHODS))
@pytest.mark.parametrize("case", list(_CONSTANT))
def test_constant_and_degenerate_nets_have_constant_zero(name, case):
    est = _run(name, _CONSTANT[case])
    assert (est.value, est.status, est.certified) == (0.0, EstimateStatus.OPTIMAL, True)


@pytest.mark.parametrize("name", list(LIPSCHITZ_METHODS))
def test_x_with_no_rows_is_refused_by_name_or_ignored(name):
    ws = _gaussian([3, 4, 1], 0)
    if LIPSCHITZ_METHODS[name].kind == "lower":  # reads the data
        with pytest.raises(ValidationError, match=r"X must have at least one row"):
            _run(name, ws, X=np.zeros((0, 3)))
    else:  # a method that reads no data ignores X
        est = _run(name, ws, X=np.zeros((0, 3)))
        assert est.value == pytest.approx(_run(name, ws).value, rel=1e-12)


_NET_3 = _gaussian([3, 6, 5, 2], 1)  # three weight matrices: scale^3 stays in range to 1e100
_NET_2 = _gaussian([3, 6, 2], 2)  # two: 1e150^2 = 1e300 is in range


@pytest.fixture(scope="module")
def at_scale_one():
    return {(id(ws), name): _run(name, ws) for ws in (_NET_3, _NET_2) for name in LIPSCHITZ_METHODS}


@pytest.mark.parametrize(
    ("ws", "scale"), [(_NET_3, 1e-60), (_NET_3, 1e100), (_NET_2, 1e150), (_NET_2, 1e-150)]
)
def test_every_method_scales_exactly_at_any_representable_scale(ws, scale, at_scale_one):
    lower = None
    uppers = []
    for name, entry in LIPSCHITZ_METHODS.items():
        est = _run(name, [w * scale for w in ws])
        reference = at_scale_one[(id(ws), name)]
        assert est.status is EstimateStatus.OPTIMAL, name
        assert est.certified, name
        ratio = est.value / scale ** len(ws)
        if entry.kind == "upper":
            assert ratio == pytest.approx(reference.value, rel=1e-6), name
            uppers.append(est.value)
        else:
            lower = est.value
            assert ratio > 0.5 * reference.value, name
    assert lower <= min(uppers) * (1 + 1e-9)


@pytest.mark.parametrize("name", list(LIPSCHITZ_METHODS))
def test_a_constant_beyond_float64_is_never_reported_as_optimal(name):
    est = _run(name, [w * 1e150 for w in _NET_3])  # about 1e450
    assert est.status is EstimateStatus.INACCURATE
    assert not est.certified
    log_value = est.details["log_value"]
    assert 450 * np.log(10) < log_value < 453 * np.log(10)


def test_eclipse_drops_dead_units_member_by_member():
    rng = np.random.default_rng(3)
    ws = [rng.standard_normal((6, 4)), rng.standard_normal((6, 6)), rng.standard_normal((1, 6))]
    ws[0][[1, 4]] = 0.0  # two units with no incoming weight, still read by the next layer
    ws[1][:, 2] = 0.0  # one unit nobody reads
    alive = [w.numpy() for w in drop_dead_units([torch.as_tensor(w) for w in ws])]
    for method in (eclipse_fast, eclipse):
        options = EclipseOptions(max_iter=30) if method is eclipse else None
        pruned, reference = method(ws, options), method(alive, options)
        assert pruned.value == pytest.approx(reference.value, rel=1e-9)
        # batched: a dense member beside the pruned one keeps its own value
        dense = _gaussian([4, 6, 6, 1], 4)
        both = method([np.stack([a, b]) for a, b in zip(ws, dense, strict=True)], options)
        np.testing.assert_allclose(both.values, [reference.value, method(dense, options).value])
    neuron = lipsdp_neuron(ws).value
    assert neuron <= eclipse(ws, EclipseOptions(max_iter=30)).value * (1 + 1e-6)


def test_eclipse_with_a_cvxpy_solver_says_zero_for_a_constant_net():
    est = eclipse(_CONSTANT["all units dead"], EclipseOptions(solver="CLARABEL"))
    assert (est.value, est.status, est.certified) == (0.0, EstimateStatus.OPTIMAL, True)


def test_gradient_estimate_is_the_biased_networks_gradient_norm_at_x_star():
    # 1-D ReLU net whose kinks the biases move: bias-free it is the zero function, with biases
    # it has slope 3 on (0, 1), so dropping biases in a lower estimate would report 0
    w0, b0 = np.array([[1.0], [1.0]]), np.array([0.0, -1.0])
    w1, b1 = np.array([[3.0, -3.0]]), np.array([0.5])
    model = torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    with torch.no_grad():
        for layer, (w, b) in zip(model[::2], ((w0, b0), (w1, b1)), strict=True):
            layer.weight.copy_(torch.as_tensor(w))
            layer.bias.copy_(torch.as_tensor(b))
    model = model.double()
    est = _run("gradient", model)
    x = torch.as_tensor(est.details["x_star"]).reshape(1, 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    assert est.value == pytest.approx(float(grad.norm()), rel=1e-12)
    assert est.value == pytest.approx(3.0, rel=1e-12)
    assert _run("gradient", [w0, w1]).value == 0.0  # the bias-free net is constant
    net = as_network(model)
    J = jacobian(net, torch.as_tensor(est.details["x_star"]).reshape(1, 1, 1))
    assert float(J.abs().max()) == pytest.approx(est.value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("function", [lanczos, power_iteration])
def test_spectral_estimates_stay_below_the_float64_top_singular_value(dtype, function):
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        W = torch.randn(16, 12, 9, generator=gen).to(dtype)
        sigma = function(W, generator=gen).sigma
        assert sigma.dtype == dtype
        exact = torch.linalg.svdvals(W.double())[:, 0]
        assert bool((sigma.double() <= exact).all()), seed
        assert bool((sigma.double() >= 0.9 * exact).all())


@pytest.mark.parametrize("function", [lanczos, power_iteration])
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 3)])
def test_spectral_estimates_of_an_empty_matrix_are_zero(function, shape):
    res = function(torch.zeros(shape, dtype=torch.float64))
    assert res.sigma.shape == shape[:-2]
    assert bool((res.sigma == 0).all())
    assert res.u.shape == (*shape[:-2], shape[-2])
    assert res.v.shape == (*shape[:-2], shape[-1])
