"""The parts of ``lor-scaling`` below a run: settings, the width grid, padded ensembles."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlaw.bounds.deep import mlp_parameter_count
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.training import Adam, MaxSteps, TrainOptions, train_ensemble
from robustlaw.errors import UnknownNameError, ValidationError
from robustlaw.experiments.lor_scaling.ensembles import concat as _concat
from robustlaw.experiments.lor_scaling.ensembles import padded as _padded
from robustlaw.experiments.lor_scaling.measure import grouped_ks as _grouped_ks
from robustlaw.experiments.lor_scaling.settings import LorScalingSettings, dense_widths


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(8, 2000),
    d=st.integers(2, 200),
    depth=st.integers(1, 3),
    count=st.integers(2, 12),
)
def test_dense_widths_cover_the_parameter_range(n, d, depth, count):
    penalty = "two-layer-operator" if depth == 1 else "spectral"
    s = LorScalingSettings(sizes=((n, d),), depth=depth, n_widths=count, search_penalty=penalty)
    widths = dense_widths(s, n, d)
    assert list(widths) == sorted(set(widths))
    assert 1 <= len(widths) <= count

    def p_of(k):
        return mlp_parameter_count((d, *[k] * depth, 1), bias=True)

    # the first and last widths are within one unit of the range's ends
    assert p_of(widths[-1] - 1) < 4.0 * n * d < p_of(widths[-1] + 1)
    assert widths[0] == 1 or p_of(widths[0] - 1) < 0.5 * n < p_of(widths[0] + 1)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 5000), d=st.integers(2, 500), count=st.integers(1, 8))
def test_grouped_ks_lie_in_the_theorem_range(n, d, count):
    ks = _grouped_ks(n, d, count)
    assert ks == sorted(set(ks))
    assert ks[-1] == (n if count > 1 else ks[0])
    assert ks[0] == min(n, max(1, math.ceil(n * math.log(n) / d)))
    assert len(ks) <= count


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"sizes": ()}, ValidationError),
        ({"sizes": ((10,),)}, ValidationError),
        ({"sizes": ((10, 4), (10, 4))}, ValidationError),
        ({"datasets": (0, 0)}, ValidationError),
        ({"inputs": "cube"}, ValidationError),
        ({"depth": 2}, ValidationError),  # the two-layer proxy needs depth 1
        ({"search_penalty": "l2"}, ValidationError),
        ({"methods": ("nope",)}, UnknownNameError),
        ({"densities": (1.0,)}, ValidationError),
        ({"eps": 0.9, "fit_slack": 0.1}, ValidationError),
        ({"constructions": ("spline",)}, ValidationError),
        ({"lower_method": "spectral"}, ValidationError),
        ({"search_weights": ()}, ValidationError),
    ],
)
def test_bad_settings_get_one_clear_error(change, error):
    with pytest.raises(error):
        LorScalingSettings(**{"sizes": ((16, 4),), **change})


def test_deeper_nets_take_the_spectral_proxy():
    s = LorScalingSettings(sizes=((16, 4),), depth=2, search_penalty="spectral")
    assert all(mlp_parameter_count((4, k, k, 1), bias=True) > 0 for k in dense_widths(s, 16, 4))


@pytest.mark.parametrize("depth", [1, 2])
def test_padded_nets_compute_and_train_as_the_narrow_ones(depth):
    """Zero-padding to a common width changes nothing: outputs, training, kept counts."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(20, 5, generator=gen, dtype=torch.float64)
    y = torch.sign(torch.randn(20, generator=gen, dtype=torch.float64))
    parts = [
        init_mlp_ensemble(MLPSpec(layer_sizes=(5, *[k] * depth, 1)), [0, 1], dtype=torch.float64)
        for k in (3, 7)
    ]
    wide = _concat([_padded(e, 9) for e in parts])
    narrow_out = torch.cat([e(X) for e in parts])
    torch.testing.assert_close(wide(X), narrow_out, rtol=0, atol=1e-12)
    options = TrainOptions(optimizer=Adam(lr=1e-2), stopping=MaxSteps(), max_steps=50)
    trained_wide = train_ensemble(wide, X, y, options).to_ensemble(wide)
    trained = [train_ensemble(e, X, y, options).to_ensemble(e) for e in parts]
    torch.testing.assert_close(
        trained_wide(X), torch.cat([e(X) for e in trained]), rtol=1e-9, atol=1e-9
    )
    kept = sum(m.sum(dim=(1, 2)) for m in trained_wide.masks.values())
    expected = [mlp_parameter_count((5, *[k] * depth, 1)) for k in (3, 3, 7, 7)]
    assert kept.tolist() == expected
    for key, value in trained_wide.params.items():
        if key in trained_wide.masks:
            assert (value[~trained_wide.masks[key]] == 0).all()
