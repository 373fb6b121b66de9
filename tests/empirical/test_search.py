"""Tests of robustlaw.empirical.search: the smallest certified fit per group."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from robustlaw.empirical import search
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.lipschitz import estimate_lipschitz, weights_from_ensemble
from robustlaw.empirical.search import SmallestFit, smallest_certified_fit
from robustlaw.empirical.training import Adam, BelowNoise, TrainOptions, train_ensemble
from robustlaw.errors import UnknownNameError, ValidationError

F64 = torch.float64
K = 6
GROUPS = ("a", "a", "a", (8, 4, 97), (8, 4, 97), (8, 4, 97))
NOISE, EPS = 1.0, 0.5


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 4, generator=g, dtype=F64)
    y = torch.sign(torch.randn(8, generator=g, dtype=F64))
    return X, y


@pytest.fixture(scope="module")
def trained(data):
    X, y = data
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 16, 1)), seeds=range(K), dtype=F64)
    opts = TrainOptions(
        optimizer=Adam(lr=0.02), stopping=BelowNoise(noise_level=NOISE, eps=EPS), max_steps=2000
    )
    return train_ensemble(ens, X, y, opts).to_ensemble(ens)


def _scale_last(ens, members, factor):
    params = dict(ens.params)
    w = params["2.weight"].clone()
    w[list(members)] *= factor
    params["2.weight"] = w
    return ens.with_params(params)


def _clipped_mse(ens, X, y):
    with torch.no_grad():
        return (ens(X)[..., 0].clamp(-1, 1) - y).square().mean(dim=1)


def _spectral(ens, k):
    return float(estimate_lipschitz("spectral", weights_from_ensemble(ens, k)).value)


def _run(ens, data, groups=GROUPS, **kw):
    X, y = data
    kw = {"noise_level": NOISE, "eps": EPS, "generator": torch.Generator().manual_seed(1), **kw}
    return smallest_certified_fit(ens, X, y, groups=groups, **kw)


def test_all_members_fit_after_training(trained, data):
    assert bool((_clipped_mse(trained, *data) <= NOISE - EPS).all())


def test_chosen_member_has_smallest_certified_bound_among_fits(trained, data):
    ens = _scale_last(trained, [0], 0.01)  # member 0 no longer fits
    mse = _clipped_mse(ens, *data)
    assert float(mse[0]) > NOISE - EPS
    res = _run(ens, data)
    assert [r.group for r in res] == ["a", (8, 4, 97)]
    for r in res:
        ks = [k for k, g in enumerate(GROUPS) if g == r.group]
        fits = [k for k in ks if float(mse[k]) <= NOISE - EPS]
        bounds = {k: _spectral(ens, k) for k in fits}
        best = min(bounds, key=bounds.get)
        assert r.member == best
        assert r.upper == pytest.approx(bounds[best], rel=1e-9)
        assert r.n_members == 3
        assert r.n_fitted == len(fits)
        assert r.train_mse == pytest.approx(float(mse[best]))
        assert r.upper_method == "spectral"
        assert r.lower_method == "gradient"
        assert r.lower is not None
        assert 0 < r.lower <= r.upper * (1 + 1e-9)
    assert res[0].n_fitted == 2
    assert res[0].member != 0


def test_group_without_fit_gives_none(trained, data):
    ens = _scale_last(trained, [3, 4, 5], 0.01)
    a, b = _run(ens, data)
    assert a.member is not None
    assert b == SmallestFit(
        group=(8, 4, 97),
        member=None,
        upper=None,
        lower=None,
        n_members=3,
        n_fitted=0,
        upper_method="spectral",
        lower_method="gradient",
        train_mse=None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.member = 1


def test_no_fit_anywhere_skips_lower(trained, data):
    ens = _scale_last(trained, range(K), 0.01)
    assert all(r.member is None and r.lower is None for r in _run(ens, data))


def test_groups_are_independent_under_permutation(trained, data):
    ens = _scale_last(trained, [1], 0.01)
    perm = [4, 0, 5, 2, 3, 1]
    permuted = ens.with_params({k: v[perm] for k, v in ens.params.items()})
    groups = [GROUPS[p] for p in perm]
    base = {r.group: r for r in _run(ens, data)}
    moved = {r.group: r for r in _run(permuted, data, groups=groups)}
    assert base.keys() == moved.keys()
    for g, r in base.items():
        m = moved[g]
        assert perm[m.member] == r.member
        assert m.upper == pytest.approx(r.upper, rel=1e-12)
        assert (m.n_members, m.n_fitted) == (r.n_members, r.n_fitted)


def test_first_appearance_order_and_arbitrary_labels(trained, data):
    groups = [1, 0, 1, 2, 0, 2]
    res = _run(trained, data, groups=groups)
    assert [r.group for r in res] == [1, 0, 2]
    assert all(r.n_members == 2 for r in res)


def test_uncertified_members_are_never_chosen(trained, data, monkeypatch):
    """The ensemble call is uncertified: members are bounded alone, and one stays uncertified."""
    best = min(range(3), key=lambda k: _spectral(trained, k))
    real = search.estimate_lipschitz

    def fake(name, net, options=None, **kw):
        est = real(name, net, options, **kw)
        if name != "spectral":
            return est
        if not getattr(net, "batched", True) and torch.equal(
            net.weights[0][0], trained.params["0.weight"][best]
        ):
            return dataclasses.replace(est, certified=False)
        if getattr(net, "batched", True):
            return dataclasses.replace(est, certified=False)
        return est

    monkeypatch.setattr(search, "estimate_lipschitz", fake)
    a = _run(trained, data)[0]
    assert a.member is not None
    assert a.member != best
    others = {k: _spectral(trained, k) for k in range(3) if k != best}
    assert a.member == min(others, key=others.get)


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"groups": GROUPS[:5]}, "groups"),
        ({"groups": "abcdef"}, "groups"),
        ({"groups": [[1], [1], [1], 2, 2, 2]}, "groups"),
        ({"noise_level": -1.0}, "noise_level"),
        ({"noise_level": math.nan}, "noise_level"),
        ({"eps": -0.1}, "eps"),
        ({"eps": math.inf}, "eps"),
        ({"upper_method": "gradient"}, "upper_method"),
        ({"lower_method": "spectral"}, "lower_method"),
    ],
)
def test_bad_inputs_name_the_argument(trained, data, kw, name):
    with pytest.raises(ValidationError, match=name):
        _run(trained, data, **kw)


def test_bad_shapes_and_unknown_methods(trained, data):
    X, y = data
    with pytest.raises(ValidationError, match="X"):
        smallest_certified_fit(trained, X[:, :3], y, groups=GROUPS, noise_level=1, eps=0.5)
    with pytest.raises(ValidationError, match="y"):
        smallest_certified_fit(trained, X, y[:3], groups=GROUPS, noise_level=1, eps=0.5)
    with pytest.raises(ValidationError, match="ens"):
        smallest_certified_fit([1], X, y, groups=GROUPS, noise_level=1, eps=0.5)
    with pytest.raises(UnknownNameError):
        _run(trained, data, upper_method="no-such-method")
