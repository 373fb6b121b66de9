import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

import synthetic_experiment  # noqa: E402

from robustlaw.experiments import EXPERIMENTS  # noqa: E402


@pytest.fixture
def synthetic(monkeypatch):
    """The synthetic experiment, registered for one test."""
    monkeypatch.setitem(EXPERIMENTS, "synthetic", synthetic_experiment.EXPERIMENT)
    return synthetic_experiment
