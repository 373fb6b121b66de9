"""The parts of ``lor-scaling`` below a run: settings, the width grid, padded ensembles."""

import math
from dataclasses import fields

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlaw.bounds.deep import mlp_parameter_count
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import concat_members as _concat
from robustlaw.empirical.training import Adam, MaxSteps, TrainOptions, train_ensemble
from robustlaw.errors import UnknownNameError, ValidationError
from robustlaw.experiments.lor_scaling.ensembles import padded as _padded
from robustlaw.experiments.lor_scaling.measure import grouped_ks as _grouped_ks
from robustlaw.experiments.lor_scaling.record import LorScalingRecord
from robustlaw.experiments.lor_scaling.settings import LorScalingSettings, dense_widths
from robustlaw.experiments.lor_scaling.unit import Member, UnitContext
from robustlaw.experiments.registry import WorkUnit


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


@pytest.mark.parametrize(
    "entry",
    [
        ("snip", 16, 4, 0.1),  # four fields, not five
        ("imp", 16, 4, 0.1, 3.0),  # a method the settings do not run
        ("snip", 16, 8, 0.1, 3.0),  # an (n, d) they do not run
        ("snip", 16, 4, 0.2, 3.0),  # a density they do not run
        ("snip", 16, 4, 0.1, -1.0),
    ],
)
def test_bad_measured_information_gets_one_clear_error(entry):
    with pytest.raises(ValidationError):
        LorScalingSettings(sizes=((16, 4),), methods=("random", "snip"), densities=(0.3, 0.1),
                           mask_information=(entry,))  # fmt: skip
    with pytest.raises(ValidationError, match="once"):
        LorScalingSettings(sizes=((16, 4),), methods=("snip",), densities=(0.1,),
                           mask_information=(("snip", 16, 4, 0.1, 1.0),) * 2)  # fmt: skip


def test_records_charge_measured_information_where_given_and_the_ceiling_elsewhere():
    s = LorScalingSettings(sizes=((16, 4),), methods=("random", "snip"), densities=(0.3, 0.1),
                           mask_information=(("snip", 16, 4, 0.1, 2.5),))  # fmt: skip
    unit = WorkUnit(key="u", index=0, params={"n": 16, "d": 4, "dataset": 0})
    ctx = UnitContext(s, unit, "cpu")
    prunable, kept_w = 4 * 8 + 8, 10  # width 8: 40 weights, 9 biases never pruned
    lips = dict.fromkeys(f.name for f in fields(LorScalingRecord) if f.name.startswith("lip_"))
    got = {}
    for method, density in (("random", 0.1), ("snip", 0.1), ("snip", 0.3)):
        member = Member(role="search", method=method, density=density, seed=0, width=8)
        rec = ctx.record(member, kept_weights=kept_w, w_inf=1.0, mse=0.2, steps=1,
                         chosen=False, lipschitz=lips, dtype="float32")  # fmt: skip
        got[method, density] = (rec.mask_info_source, rec.mask_info_bits)
        assert rec.p_eff_informal == pytest.approx(kept_w + 9 + rec.mask_info_bits)
        b = math.log2(1 + 60 * rec.W * rec.J / s.eps)  # NFP Theorem 4's bits per kept entry
        assert rec.p_eff == pytest.approx(rec.mask_info_bits + (kept_w + 9) * b, rel=1e-9)
    assert got["random", 0.1] == ("zero", 0.0)
    assert got["snip", 0.1] == ("measured", 2.5)
    assert got["snip", 0.3][0] == "entropy-bound"
    assert got["snip", 0.3][1] == pytest.approx(math.log2(math.comb(prunable, kept_w)))
