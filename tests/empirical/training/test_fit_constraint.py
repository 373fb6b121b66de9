"""The fit constraint of the Lipschitz proxies: the hinge and the augmented Lagrangian."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustlaw.empirical.data.synthetic import sample_inputs
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.training import (
    FIT_CONSTRAINTS,
    Adam,
    GradientPenalty,
    PathNormPenalty,
    PenaltyState,
    SpectralPenalty,
    TrainOptions,
    train_ensemble,
)
from robustlaw.errors import ValidationError

F64 = torch.float64
AL = "augmented-lagrangian"


def _params(n_members=2):
    """A two-layer net whose path norm is 0 (so a weight-0 proxy leaves the constraint alone)."""
    return {
        "0.weight": torch.zeros(n_members, 3, 2, dtype=F64),
        "2.weight": torch.zeros(n_members, 1, 3, dtype=F64),
    }


def _outputs_with_mse(mses):
    """Outputs ``(K, 4, 1)`` and zero targets whose mean squared error is ``mses[k]``."""
    out = torch.tensor(mses, dtype=F64).sqrt()[:, None, None].expand(-1, 4, 1).clone()
    return out.requires_grad_(True), torch.zeros(4, 1, dtype=F64)


def _phr(lam, rho, g):
    return (max(0.0, lam + rho * g) ** 2 - lam**2) / (2 * rho)


def test_the_hinge_is_the_default_and_states_carry_multipliers_only_for_the_lagrangian():
    assert FIT_CONSTRAINTS == ("hinge", AL)
    assert PathNormPenalty().fit_constraint == "hinge"
    params = _params()
    assert PathNormPenalty().init(params).multipliers is None
    state = PathNormPenalty(fit_constraint=AL).init(params)
    assert isinstance(state, PenaltyState)
    assert torch.equal(state.multipliers, torch.zeros(2, dtype=F64))
    spectral = SpectralPenalty(fit_constraint=AL).init(params)
    assert spectral.multipliers.shape == (2,)
    assert set(spectral.vectors) == {"0.weight", "2.weight"}


def test_the_hinge_is_bitwise_the_formula_it_always_was():
    params = _params()
    outputs, targets = _outputs_with_mse([0.7, 0.1])
    pen = PathNormPenalty(weight=0.0, fit_target=0.3, fit_weight=2.0)
    mse = (outputs - targets).square().mean(dim=-1).mean(dim=1)
    expected = 0.0 * pen._proxy(params, pen.init(params), None) + 2.0 * torch.relu(mse - 0.3)
    assert torch.equal(pen(params, None, outputs, targets=targets), expected)


@given(
    lam=st.floats(0, 5),
    rho=st.floats(0.01, 10),
    mse=st.floats(0, 2),
    target=st.floats(0, 1),
)
def test_the_lagrangian_term_is_the_phr_formula_and_the_multiplier_update(lam, rho, mse, target):
    params = _params(n_members=1)
    outputs, targets = _outputs_with_mse([mse])
    pen = PathNormPenalty(weight=0.0, fit_target=target, fit_weight=rho, fit_constraint=AL)
    state = pen.init(params)
    state.multipliers = torch.tensor([lam], dtype=F64)
    value = pen(params, None, outputs, state=state, targets=targets)
    g = float((outputs.detach() - targets).square().mean()) - target
    assert float(value.detach()[0]) == pytest.approx(_phr(lam, rho, g), rel=1e-9, abs=1e-12)
    assert float(state.multipliers[0]) == pytest.approx(max(0.0, lam + rho * g), rel=1e-12)
    assert not state.multipliers.requires_grad
    (grad,) = torch.autograd.grad(value.sum(), outputs)  # d/dMSE of the term: max(0, lam+rho g)
    d_mse = 2 * outputs.detach() / outputs.shape[1]
    expected = max(0.0, lam + rho * g) * d_mse
    torch.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-12)


def test_the_multiplier_grows_while_violated_and_stays_zero_while_met():
    params = _params()
    outputs, targets = _outputs_with_mse([0.8, 0.1])  # g = 0.5 and -0.2
    pen = PathNormPenalty(weight=0.0, fit_target=0.3, fit_weight=2.0, fit_constraint=AL)
    state = pen.init(params)
    seen = []
    for _ in range(4):
        pen(params, None, outputs, state=state, targets=targets)
        seen.append(state.multipliers.clone())
    expected = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]], dtype=F64)
    torch.testing.assert_close(torch.stack(seen), expected, rtol=1e-12, atol=1e-12)
    met, _ = _outputs_with_mse([0.1, 0.1])  # the first member now fits: its multiplier shrinks
    pen(params, None, met, state=state, targets=targets)
    assert state.multipliers.tolist() == pytest.approx([3.6, 0.0], rel=1e-12)


def test_multipliers_move_only_every_multiplier_every_calls():
    params = _params(n_members=1)
    outputs, targets = _outputs_with_mse([0.8])
    pen = PathNormPenalty(
        weight=0.0, fit_target=0.3, fit_weight=2.0, fit_constraint=AL, multiplier_every=3
    )
    state = pen.init(params)
    seen = []
    for _ in range(6):
        pen(params, None, outputs, state=state, targets=targets)
        seen.append(float(state.multipliers[0]))
    assert seen == pytest.approx([0.0, 0.0, 1.0, 1.0, 1.0, 2.0], rel=1e-12)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"fit_constraint": "lagrangian"}, "PathNormPenalty.fit_constraint"),
        ({"fit_constraint": "augmented_lagrangian"}, "now called 'augmented-lagrangian'"),
        ({"multiplier_every": 0}, "PathNormPenalty.multiplier_every"),
        ({"multiplier_every": 1.5}, "PathNormPenalty.multiplier_every"),
    ],
)
def test_bad_fit_constraint_options_name_the_field(options, match):
    with pytest.raises(ValidationError, match=match):
        PathNormPenalty(**options)


@pytest.fixture(scope="module")
def fit_problem():
    gen = torch.Generator().manual_seed(0)
    X = sample_inputs("sphere", 20, 5, generator=gen, dtype=F64)
    y = torch.sign(torch.randn(20, generator=gen, dtype=F64))
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(5, 32, 1)), seeds=[0, 1], dtype=F64)
    return ens, X, y


@pytest.mark.parametrize("cls", [PathNormPenalty, GradientPenalty])
def test_training_with_the_lagrangian_reaches_the_target_the_hinge_misses(cls, fit_problem):
    """A strong proxy holds the hinge's fit above the target; the multipliers push it down."""
    ens, X, y = fit_problem
    final = {}
    for constraint in FIT_CONSTRAINTS:
        penalty = cls(weight=1.0, fit_target=0.3, fit_weight=1.0, fit_constraint=constraint)
        opts = TrainOptions(optimizer=Adam(lr=1e-2), max_steps=500, penalty=penalty)
        final[constraint] = train_ensemble(ens, X, y, opts).record.final_loss
    assert (final["hinge"] > 0.33).all()
    assert (final[AL] <= 0.3 * 1.03).all()
