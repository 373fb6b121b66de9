"""Lanczos on Gram matrices, with both backends, against exact singular values."""

import numpy as np
import pytest
import torch

from robustlaw.empirical.lipschitz import lanczos, power_iteration
from robustlaw.empirical.lipschitz import lanczos_kernel as kernel
from robustlaw.empirical.lipschitz.krylov import _tridiagonal_top

NUMBA = pytest.mark.skipif(not kernel.AVAILABLE, reason="numba is not installed")


@pytest.fixture(params=["torch", pytest.param("numba", marks=NUMBA)])
def backend(request):
    return request.param


@pytest.mark.parametrize(("m", "n"), [(30, 50), (50, 30), (3, 3)])
def test_lanczos_matches_svd_with_leading_dims(m, n, backend, stack):
    W = stack(6, m, n, 7).reshape(2, 3, m, n)
    res = lanczos(
        W, tol=1e-12, generator=torch.Generator().manual_seed(0), chunk_bytes=4096, backend=backend
    )
    exact = torch.linalg.svdvals(W)[..., 0]
    assert res.sigma.shape == (2, 3)
    torch.testing.assert_close(res.sigma, exact, rtol=1e-10, atol=0)
    assert bool((res.sigma <= exact * (1 + 1e-12)).all())
    assert bool(res.converged.all())


def test_lanczos_needs_fewer_steps_than_power_iteration(backend, stack):
    W = stack(4, 60, 120, 8)
    gen = torch.Generator().manual_seed(0)
    krylov = lanczos(W, tol=1e-10, generator=gen, backend=backend)
    power = power_iteration(W, tol=1e-10, max_iter=5000, generator=gen)
    assert krylov.n_iter < power.n_iter
    torch.testing.assert_close(krylov.sigma, torch.linalg.svdvals(W)[:, 0], rtol=1e-8, atol=0)


def test_lanczos_float32_layers_within_1e_6_of_float64_svd(backend):
    gen = torch.Generator().manual_seed(3)
    W = (2 * torch.rand(24, 120, 400, generator=gen) - 1) / 400**0.5  # nn.Linear-like layers
    res = lanczos(W, tol=1e-6, generator=gen, chunk_bytes=200_000, backend=backend)
    exact = torch.linalg.svdvals(W.double())[:, 0]
    assert res.sigma.dtype == torch.float32
    assert float(((res.sigma.double() - exact) / exact).abs().max()) <= 1e-6
    assert bool(res.converged.all())


def test_lanczos_batched_equals_one_by_one_and_chunking_is_invisible(backend, stack):
    W = stack(7, 35, 60, 12)
    u0 = torch.randn(7, 35, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    whole = lanczos(W, tol=1e-13, u0=u0, backend=backend)
    chunked = lanczos(W, tol=1e-13, u0=u0, chunk_bytes=3 * 35 * 35 * 8, backend=backend)
    singles = torch.stack(
        [lanczos(W[k], tol=1e-13, u0=u0[k], backend=backend).sigma for k in range(7)]
    )
    torch.testing.assert_close(chunked.sigma, whole.sigma, rtol=1e-12, atol=0)
    torch.testing.assert_close(singles, whole.sigma, rtol=1e-12, atol=0)
    torch.testing.assert_close(whole.sigma, torch.linalg.svdvals(W)[:, 0], rtol=1e-11, atol=0)
    torch.testing.assert_close(whole.u.norm(dim=-1), torch.ones(7, dtype=torch.float64))
    assert bool((whole.residual < 1e-5).all())


def test_lanczos_zero_matrix_and_tiny_sides(backend, stack):
    zero = torch.zeros(2, 5, 8, dtype=torch.float64)
    assert torch.equal(
        lanczos(zero, generator=torch.Generator().manual_seed(0), backend=backend).sigma,
        zero[:, 0, 0],
    )
    col = stack(3, 6, 1, 5)
    torch.testing.assert_close(
        lanczos(col, backend=backend).sigma, col.norm(dim=(1, 2)), rtol=1e-12, atol=0
    )


def test_lanczos_rescales_a_chunk_whose_gram_matrix_overflows(backend, stack):
    W = stack(3, 20, 30, 14).float() * 1e19  # finite float32, W W^T is not
    assert not bool((W @ W.mT).isfinite().all())
    res = lanczos(W, tol=1e-7, generator=torch.Generator().manual_seed(0), backend=backend)
    exact = torch.linalg.svdvals(W.double())[:, 0]
    torch.testing.assert_close(res.sigma.double(), exact, rtol=1e-5, atol=0)


def test_lanczos_stops_exactly_on_an_invariant_krylov_space(backend):
    gen = torch.Generator().manual_seed(15)
    a, b = torch.randn(4, 40, 3, generator=gen), torch.randn(4, 3, 60, generator=gen)
    W = (a @ b).double()  # rank 3: beta_2 = 0 up to rounding, the later rows are NaN
    res = lanczos(W, tol=1e-14, generator=gen, backend=backend)
    torch.testing.assert_close(res.sigma, torch.linalg.svdvals(W)[:, 0], rtol=1e-12, atol=0)
    assert bool(res.converged.all())
    assert bool(res.sigma.isfinite().all() and res.u.isfinite().all())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_lanczos_rejects_non_finite_in_any_chunk(bad, backend, stack):
    W = stack(9, 6, 8, 13)
    W[7, 2, 3] = bad
    with pytest.raises(ValueError, match="finite"):
        lanczos(W, chunk_bytes=2 * 6 * 6 * 8, backend=backend)


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


def test_lanczos_backends_agree_on_float32_layers():
    """Same starts, same steps: the two backends agree to rounding. Member 11 is the Krylov
    methods' blind spot: its start is nearly orthogonal to the top singular vector and the top
    pair is 4.6e-4 apart, so both settle on the second singular value (a lower estimate, off by
    at most that gap)."""
    gen = torch.Generator().manual_seed(21)
    W = (2 * torch.rand(40, 64, 150, generator=gen) - 1) / 150**0.5
    u0 = torch.randn(40, 64, generator=gen)
    exact = torch.linalg.svdvals(W.double())
    backends = ("torch", "numba") if kernel.AVAILABLE else ("torch",)
    sigmas = [lanczos(W, u0=u0, backend=b).sigma.double() for b in backends]
    torch.testing.assert_close(sigmas[-1], sigmas[0], rtol=1e-6, atol=0)
    for sigma in sigmas:
        error = (exact[:, 0] - sigma) / exact[:, 0]
        assert float(error.min()) >= -1e-6  # lower estimates
        assert float(error.median()) <= 1e-7
        assert int((error > 1e-6).sum()) == 1
        torch.testing.assert_close(sigma[11], exact[11, 1], rtol=1e-6, atol=0)


def test_lanczos_backend_choice_is_validated(stack):
    W = stack(2, 5, 6, 22)
    with pytest.raises(ValueError, match="backend"):
        lanczos(W, backend="cuda")
    if kernel.AVAILABLE:
        with pytest.raises(ValueError, match="float32 or float64"):
            lanczos(W.half(), backend="numba")
    else:
        with pytest.raises(ImportError, match="numba"):
            lanczos(W, backend="numba")


@NUMBA
def test_kernel_stops_each_matrix_at_its_own_convergence():
    """An easy matrix (a wide gap) next to a hard one (a nearly tied top pair): the easy one
    stops early, the hard one takes more steps, both are exact."""
    gen = torch.Generator().manual_seed(23)
    q = torch.linalg.qr(torch.randn(2, 60, 60, generator=gen, dtype=torch.float64))[0]
    spectra = torch.rand(2, 60, generator=gen, dtype=torch.float64) * 0.5
    spectra[0, 0], spectra[1, :2] = 10.0, torch.tensor([1.0, 1.0 - 1e-3])
    a = (q * spectra[:, None, :]) @ q.mT
    x = torch.randn(2, 60, generator=gen, dtype=torch.float64)
    ritz, steps, converged = kernel.lanczos_top(a.numpy(), x.numpy(), 60, 1e-12, 4, 4)
    assert steps[0] < steps[1]
    assert converged.all()
    top = spectra.max(dim=1).values.numpy()
    rayleigh = np.einsum("bi,bij,bj->b", ritz, a.numpy(), ritz)
    np.testing.assert_allclose(rayleigh, top, rtol=1e-11)
    np.testing.assert_allclose(np.linalg.norm(ritz, axis=1), 1.0, rtol=1e-14)


def test_lanczos_takes_weights_that_require_grad(backend, stack):
    W = stack(3, 20, 30, 24).requires_grad_()
    res = lanczos(W, tol=1e-12, backend=backend)
    assert not res.sigma.requires_grad
    exact = torch.linalg.svdvals(W.detach())[:, 0]
    torch.testing.assert_close(res.sigma, exact, rtol=1e-10, atol=0)
