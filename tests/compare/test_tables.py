"""Tables: the slope fit recovers known slopes; the smallest-fit table takes the chosen fits
over datasets, fits below the noise only, and flags only certified values under a floor."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlaw.compare import (
    COLUMNS,
    construction_table,
    fit_slope,
    format_table,
    smallest_fit_table,
)
from robustlaw.errors import ValidationError


def _row(table, **key):
    (hit,) = [r for r in table if all(r[k] == v for k, v in key.items())]
    return hit


def test_fixture_rows_are_lor_scaling_records(rows):
    """The fixture has exactly the record's fields, and compare reads only record fields."""
    from robustlaw.experiments.lor_scaling.record import LorScalingRecord

    fields = {f.name for f in dataclasses.fields(LorScalingRecord)}
    assert set(rows[0]) == fields
    assert set(COLUMNS) <= fields


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


def test_smallest_fit_table_takes_the_chosen_fit_of_every_dataset(rows, law):
    table = smallest_fit_table(rows, as_frame=False)
    assert len(table) == len(law.SIZES) * (6 + 2 * 2)
    assert [r["method"] for r in table[:7]] == ["dense"] * 6 + ["imp"]
    n, d = law.SIZES[0]
    for p in (8, 16, 32):
        row = _row(table, n=n, d=d, method="dense", p=p)
        expected = 2 * math.sqrt(n * d / p)
        assert row["lip_certified"] == pytest.approx(expected, rel=1e-12)
        assert row["lip_certified_min"] == row["lip_certified_max"] == row["lip_certified"]
        assert row["lip_lower"] == pytest.approx(expected / 3)
        assert row["lip_support"] == pytest.approx(expected / 4)
        assert (row["datasets"], row["fit_datasets"], row["fit_share"]) == (3, 3, 1.0)
        assert row["first_fit_certified"] == row["interpolation_certified"] == law.CONTROL
        assert row["floor"] == "BS at p"
        assert row["ratio"] == pytest.approx(expected / row["bound_bs"])
        assert row["contradicts"] is False
    pruned = _row(table, n=n, d=d, method="imp", density=0.1)
    assert pruned["floor"] == "NFP at p_eff"
    assert pruned["ratio"] == pytest.approx(pruned["lip_certified"] / pruned["bound_nfp"])
    assert pruned["p_eff_informal"] == pytest.approx(1.5 * pruned["kept"])


def test_spread_over_datasets_is_reported(noisy_rows, law):
    row = smallest_fit_table(noisy_rows, as_frame=False)[0]
    values = sorted(
        r["lip_certified"]
        for r in noisy_rows
        if r["chosen"] and r["method"] == "dense" and (r["n"], r["p"]) == (row["n"], row["p"])
    )
    assert len(values) == len(law.DATASETS)
    assert (row["lip_certified_min"], row["lip_certified"], row["lip_certified_max"]) == (
        pytest.approx(values[0]),
        pytest.approx(values[1]),
        pytest.approx(values[2]),
    )


def test_members_that_do_not_fit_never_enter_a_median(rows, law):
    record = law.record
    before = smallest_fit_table(rows, as_frame=False)[0]
    key = {k: before[k] for k in ("n", "d", "method", "p")} | {"width": before["p"]}
    tiny = dict(lip_certified=1e-9, lip_upper=1e-9, lip_lower=1e-9, fit_below_noise=False)
    rows += [
        record(**key, **tiny, role="search", search_weight=100.0, chosen=False),
        record(**key, **tiny, role="search", search_weight=100.0, chosen=True, dataset=1),
        record(**key, **tiny, role="first-fit"),
        record(**key, **tiny, role="interpolation", dataset=2),
    ]
    after = smallest_fit_table(rows, as_frame=False)[0]
    for col in ("lip_certified", "lip_certified_min", "lip_lower", "first_fit_certified",
                "interpolation_certified", "ratio"):  # fmt: skip
        assert after[col] == before[col], col
    assert after["fit_share"] == pytest.approx(9 / 11)


def test_only_a_certified_value_under_the_floor_contradicts(rows, law):
    n, _ = law.SIZES[0]

    def at(rows, dataset, p=16):
        key = (n, dataset, p, "dense")
        return next(
            r for r in rows if r["chosen"] and (r["n"], r["dataset"], r["p"], r["method"]) == key
        )

    lower = at(rows, 0)
    lower["lip_lower"] = lower["lip_support"] = lower["bound_bs"] / 10
    table = smallest_fit_table(rows, as_frame=False)
    assert not any(r["contradicts"] for r in table)
    assert _row(table, n=n, method="dense", p=16)["lip_lower"] > lower["bound_bs"]  # median
    certified = at(rows, 2)
    certified["lip_certified"] = certified["bound_bs"] / 2
    table = smallest_fit_table(rows, as_frame=False)
    assert [r["p"] for r in table if r["contradicts"]] == [16]
    assert _row(table, n=n, method="dense", p=16)["lip_certified_min"] == certified["lip_certified"]
    certified["fit_below_noise"] = False  # not a fit below the noise: no contradiction
    assert not any(r["contradicts"] for r in smallest_fit_table(rows, as_frame=False))


@settings(max_examples=15, deadline=None)
@given(order=st.randoms(use_true_random=False))
def test_table_does_not_depend_on_row_order(law, order):
    rows = law.rows(noise=0.05, sizes=law.SIZES[:1], pruned=False)
    expected = smallest_fit_table(rows, as_frame=False)
    order.shuffle(rows)
    assert smallest_fit_table(rows, as_frame=False) == expected


def test_construction_table_separates_fits_from_failures(rows):
    table = construction_table(rows, as_frame=False)
    assert [(r["method"], r["n"]) for r in table] == [
        ("caps", 16), ("grouped-min-norm", 16), ("caps", 32), ("grouped-min-norm", 32)
    ]  # fmt: skip
    caps, grouped = table[:2]
    assert (caps["fit_share"], caps["conditions_share"], caps["stated"]) == (1.0, 1.0, 2.0)
    assert caps["lip_certified"] == 3.0
    assert caps["ratio"] == pytest.approx(3.0 / 5e-3)
    assert caps["p"] == 4 * 16 * 4
    assert (grouped["fit_share"], grouped["conditions_share"]) == (0.0, 0.0)
    assert grouped["lip_certified"] is None
    assert grouped["ratio"] is None
    assert grouped["contradicts"] is False
    for r in rows:
        if r["role"] == "construction" and r["method"] == "caps":
            r["bound_bs"] = 10.0
    assert [r["contradicts"] for r in construction_table(rows, as_frame=False)] == [
        True, False, True, False
    ]  # fmt: skip


def test_tables_accept_frames_and_reject_bad_input(rows):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(rows)
    assert smallest_fit_table(frame).to_dict("records") == smallest_fit_table(rows).to_dict(
        "records"
    )
    with pytest.raises(ValidationError, match="empty"):
        smallest_fit_table([])
    with pytest.raises(ValidationError, match="lack the columns"):
        construction_table([{"method": "x"}])
    no_constructions = [r for r in rows if r["role"] != "construction"]
    assert construction_table(no_constructions, as_frame=False) == []


def test_format_table_aligns_and_marks_missing_values():
    text = format_table([{"a": 1, "b": 0.123456}, {"a": 22, "b": None}], ["a", "b"])
    assert text.splitlines() == ["a   b", "1   0.1235", "22  -"]


def test_weights_in_the_fixture_make_one_chosen_member_per_dataset(rows, law):
    chosen = [r for r in rows if r["chosen"]]
    assert len(chosen) * len(law.WEIGHTS) == sum(r["role"] == "search" for r in rows)
