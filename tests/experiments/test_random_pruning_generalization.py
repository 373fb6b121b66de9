"""``random-pruning-generalization`` (Yang et al.) at the tiny preset, checked independently.

The tiny unit is trained once. Losses, accuracies and the signal and noise coefficients are
recomputed from the trained weights with a hand-written forward pass and plain loops; the
signal-keeping filter counts and the masked noise norm from the masks by brute force; the masks
are checked to be i.i.d. Bernoulli (their kept counts vary as a binomial's), nested across
``p`` and fixed through training. The paper's robust claims are checked at the tiny scale.
"""

import math
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from robustlaw.empirical.modules import TwoPatchNet, init_module_ensemble
from robustlaw.errors import ValidationError
from robustlaw.experiments import get_experiment, load, run, settings_hash
from robustlaw.experiments.random_pruning_generalization.figures import (
    accuracy_figure,
    accuracy_table,
    coefficient_curves,
    coefficients_figure,
    shown_fractions,
)
from robustlaw.experiments.random_pruning_generalization.measure import (
    member_grid,
    random_masks,
    train_unit,
    unit_records,
)
from robustlaw.experiments.random_pruning_generalization.settings import (
    RandomPruningGeneralizationSettings,
)

EXP = get_experiment("random-pruning-generalization")
TINY = EXP.preset("tiny")
PINNED_TINY = "738fa1e40041851e"


@pytest.fixture(scope="module")
def trained():
    return train_unit(TINY)


@pytest.fixture(scope="module")
def rows(trained):
    return [asdict(r) for r in unit_records(TINY, trained)]


def _final(rows, p=None):
    return [r for r in rows if r["final"] and (p is None or r["pruning_fraction"] == p)]


def _forward(w, x, s):
    """A hand-written two-patch network, one member, float64."""
    m, c = s.filters_per_class, s.n_classes
    patches = x.double().reshape(len(x), 2, s.patch_dim)
    act = torch.relu(patches @ w.double().T) ** s.power  # (n, 2, c m)
    scores = act.sum(1).reshape(len(x), c, m).mean(-1)
    return scores[:, 1] - scores[:, 0] if c == 2 else scores


def _loss_and_accuracy(out, y, n_classes):
    if n_classes == 2:
        y = y.double()
        return torch.nn.functional.softplus(-y * out).mean().item(), ((out * y) > 0).double().mean()
    loss = torch.nn.functional.cross_entropy(out, y).item()
    return loss, (out.argmax(1) == y).double().mean()


def _check_against_weights(settings, trained_unit, records):
    """Final losses, accuracies and coefficients recomputed member by member."""
    w_all = trained_unit.trained.params["weight"]
    m = settings.filters_per_class
    for i, (data, r) in enumerate(zip(trained_unit.data, _final(records), strict=True)):
        w = w_all[i].double()
        loss, acc = _loss_and_accuracy(_forward(w, data.X, settings), data.y, settings.n_classes)
        _, test = _loss_and_accuracy(_forward(w, data.X_test, settings), data.y_test,
                                     settings.n_classes)  # fmt: skip
        assert r["train_loss"] == pytest.approx(loss, rel=1e-4, abs=1e-7)
        assert r["train_accuracy"] == pytest.approx(float(acc), abs=1.5 / len(data.y))
        assert r["test_accuracy"] == pytest.approx(float(test), abs=1.5 / len(data.y_test))
        signal = np.mean([max(float(w[c * m + k] @ data.signals[c].double()) for k in range(m))
                          for c in range(settings.n_classes)])  # fmt: skip
        noise = np.mean([max(float(w[int(c) * m + k] @ xi.double()) for k in range(m))
                         for c, xi in zip(data.classes, data.noise, strict=True)])  # fmt: skip
        assert r["signal_coefficient"] == pytest.approx(signal, rel=1e-4, abs=1e-6)
        assert r["noise_coefficient"] == pytest.approx(noise, rel=1e-4, abs=1e-6)


def test_tiny_settings_hash_is_pinned():
    assert settings_hash(EXP.name, TINY) == PINNED_TINY


def test_defaults_are_the_project_constants():
    s = RandomPruningGeneralizationSettings()
    assert (s.n_samples, s.patch_dim, s.filters_per_class, s.n_classes) == (100, 1000, 20, 2)
    assert (s.sigma_p, s.init_std, s.mu_kind, s.noise_orthogonal) == (1.0, 0.01, "one-hot", True)
    assert (s.activation, s.mu_norm, s.lr) == ("relu", 2.5, 2.0)
    assert max(s.pruning_fractions) >= 1 - 1 / s.filters_per_class
    paper = EXP.preset("paper")
    assert (paper.activation, paper.q, paper.power) == ("relu-q", 3, 3)
    assert len(paper.seeds) > len(s.seeds)
    assert set(s.pruning_fractions) < set(paper.pruning_fractions)


def test_every_member_is_logged_at_every_check(rows):
    checks = list(range(0, TINY.n_steps + 1, TINY.log_every))
    members = member_grid(TINY)
    assert len(rows) == len(members) * len(checks)
    assert sorted({r["step"] for r in rows}) == checks
    finals = _final(rows)
    assert [(r["pruning_fraction"], r["seed"]) for r in finals] == [
        (m.pruning_fraction, m.seed) for m in members
    ]
    assert {r["step"] for r in finals} == {TINY.n_steps}
    initial = [r["train_loss"] for r in rows if r["step"] == 0]  # small outputs: loss ~ ln 2
    np.testing.assert_allclose(initial, math.log(2), atol=0.03)


def test_losses_accuracies_and_coefficients_recomputed_from_the_weights(trained, rows):
    _check_against_weights(TINY, trained, rows)


def test_masks_are_fixed_nested_and_applied_to_the_same_initialization(trained):
    masks = trained.initial.masks["weight"]
    assert torch.equal(trained.trained.masks["weight"], masks)
    assert bool((trained.trained.params["weight"][~masks] == 0).all())  # pruned stay zero
    dense = init_module_ensemble(TwoPatchNet(TINY.patch_dim, TINY.filters_per_class),
                                 [m.seed for m in trained.members], init="normal",
                                 init_std=TINY.init_std)  # fmt: skip
    torch.testing.assert_close(trained.initial.params["weight"], dense.params["weight"] * masks)
    for i, a in enumerate(trained.members):
        for j, b in enumerate(trained.members):
            if a.seed == b.seed and a.pruning_fraction < b.pruning_fraction:
                assert bool((masks[j] <= masks[i]).all())  # a larger p prunes a superset
    firsts = [masks[i] for i, m in enumerate(trained.members) if m.pruning_fraction == 0.5]
    assert not torch.equal(firsts[0], firsts[1])  # seeds draw different masks


def test_masks_are_iid_bernoulli_not_exact_counts():
    """Kept counts over 300 seeds have a binomial's mean and variance N p (1 - p)."""
    p = 0.7
    settings = replace(TINY, seeds=tuple(range(300)), pruning_fractions=(p,))
    kept = random_masks(settings, member_grid(settings)).flatten(1).sum(1).double()
    n = 2 * TINY.filters_per_class * TINY.patch_dim
    mean, var = n * (1 - p), n * p * (1 - p)
    assert abs(kept.mean().item() - mean) < 4 * math.sqrt(var / 300)
    assert 0.7 < kept.var().item() / var < 1.35  # chi-square with 299 dof: 4 SE either side


def test_signal_filter_counts_and_masked_noise_match_the_masks(trained, rows):
    masks = trained.initial.masks["weight"].double()
    m, d = TINY.filters_per_class, TINY.patch_dim
    for i, r in enumerate(_final(rows)):
        keeps = masks[i, :, 0].reshape(2, m)  # one-hot mu: both classes' signal is e_1
        assert r["signal_neurons"] == int(keeps.sum())
        assert r["classes_without_signal"] == int((keeps.sum(1) == 0).sum())
        assert r["kept_weights"] == int(masks[i].sum())
        assert r["density"] == pytest.approx(r["kept_weights"] / (2 * m * d))
        xi = trained.data[i].noise.double()
        brute = np.mean([float(((x * mask) ** 2).sum()) for x in xi for mask in masks[i]])
        assert r["masked_noise_norm_sq"] == pytest.approx(brute, rel=1e-9)
        if r["pruning_fraction"] < 0.9:  # (1 - p) sigma_p^2 (d - 1): noise is orthogonal to e_1
            expected = (1 - r["pruning_fraction"]) * TINY.sigma_p**2 * (d - 1)
            assert r["masked_noise_norm_sq"] == pytest.approx(expected, rel=0.06)


def test_mask_density_is_about_one_minus_p(rows):
    n = 2 * TINY.filters_per_class * TINY.patch_dim
    for r in _final(rows):
        p = r["pruning_fraction"]
        assert abs(r["density"] - (1 - p)) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_dense_nets_generalize_and_over_pruned_ones_memorize_at_chance(rows):
    """The paper's robust claims at the tiny scale (m = 5, p = 0.99: m (1 - p) = 0.05).

    Seeds 0-3 of the tiny preset: dense test accuracy 0.86-0.95; at p = 0.99 no filter keeps
    the signal coordinate, the test accuracy is 0.47-0.54 (400 test points: SE 0.025) and
    the training loss 0.03-0.05 nats with train accuracy >= 0.975.
    """
    dense, over = _final(rows, 0.0), _final(rows, 0.99)
    assert all(r["test_accuracy"] >= 0.8 and r["train_loss"] < 0.01 for r in dense)
    for r in over:
        assert r["classes_without_signal"] == 2
        assert abs(r["test_accuracy"] - 0.5) <= 0.1
        assert r["train_accuracy"] >= 0.95
        assert r["train_loss"] <= 0.1 * math.log(2)
    table = {t["p"]: t for t in accuracy_table(rows)}
    assert table[0.0]["test"] > table[0.99]["test"] + 30
    assert table[0.5]["test"] > 70


def test_over_pruned_nets_learn_no_signal_and_memorize_noise(rows):
    for r in rows:
        if r["classes_without_signal"] == 2:  # no filter sees e_1: the signal term is exactly 0
            assert r["signal_coefficient"] == 0.0
    start = {(r["pruning_fraction"], r["seed"]): r for r in rows if r["step"] == 0}
    for r in _final(rows):
        first = start[r["pruning_fraction"], r["seed"]]
        assert r["noise_coefficient"] > 5 * max(first["noise_coefficient"], 0.1)
        if r["pruning_fraction"] == 0.0:
            assert r["signal_coefficient"] > 10 * first["signal_coefficient"] > 0


def test_figures_plot_the_seed_means(rows):
    fig = accuracy_figure(rows)
    acc_ax, loss_ax = fig.axes
    table = accuracy_table(rows)
    curves = {c.get_label(): c.lines[0] for c in acc_ax.containers}
    np.testing.assert_allclose(np.asarray(curves["test accuracy (mean ± SE)"].get_ydata(), float),
                               [t["test"] for t in table])  # fmt: skip
    (loss,) = loss_ax.containers
    np.testing.assert_allclose(np.asarray(loss.lines[0].get_ydata(), float),
                               [t["loss"] for t in table])  # fmt: skip
    (chance,) = [line for line in acc_ax.get_lines() if line.get_label() == "chance (50%)"]
    np.testing.assert_allclose(np.asarray(chance.get_ydata(), float), 50)
    signal_ax, _ = coefficients_figure(rows).axes
    shown = shown_fractions(TINY.pruning_fractions, TINY.filters_per_class)
    lines = {line.get_label(): line for line in signal_ax.get_lines()}
    assert set(lines) == {f"p = {p:g}" for p in shown}
    curve = coefficient_curves(rows, "signal_coefficient")[0.0]
    np.testing.assert_allclose(np.asarray(lines["p = 0"].get_ydata(), float), curve[:, 1])


def test_multiclass_relu_cubed_records_match_the_weights():
    settings = replace(TINY, n_classes=3, activation="relu-q", patch_dim=60, n_samples=30,
                       n_test=30, n_steps=6, log_every=3, pruning_fractions=(0.0, 0.6),
                       seeds=(0,), mu_norm=4.0, lr=0.5)  # fmt: skip
    unit = train_unit(settings)
    records = [asdict(r) for r in unit_records(settings, unit)]
    _check_against_weights(settings, unit, records)
    masks = unit.initial.masks["weight"].reshape(2, 3, settings.filters_per_class, 60)
    for i, r in enumerate(_final(records)):
        keeps = torch.stack([masks[i, c, :, c] for c in range(3)])  # mu_c = ||mu|| e_c
        assert r["signal_neurons"] == int(keeps.sum())
        assert r["classes_without_signal"] == int((~keeps.any(1)).sum())
        assert (r["q"], r["n_classes"]) == (3, 3)


def test_stored_rows_round_trip(tmp_path):
    settings = replace(TINY, n_steps=4, log_every=2, seeds=(0,), patch_dim=50, n_test=20)
    path = tmp_path / "results.sqlite"
    run(EXP.name, settings=settings, store=path, device="cpu", threads=1, progress=False)
    stored = load(path, EXP.name, as_frame=False)
    fields = list(asdict(unit_records(settings, train_unit(settings))[0]))
    assert len(stored) == 3 * len(settings.pruning_fractions)
    assert sum(r["final"] for r in stored) == len(settings.pruning_fractions)
    assert all(set(fields) <= set(r) for r in stored)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("pruning_fractions", (0.5, 1.0), "pruning_fractions"), ("seeds", (), "seeds"),
     ("activation", "gelu", "activation"), ("mu_norm", 0.0, "mu_norm"),
     ("n_classes", 1, "n_classes"), ("mu_kind", "spiky", "mu_kind"),
     ("pruning_fractions", (0.5, 0.5), "repeat")],
)  # fmt: skip
def test_bad_settings_name_the_field(field, value, message):
    with pytest.raises(ValidationError, match=message):
        replace(TINY, **{field: value})
