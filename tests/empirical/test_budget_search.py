"""Tests of robustlaw.empirical.budget_search: bisection on the spectral budget (THEORY §7.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robustlaw.empirical.budget_search import BudgetStatus, smallest_fitting_budget
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.lipschitz import estimate_lipschitz
from robustlaw.empirical.training import SGD, Adam, BelowNoise, SpectralBall, TrainOptions
from robustlaw.errors import ValidationError

F64 = torch.float64
NOISE, EPS = 0.04, 0.02  # fit: clipped MSE <= 0.02
TARGET = NOISE - EPS


# -- a linear model, where the smallest fitting norm is known independently ----------------------


@pytest.fixture(scope="module")
def linear():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 3, generator=g, dtype=F64) / 3
    w_star = torch.tensor([0.6, -0.8, 0.0], dtype=F64)  # ||w*|| = 1
    return X, X @ w_star


def _min_norm_fit(X: np.ndarray, y: np.ndarray, target: float) -> float:
    """min ||w|| subject to ||Xw - y||^2 / n <= target, via ridge: bisect on log(lambda).

    On the ridge path w(lam) = (X'X + lam I)^-1 X'y the MSE grows and the norm shrinks with
    lam, and w(lam) is the smallest-norm point of its MSE level set (Lagrange).
    """
    n, d = X.shape

    def ridge(lam):
        w = np.linalg.solve(X.T @ X + lam * np.eye(d), X.T @ y)
        return w, float(np.mean((X @ w - y) ** 2))

    lo, hi = -12.0, 6.0  # log10(lambda): MSE(lo) < target < MSE(hi)
    assert ridge(10**lo)[1] < target < ridge(10**hi)[1]
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ridge(10**mid)[1] < target else (lo, mid)
    return float(np.linalg.norm(ridge(10**hi)[0]))


def _linear_ens(n_restarts=1):
    return init_mlp_ensemble(MLPSpec(layer_sizes=(3, 1), bias=False), range(n_restarts), dtype=F64)


def _linear_opts(max_steps=120):
    rule = BelowNoise(noise_level=NOISE, eps=EPS)
    return TrainOptions(optimizer=SGD(lr=4.0), stopping=rule, max_steps=max_steps)


def _linear_search(data, **kw):
    X, y = data
    kw = {"noise_level": NOISE, "eps": EPS, "lo": 0.05, "hi": 2.0, "rtol": 0.01, **kw}
    return smallest_fitting_budget(_linear_ens(), X, y, _linear_opts(), **kw)


def test_linear_budget_matches_the_min_norm_fit(linear):
    X, y = linear
    s_star = _min_norm_fit(X.numpy(), y.numpy(), TARGET)
    # inside the ball of radius s*, no output leaves [-1, 1]: clipping does not change the MSE
    assert float(X.norm(dim=1).max()) * s_star < 1
    res = _linear_search(linear)
    assert res.status is BudgetStatus.CONVERGED
    assert s_star <= res.budget <= s_star * 1.01 * (1 + 1e-9)
    assert res.bracket[1] == res.budget
    assert res.bracket[1] / res.bracket[0] <= 1.01
    w = res.ensemble.params["0.weight"][0]
    assert float(torch.linalg.matrix_norm(w, ord=2)) <= res.budget * (1 + 1e-9)
    assert res.upper == pytest.approx(float(w.norm()), rel=1e-12)  # one layer: exact
    assert res.product_budget == res.budget
    assert res.n_layers == 1
    assert res.train_mse <= TARGET
    assert res.n_trainings == sum(len(h.budgets) for h in res.history)


def test_doubling_finds_the_bracket_then_bisects(linear):
    X, y = linear
    s_star = _min_norm_fit(X.numpy(), y.numpy(), TARGET)
    res = _linear_search(linear, lo=0.01, hi=None, n_grid=3)
    phases = [h.phase for h in res.history]
    assert phases[0] == "expand"
    assert phases[-1] == "bisect"
    ladder = [b for h in res.history if h.phase == "expand" for b in h.budgets]
    assert ladder == pytest.approx([0.01 * 2.0**j for j in range(len(ladder))], rel=1e-15)
    assert s_star <= res.budget <= s_star * 1.01 * (1 + 1e-9)


def test_bracket_is_backed_by_the_history(linear):
    res = _linear_search(linear, rtol=0.2, rounds=2)
    tried = {b: f for h in res.history for b, f in zip(h.budgets, h.fits, strict=True)}
    lo, hi = res.bracket
    assert tried[hi]
    assert not tried[lo]
    assert all(not f for b, f in tried.items() if b <= lo)  # nothing at or below lo fit
    assert min(b for b, f in tried.items() if f) == res.budget


def test_lo_that_fits_and_budgets_that_never_fit(linear):
    fits = _linear_search(linear, lo=1.5, hi=3.0)
    assert fits.status is BudgetStatus.LO_FITS
    assert fits.budget == 1.5
    assert fits.bracket == (0.0, 1.5)
    none = _linear_search(linear, lo=1e-3, hi=None, max_doublings=2)
    assert none.status is BudgetStatus.NONE_FIT
    assert none.budget is None
    assert none.ensemble is None
    assert none.upper is None
    assert none.bracket == pytest.approx((4e-3, math.inf))
    assert none.n_trainings == 3


def test_same_call_gives_the_same_result(linear):
    a, b = _linear_search(linear, rtol=0.1), _linear_search(linear, rtol=0.1)
    assert (a.budget, a.bracket, a.upper, a.train_mse) == (
        b.budget,
        b.bracket,
        b.upper,
        b.train_mse,
    )
    assert a.history == b.history
    assert torch.equal(a.ensemble.params["0.weight"], b.ensemble.params["0.weight"])


# -- a sparse two-layer ReLU net ----------------------------------------------------------------


@pytest.fixture(scope="module")
def relu_search():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(8, 3, generator=g, dtype=F64)
    y = torch.sign(torch.randn(8, generator=g, dtype=F64))
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 12, 1)), seeds=[0, 1], dtype=F64)
    masks = {k: torch.rand(m.shape, generator=g) < 0.7 for k, m in ens.masks.items()}
    ens = ens.with_masks(masks)
    rule = BelowNoise(noise_level=1.0, eps=0.6)
    # the caller's constraint must be replaced by the per-member ball
    opts = TrainOptions(
        optimizer=Adam(lr=0.1), stopping=rule, max_steps=250, constraint=SpectralBall(budget=1e3)
    )
    res = smallest_fitting_budget(
        ens, X, y, opts, noise_level=1.0, eps=0.6, lo=0.05, n_grid=4, rounds=3, rtol=0.05
    )
    return ens, X, y, res


def test_relu_fit_is_below_the_noise_and_inside_the_ball(relu_search):
    ens, X, y, res = relu_search
    assert res.budget is not None
    assert res.n_layers == 2
    with torch.no_grad():
        mse = float((res.ensemble(X)[0, :, 0].clamp(-1, 1) - y).square().mean())
    assert mse == pytest.approx(res.train_mse, rel=1e-12)
    assert mse <= 1.0 - 0.6
    for w in res.ensemble.masked_weights():
        assert float(torch.linalg.matrix_norm(w[0], ord=2)) <= res.budget * (1 + 1e-2)


def test_relu_certified_upper_brackets_the_member(relu_search):
    _, X, _, res = relu_search
    spectral = estimate_lipschitz("spectral", res.ensemble)
    assert spectral.certified
    assert res.upper == pytest.approx(float(spectral.values[0]), rel=1e-9)
    lower = estimate_lipschitz("gradient", res.ensemble, X=X, generator=torch.Generator())
    assert float(lower.values[0]) <= res.upper * (1 + 1e-9)
    assert res.upper <= res.product_budget * (1 + 1e-2)


def test_relu_masks_are_respected(relu_search):
    ens, _, _, res = relu_search
    k = res.member
    assert res.ensemble.seeds == (ens.seeds[k],)
    for name, m in res.ensemble.masks.items():
        assert torch.equal(m[0], ens.masks[name][k])
        assert bool((res.ensemble.params[name][0][~m[0]] == 0).all())


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"noise_level": -1.0}, "noise_level"),
        ({"eps": math.nan}, "eps"),
        ({"lo": 0.0}, "lo"),
        ({"hi": 0.05}, "hi"),
        ({"n_grid": 0}, "n_grid"),
        ({"rounds": 0}, "rounds"),
        ({"rtol": 0.0}, "rtol"),
        ({"max_doublings": -1}, "max_doublings"),
        ({"power_iterations": 0}, "power_iterations"),
    ],
)
def test_bad_numbers_are_refused(linear, kw, match):
    with pytest.raises(ValidationError, match=match):
        _linear_search(linear, **kw)


def test_bad_inputs_are_refused(linear):
    X, y = linear
    kw = {"noise_level": NOISE, "eps": EPS}
    ens = _linear_ens()
    with pytest.raises(ValidationError, match="X must have shape"):
        smallest_fitting_budget(ens, X[:, :2], y, **kw)
    with pytest.raises(ValidationError, match="y must have shape"):
        smallest_fitting_budget(ens, X, y[:3], **kw)
    two = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 2)), [0], dtype=F64)
    with pytest.raises(ValidationError, match="one output"):
        smallest_fitting_budget(two, X, y, **kw)
    no_seeds = type(ens)(spec=ens.spec, params=ens.params, masks=ens.masks)
    with pytest.raises(ValidationError, match="seeds"):
        smallest_fitting_budget(no_seeds, X, y, **kw)
    with pytest.raises(ValidationError, match="lr must be one number"):
        smallest_fitting_budget(ens, X, y, TrainOptions(optimizer=SGD(lr=(0.1,))), **kw)
    with pytest.raises(ValidationError, match="TrainOptions"):
        smallest_fitting_budget(ens, X, y, {"max_steps": 3}, **kw)
    with pytest.raises(ValidationError, match="Ensemble"):
        smallest_fitting_budget(ens.params, X, y, **kw)
