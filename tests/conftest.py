"""Test-suite settings: strictness lives here, never in library code."""

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")


@pytest.fixture(scope="session")
def lipsdp_fixtures():
    """The LipSDP example weights beside the checkout; skip when the folder is absent."""
    path = os.path.join(SHARED, "fixtures", "lipsdp")
    if not os.path.isdir(path):
        pytest.skip("../shared/fixtures/lipsdp is not beside this checkout")
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny tensors run far faster on one thread than with two threads fighting over 2 cores.

    The bounds tests run without torch (CI checks that in a torch-free venv): then do nothing.
    """
    try:
        import torch
    except ModuleNotFoundError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
