"""LipSDP: certified values, known constants, invariants, the cvxpy reference, bad input.

References are computed independently here in dense NumPy (SVD, Jacobians at random points,
the LMI written out from its definition), never with robustlaw code.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.io
import torch

from robustlaw.empirical.lipschitz.certify import certify_rho
from robustlaw.empirical.lipschitz.lipsdp import (
    LipSDPOptions,
    certify,
    lipsdp_layer,
    lipsdp_neuron,
)
from robustlaw.empirical.lipschitz.lipsdp_cvxpy import build_lipsdp, solve_lipsdp
from robustlaw.empirical.lipschitz.lipsdp_prepare import prepare
from robustlaw.empirical.lipschitz.sdp_structure import LMIStructure
from robustlaw.errors import SolverError, SolverUnavailableError, ValidationError

ACTIVATIONS = {
    "relu": (lambda v: np.maximum(v, 0.0), lambda v: (v > 0).astype(float)),
    "tanh": (np.tanh, lambda v: 1.0 - np.tanh(v) ** 2),
    "sigmoid": (
        lambda v: 1.0 / (1.0 + np.exp(-v)),
        lambda v: np.exp(-v) / (1.0 + np.exp(-v)) ** 2,
    ),
    "leaky-relu": (lambda v: np.where(v > 0, v, 0.01 * v), lambda v: np.where(v > 0, 1.0, 0.01)),
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny LAPACK calls are 100x slower with 2 spinning threads on a loaded 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def lipsdp(ws, variant="neuron", **options):
    """LipSDP-Neuron or -Layer of ``ws`` with ``LipSDPOptions(**options)``."""
    method = {"neuron": lipsdp_neuron, "layer": lipsdp_layer}[variant]
    return method(ws, LipSDPOptions(**options))


def random_net(sizes, seed, *, density=1.0):
    """Gaussian (out, in) matrices scaled by 1/sqrt(in); entries kept with probability density."""
    rng = np.random.default_rng(seed)
    ws = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        w = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
        if density < 1.0:
            w = w * (rng.random(w.shape) < density)
        ws.append(w)
    return ws


def spectral_product(ws):
    """Product of exact spectral norms (SVD)."""
    return float(np.prod([np.linalg.svd(w, compute_uv=False)[0] for w in ws]))


def jacobian_lower_bound(ws, activation="relu", n_points=2000, seed=0):
    """max ||J_f(x)||_2 over random points: a true lower bound on the constant."""
    phi, dphi = ACTIVATIONS[activation]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_points, ws[0].shape[1])) * 3.0
    v = x @ ws[0].T
    jac, h = dphi(v)[:, :, None] * ws[0], phi(v)
    for w in ws[1:-1]:
        v = h @ w.T
        jac = dphi(v)[:, :, None] * np.einsum("oi,bij->boj", w, jac)
        h = phi(v)
    jac = np.einsum("oi,bij->boj", ws[-1], jac)
    return float(np.linalg.norm(jac, ord=2, axis=(1, 2)).max())


def dense_lmi(ws, lam, rho, slopes):
    """M(rho, lambda) of LIPSCHITZ.md §3, written out densely from its definition."""
    alpha, beta = slopes
    n0, sizes = ws[0].shape[1], [w.shape[0] for w in ws[:-1]]
    n_hidden = sum(sizes)
    a_mat = np.zeros((n_hidden, n0 + n_hidden))
    r = c = 0
    for w in ws[:-1]:
        a_mat[r : r + w.shape[0], c : c + w.shape[1]] = w
        r, c = r + w.shape[0], c + w.shape[1]
    b_mat = np.hstack([np.zeros((n_hidden, n0)), np.eye(n_hidden)])
    t = np.diag(lam)
    mid = np.block([[-2 * alpha * beta * t, (alpha + beta) * t], [(alpha + beta) * t, -2 * t]])
    ab = np.vstack([a_mat, b_mat])
    m = ab.T @ mid @ ab
    m[:n0, :n0] -= rho * np.eye(n0)
    k = ws[-1].shape[1]
    m[-k:, -k:] += ws[-1].T @ ws[-1]
    return m


# --------------------------------------------------------------------------- structure


def _dense_generators(ws, n_hidden, slopes):
    """The dense constraint matrices ``G_i`` (the LMI's coefficient of ``lambda_i``)."""
    return [
        dense_lmi(ws, np.eye(n_hidden)[i], 0.0, slopes)
        - dense_lmi(ws, 0 * np.eye(n_hidden)[i], 0.0, slopes)
        for i in range(n_hidden)
    ]


@pytest.mark.parametrize("slopes", [(0.0, 1.0), (0.01, 1.0), (0.0, 0.25), (1.0, 1.0)])
def test_structured_operators_match_the_dense_lmi(slopes):
    ws = random_net([4, 7, 6, 2], seed=1)
    n_hidden, n = 13, 17
    st = LMIStructure([torch.as_tensor(w) for w in ws], slopes, torch.arange(n_hidden), n_hidden)
    gs = _dense_generators(ws, n_hidden, slopes)
    rng = np.random.default_rng(2)
    x, z = (a @ a.T for a in rng.standard_normal((2, n, n)))
    lam = rng.random(n_hidden)
    e0 = np.diag([1.0] * 4 + [0.0] * n_hidden)
    got = st.g_of(torch.as_tensor(lam)) + st.constant
    np.testing.assert_allclose(got.numpy(), dense_lmi(ws, lam, 0.0, slopes), atol=1e-12)
    xt, zt = torch.as_tensor(x), torch.as_tensor(z)
    h = np.array([[np.trace(gi @ x @ gj @ z) for gj in gs] for gi in gs])
    np.testing.assert_allclose(st.schur(xt, zt).numpy(), h, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(st.trace_g(xt).numpy(), [np.trace(g @ x) for g in gs], atol=1e-9)
    cross = [np.trace(g @ x @ e0 @ z) for g in gs]
    np.testing.assert_allclose(
        st.trace_g_lowrank(xt[:, :4], zt[:, :4]).numpy(), cross, rtol=1e-10, atol=1e-9
    )


@pytest.mark.parametrize("slopes", [(0.0, 1.0), (0.01, 1.0), (1.0, 1.0)])
def test_structured_products_match_dense_ones(slopes):
    """The interior-point method's products: G(lam) Z, C Z, tr(G_k M), tr(G_k X Y)."""
    ws = random_net([4, 7, 6, 2], seed=4)
    n_hidden, n = 13, 17
    st = LMIStructure([torch.as_tensor(w) for w in ws], slopes, torch.arange(n_hidden), n_hidden)
    gs = _dense_generators(ws, n_hidden, slopes)
    rng = np.random.default_rng(5)
    x, y, z = rng.standard_normal((3, n, n))  # not symmetric
    lam = rng.standard_normal(n_hidden)
    xt, yt, zt = torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(z)
    g_lam = sum(li * gi for li, gi in zip(lam, gs, strict=True))
    got = st.g_times(torch.as_tensor(lam), zt, st.apply_a(zt))
    np.testing.assert_allclose(got.numpy(), g_lam @ z, atol=1e-11)
    c_mat = dense_lmi(ws, np.zeros(n_hidden), 0.0, slopes)
    got_c = st.add_constant_times(torch.zeros_like(zt), zt, 1.0)
    np.testing.assert_allclose(got_c.numpy(), c_mat @ z, atol=1e-12)
    np.testing.assert_allclose(st.trace_g(xt).numpy(), [np.trace(g @ x) for g in gs], atol=1e-11)
    product = st.trace_g_product(xt, st.apply_a(xt), yt, st.apply_a(yt.T))
    np.testing.assert_allclose(product.numpy(), [np.trace(g @ x @ y) for g in gs], atol=1e-10)


def test_certified_rho_is_the_smallest_rho_of_the_dense_lmi():
    ws = random_net([3, 6, 5, 2], seed=3)
    lam = lipsdp(ws).details["multipliers"]
    rho = certify_rho(ws, np.asarray(lam), (0.0, 1.0))
    top = lambda r: np.linalg.eigvalsh(dense_lmi(ws, np.asarray(lam), r, (0.0, 1.0)))[-1]  # noqa: E731
    assert top(rho * (1 + 1e-9)) <= 1e-9 * rho
    assert top(rho * (1 - 1e-6)) > 0


# --------------------------------------------------------------------------- known values


def test_positive_fixture_gives_its_exact_constant(lipsdp_fixtures):
    ws = list(
        scipy.io.loadmat(os.path.join(lipsdp_fixtures, "random_weights.mat"))["weights"].ravel()
    )
    est = lipsdp(ws)
    assert est.certified
    assert (est.kind, est.method) == ("upper", "lipsdp-neuron")
    assert est.value == pytest.approx(36.4822296, rel=1e-6)
    assert est.value == pytest.approx(np.linalg.norm(ws[3] @ ws[2] @ ws[1] @ ws[0], 2), rel=1e-6)


def test_mnist_fixture_is_compressed_and_bracketed(lipsdp_fixtures):
    ws = list(
        scipy.io.loadmat(os.path.join(lipsdp_fixtures, "mnist_weights.mat"))["weights"].ravel()
    )
    est = lipsdp(ws)
    assert est.details["compressed_sizes"] == [50, 50, 10]
    assert jacobian_lower_bound(ws, n_points=500) <= est.value <= spectral_product(ws)
    assert spectral_product(ws) == pytest.approx(31.5035, rel=1e-5)
    assert lipsdp(ws, variant="layer").value >= est.value * (1 - 1e-7)


@pytest.mark.parametrize("variant", ["neuron", "layer"])
def test_identity_first_layer_gives_norm_of_output_weights(variant):
    w = np.array([[3.0, -4.0, 12.0]])
    assert lipsdp([np.eye(3), w], variant=variant).value == pytest.approx(13.0, rel=1e-7)


@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky-relu"])
def test_one_hidden_unit_gives_product_of_norms(activation):
    a, c = np.array([[1.0, 2.0, 2.0]]), np.array([[-0.5], [2.0]])
    exact = 3.0 * np.linalg.norm(c)  # x -> c phi(a.x), slope of phi at most 1 and attained
    assert lipsdp([a, c], activation=activation).value == pytest.approx(exact, rel=1e-7)


def test_sigmoid_scales_the_one_unit_bound_by_its_slope():
    a, c = np.array([[3.0, 4.0]]), np.array([[2.0]])
    assert lipsdp([a, c], activation="sigmoid").value == pytest.approx(10.0 / 4, rel=1e-7)


def test_single_linear_layer_and_zero_layer_are_closed_forms():
    w = random_net([5, 3], seed=4)[0]
    est = lipsdp([w])
    assert est.value == pytest.approx(np.linalg.svd(w, compute_uv=False)[0], rel=1e-12)
    assert est.solver == "closed_form"
    ws = random_net([4, 5, 2], seed=5)
    assert lipsdp([ws[0], 0 * ws[1]]).value == 0.0


# --------------------------------------------------------------------------- cvxpy reference


@pytest.mark.parametrize(
    ("sizes", "variant", "activation"),
    [
        ([4, 8, 6, 2], "neuron", "relu"),
        ([5, 10, 1], "neuron", "tanh"),
        ([3, 6, 5, 4, 1], "layer", "relu"),
        ([4, 7, 7, 3], "neuron", "sigmoid"),
    ],
)
def test_fast_matches_cvxpy_reference(sizes, variant, activation):
    ws = random_net(sizes, seed=sum(sizes))
    fast = lipsdp(ws, variant=variant, activation=activation)
    ref = lipsdp(ws, variant=variant, activation=activation, solver="CLARABEL")
    assert ref.certified
    assert ref.solver == "cvxpy:CLARABEL"
    assert fast.value == pytest.approx(ref.value, rel=1e-5)
    assert fast.details["gap"] < 1e-6
    # weak duality: the solver's dual value is below the optimum, the certified rho above it
    assert fast.details["dual_rho"] <= fast.details["certified_rho"] * (1 + 1e-9)
    assert fast.details["certified_rho"] == pytest.approx(fast.value**2, rel=1e-12)


def test_build_then_solve_lipsdp_in_cvxpy():
    ws = random_net([4, 6, 5, 1], seed=15)
    problem = build_lipsdp(ws, variant="layer", slope_bounds=(0.0, 1.0))
    lam, rho, status, info = solve_lipsdp(problem, LipSDPOptions(solver="CLARABEL"))
    assert (status.value, info["solver_status"]) == ("optimal", "optimal")
    certified = problem.prepared.certify(lam, (0.0, 1.0))
    assert certified == pytest.approx(rho, rel=1e-6)
    assert np.sqrt(certified) == pytest.approx(lipsdp(ws, variant="layer").value, rel=1e-6)


def test_cvxpy_default_solver_is_scs_and_recorded():
    ws = random_net([3, 5, 4, 1], seed=6)
    est = lipsdp(ws, solver="SCS")
    assert est.solver == "cvxpy:SCS"
    assert est.value == pytest.approx(lipsdp(ws).value, rel=1e-4)


def test_stopped_solver_never_returns_an_unproven_bound():
    ws = random_net([3, 6, 5, 1], seed=13)
    exact = lipsdp(ws).value
    for limits in ({"ipm_max_iter": 3}, {"solver": "SCS", "cvxpy_max_iter": 3}):
        try:
            est = lipsdp(ws, **limits)
        except SolverError as err:  # the multipliers certified nothing: said so
            message = str(err)
        else:
            message = "certify nothing"
            assert est.certified
            assert est.status.value == "max_iter"
            assert est.value >= exact * (1 - 1e-9)
        assert "certify nothing" in message


# --------------------------------------------------------------------------- certification


def test_zero_or_negative_multipliers_certify_nothing():
    ws = random_net([3, 5, 4, 1], seed=7)
    with pytest.raises(SolverError, match="not negative definite"):
        certify(ws, np.zeros(9))
    good = np.asarray(lipsdp(ws).details["multipliers"])
    with pytest.raises(SolverError, match="non-negative"):
        certify(ws, -good)
    assert certify(ws, good) == pytest.approx(lipsdp(ws).value, rel=1e-9)
    assert certify(ws, 2 * good) > certify(ws, good)  # any valid lambda: a worse but valid bound


def test_layer_multipliers_expand_per_layer():
    ws = random_net([3, 5, 4, 1], seed=8)
    est = lipsdp(ws, variant="layer")
    assert len(est.details["multipliers"]) == 2
    assert certify(ws, est.details["multipliers"]) == pytest.approx(est.value, rel=1e-9)


# --------------------------------------------------------------------------- invariances


def test_dead_units_and_extra_inputs_change_nothing():
    ws = random_net([3, 5, 4, 2], seed=9)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((9, 3)))  # isometric embedding R^3 -> R^9
    w0 = np.vstack([ws[0] @ q.T, np.zeros((2, 9))])  # 2 units with no incoming weight
    w1 = np.hstack([ws[1], rng.standard_normal((4, 2))])
    w1 = np.vstack([w1, rng.standard_normal((1, 7))])  # 1 unit with no outgoing weight
    w2 = np.hstack([ws[2], np.zeros((2, 1))])
    est = lipsdp([w0, w1, w2])
    assert est.details["dead_units_dropped"] == 3
    assert est.details["compressed_sizes"] == [5, 5, 4, 2]
    assert est.value == pytest.approx(lipsdp(ws).value, rel=1e-7)


def test_hidden_permutation_changes_nothing():
    ws = random_net([4, 6, 5, 2], seed=10)
    p1, p2 = np.random.default_rng(1).permutation(6), np.random.default_rng(2).permutation(5)
    perm = [ws[0][p1], ws[1][p2][:, p1], ws[2][:, p2]]
    assert lipsdp(perm).value == pytest.approx(lipsdp(ws).value, rel=1e-7)


@pytest.mark.parametrize("variant", ["neuron", "layer"])
def test_scaling_every_weight_scales_by_a_to_the_depth(variant):
    ws = random_net([3, 6, 4, 2], seed=11)
    base = lipsdp(ws, variant=variant).value
    assert lipsdp([2.5 * w for w in ws], variant=variant).value == pytest.approx(
        2.5**3 * base, rel=1e-7
    )


def test_pruned_weights_stay_zero_in_what_the_sdp_sees():
    rng = np.random.default_rng(12)
    ws = random_net([6, 8, 7, 2], seed=12)
    for w in ws:
        mask = rng.random(w.shape) < 0.5
        for k in range(max(w.shape)):  # every unit keeps an input and an output
            mask[k % w.shape[0], k % w.shape[1]] = True
        w *= mask
    prepared = prepare(ws, "neuron")
    assert prepared.details["dead_units_dropped"] == 0
    np.testing.assert_array_equal(prepared.weights[1] == 0, ws[1] == 0)
    np.testing.assert_array_equal(prepared.weights[2] == 0, ws[2] == 0)
    est = lipsdp(ws)
    assert jacobian_lower_bound(ws) <= est.value <= spectral_product(ws)


# --------------------------------------------------------------------------- bad input


def test_network_variant_is_refused_as_unsound():
    with pytest.raises(ValueError, match="unsound"):
        prepare(random_net([3, 4, 1], seed=0), "network")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "gelu"}, "unknown activation 'gelu'.*relu"),
        ({"activation": "leaky_relu"}, "now called 'leaky-relu'"),
        ({"ipm_tol": 0.0}, "ipm_tol"),
        ({"ipm_max_iter": 2.5}, "ipm_max_iter"),
        ({"cvxpy_max_iter": 0}, "cvxpy_max_iter"),
        ({"solver": None}, "solver"),
    ],
)
def test_bad_options_name_the_option(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        LipSDPOptions(**kwargs)


def test_solve_lipsdp_needs_a_cvxpy_solver():
    problem = build_lipsdp(random_net([3, 4, 1], seed=0))
    with pytest.raises(ValidationError, match="cvxpy solver"):
        solve_lipsdp(problem, LipSDPOptions())


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_refused():
    with pytest.raises(ValidationError, match="no CUDA GPU"):
        lipsdp(random_net([3, 4, 1], seed=0), device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_gives_the_cpu_value():
    ws = random_net([5, 12, 9, 2], seed=14)
    gpu = lipsdp(ws, device="cuda")
    assert gpu.details["device"].startswith("cuda")
    assert gpu.value == pytest.approx(lipsdp(ws, device="cpu").value, rel=1e-7)


def test_missing_solver_lists_installed_ones():
    with pytest.raises(SolverUnavailableError, match="SCS"):
        lipsdp(random_net([3, 4, 1], seed=0), solver="NOT_A_SOLVER")


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([], "empty"),
        ([np.ones((3, 2)), np.ones((1, 4))], "weights\\[1\\]"),
        ([np.full((3, 2), np.nan), np.ones((1, 3))], "finite"),
    ],
)
def test_bad_weights_raise(weights, match):
    with pytest.raises(ValidationError, match=match):
        lipsdp(weights)


# --------------------------------------------------------------------------- many random nets


def _random_case(seed):
    rng = np.random.default_rng(1000 + seed)
    depth = int(rng.integers(1, 4))
    sizes = [int(rng.integers(2, 9))] + [int(rng.integers(3, 13)) for _ in range(depth)]
    sizes.append(int(rng.integers(1, 4)))
    activation = ("relu", "relu", "tanh", "leaky-relu")[seed % 4]
    density = 1.0 if seed % 3 else 0.6
    return random_net(sizes, seed, density=density), activation


@pytest.mark.parametrize("seed", range(110))
def test_random_nets_are_bracketed(seed):
    ws, activation = _random_case(seed)
    neuron = lipsdp(ws, activation=activation)
    layer = lipsdp(ws, activation=activation, variant="layer")
    assert neuron.certified
    assert layer.certified
    assert (neuron.status.ok, layer.status.ok) == (True, True)
    lower = jacobian_lower_bound(ws, activation, n_points=300, seed=seed)
    assert lower <= neuron.value * (1 + 1e-9)
    assert neuron.value <= layer.value * (1 + 1e-7)
    assert layer.value <= spectral_product(ws) * (1 + 1e-9)
