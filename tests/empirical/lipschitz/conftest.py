"""Shared fixtures of the Lipschitz tests: seeded random networks and the LipSDP fixture."""

import os

import numpy as np
import pytest
import scipy.io
import torch


@pytest.fixture
def random_weights():
    """``make(sizes, seed, *, n_members=None, nonnegative=False)``: Gaussian weights (out, in),
    input to output; with ``n_members`` a stack of shape (n_members, out, in) per layer."""

    def make(sizes, seed, *, n_members=None, nonnegative=False):
        rng = np.random.default_rng(seed)
        lead = () if n_members is None else (n_members,)
        ws = [
            rng.standard_normal((*lead, b, a)) / np.sqrt(a)
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        return [np.abs(w) for w in ws] if nonnegative else ws

    return make


@pytest.fixture
def stack():
    """``make(k, m, n, seed)``: ``k`` standard Gaussian ``m x n`` float64 matrices, seeded."""

    def make(k, m, n, seed):
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(k, m, n, generator=gen, dtype=torch.float64)

    return make


@pytest.fixture
def fixture_net(lipsdp_fixtures):
    """The nonnegative 2-10-30-20-2 LipSDP example network; its constant is 36.4822296."""
    path = os.path.join(lipsdp_fixtures, "random_weights.mat")
    return [np.asarray(w, dtype=np.float64) for w in scipy.io.loadmat(path)["weights"].ravel()]
