"""Tables: the slope fit recovers known slopes; the band table aggregates correctly."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustlaw.compare import band_table, fit_slope, slope_table
from robustlaw.errors import ValidationError


@given(
    slope=st.floats(-2, 2),
    intercepts=st.lists(st.floats(-3, 3), min_size=1, max_size=4),
)
def test_exact_power_laws_give_their_slope(slope, intercepts):
    x = np.array([3.0, 10.0, 30.0, 100.0])
    xs, ys, gs = [], [], []
    for g, a in enumerate(intercepts):
        xs += list(x)
        ys += list(np.exp(a) * x**slope)
        gs += [g] * len(x)
    fit = fit_slope(xs, ys, gs)
    assert fit["slope"] == pytest.approx(slope, abs=1e-9)
    assert fit["stderr"] == pytest.approx(0.0, abs=1e-6)
    assert fit["groups"] == len(intercepts)


def test_interval_matches_ordinary_least_squares():
    """With one group the fit is plain OLS: compare with scipy.stats.linregress."""
    from scipy import stats

    rng = np.random.default_rng(1)
    x = np.exp(rng.uniform(0, 5, 40))
    y = np.exp(0.3 - 0.5 * np.log(x) + 0.2 * rng.standard_normal(40))
    fit = fit_slope(x, y, [0] * 40)
    ref = stats.linregress(np.log(x), np.log(y))
    assert fit["slope"] == pytest.approx(ref.slope, rel=1e-10)
    assert fit["stderr"] == pytest.approx(ref.stderr, rel=1e-10)
    half = stats.t.ppf(0.975, 38) * ref.stderr
    assert fit["ci_low"] == pytest.approx(ref.slope - half, rel=1e-10)


def test_group_intercepts_are_removed():
    """Two groups with very different levels: a pooled fit would be biased, ours is not."""
    x = [1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0]
    y = [1e6 * v**-0.5 for v in x[:3]] + [1e-6 * v**-0.5 for v in x[3:]]
    assert fit_slope(x, y, [0, 0, 0, 1, 1, 1])["slope"] == pytest.approx(-0.5)
    assert fit_slope(x, y, [0] * 6)["slope"] < -1


def test_degenerate_fits_have_a_status():
    fit = fit_slope([5.0, 5.0, 5.0], [1.0, 2.0, 3.0], [0, 0, 0])
    assert fit["slope"] is None
    assert "does not vary" in fit["status"]
    fit = fit_slope([1.0, 2.0], [1.0, 0.5], [0, 0])
    assert fit["slope"] == pytest.approx(-1.0)
    assert fit["ci_low"] is None


def test_slope_table_detects_the_law_and_a_violation(make_rows):
    good = slope_table(make_rows(slope=-0.5), as_frame=False)
    lower = [r for r in good if r["y"] == "lip_lower"]
    assert {r["method"] for r in lower} == {"dense", "random"}
    assert all(r["slope"] == pytest.approx(-0.5, abs=0.05) for r in lower)
    assert all(r["law_in_ci"] for r in lower)
    bad = slope_table(make_rows(slope=-1.0), as_frame=False)
    assert not any(r["law_in_ci"] for r in bad)


def test_slope_table_skips_members_that_do_not_fit(rows):
    for r in rows:
        if r["method"] == "random" and r["density"] == 0.1:
            r["fit_below_noise"] = False
    table = slope_table(rows, as_frame=False)
    random_kept = next(
        r for r in table if (r["method"], r["x"], r["y"]) == ("random", "kept", "lip_lower")
    )
    assert random_kept["points"] == 2 * 2 * 3


def test_band_table_medians_and_ratios(rows):
    table = band_table(rows, as_frame=False)
    assert len(table) == 2 * (4 + 3)
    first = table[0]
    group = [
        r for r in rows
        if all(r[k] == first[k] for k in ("method", "density", "width", "n", "d"))
    ]  # fmt: skip
    assert first["members"] == 3
    assert first["lip_lower"] == pytest.approx(np.median([r["lip_lower"] for r in group]))
    assert first["ratio_nfp"] == pytest.approx(first["lip_lower"] / first["bound_nfp"])
    assert first["fit_share"] == 1.0


def test_tables_accept_frames_and_reject_bad_input(rows):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(rows)
    assert band_table(frame).shape[0] == len(band_table(rows, as_frame=False))
    with pytest.raises(ValidationError, match="empty"):
        band_table([])
    with pytest.raises(ValidationError, match="lack the columns"):
        band_table([{"method": "x"}])
    assert math.isclose(
        slope_table(frame)["slope"].iloc[0], slope_table(rows, as_frame=False)[0]["slope"]
    )
