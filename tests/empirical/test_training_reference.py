"""Training with the options by part reproduces the pre-redesign results bit for bit.

``fixtures/training_reference.npz`` was written by ``fixtures/make_training_reference.py`` with
the original flat ``TrainOptions``; each case below is the same training in the new API.
"""

import importlib.util
import math
import os

import numpy as np
import pytest

from robustlaw.empirical.training import (
    MSE,
    SGD,
    Adam,
    BelowNoise,
    Converged,
    CrossEntropy,
    GaussianGradientNoise,
    Logistic,
    Memorized,
    TrainOptions,
    train_ensemble,
)

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "make_training_reference", os.path.join(HERE, "fixtures", "make_training_reference.py")
)
REFERENCE = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(REFERENCE)

NEW_OPTIONS = {
    "adam-full-below-noise": TrainOptions(
        optimizer=Adam(lr=1e-2), stopping=BelowNoise(noise_level=1.0, eps=0.5), max_steps=400
    ),
    "sgd-momentum-minibatch-noise": TrainOptions(
        optimizer=SGD(lr=0.05, momentum=0.9),
        batch_size=5,
        gradient_noise=GaussianGradientNoise(std=0.1),
        max_steps=60,
    ),
    "cross-entropy-memorized": TrainOptions(
        optimizer=Adam(lr=3e-2), loss=CrossEntropy(), stopping=Memorized(), max_steps=300
    ),
    "adam-converged": TrainOptions(
        optimizer=Adam(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
        stopping=Converged(tol=1e-3, window=5),
        check_every=3,
        max_steps=500,
    ),
    "sgd-per-member-lr": TrainOptions(
        optimizer=SGD(lr=(0.01, 0.05, 0.1)), max_steps=40, check_every=7
    ),
    "adam-per-member-lr-elementwise": TrainOptions(
        optimizer=Adam(lr=tuple(0.002 * (i + 1) for i in range(10))),
        loss=MSE(fit_margin=0.5),
        stopping="memorized",  # a part by name: Memorized()
        max_steps=30,
    ),
    "logistic-snapshots-minibatch": TrainOptions(
        optimizer=Adam(lr=1e-2),
        loss=Logistic(fit_margin=0.2),
        stopping=Memorized(),
        batch_size=8,
        max_steps=30,
        snapshot_steps=(0, 25),
    ),
}


@pytest.fixture(scope="module")
def reference():
    with np.load(os.path.join(HERE, "fixtures", "training_reference.npz")) as z:
        return {k: z[k] for k in z.files}


def test_every_reference_case_is_covered():
    assert set(NEW_OPTIONS) == set(REFERENCE.CASES)
    assert math.isclose(NEW_OPTIONS["adam-full-below-noise"].stopping.eps, 0.5)


@pytest.mark.parametrize("case", list(REFERENCE.CASES))
def test_bitwise_equal_to_reference(case, reference):
    problem, _ = REFERENCE.CASES[case]
    ens, X, y = REFERENCE.make_problem(problem)
    got = REFERENCE.flatten(train_ensemble(ens, X, y, NEW_OPTIONS[case]))
    expected = {k.split("/", 1)[1]: v for k, v in reference.items() if k.startswith(case + "/")}
    assert set(got) == set(expected)
    for key, want in expected.items():
        assert got[key].dtype == want.dtype, key
        assert np.array_equal(got[key], want), key
