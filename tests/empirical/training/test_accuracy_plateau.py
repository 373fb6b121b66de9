"""AccuracyPlateau: No Free Prune's "train accuracy unchanged for three consecutive epochs"."""

import dataclasses

import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.training import (
    SGD,
    STOPPING_RULES,
    AccuracyPlateau,
    Adam,
    CheckPass,
    TrainOptions,
    resolve_stopping,
    train_accuracy,
    train_ensemble,
)
from robustlaw.errors import ValidationError

F64 = torch.float64


def _check(acc_rows):
    """A CheckPass whose accuracy history is ``acc_rows`` (checks x members), this pass last."""
    h = torch.tensor(acc_rows, dtype=F64)
    z = torch.zeros(h.shape[1], 2, 1)
    return CheckPass(
        outputs=z,
        targets=z[0],
        per_example=z[..., 0],
        fitted=z[..., 0] > 0,
        history=h,
        accuracy_history=h,
    )


def _replay(rule, sequence):
    """Feed per-check accuracies (checks x members) as the loop does; done flags per check."""
    done = []
    for i in range(len(sequence)):
        kept = sequence[max(0, i + 1 - rule.history_window) : i + 1]
        done.append(rule(_check(kept)).tolist())
    return done


def test_fires_exactly_at_the_third_unchanged_check():
    rule = AccuracyPlateau()
    seq = [[0.5], [0.6], [0.6], [0.6], [0.6], [0.6]]  # unchanged at checks 2, 3, 4, ...
    assert [d[0] for d in _replay(rule, seq)] == [False, False, False, False, True, True]


def test_a_change_resets_the_count():
    rule = AccuracyPlateau(epochs=3)
    seq = [[0.5], [0.5], [0.5], [0.7], [0.7], [0.7], [0.7]]
    # two unchanged checks (1, 2), then a change at 3: the plateau starts again from check 3
    assert [d[0] for d in _replay(rule, seq)] == [False] * 6 + [True]


def test_a_return_to_an_earlier_value_is_a_change():
    seq = [[0.5], [0.5], [0.6], [0.5], [0.5], [0.5], [0.5]]
    assert [d[0] for d in _replay(AccuracyPlateau(), seq)] == [False] * 6 + [True]


@pytest.mark.parametrize("epochs", [1, 2, 5])
def test_epochs_sets_the_number_of_unchanged_checks(epochs):
    rule = AccuracyPlateau(epochs=epochs)
    assert rule.history_window == epochs + 1
    seq = [[0.1], *[[0.9]] * (epochs + 2)]  # check j >= 2 is the (j - 1)-th unchanged check
    first = [d[0] for d in _replay(rule, seq)].index(True)
    assert first == epochs + 1


def test_members_are_independent_batched_equals_one_by_one():
    gen = torch.Generator().manual_seed(0)
    # accuracies k / 4 with many repeats: plateaus start and break at different checks
    seq = (torch.randint(0, 2, (40, 5), generator=gen).cumsum(0) % 3 / 4).tolist()
    rule = AccuracyPlateau(epochs=2)
    batched = torch.tensor(_replay(rule, seq))
    for k in range(5):
        alone = torch.tensor(_replay(rule, [[row[k]] for row in seq]))[:, 0]
        assert torch.equal(batched[:, k], alone)
    assert batched.any()
    assert not batched.all()


def test_needs_the_accuracy_history():
    c = dataclasses.replace(_check([[0.5], [0.5], [0.5], [0.5]]), accuracy_history=None)
    with pytest.raises(ValidationError, match="accuracy_history"):
        AccuracyPlateau()(c)


def test_train_accuracy_known_answers():
    # class indices: argmax; per-member targets broadcast per member
    out = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 2.0], [0.0, 1.0]]])
    assert train_accuracy(out, torch.tensor([0, 1])).tolist() == [1.0, 0.5]
    assert train_accuracy(out, torch.tensor([[1, 1], [1, 1]])).tolist() == [0.5, 1.0]
    # one real output: strict sign agreement, 0 is wrong
    out = torch.tensor([[[0.3], [-0.1], [0.0], [-2.0]]])
    y = torch.tensor([[1.0], [1.0], [1.0], [-1.0]])
    assert train_accuracy(out, y).tolist() == [0.5]
    # several real outputs (one-hot MSE): argmax agreement
    out = torch.tensor([[[0.1, 0.9, 0.0], [0.5, 0.2, 0.1]]])
    y = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert train_accuracy(out, y).tolist() == [0.5]


def test_registered_validated_and_built_by_name():
    assert STOPPING_RULES["accuracy-plateau"] is AccuracyPlateau
    assert resolve_stopping("accuracy-plateau") == AccuracyPlateau(epochs=3)
    assert TrainOptions(stopping="accuracy-plateau", loss="cross-entropy").stopping.epochs == 3
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValidationError, match="AccuracyPlateau.epochs"):
            AccuracyPlateau(epochs=bad)


def _data(n=24, d=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=F64)
    y = torch.randint(0, 2, (n,), generator=gen)
    return X, y


def _accuracy_at_checks(ens, X, y):
    """Record each member's train accuracy at every check through ``on_check``."""
    seen = []

    def on_check(step, params):
        with torch.no_grad():
            seen.append((step, train_accuracy(ens.with_params(params)(X), y)))

    return seen, on_check


def test_minibatch_training_stops_at_a_multiple_of_the_epoch_at_the_first_plateau():
    X, y = _data()
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(5, 16, 2)), seeds=[0, 1, 2], dtype=F64)
    per_epoch = 24 // 8
    opts = TrainOptions(
        optimizer=Adam(lr=3e-2),
        loss="cross-entropy",
        stopping=AccuracyPlateau(),
        max_steps=600,
        batch_size=8,
    )
    seen, on_check = _accuracy_at_checks(ens, X, y)
    res = train_ensemble(ens, X, y, opts, on_check=on_check)
    steps = res.record.n_steps
    assert res.record.rule_met.all()
    assert (steps % per_epoch == 0).all()
    assert (steps >= 3 * per_epoch).all()
    assert (steps < 600).all()
    assert all(step % per_epoch == 0 for step, _ in seen)  # one check per epoch
    acc = torch.stack([a for _, a in seen])  # (checks, members)
    for k in range(3):  # each member stops at its first run of 4 equal accuracies
        col = acc[:, k].tolist()
        first = next(i for i in range(3, len(col)) if len(set(col[i - 3 : i + 1])) == 1)
        assert steps[k] == seen[first][0]


def test_untrained_members_stop_after_exactly_three_epochs():
    X, y = _data()
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(5, 8, 2)), seeds=[0, 1], dtype=F64)
    opts = TrainOptions(  # lr 1e-12: the accuracy never changes; checks at steps 0, 3, 6, 9
        optimizer=SGD(lr=1e-12), loss="cross-entropy", stopping="accuracy-plateau", batch_size=8
    )
    res = train_ensemble(ens, X, y, opts)
    assert res.record.n_steps.tolist() == [9, 9]
    assert res.record.rule_met.all()


def test_full_batch_checks_are_check_every_steps_apart():
    X, y = _data()
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(5, 8, 1)), seeds=[0], dtype=F64)
    opts = TrainOptions(
        optimizer=SGD(lr=1e-12),
        loss="logistic",
        stopping=AccuracyPlateau(epochs=2),
        check_every=5,
        max_steps=100,
    )
    res = train_ensemble(ens, X, (2 * y - 1).to(F64), opts)
    assert res.record.n_steps.tolist() == [10]  # checks at 0, 5, 10: two unchanged checks
