"""Figures: the expected artists with the expected labels and data, one legend outside the
panels, no minor tick labels, no overlapping tick labels, the contradiction count."""

import math

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from robustlaw.compare import (
    ratio_figure,
    scaling_slopes,
    slope_figure,
    smallest_fit_figure,
    sparse_figure,
)
from robustlaw.errors import ValidationError
from robustlaw.io import save_figure

FIGURES = (smallest_fit_figure, slope_figure, sparse_figure, ratio_figure)


def _renderer(fig):
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _legend(fig):
    (legend,) = fig.legends
    return [t.get_text() for t in legend.get_texts()]


def _labelled(ax, label):
    handles, labels = ax.get_legend_handles_labels()
    return [h for h, text in zip(handles, labels, strict=True) if text == label]


@pytest.mark.parametrize("draw", FIGURES)
def test_one_legend_outside_every_panel(rows, draw):
    fig = draw(rows)
    renderer = _renderer(fig)
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert all(ax.get_legend() is None for ax in fig.axes)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent(renderer))
    assert box.x0 > max(ax.get_window_extent(renderer).x1 for ax in fig.axes)


@pytest.mark.parametrize("draw", FIGURES)
def test_no_minor_tick_labels_and_no_overlapping_major_ones(noisy_rows, draw):
    fig = draw(noisy_rows)
    renderer = _renderer(fig)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                assert isinstance(axis.get_minor_formatter(), NullFormatter)
            assert all(not t.get_text() for t in axis.get_minorticklabels())
        labels = [t for t in ax.xaxis.get_majorticklabels() if t.get_text()]
        assert len(labels) >= 2, ax.get_title()
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
        assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False))


def test_smallest_fit_figure_draws_the_chosen_fit_its_bracket_floor_and_reference(rows, law):
    for r in rows:
        if r["n"] == 32:  # k-condition holds; Gaussian inputs: no lower estimate on a support
            r["k_condition_bs"] = True
            r["lip_support"] = None
    fig = smallest_fit_figure(rows)
    (ax,) = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert "certified Lipschitz upper bound" in ax.get_title()
    assert "fits below the noise" in ax.get_title()
    assert ax.get_xlabel().startswith("p / (n d)")
    legend = _legend(fig)
    for text in (
        "n=16, d=4",
        "n=32, d=8",
        "Bubeck–Sellke floor at p (Theorem 3)",
        "Bubeck–Sellke floor at p (Theorem 3), k-condition fails",
        "p = nd",
        "construction: caps",
        "smallest certified upper bound over the search (median over datasets)",
        "control: first fit (Adam stopped at the first fit), certified upper bound",
    ):
        assert text in legend, text
    assert any("lower estimate of that net (bounds that net only" in t for t in legend)
    assert "c·sqrt(nd/p), c = 2 (fit at p < nd, slope -1/2)" in legend
    # n=16: the lower estimate on the sphere (a quarter); n=32: the global one (a third)
    for (n, d), k_fails, lower in zip(law.SIZES, (True, False), (4.0, 3.0), strict=True):
        (line,) = _labelled(ax, f"n={n}, d={d}: smallest certified upper bound")
        xs = np.array([1 / 8, 1 / 4, 1 / 2, 1, 2, 4])
        np.testing.assert_allclose(line.get_xdata(), xs)
        np.testing.assert_allclose(line.get_ydata(), np.maximum(2 / np.sqrt(xs), 2), rtol=1e-12)
        suffix = " (k-condition fails)" if k_fails else ""
        (floor,) = _labelled(ax, f"n={n}, d={d}: BS floor at p{suffix}")
        np.testing.assert_allclose(floor.get_ydata(), 1e-2 / np.sqrt(xs), rtol=1e-12)
        assert floor.get_linestyle() == (":" if k_fails else "--")
        (bracket,) = _labelled(ax, f"n={n}, d={d}: lower estimate of the chosen net")
        assert isinstance(bracket, LineCollection)
        segments = bracket.get_segments()
        assert len(segments) == 6
        np.testing.assert_allclose([s[1, 1] / s[0, 1] for s in segments], lower)  # cert/lower
    (hollow,) = _labelled(ax, "n=16, d=4: grouped-min-norm (hollow)")
    assert hollow.get_markerfacecolor() == "none"
    (filled,) = _labelled(ax, "n=16, d=4: caps")
    assert filled.get_markerfacecolor() != "none"
    (nd_line,) = _labelled(ax, "p = nd")
    assert list(nd_line.get_xdata()) == [1.0, 1.0]
    (ref,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("c·sqrt")]
    np.testing.assert_allclose(ref.get_ydata(), 2 / np.sqrt(ref.get_xdata()), rtol=1e-12)
    assert ref.get_xdata().max() == pytest.approx(1.0)


def test_slope_figure_shows_search_and_control_with_the_references(noisy_rows):
    fig = slope_figure(noisy_rows, n_boot=200)
    left, right = fig.axes
    assert [t.get_text() for t in left.get_xticklabels()] == ["n=16\nd=4", "n=32\nd=8", "pooled"]
    assert [c.get_label() for c in left.containers] == ["search", "first-fit"]
    search = scaling_slopes(noisy_rows, n_boot=200, as_frame=False)
    data = left.containers[0].lines[0].get_ydata()
    np.testing.assert_allclose(data, [r["slope"] for r in search])
    np.testing.assert_allclose(left.containers[1].lines[0].get_ydata(), 0.0, atol=1e-9)
    (law,) = _labelled(left, "law: -1/2")
    assert list(law.get_ydata()) == [-0.5, -0.5]
    (zero,) = _labelled(left, "slope 0")
    assert list(zero.get_ydata()) == [0.0, 0.0]
    plateaus = right.containers[0].lines[0].get_ydata()
    np.testing.assert_allclose(plateaus, [r["plateau"] for r in search])
    np.testing.assert_allclose(right.containers[1].lines[0].get_ydata(), 4.0)
    assert right.get_yscale() == "log"
    assert "law: slope -1/2 (p < nd)" in _legend(fig)


def test_sparse_figure_has_three_units_per_size(rows, law):
    fig = sparse_figure(rows)
    axes = fig.axes
    assert len(axes) == 3 * len(law.SIZES)
    labels = [ax.get_xlabel() for ax in axes[:3]]
    assert labels[0].startswith("kept / (n d)")
    assert all("bits" in text for text in labels[1:])
    n, d = law.SIZES[0]
    kept, informal, peff = axes[:3]
    for ax in axes:
        texts = ax.get_legend_handles_labels()[1]
        assert {"dense", "random", "imp"} <= set(texts)
    (imp,) = _labelled(kept, "imp")
    (rand,) = _labelled(kept, "random")
    assert (imp.get_marker(), imp.get_markerfacecolor()) == ("s", "none")
    assert rand.get_marker() == "o"
    np.testing.assert_allclose(rand.get_xdata(), [26 / 64, 128 / 64])
    np.testing.assert_allclose(rand.get_ydata(), [2 * math.sqrt(64 / 26), 2.0], rtol=1e-12)
    (dense,) = _labelled(peff, "dense")
    np.testing.assert_allclose(dense.get_xdata(), 20 * np.array([1 / 8, 1 / 4, 1 / 2, 1, 2, 4]))
    assert _labelled(kept, "BS floor at p = kept (k-condition fails)")
    assert not any("NFP" in t for t in kept.get_legend_handles_labels()[1])
    for ax in (informal, peff):
        assert _labelled(ax, "imp: NFP floor at p_eff (k-condition fails)")
    assert "data-dependent" in " ".join(_legend(fig))
    # the legend says where each method's mask bits come from
    assert "imp (data-dependent; mask bits: log2 binom bound)" in _legend(fig)
    assert "random (data-independent; mask bits: 0)" in _legend(fig)


def test_sparse_figure_without_pruned_nets_says_so(law):
    fig = sparse_figure(law.rows(pruned=False))
    assert len(fig.axes) == 3
    assert [t.get_text() for t in fig.axes[0].texts] == ["no pruned nets in these results"]


def test_ratio_figure_counts_only_certified_fits_under_the_floor(rows):
    chosen = [r for r in rows if r["chosen"]]
    for r in chosen[:2]:  # certified fits under the floor: contradictions
        r["bound_bs"] = 10 * r["lip_certified"]
    chosen[2]["lip_lower"] = chosen[2]["bound_bs"] / 100  # a lower estimate: no contradiction
    chosen[3]["bound_bs"] = 10 * chosen[3]["lip_certified"]
    chosen[3]["fit_below_noise"] = False  # not a fit below the noise: not counted at all
    fits = [r for r in chosen if r["fit_below_noise"]]
    ratios = [
        r["lip_certified"] / (r["bound_bs"] if r["method"] == "dense" else r["bound_nfp"])
        for r in fits
    ]
    below = sum(v < 1 for v in ratios)
    assert below == 2
    fig = ratio_figure(rows)
    assert fig.get_suptitle().startswith(f"Certified upper bound / floor: {below} of {len(fits)}")
    dense, pruned = fig.axes
    assert pruned.get_xlabel().startswith("p_eff / (n d)")
    drawn = np.concatenate(
        [ln.get_ydata() for ax in fig.axes for ln in ax.get_lines() if ": " in ln.get_label()]
    )
    np.testing.assert_allclose(np.sort(drawn), np.sort(ratios))
    (one,) = _labelled(dense, "ratio 1")
    assert list(one.get_ydata()) == [1.0, 1.0]
    assert dense.get_yscale() == "log"


def test_figures_draw_on_given_axes_and_refuse_too_few(rows):
    fig = Figure()
    ax = fig.add_subplot()
    assert smallest_fit_figure(rows, ax=ax) is fig
    assert ax.get_xscale() == "log"
    fig2 = Figure()
    axes = fig2.subplots(1, 2)
    assert slope_figure(rows, n_boot=20, axes=axes) is fig2
    with pytest.raises(ValidationError, match="at least 2 axes"):
        slope_figure(rows, n_boot=20, axes=axes[:1])


def test_saved_files_are_real_png_and_pdf(rows, tmp_path):
    paths = save_figure(smallest_fit_figure(rows), tmp_path / "smallest")
    assert [p.name for p in paths] == ["smallest.png", "smallest.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert all(p.stat().st_size > 5000 for p in paths)


def test_figures_leave_global_style_alone(rows):
    before = dict(matplotlib.rcParams)
    for draw in FIGURES:
        draw(rows)
    assert dict(matplotlib.rcParams) == before
