"""Slopes: -1/2 recovered below p = nd, a bootstrap interval over datasets, the plateau beyond,
the flat control's slope 0, and the fitted constant of the law's reference line."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlaw.compare import fit_law_constant, scaling_points, scaling_slopes
from robustlaw.errors import ValidationError


def _by_nd(table):
    return {(r["n"], r["d"]): r for r in table}


def test_noiseless_rows_give_the_law_and_the_plateau_exactly(rows, law):
    table = _by_nd(scaling_slopes(rows, n_boot=200, as_frame=False))
    assert list(table) == [*law.SIZES, ("all", "all")]
    for r in table.values():
        assert r["slope"] == pytest.approx(-0.5, abs=1e-9)
        assert r["ci_low"] == pytest.approx(-0.5, abs=1e-9)
        assert r["ci_high"] == pytest.approx(-0.5, abs=1e-9)
        assert r["plateau"] == pytest.approx(law.PLATEAU, rel=1e-12)
        assert r["plateau_low"] == r["plateau_high"] == r["plateau"]
        assert (r["role"], r["status"], r["law_in_ci"]) == ("search", "ok", True)
    assert table[law.SIZES[0]]["points"] == 3 * len(law.DATASETS)  # p = nd/8, nd/4, nd/2
    assert table[("all", "all")]["datasets"] == len(law.SIZES) * len(law.DATASETS)


def test_noisy_rows_give_an_interval_around_the_law_that_excludes_zero(noisy_rows):
    pooled = scaling_slopes(noisy_rows, as_frame=False)[-1]
    assert pooled["ci_low"] < pooled["slope"] < pooled["ci_high"]
    assert pooled["ci_low"] < -0.5 < pooled["ci_high"]
    assert pooled["ci_high"] < 0
    assert pooled["slope"] != pytest.approx(-0.5, abs=1e-6)  # the noise is real


def test_the_flat_control_has_slope_zero(noisy_rows, law):
    for role in ("first-fit", "interpolation"):
        for r in scaling_slopes(noisy_rows, role=role, n_boot=100, as_frame=False):
            assert r["slope"] == pytest.approx(0.0, abs=1e-9)
            assert r["plateau"] == law.CONTROL
            assert r["law_in_ci"] is False


def test_the_interval_is_a_percentile_interval_over_datasets(law):
    """Two datasets with slopes -0.3 and -0.7 on the same p: a replicate draws both (-0.5),
    or one twice (-0.3 or -0.7, a quarter of the time each), so the 95% interval is [-0.7, -0.3]."""
    n, d = 16, 4
    rows = []
    for data, slope in ((0, -0.3), (1, -0.7)):
        for p in (8, 16, 32):
            lip = 2 * (p / (n * d)) ** slope
            rows.append(law.record(n=n, d=d, dataset=data, p=p, width=p, chosen=True,
                                   lip_certified=lip))  # fmt: skip
    (one, pooled) = scaling_slopes(rows, n_boot=2000, seed=3, as_frame=False)
    assert one["slope"] == pytest.approx(-0.5, abs=1e-12)
    assert (one["ci_low"], one["ci_high"]) == (pytest.approx(-0.7), pytest.approx(-0.3))
    assert (pooled["ci_low"], pooled["ci_high"]) == (one["ci_low"], one["ci_high"])


def test_bootstrap_is_reproducible_and_seeded(noisy_rows):
    first = scaling_slopes(noisy_rows, n_boot=300, seed=1, as_frame=False)
    assert scaling_slopes(noisy_rows, n_boot=300, seed=1, as_frame=False) == first
    other = scaling_slopes(noisy_rows, n_boot=300, seed=2, as_frame=False)
    assert other[-1]["slope"] == first[-1]["slope"]
    assert other[-1]["ci_low"] != first[-1]["ci_low"]


def test_one_dataset_has_a_slope_but_no_interval(law):
    rows = law.rows(datasets=(0,), pruned=False, built=False)
    for r in scaling_slopes(rows, as_frame=False):
        assert r["slope"] == pytest.approx(-0.5, abs=1e-9)
        assert r["ci_low"] is None
        assert "one dataset" in r["status"]


def test_the_slope_reads_only_p_below_nd_and_the_plateau_only_beyond(rows):
    before = scaling_slopes(rows, n_boot=50, as_frame=False)
    for r in rows:
        if r["method"] == "dense" and r["p"] >= r["n"] * r["d"] and r["lip_certified"]:
            r["lip_certified"] *= 7.0
    after = scaling_slopes(rows, n_boot=50, as_frame=False)
    for b, a in zip(before, after, strict=True):
        assert a["slope"] == b["slope"]
        assert a["plateau"] == pytest.approx(7 * b["plateau"])


def test_points_are_the_chosen_fits_per_dataset(rows, law):
    points = scaling_points(rows)
    n, d = law.SIZES[0]
    assert sorted(points[(n, d)]) == list(law.DATASETS)
    assert points[(n, d)][0][0] == (8.0, pytest.approx(2 * math.sqrt(8)))
    assert len(points[(n, d)][0]) == 6


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(1e-3, 1e3))
def test_slope_and_interval_do_not_depend_on_the_units_of_l(law, scale):
    rows = law.rows(noise=0.05, pruned=False, built=False)
    base = scaling_slopes(rows, n_boot=100, as_frame=False)
    scaled = [{**r, "lip_certified": r["lip_certified"] * scale} for r in rows]
    for b, s in zip(base, scaling_slopes(scaled, n_boot=100, as_frame=False), strict=True):
        for col in ("slope", "ci_low", "ci_high"):
            assert s[col] == pytest.approx(b[col], abs=1e-9)
        assert s["plateau"] == pytest.approx(b["plateau"] * scale, rel=1e-12)


def test_the_law_constant_is_the_constructed_one(rows, law):
    assert fit_law_constant(rows) == pytest.approx(law.SCALE, rel=1e-12)
    tripled = [{**r, "lip_certified": 3 * r["lip_certified"]} for r in rows]
    assert fit_law_constant(tripled) == pytest.approx(3 * law.SCALE, rel=1e-12)
    beyond = [r for r in rows if r["p"] >= r["n"] * r["d"]]
    assert fit_law_constant(beyond) is None


def test_bad_arguments_are_refused(rows):
    with pytest.raises(ValidationError, match="role"):
        scaling_slopes(rows, role="construction")
    with pytest.raises(ValidationError, match="n_boot"):
        scaling_slopes(rows, n_boot=0)
    with pytest.raises(ValidationError, match="level"):
        scaling_slopes(rows, level=1.0)


def test_no_fits_below_nd_is_a_status_not_an_error(rows):
    beyond = [r for r in rows if r["p"] >= r["n"] * r["d"]]
    pooled = scaling_slopes(beyond, as_frame=False)[-1]
    assert pooled["slope"] is None
    assert pooled["status"] == "no fits below the noise with p < nd"
    assert pooled["plateau"] == 2.0
