"""Training refuses inputs that do not fit and reports members that diverge."""

import logging

import numpy as np
import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, forward, init_mlp_ensemble
from robustlaw.empirical.training import (
    DIVERGENCE_FACTOR,
    SGD,
    Adam,
    TrainOptions,
    train_ensemble,
    train_params,
)
from robustlaw.errors import ValidationError

ENS = init_mlp_ensemble(MLPSpec(layer_sizes=(4, 16, 1)), seeds=[0, 1])
X = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
Y = torch.ones(8)


@pytest.mark.parametrize("shape", [(8, 5), (8, 3), (3, 8, 4), (8,)])
def test_wrong_feature_count_is_a_validation_error(shape):
    # was a raw RuntimeError from bmm
    bad = torch.zeros(shape)
    with pytest.raises(ValidationError, match=r"^X must have shape \(n_samples, 4\)"):
        train_ensemble(ENS, bad, torch.ones(shape[-2] if len(shape) > 1 else 8))
    with pytest.raises(ValidationError, match=r"^x must have shape"):
        ENS(bad)
    with pytest.raises(ValidationError, match=r"^x must have shape"):
        forward(ENS.spec, ENS.params, None, bad)


def test_train_params_names_x_when_the_model_does_not_fit():
    with pytest.raises(ValidationError, match=r"^X of shape \(8, 5\) does not fit"):
        train_params(ENS.apply, ENS.params, ENS.masks, torch.zeros(8, 5), Y, seeds=[0, 1])


@pytest.mark.parametrize("optimizer", [SGD(lr=(1e6, 1e-2)), Adam(lr=(1e6, 1e-2))])
def test_diverging_member_is_flagged_frozen_and_logged(optimizer, caplog):
    # lr=1e6 drove the loss to ~1e21 with no word
    with caplog.at_level(logging.WARNING, logger="robustlaw.empirical.training"):
        res = train_ensemble(ENS, X, Y, TrainOptions(optimizer=optimizer, max_steps=50))
    rec = res.record
    assert rec.diverged.tolist() == [True, False]
    assert rec.diverged.dtype == np.bool_
    assert rec.n_steps[0] < 50 and rec.n_steps[1] == 50  # noqa: PT018
    assert rec.rule_met.tolist() == [False, True]
    assert not np.isfinite(rec.final_loss[0]) or rec.final_loss[0] > DIVERGENCE_FACTOR
    assert "members [0] diverged" in caplog.text
    # frozen: the member's parameters after training equal those at its last update
    again = train_ensemble(
        ENS, X, Y, TrainOptions(optimizer=optimizer, max_steps=int(rec.n_steps[0]))
    )
    for k, v in res.params.items():
        assert torch.equal(v[0], again.params[k][0])


def test_nan_loss_counts_as_diverged():
    res = train_ensemble(ENS, X, Y, TrainOptions(optimizer=SGD(lr=1e30), max_steps=20))
    assert res.record.diverged.all()
    assert (res.record.n_steps < 20).all()


def test_stable_runs_report_no_divergence():
    res = train_ensemble(ENS, X, Y, TrainOptions(optimizer=Adam(lr=1e-2), max_steps=30))
    assert not res.record.diverged.any()
    assert res.record.n_steps.tolist() == [30, 30]
