"""``nfp-noise-correlation`` at the tiny preset: counts, independent recomputation, the paper's
robust claims (No Free Prune Figs. 2–3, THEORY.md §6.3) and the IMP counting rule."""

import math
from collections import defaultdict
from dataclasses import replace

import numpy as np
import pytest
import torch

from robustlaw._validation import derived_seed
from robustlaw.empirical.data import teacher_data
from robustlaw.empirical.data.synthetic import sample_inputs
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import ImpOptions, PrunePlan, prune
from robustlaw.empirical.training import MSE, Adam, MaxSteps, TrainOptions, train_ensemble
from robustlaw.errors import ValidationError
from robustlaw.experiments import get_experiment, load, run
from robustlaw.experiments.keys import settings_hash
from robustlaw.experiments.nfp_noise_correlation import SWEEPS, NoiseCorrelationSettings
from robustlaw.experiments.nfp_noise_correlation.measure import SWEEP_RUNNERS

EXP = get_experiment("nfp-noise-correlation")
TINY = EXP.preset("tiny")
PER_EPOCH = TINY.n_samples // TINY.batch_size
PINNED_TINY_HASH = "00b6e36ff3e44fae"


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = tmp_path_factory.mktemp("nfp-corr") / "tiny.sqlite"
    run(EXP.name, "tiny", store=path, device="cpu", threads=1, progress=False)
    return load(path, EXP.name, as_frame=False)


def _table(rows, sweep, key):
    """``{value: array (n_seeds, n_epochs)}`` of the correlation, seeds in settings order."""
    cells = defaultdict(dict)
    for r in rows:
        if r["sweep"] == sweep:
            cells[r[key]][r["seed"], r["epoch"]] = r["correlation"]
    epochs = range(TINY.epochs + 1)
    return {v: np.array([[c[s, e] for e in epochs] for s in TINY.seeds]) for v, c in cells.items()}


def _alone(ens, seed, epochs, lr=TINY.lr):
    """Train ``ens`` on seed ``seed``'s data by itself; the correlation and MSE by hand."""
    data = teacher_data(TINY.n_samples, TINY.n_features, hidden=TINY.teacher_hidden,
                        inputs=TINY.inputs, seed=seed)  # fmt: skip
    gen = torch.Generator().manual_seed(derived_seed(seed, 2))
    fresh = sample_inputs(TINY.inputs, TINY.fresh_samples, TINY.n_features, generator=gen)
    opts = TrainOptions(optimizer=Adam(lr=lr), loss=MSE(), stopping=MaxSteps(),
                        max_steps=epochs * PER_EPOCH, batch_size=TINY.batch_size)  # fmt: skip
    # per-member inputs, as the experiment passes them: the same matmuls, the same rounding
    trained = train_ensemble(ens, data.X[None], data.y[None], opts).to_ensemble(ens)
    with torch.no_grad():
        f = trained(data.X)[:, :, 0].double().numpy()
        mean_fresh = trained(fresh)[:, :, 0].double().numpy().mean(axis=1, keepdims=True)
    z, y = data.extras["noise"].double().numpy(), data.y.double().numpy()
    return ((f - mean_fresh) * z).mean(axis=1), ((f - y) ** 2).mean(axis=1)


def _student(seeds):
    spec = MLPSpec(layer_sizes=(TINY.n_features, *TINY.student_hidden, 1))
    return init_mlp_ensemble(spec, [derived_seed(s, 1) for s in seeds])


def _row(rows, **where):
    (row,) = [r for r in rows if all(r[k] == v for k, v in where.items())]
    return row


def test_every_student_and_epoch_is_stored_once(rows):
    per_run = len(TINY.seeds) * (TINY.epochs + 1)
    counts = defaultdict(int)
    for r in rows:
        counts[r["sweep"]] += 1
    assert counts == {"imp": TINY.imp_cycles * per_run,
                      "learning-rate": len(TINY.learning_rates) * per_run,
                      "gradient-noise": len(TINY.gradient_noise_stds) * per_run}  # fmt: skip
    keys = {(r["sweep"], r["seed"], r["learning_rate"], r["gradient_noise"], r["cycle"],
             r["epoch"]) for r in rows}  # fmt: skip
    assert len(keys) == len(rows)
    assert set(SWEEP_RUNNERS) == set(SWEEPS)


@pytest.mark.parametrize("epochs", [0, TINY.epochs])
def test_correlation_and_mse_match_a_member_trained_alone(rows, epochs):
    """Seed 1's lr-1e-3 student, retrained alone; corr = (1/n) sum (f(x_i) - mean f(x')) z_i."""
    corr, mse = _alone(_student([1]), 1, epochs)
    row = _row(rows, sweep="learning-rate", seed=1, learning_rate=TINY.lr, epoch=epochs)
    assert row["correlation"] == pytest.approx(corr[0], rel=1e-4, abs=1e-6)
    assert row["train_mse"] == pytest.approx(mse[0], rel=1e-4)


def test_noise_power_is_the_mean_squared_noise(rows):
    for seed in TINY.seeds:
        z = teacher_data(TINY.n_samples, TINY.n_features, hidden=TINY.teacher_hidden,
                         inputs=TINY.inputs, seed=seed).extras["noise"].double()  # fmt: skip
        powers = {r["noise_power"] for r in rows if r["seed"] == seed}
        assert len(powers) == 1
        assert powers.pop() == pytest.approx(float(z.square().mean()), rel=1e-12)
    assert {r["sigma2"] for r in rows} == {TINY.noise_std**2}


def test_correlation_grows_with_the_learning_rate(rows):
    """NFP Fig. 2b: at the last epoch (seed mean) and at every epoch after the first, for every
    seed, a larger learning rate fits more of the noise."""
    table = _table(rows, "learning-rate", "learning_rate")
    lrs = sorted(table)
    last = [table[lr][:, -1].mean() for lr in lrs]
    assert last[-1] > 10 * last[0]
    assert np.all(np.diff(last) > 0)
    stacked = np.stack([table[lr] for lr in lrs])  # (lr, seed, epoch)
    assert np.all(np.diff(stacked[:, :, 1:], axis=0) > 0)
    assert np.all(stacked[:, :, 0] == stacked[0, :, 0])  # epoch 0: one init per seed


def test_zero_gradient_noise_reproduces_the_learning_rate_run(rows):
    zero = {(r["seed"], r["epoch"]): (r["correlation"], r["train_mse"]) for r in rows
            if r["sweep"] == "gradient-noise" and r["gradient_noise"] == 0.0}  # fmt: skip
    same = {(r["seed"], r["epoch"]): (r["correlation"], r["train_mse"]) for r in rows
            if r["sweep"] == "learning-rate" and r["learning_rate"] == TINY.lr}  # fmt: skip
    assert zero == same


def test_correlation_falls_with_gradient_noise(rows):
    """NFP Fig. 2c: the seed-mean correlation decreases with the noise level at every epoch
    after the first."""
    table = _table(rows, "gradient-noise", "gradient_noise")
    means = np.stack([table[std].mean(axis=0) for std in sorted(table)])  # (level, epoch)
    assert np.all(np.diff(means[:, 1:], axis=0) < 0)
    assert means[0, -1] > 0.5 * TINY.noise_std**2 > 10 * means[1, -1]


def test_imp_resets_after_every_prune_and_rewind(rows):
    """NFP Fig. 2a: each cycle climbs far from 0; the next starts near 0 (under a tenth of the
    previous cycle's peak) for every seed."""
    by = defaultdict(dict)
    for r in rows:
        if r["sweep"] == "imp":
            by[r["seed"], r["cycle"]][r["epoch"]] = r["correlation"]
    for seed in TINY.seeds:
        for cycle in range(TINY.imp_cycles):
            peak = max(by[seed, cycle].values())
            assert peak > 0.5 * TINY.noise_std**2
            if cycle + 1 < TINY.imp_cycles:
                assert abs(by[seed, cycle + 1][0]) < 0.1 * peak


def test_kept_fraction_follows_the_imp_counting_rule(rows):
    """Cycle c keeps R_c of N prunable weights, R_{c+1} = R_c - ceil(0.2 R_c), ~ 0.8**c."""
    sizes = (TINY.n_features, *TINY.student_hidden, 1)
    n_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    kept = [n_weights]
    for _ in range(TINY.imp_cycles - 1):
        kept.append(kept[-1] - math.ceil(TINY.imp_rate * kept[-1]))
    for r in rows:
        if r["sweep"] == "imp":
            assert r["kept_fraction"] == kept[r["cycle"]] / n_weights
            assert abs(r["kept_fraction"] - 0.8 ** r["cycle"]) <= r["cycle"] / n_weights
        else:
            assert (r["kept_fraction"], r["cycle"]) == (1.0, 0)


def test_an_imp_cycle_is_the_library_imp_ticket_trained(rows):
    """Cycle 1 equals pruning's own IMP (one level, rewound to init) trained and measured alone."""
    density = _row(rows, sweep="imp", seed=0, cycle=1, epoch=0)["kept_fraction"]
    data = teacher_data(TINY.n_samples, TINY.n_features, hidden=TINY.teacher_hidden,
                        inputs=TINY.inputs, seed=0)  # fmt: skip
    opts = TrainOptions(optimizer=Adam(lr=TINY.lr), loss=MSE(), stopping=MaxSteps(),
                        max_steps=TINY.epochs * PER_EPOCH, batch_size=TINY.batch_size)  # fmt: skip
    plan = PrunePlan(method="imp", density=density, options=ImpOptions(rate=TINY.imp_rate))
    ticket = prune(_student([0]), plan, data=(data.X, data.y), train_options=opts).ensemble
    corr, _ = _alone(ticket, 0, TINY.epochs)
    row = _row(rows, sweep="imp", seed=0, cycle=1, epoch=TINY.epochs)
    assert row["correlation"] == pytest.approx(corr[0], rel=1e-4, abs=1e-6)


def test_rewinding_to_a_later_epoch_is_the_library_imp_with_that_rewind_step():
    """rewind_epoch k: later cycles start at epoch k from the dense run's epoch-k weights."""
    k = 5
    settings = replace(TINY, seeds=(0,), sweeps=("imp",), imp_cycles=2, rewind_epoch=k)
    (unit,) = EXP.expand(settings)
    rows = [r.__dict__ for r in EXP.measure(settings, unit, device="cpu")]
    assert sorted(r["epoch"] for r in rows if r["cycle"] == 1) == list(range(k, TINY.epochs + 1))
    density = _row(rows, cycle=1, epoch=k)["kept_fraction"]
    data = teacher_data(TINY.n_samples, TINY.n_features, hidden=TINY.teacher_hidden,
                        inputs=TINY.inputs, seed=0)  # fmt: skip
    opts = TrainOptions(optimizer=Adam(lr=TINY.lr), loss=MSE(), stopping=MaxSteps(),
                        max_steps=TINY.epochs * PER_EPOCH, batch_size=TINY.batch_size)  # fmt: skip
    imp = ImpOptions(rate=TINY.imp_rate, rewind_step=k * PER_EPOCH)
    plan = PrunePlan(method="imp", density=density, options=imp)
    ticket = prune(_student([0]), plan, data=(data.X, data.y), train_options=opts).ensemble
    for epochs in (0, TINY.epochs - k):
        corr, _ = _alone(ticket, 0, epochs)
        row = _row(rows, cycle=1, epoch=k + epochs)
        assert row["correlation"] == pytest.approx(corr[0], rel=1e-4, abs=1e-6)


def test_figures_draw_the_seed_means(rows):
    lr_table = _table(rows, "learning-rate", "learning_rate")
    lines = {ln.get_label(): ln for ln in EXP.figures["learning-rate"](rows).axes[0].lines}
    for lr, table in lr_table.items():
        assert lines[f"lr = {lr:.3g}"].get_ydata()[-1] == pytest.approx(table[:, -1].mean())
    right = EXP.figures["imp"](rows).axes[1]
    (peaks,) = [ln for ln in right.lines if ln.get_marker() == "o"]
    by = defaultdict(list)
    for r in rows:
        if r["sweep"] == "imp":
            by[r["cycle"], r["seed"]].append(r["correlation"])
    want = [np.mean([max(by[c, s]) for s in TINY.seeds]) for c in range(TINY.imp_cycles)]
    np.testing.assert_allclose(peaks.get_ydata(), want)


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"sweeps": ("fig2",)}, "sweeps entry"),
        ({"seeds": (0, 0)}, "seeds"),
        ({"learning_rates": ()}, "learning_rates"),
        ({"gradient_noise_stds": (-0.1,)}, "gradient_noise_stds"),
        ({"rewind_epoch": TINY.epochs}, "rewind_epoch"),
        ({"batch_size": TINY.n_samples + 1}, "batch_size"),
        ({"imp_cycles": 60, "imp_rate": 0.9}, "imp_cycles"),
        ({"inputs": "cauchy"}, "input distribution"),
    ],
)
def test_bad_settings_name_the_field(change, name):
    with pytest.raises(ValidationError, match=name):
        replace(TINY, **change)


def test_settings_hash_is_pinned():
    assert settings_hash(EXP.name, TINY) == PINNED_TINY_HASH
    assert isinstance(TINY, NoiseCorrelationSettings)
