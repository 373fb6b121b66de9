"""The constraint slot: ``SpectralBall`` keeps every layer in the spectral ball (THEORY §7.2)."""

import math

import numpy as np
import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.lipschitz import estimate_lipschitz
from robustlaw.empirical.training import (
    CONSTRAINTS,
    SGD,
    Adam,
    Constraint,
    SpectralBall,
    TrainOptions,
    resolve_constraint,
    train_ensemble,
)
from robustlaw.errors import UnknownNameError, ValidationError

F64 = torch.float64
WEIGHTS = ("0.weight", "2.weight", "4.weight")


def _problem(n_members=2, density=0.7):
    ens = init_mlp_ensemble(
        MLPSpec(layer_sizes=(3, 12, 12, 1)), seeds=list(range(n_members)), dtype=F64
    )
    g = torch.Generator().manual_seed(0)
    ens = ens.with_masks(
        {k: torch.rand(v.shape, generator=g) < density for k, v in ens.masks.items()}
    )
    X = torch.randn(24, 3, generator=g, dtype=F64)
    return ens, X, 3.0 * torch.randn(24, generator=g, dtype=F64)


def _train(ens, X, y, constraint, steps=200):
    opts = TrainOptions(optimizer=Adam(lr=3e-2), max_steps=steps, constraint=constraint)
    return train_ensemble(ens, X, y, opts)


def _norms(params, key):
    return torch.linalg.matrix_norm(params[key], ord=2)


def test_every_layer_ends_inside_the_ball_and_the_certified_bound_follows():
    ens, X, y = _problem()
    s = 0.8
    free = _train(ens, X, y, None)
    assert max(float(_norms(free.params, k).max()) for k in WEIGHTS) > 2 * s  # it would leave
    result = _train(ens, X, y, SpectralBall(budget=s, power_iterations=2))
    for key in WEIGHTS:
        assert bool((_norms(result.params, key) <= s * (1 + 1e-3)).all()), key
    # the certified bound, measured afterwards (THEORY §7.2): the product of the layer norms
    est = estimate_lipschitz("spectral", result.to_ensemble(ens))
    assert np.all(np.asarray(est.value) <= s ** len(WEIGHTS) * (1 + 1e-3) ** len(WEIGHTS))


def test_per_member_budgets_act_per_member():
    ens, X, y = _problem()
    budgets = (0.5, 1.5)
    result = _train(ens, X, y, SpectralBall(budget=budgets, power_iterations=2))
    for key in WEIGHTS:
        norms = _norms(result.params, key)
        for member, s in enumerate(budgets):
            assert float(norms[member]) <= s * (1 + 1e-3), (key, member)
    # the looser budget binds less: member 1 ends with a larger norm somewhere
    assert max(float(_norms(result.params, k)[1]) for k in WEIGHTS) > 0.5 * (1 + 1e-3)


def test_masks_stay_exact():
    ens, X, y = _problem(density=0.4)
    result = _train(ens, X, y, SpectralBall(budget=0.3), steps=50)
    for key, mask in ens.masks.items():
        assert bool((result.params[key][~mask] == 0).all()), key
        assert bool((result.params[key][mask] != 0).any()), key


def test_a_huge_budget_is_bitwise_unconstrained_training():
    ens, X, y = _problem()
    free = _train(ens, X, y, None, steps=60)
    loose = _train(ens, X, y, SpectralBall(budget=1e9), steps=60)
    mixed = _train(ens, X, y, SpectralBall(budget=(0.5, 1e9)), steps=60)
    for key in free.params:
        assert torch.equal(loose.params[key], free.params[key]), key
        assert torch.equal(mixed.params[key][1], free.params[key][1]), key
    assert not torch.equal(mixed.params["0.weight"][0], free.params["0.weight"][0])


def test_the_projection_follows_steps_only():
    ens, X, y = _problem()
    sgd = SGD(lr=1e-6)
    opts = TrainOptions(optimizer=sgd, max_steps=0, constraint=SpectralBall(budget=0.1))
    result = train_ensemble(ens, X, y, opts)
    for key in ens.params:
        assert torch.equal(result.params[key], ens.params[key] * ens.masks.get(key, 1))
    # a few steps: the carried vectors need more power iterations per step to converge
    ball = SpectralBall(budget=0.1, power_iterations=20)
    result = train_ensemble(ens, X, y, TrainOptions(optimizer=sgd, max_steps=5, constraint=ball))
    assert float(_norms(result.params, "0.weight").max()) <= 0.1 * (1 + 1e-3)


def test_project_directly_and_power_iteration_state_is_carried():
    w = torch.diag(torch.tensor([4.0, 2.0, 1.0], dtype=F64))[None].repeat(2, 1, 1)
    params = {"0.weight": w.clone()}
    ball = SpectralBall(budget=(1.0, 10.0), power_iterations=30)
    state = ball.init(params)
    ball.project(params, state, torch.tensor([True, True]))
    torch.testing.assert_close(_norms(params, "0.weight"), torch.tensor([1.0, 4.0], dtype=F64))
    assert torch.equal(params["0.weight"][1], w[1])  # inside the ball: untouched
    assert state.n_steps == 1
    assert state.sigma["0.weight"].shape == (2,)
    frozen = {"0.weight": w.clone()}
    ball.project(frozen, ball.init(frozen), torch.tensor([False, True]))
    assert torch.equal(frozen["0.weight"], w)  # an inactive member is not projected


def test_registry_and_names():
    assert CONSTRAINTS == {"spectral-ball": SpectralBall}
    assert issubclass(SpectralBall, Constraint)
    assert resolve_constraint("spectral-ball") == SpectralBall()
    assert TrainOptions(constraint="spectral-ball").constraint == SpectralBall()
    assert TrainOptions().constraint is None
    with pytest.raises(UnknownNameError, match="spectral-ball"):
        TrainOptions(constraint="spectral_ball")
    with pytest.raises(ValidationError, match="constraint"):
        TrainOptions(constraint=object())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"budget": 0.0}, "budget"),
        ({"budget": -1.0}, "budget"),
        ({"budget": math.nan}, "budget"),
        ({"budget": math.inf}, "budget"),
        ({"budget": (1.0, 0.0)}, "budget"),
        ({"budget": ()}, "budget"),
        ({"budget": ((1.0,),)}, "budget"),
        ({"budget": "1"}, "budget"),
        ({"budget": object()}, "budget"),
        ({"power_iterations": 0}, "power_iterations"),
        ({"power_iterations": 1.5}, "power_iterations"),
        ({"power_iterations": "2"}, "power_iterations"),
    ],
)
def test_bad_fields_raise_naming_the_field(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        SpectralBall(**kwargs)


def test_budget_length_must_match_the_members():
    ens, X, y = _problem(n_members=2)
    with pytest.raises(ValidationError, match="one per member"):
        _train(ens, X, y, SpectralBall(budget=(1.0, 2.0, 3.0)), steps=2)
    with pytest.raises(TypeError):
        SpectralBall(no_such_option=1)
