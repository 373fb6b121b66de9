"""Figures: one panel per method, the expected artists, files written non-empty."""

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from robustlaw.compare import band_figure, ratio_figure, slopes_figure
from robustlaw.io import save_figure


def _labels(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize("x", ["kept", "p_eff"])
def test_band_figure_has_a_band_the_bound_and_the_law_per_method(rows, x):
    fig = band_figure(rows, x=x)
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["dense", "random"]
    for ax in axes:
        assert ax.get_xscale() == "log"
        assert ax.get_yscale() == "log"
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2  # one per (n, d)
        labels = [ln.get_label() for ln in ax.get_lines()]
        assert sum("NFP bound" in t for t in labels) == 2
        assert sum("measured" in t for t in labels) == 2
        measured = [ln for ln in ax.get_lines() if "measured" in ln.get_label()]
        lows = sorted(r["lip_lower"] for r in rows if r["method"] == ax.get_title())
        ys = np.concatenate([ln.get_ydata() for ln in measured])
        assert lows[0] <= ys.min()
        assert ys.max() <= lows[-1]
    assert axes[0].get_xlabel().startswith("p = kept" if x == "kept" else "p_eff")
    assert axes[0].get_legend() is not None
    assert axes[1].get_legend() is None


def test_many_methods_wrap_into_rows_each_with_its_own_medians(rows):
    scales = {f"m{i}": 2.0**i for i in range(6)}
    more = [
        {**r, "method": m, "lip_lower": r["lip_lower"] * k, "lip_upper": r["lip_upper"] * k}
        for m, k in scales.items()
        for r in rows
        if r["method"] == "random"
    ]
    axes = band_figure(more).get_axes()
    assert [ax.get_title() for ax in axes] == list(scales)
    assert len({round(ax.get_position().y0, 3) for ax in axes}) == 2  # 4 + 2 panels
    for ax, k in zip(axes, scales.values(), strict=True):
        (measured, *_) = [ln for ln in ax.get_lines() if "measured" in ln.get_label()]
        group = [r for r in rows if r["method"] == "random" and (r["n"], r["d"]) == (64, 16)]
        kept = sorted({r["kept"] for r in group})
        medians = [np.median([r["lip_lower"] for r in group if r["kept"] == x]) for x in kept]
        np.testing.assert_allclose(measured.get_xdata(), kept)
        np.testing.assert_allclose(measured.get_ydata(), np.array(medians) * k, rtol=1e-12)


def test_band_figure_draws_on_given_axes(rows):
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert band_figure(rows, axes=axes) is fig
    assert axes[1].get_title() == "random"


def test_slopes_figure_shows_each_fit_and_the_law(rows):
    fig = slopes_figure(rows)
    (ax,) = fig.get_axes()
    assert len(ax.containers) == 4  # (lower, upper) x (kept, p_eff)
    assert any(ln.get_label() == "law: -1/2" and ln.get_ydata()[0] == -0.5 for ln in ax.get_lines())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dense", "random"]


def test_ratio_figure_has_a_line_per_method_and_the_unit_ratio(rows):
    fig = ratio_figure(rows)
    (ax,) = fig.get_axes()
    labels = _labels(ax)
    assert labels[:2] == ["dense", "random"]
    assert "bound (ratio 1)" in labels
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "random")
    assert list(line.get_xdata()) == [0.1, 0.25, 0.5]


def test_saved_files_are_real_png_and_pdf(rows, tmp_path):
    paths = save_figure(band_figure(rows), tmp_path / "band")
    assert [p.name for p in paths] == ["band.png", "band.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert all(p.stat().st_size > 5000 for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["band.pdf", "band.png"]


def test_figures_leave_global_style_alone(rows):
    before = dict(matplotlib.rcParams)
    band_figure(rows)
    assert dict(matplotlib.rcParams) == before
