"""Shared builders for the pruning tests."""

import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning._context import PruneContext
from robustlaw.empirical.pruning._data import prepare_scoring_data
from robustlaw.empirical.pruning.plan import prunable_names


def make_context(ens, options, *, densities=None, seeds=None, data=None, loss="mse", **kw):
    """A PruneContext over all members of ``ens`` (every weight prunable by default)."""
    k = ens.n_members
    scoring = None
    if data is not None:
        scoring = prepare_scoring_data(data, loss=loss, ensemble=ens)
    return PruneContext(
        ensemble=ens,
        names=kw.pop("names", prunable_names(ens.spec)),
        densities=tuple(densities or [0.5] * k),
        seeds=tuple(seeds or range(k)),
        options=options,
        scope=kw.pop("scope", "global"),
        invert=kw.pop("invert", False),
        data=scoring,
        **kw,
    )


@pytest.fixture
def context():
    return make_context


@pytest.fixture
def small_ensemble():
    def build(sizes=(6, 10, 8, 3), k=2, dtype=torch.float64, bias=True, seed0=0):
        return init_mlp_ensemble(
            MLPSpec(layer_sizes=sizes, bias=bias), seeds=range(seed0, seed0 + k), dtype=dtype
        )

    return build


@pytest.fixture
def classification_data():
    def build(n_per_class=12, n_features=6, n_classes=3, seed=0):
        gen = torch.Generator().manual_seed(seed)
        y = torch.arange(n_classes).repeat_interleave(n_per_class)
        y = y[torch.randperm(len(y), generator=gen)]
        x = torch.randn(len(y), n_features, generator=gen, dtype=torch.float64) + y[:, None]
        return x, y

    return build
