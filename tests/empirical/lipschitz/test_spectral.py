"""Power iteration and certified spectral norms against exact singular values."""

import numpy as np
import pytest
import torch

from robustlaw.empirical.lipschitz import (
    EstimateStatus,
    SpectralOptions,
    lanczos,
    power_iteration,
    spectral_norm_bounds,
    spectral_product,
)
from robustlaw.empirical.lipschitz.spectral import gram_powers


@pytest.mark.parametrize(("m", "n", "squarings"), [(7, 12, 0), (12, 7, 0), (30, 20, 4)])
def test_power_iteration_matches_svd_batched(m, n, squarings, stack):
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


def test_power_iteration_warm_start_and_limits(stack):
    W = stack(1, 40, 30, 2)[0]
    gen = torch.Generator().manual_seed(0)
    cold = power_iteration(W, max_iter=2000, tol=1e-12, generator=gen)
    warm = power_iteration(W, max_iter=2000, tol=1e-12, u0=cold.u)
    assert warm.n_iter < cold.n_iter
    few = power_iteration(W, max_iter=2, tol=1e-15, generator=gen)
    assert few.n_iter == 2
    assert not bool(few.converged)
    assert float(few.sigma) < float(torch.linalg.matrix_norm(W, 2))


def test_power_iteration_keeps_dtype(stack):
    W = stack(2, 5, 4, 3).float()
    assert power_iteration(W, generator=torch.Generator().manual_seed(0)).sigma.dtype == (
        torch.float32
    )


@pytest.mark.parametrize("t", [0, 1, 3, 6])
def test_gram_bound_is_above_and_tightens(t, stack):
    W = stack(4, 25, 18, 4)
    _, log_scale = gram_powers(W, t)
    bound = torch.exp(log_scale / 2 ** (t + 1))
    exact = torch.linalg.svdvals(W)[:, 0]
    assert bool((bound >= exact * (1 - 1e-13)).all())  # up to round-off: hence the margin
    if t == 0:
        gram = W.transpose(1, 2) @ W
        torch.testing.assert_close(bound, torch.linalg.matrix_norm(gram).sqrt())


@pytest.mark.parametrize("svd_max_dim", [0, 100])
def test_spectral_norm_bounds_bracket_exact(svd_max_dim, stack):
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
    est = spectral_product(ws, SpectralOptions(svd_max_dim=0, tol=1e-9))
    assert est.certified
    assert est.kind == "upper"
    assert est.value >= exact
    assert est.value == pytest.approx(exact, rel=1e-8)
    assert [f["certification"] for f in est.details["factors"]] == ["gram", "gram", "gram"]
    loose = spectral_product(ws, SpectralOptions(svd_max_dim=0, tol=1e-12, max_squarings=1))
    assert loose.status is EstimateStatus.MAX_ITER
    assert loose.certified
    assert loose.value >= exact


def test_spectral_product_batched_equals_one_by_one(random_weights):
    ws = random_weights((6, 9, 9, 2), 1, n_members=4)
    batched = spectral_product(ws).value
    singles = [spectral_product([w[k] for w in ws]).value for k in range(4)]
    np.testing.assert_allclose(batched, singles, rtol=1e-12)


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
