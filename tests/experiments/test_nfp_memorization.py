"""``nfp-memorization`` (No Free Prune Fig. 1a) end to end at the tiny preset.

The memorized fractions are recomputed from the recorded per-example losses, the kept counts
from the counting rules (METHODS.md §1, §3.7), and one member is retrained alone.
"""

import json
import math
from collections import defaultdict
from dataclasses import replace

import numpy as np
import pytest
import torch

from robustlaw.cli import main
from robustlaw.empirical.pruning import PrunePlan, n_keep_for_density, prune
from robustlaw.empirical.training import train_ensemble
from robustlaw.errors import ValidationError
from robustlaw.experiments import WorkUnit, get_experiment, load, run, settings_hash
from robustlaw.experiments.nfp_memorization.figures import memorization_figure
from robustlaw.experiments.nfp_memorization.measure import (
    draw_data,
    init_networks,
    measure,
    train_options,
)
from robustlaw.experiments.nfp_memorization.record import STOP_REASONS
from robustlaw.experiments.nfp_memorization.settings import MemorizationSettings

EXP = get_experiment("nfp-memorization")
TINY = EXP.preset("tiny")
PINNED_TINY_HASH = "2f3a80c26bb89ddc"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("nfp-memorization") / "results.sqlite"
    run("nfp-memorization", "tiny", store=path, device="cpu", threads=1, progress=False)
    return path


@pytest.fixture(scope="module")
def rows(store):
    return load(store, "nfp-memorization", as_frame=False)


def _fractions(rows, method, exponent):
    """Memorized fractions of one method at one exponent, by seed."""
    return {r["seed"]: r["memorized_fraction"] for r in rows
            if r["method"] == method and r["exponent"] == exponent}  # fmt: skip


def test_one_row_per_seed_method_and_density(rows):
    keys = [(r["seed"], r["method"], r["exponent"]) for r in rows]
    assert len(keys) == len(set(keys)) == TINY.n_seeds * len(TINY.methods) * len(TINY.exponents)
    assert {r["method"] for r in rows} == set(TINY.methods)
    for r in rows:
        assert r["target_density"] == pytest.approx(0.8 ** r["exponent"], rel=1e-12)
        assert r["stop_reason"] in STOP_REASONS


def test_imp_memorizes_more_than_random_at_the_highest_sparsity(rows):
    """NFP Fig. 1a: the IMP ticket keeps memorizing where a random mask of the same density
    cannot (paired by seed: same data, same initialization)."""
    top = max(TINY.exponents)
    imp, rand = _fractions(rows, "imp", top), _fractions(rows, "random", top)
    assert len(imp) == len(rand) >= 16
    diff = np.array([imp[s] - rand[s] for s in imp])
    assert diff.mean() > 0.3
    assert diff.mean() > 3 * diff.std(ddof=1) / math.sqrt(len(diff))


def test_every_curve_falls_with_sparsity(rows):
    """All methods memorize (almost) everything at the lowest tiny sparsity and no method
    memorizes more at the highest."""
    low, high = min(TINY.exponents), max(TINY.exponents)
    for method in TINY.methods:
        first = np.mean(list(_fractions(rows, method, low).values()))
        last = np.mean(list(_fractions(rows, method, high).values()))
        assert first >= 0.95, method
        assert last <= first, method


def test_memorized_fraction_is_recomputed_from_the_recorded_losses(rows):
    for r in rows:
        losses = np.array(json.loads(r["example_losses"]))
        assert losses.shape == (r["n_samples"],)
        assert r["fit_margin"] == math.log(2) / 10
        assert r["memorized_fraction"] == np.mean(losses <= r["fit_margin"])
        assert r["train_loss"] == pytest.approx(losses.mean(), rel=1e-12)
        # a memorized example (cross-entropy <= ln(2)/10 < ln 2) is classified correctly
        assert r["train_accuracy"] >= r["memorized_fraction"]


def test_kept_counts_follow_the_counting_rules(rows):
    """One-shot methods keep ``N - ceil((1 - 0.8^j) N)``; IMP's level j keeps ``R_j`` with
    ``R_{j+1} = R_j - ceil(0.2 R_j)``."""
    n = 30 * 64 + 64 * 64 + 64 * 2
    imp_counts = [n]
    for _ in range(max(TINY.exponents)):
        imp_counts.append(imp_counts[-1] - math.ceil(0.2 * imp_counts[-1] - 1e-9))
    for r in rows:
        assert r["prunable_weights"] == n
        j = r["exponent"]
        want = imp_counts[j] if r["method"] == "imp" else n_keep_for_density(0.8**j, n)
        assert r["kept_weights"] == want, (r["method"], j)
        assert r["density"] == r["kept_weights"] / n


def test_steps_are_whole_epochs(rows):
    cap = TINY.max_epochs * TINY.epoch_steps
    for r in rows:
        assert 0 < r["n_steps"] <= cap
        assert r["n_steps"] % TINY.epoch_steps == 0  # the rule is checked once per epoch
        assert (r["stop_reason"] == "step-cap") <= (r["n_steps"] == cap)


def test_seeds_draw_independent_data_and_reproduce():
    X, y = draw_data(TINY, [0, 1, 2])
    assert not torch.equal(X[0], X[1])
    assert not torch.equal(y[0], y[1])
    alone_X, alone_y = draw_data(TINY, [2])  # a seed's data do not depend on its unit
    assert torch.equal(alone_X[0], X[2])
    assert torch.equal(alone_y[0], y[2])
    nets = init_networks(TINY, [0, 1])
    assert not torch.equal(nets.params["0.weight"][0], nets.params["0.weight"][1])
    unit = WorkUnit(key="check", index=0, params={"method": "snip", "seeds": [4, 7]})
    assert measure(TINY, unit, device="cpu") == measure(TINY, unit, device="cpu")


def test_a_member_trained_alone_matches_the_ensemble(rows):
    """Seed 3's random mask at the highest tiny sparsity, pruned and trained as K = 1."""
    seed, j = 3, max(TINY.exponents)
    (row,) = [r for r in rows
              if (r["method"], r["seed"], r["exponent"]) == ("random", seed, j)]  # fmt: skip
    X, y = draw_data(TINY, [seed])
    net = prune(init_networks(TINY, [seed]), PrunePlan(method="random", density=0.8**j, seed=seed))
    result = train_ensemble(net.ensemble, X, y, train_options(TINY))
    assert int(result.record.n_steps[0]) == row["n_steps"]
    with torch.no_grad():
        logits = result.to_ensemble(net.ensemble)(X)[0]
    losses = torch.nn.functional.cross_entropy(logits, y[0], reduction="none").double()
    recorded = torch.tensor(json.loads(row["example_losses"]), dtype=torch.float64)
    torch.testing.assert_close(losses, recorded, rtol=1e-4, atol=1e-6)


def test_the_mse_variant_counts_squared_errors():
    settings = replace(TINY, loss="mse", n_seeds=2, exponents=(4,))
    unit = WorkUnit(key="mse", index=0, params={"method": "snip", "seeds": [0, 1]})
    for r in measure(settings, unit, device="cpu"):
        losses = np.array(json.loads(r.example_losses))
        assert (r.loss, r.fit_margin) == ("mse", 0.1)
        assert r.memorized_fraction == np.mean(losses <= 0.1) > 0.5
        assert r.train_accuracy >= r.memorized_fraction  # |f - y| <= 0.32 keeps the sign


def test_the_figure_plots_the_mean_per_method(rows):
    fig = memorization_figure(rows)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.xaxis_inverted()  # density falls (sparsity grows) to the right
    by_label = {line.get_label(): line for line in ax.get_lines()}
    labels = {"imp": "IMP", "synflow": "SynFlow", "snip": "SNIP", "grasp": "GraSP",
              "random": "Random"}  # fmt: skip
    assert set(by_label) == {labels[m] for m in TINY.methods}
    for method in TINY.methods:
        means = defaultdict(list)
        for r in rows:
            if r["method"] == method:
                means[r["target_density"]].append(r["memorized_fraction"])
        x, y = by_label[labels[method]].get_data()
        assert list(x) == sorted(means, reverse=True)
        assert list(y) == pytest.approx([np.mean(means[d]) for d in x], abs=1e-12)


def test_the_cli_draws_the_figure(store, tmp_path, capsys):
    out = tmp_path / "figures"
    argv = ["figure", "nfp-memorization", "--store", str(store), "--out", str(out)]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "nfp-memorization-memorized.pdf",
        "nfp-memorization-memorized.png",
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [("exponents", (0, 3)), ("rate", 1.0), ("loss", "hinge"), ("methods", ("imp", "imp")),
     ("inputs", "uniform"), ("epoch_steps", 0), ("fit_margin", -0.1)],
)  # fmt: skip
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValidationError, match=field.rstrip("s")):
        MemorizationSettings(**{field: value})


def test_pinned_tiny_hash():
    """Regression pin of the tiny preset's key: change it only on purpose."""
    assert settings_hash(EXP.name, TINY) == PINNED_TINY_HASH
