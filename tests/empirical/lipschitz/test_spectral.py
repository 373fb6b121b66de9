"""Power iteration and certified spectral norms against exact singular values."""

import numpy as np
import pytest
import torch

from robustlaw.empirical.lipschitz import (
    EstimateStatus,
    lanczos,
    power_iteration,
    spectral_norm_bounds,
    spectral_product,
)
from robustlaw.empirical.lipschitz.krylov import _tridiagonal_top
from robustlaw.empirical.lipschitz.spectral import gram_powers


def stack(k, m, n, seed):
    return torch.randn(k, m, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize(("m", "n", "squarings"), [(7, 12, 0), (12, 7, 0), (30, 20, 4)])
def test_power_iteration_matches_svd_batched(m, n, squarings):
    W = stack(6, m, n, 0)
    res = power_iteration(
        W, max_iter=5000, tol=1e-14, squarings=squarings, generator=torch.Generator().manual_seed(1)
    )
    exact = torch.linalg.svdvals(W)[:, 0]
    torch.testing.assert_close(res.sigma, exact, rtol=1e-6, atol=0)
    assert bool((res.sigma <= exact * (1 + 1e-12)).all())  # from below
    assert res.u.shape == (6, m)
    assert res.v.shape == (6, n)
    torch.testing.assert_close(res.u.norm(dim=-1), torch.ones(6, dtype=torch.float64))
    assert bool((res.residual < 1e-3).all())


def test_power_iteration_warm_start_and_limits():
    W = stack(1, 40, 30, 2)[0]
    gen = torch.Generator().manual_seed(0)
    cold = power_iteration(W, max_iter=2000, tol=1e-12, generator=gen)
    warm = power_iteration(W, max_iter=2000, tol=1e-12, u0=cold.u)
    assert warm.n_iter < cold.n_iter
    few = power_iteration(W, max_iter=2, tol=1e-15, generator=gen)
    assert few.n_iter == 2
    assert not bool(few.converged)
    assert float(few.sigma) < float(torch.linalg.matrix_norm(W, 2))


def test_power_iteration_keeps_dtype():
    W = stack(2, 5, 4, 3).float()
    assert power_iteration(W, generator=torch.Generator().manual_seed(0)).sigma.dtype == (
        torch.float32
    )


@pytest.mark.parametrize("t", [0, 1, 3, 6])
def test_gram_bound_is_above_and_tightens(t):
    W = stack(4, 25, 18, 4)
    _, log_scale = gram_powers(W, t)
    bound = torch.exp(log_scale / 2 ** (t + 1))
    exact = torch.linalg.svdvals(W)[:, 0]
    assert bool((bound >= exact * (1 - 1e-13)).all())  # up to round-off: hence the margin
    if t == 0:
        gram = W.transpose(1, 2) @ W
        torch.testing.assert_close(bound, torch.linalg.matrix_norm(gram).sqrt())


@pytest.mark.parametrize("svd_max_dim", [0, 100])
def test_spectral_norm_bounds_bracket_exact(svd_max_dim):
    W = stack(5, 80, 70, 5)
    b = spectral_norm_bounds(W, tol=1e-8, svd_max_dim=svd_max_dim)
    exact = torch.linalg.svdvals(W)[:, 0]
    assert b["certification"] == ("gram" if svd_max_dim == 0 else "svd")
    assert b["converged"]
    assert bool((b["lower"] <= exact * (1 + 1e-13)).all())
    assert bool((b["upper"] >= exact).all())
    assert bool((b["upper"] <= exact * (1 + 2e-8)).all())


def test_spectral_product_exact_and_status(random_weights):
    ws = random_weights((20, 70, 70, 3), 0)
    exact = np.prod([np.linalg.norm(w, 2) for w in ws])
    est = spectral_product(ws, svd_max_dim=0, tol=1e-9)
    assert est.certified
    assert est.kind == "upper"
    assert est.value >= exact
    assert est.value == pytest.approx(exact, rel=1e-8)
    assert [f["certification"] for f in est.details["factors"]] == ["gram", "gram", "gram"]
    loose = spectral_product(ws, svd_max_dim=0, tol=1e-12, max_squarings=1)
    assert loose.status is EstimateStatus.MAX_ITER
    assert loose.certified
    assert loose.value >= exact


def test_spectral_product_batched_equals_one_by_one(random_weights):
    ws = random_weights((6, 9, 9, 2), 1, n_members=4)
    batched = spectral_product(ws).value
    singles = [spectral_product([w[k] for w in ws]).value for k in range(4)]
    np.testing.assert_allclose(batched, singles, rtol=1e-12)


@pytest.mark.parametrize(("m", "n"), [(30, 50), (50, 30), (3, 3)])
def test_lanczos_matches_svd_with_leading_dims(m, n):
    W = stack(6, m, n, 7).reshape(2, 3, m, n)
    res = lanczos(W, tol=1e-12, generator=torch.Generator().manual_seed(0), chunk_bytes=4096)
    exact = torch.linalg.svdvals(W)[..., 0]
    assert res.sigma.shape == (2, 3)
    torch.testing.assert_close(res.sigma, exact, rtol=1e-10, atol=0)
    assert bool((res.sigma <= exact * (1 + 1e-12)).all())
    assert bool(res.converged.all())


def test_lanczos_needs_fewer_steps_than_power_iteration():
    W = stack(4, 60, 120, 8)
    gen = torch.Generator().manual_seed(0)
    krylov = lanczos(W, tol=1e-10, generator=gen)
    power = power_iteration(W, tol=1e-10, max_iter=5000, generator=gen)
    assert krylov.n_iter < power.n_iter
    torch.testing.assert_close(krylov.sigma, torch.linalg.svdvals(W)[:, 0], rtol=1e-8, atol=0)


def with_singular_values(k, m, n, top, seed):
    """``k`` random ``m x n`` float64 matrices whose leading singular values are ``top``."""
    gen = torch.Generator().manual_seed(seed)
    r = min(m, n)
    u = torch.linalg.qr(torch.randn(k, m, r, generator=gen, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(k, n, r, generator=gen, dtype=torch.float64))[0]
    s = torch.rand(k, r, generator=gen, dtype=torch.float64) * 0.9 * min(top)
    s[:, : len(top)] = torch.tensor(top, dtype=torch.float64)
    return (u * s[:, None, :]) @ v.transpose(1, 2)


ADVERSARIAL = {
    "close top pair": (1.0, 1.0 - 1e-4),
    "tied top triple": (2.0, 2.0, 2.0),
    "rank one": (3.0,),
    "huge scale": (1e30, 0.99e30),
    "tiny scale": (1e-30, 0.5e-30),
}


@pytest.mark.parametrize("top", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
@pytest.mark.parametrize(("m", "n"), [(40, 90), (90, 40)])
def test_certified_bounds_above_exact_on_adversarial(top, m, n):
    W = with_singular_values(6, m, n, top, 11)
    if len(top) == 1:
        W = top[0] * torch.linalg.qr(W)[0][..., :1] @ torch.linalg.qr(W.mT)[0][..., :1].mT
    exact = torch.linalg.svdvals(W)[:, 0]
    for svd_max_dim in (0, 100):
        b = spectral_norm_bounds(W, tol=1e-9, svd_max_dim=svd_max_dim)
        assert bool((b["upper"] >= exact).all())
        assert bool((b["lower"] <= exact * (1 + 1e-12)).all())
        assert bool((b["upper"] <= exact * (1 + 1e-6)).all())
    res = lanczos(W, tol=1e-12, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(res.sigma, exact, rtol=1e-6, atol=0)


@pytest.mark.parametrize("seed", range(5))
def test_certified_bounds_above_exact_on_random(seed):
    gen = torch.Generator().manual_seed(seed)
    m, n = (int(d) for d in torch.randint(65, 130, (2,), generator=gen))
    W = torch.randn(8, m, n, generator=gen, dtype=torch.float64) * 10 ** (seed - 2)
    exact = torch.linalg.svdvals(W)[:, 0]
    b = spectral_norm_bounds(W, tol=1e-7, generator=gen)
    assert b["certification"] == "gram"
    assert bool((b["upper"] >= exact).all())
    assert bool((b["upper"] <= exact * (1 + 1e-6)).all())


def test_lanczos_float32_layers_within_1e_6_of_float64_svd():
    gen = torch.Generator().manual_seed(3)
    W = (2 * torch.rand(24, 120, 400, generator=gen) - 1) / 400**0.5  # nn.Linear-like layers
    res = lanczos(W, tol=1e-6, generator=gen, chunk_bytes=200_000)
    exact = torch.linalg.svdvals(W.double())[:, 0]
    assert res.sigma.dtype == torch.float32
    assert float(((res.sigma.double() - exact) / exact).abs().max()) <= 1e-6
    assert bool(res.converged.all())


def test_lanczos_batched_equals_one_by_one_and_chunking_is_invisible():
    W = stack(7, 35, 60, 12)
    u0 = torch.randn(7, 35, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    whole = lanczos(W, tol=1e-13, u0=u0)
    chunked = lanczos(W, tol=1e-13, u0=u0, chunk_bytes=3 * 35 * 35 * 8)
    singles = torch.stack([lanczos(W[k], tol=1e-13, u0=u0[k]).sigma for k in range(7)])
    torch.testing.assert_close(chunked.sigma, whole.sigma, rtol=1e-12, atol=0)
    torch.testing.assert_close(singles, whole.sigma, rtol=1e-12, atol=0)
    torch.testing.assert_close(whole.sigma, torch.linalg.svdvals(W)[:, 0], rtol=1e-11, atol=0)
    torch.testing.assert_close(whole.u.norm(dim=-1), torch.ones(7, dtype=torch.float64))
    assert bool((whole.residual < 1e-5).all())


def test_lanczos_zero_matrix_and_tiny_sides():
    zero = torch.zeros(2, 5, 8, dtype=torch.float64)
    assert torch.equal(
        lanczos(zero, generator=torch.Generator().manual_seed(0)).sigma, zero[:, 0, 0]
    )
    col = stack(3, 6, 1, 5)
    torch.testing.assert_close(lanczos(col).sigma, col.norm(dim=(1, 2)), rtol=1e-12, atol=0)


def test_lanczos_rescales_a_chunk_whose_gram_matrix_overflows():
    W = stack(3, 20, 30, 14).float() * 1e19  # finite float32, W W^T is not
    assert not bool((W @ W.mT).isfinite().all())
    res = lanczos(W, tol=1e-7, generator=torch.Generator().manual_seed(0))
    exact = torch.linalg.svdvals(W.double())[:, 0]
    torch.testing.assert_close(res.sigma.double(), exact, rtol=1e-5, atol=0)


def test_lanczos_stops_exactly_on_an_invariant_krylov_space():
    gen = torch.Generator().manual_seed(15)
    a, b = torch.randn(4, 40, 3, generator=gen), torch.randn(4, 3, 60, generator=gen)
    W = (a @ b).double()  # rank 3: beta_2 = 0 up to rounding, the later rows are NaN
    res = lanczos(W, tol=1e-14, generator=gen)
    torch.testing.assert_close(res.sigma, torch.linalg.svdvals(W)[:, 0], rtol=1e-12, atol=0)
    assert bool(res.converged.all())
    assert bool(res.sigma.isfinite().all() and res.u.isfinite().all())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_lanczos_rejects_non_finite_in_any_chunk(bad):
    W = stack(9, 6, 8, 13)
    W[7, 2, 3] = bad
    with pytest.raises(ValueError, match="finite"):
        lanczos(W, chunk_bytes=2 * 6 * 6 * 8)


@pytest.mark.parametrize("k", [1, 2, 7, 40])
def test_tridiagonal_top_matches_dense_eigh_also_when_split(k):
    rng = np.random.default_rng(k)
    d, e = rng.normal(size=(5, k)), rng.normal(size=(5, k - 1))
    if k > 2:
        e[1, k // 2] = 0.0  # a split matrix: two blocks
        e[2] = 0.0  # diagonal
    t = torch.diag_embed(torch.from_numpy(d))
    t = t + torch.diag_embed(torch.from_numpy(e), 1) + torch.diag_embed(torch.from_numpy(e), -1)
    values, vectors = torch.linalg.eigh(t)
    top, vec = _tridiagonal_top(d, e, vectors=True)
    np.testing.assert_allclose(top, values[:, -1].numpy(), rtol=1e-13, atol=1e-13)
    assert top.shape == (5,)
    assert vec.shape == (5, k)
    overlap = np.abs((vec * vectors[..., -1].numpy()).sum(-1))
    np.testing.assert_allclose(overlap, 1.0, rtol=1e-10)
    assert _tridiagonal_top(d, e)[1] is None


def test_tridiagonal_top_of_leading_blocks_pads_vectors_with_zeros():
    rng = np.random.default_rng(3)
    d, e = rng.normal(size=(4, 12)), rng.normal(size=(4, 11))
    sizes = np.array([12, 1, 5, 9])
    top, vec = _tridiagonal_top(d, e, sizes, vectors=True)
    for i, k in enumerate(sizes):
        t = np.diag(d[i, :k]) + np.diag(e[i, : k - 1], 1) + np.diag(e[i, : k - 1], -1)
        values, vectors = np.linalg.eigh(t)
        np.testing.assert_allclose(top[i], values[-1], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(abs(vec[i, :k] @ vectors[:, -1]), 1.0, rtol=1e-10)
        assert not vec[i, k:].any()
