"""AnyOf: a member is done once any of the composed stopping rules is done for it."""

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.training import (
    STOPPING_RULES,
    AccuracyPlateau,
    Adam,
    AnyOf,
    BelowNoise,
    CheckPass,
    Converged,
    MaxSteps,
    Memorized,
    StoppingRule,
    TrainOptions,
    resolve_stopping,
    train_ensemble,
)
from robustlaw.errors import UnknownNameError, ValidationError

F64 = torch.float64


@dataclass(frozen=True, kw_only=True)
class _Fixed(StoppingRule):
    """Test-only rule: a fixed outcome per member."""

    name: ClassVar[str] = "fixed"
    done: tuple[bool, ...] = ()

    def __call__(self, check: CheckPass) -> torch.Tensor:
        return torch.tensor(self.done, dtype=torch.bool)


@dataclass(frozen=True, kw_only=True)
class _Spy(StoppingRule):
    """Test-only rule: never done; records the history lengths the loop hands it."""

    name: ClassVar[str] = "spy"
    window: int = 1
    seen: list = field(default_factory=list, compare=False)

    @property
    def history_window(self) -> int:
        return self.window

    def __call__(self, check: CheckPass) -> torch.Tensor:
        acc = check.accuracy_history
        self.seen.append((check.history.shape[0], None if acc is None else acc.shape[0]))
        return torch.zeros(check.history.shape[1], dtype=torch.bool)


@dataclass(frozen=True, kw_only=True)
class _AccuracySpy(_Spy):
    """Test-only rule: a spy that asks the loop for the train accuracy."""

    uses_accuracy: ClassVar[bool] = True


def _check(outputs, targets, history=None):
    k = outputs.shape[0]
    per_example = (outputs - targets).square()[..., 0]
    h = torch.zeros(1, k, dtype=F64) if history is None else history
    return CheckPass(
        outputs=outputs,
        targets=targets,
        per_example=per_example,
        fitted=per_example <= 0.1,
        history=h,
        accuracy_history=h,
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda k: st.lists(st.lists(st.booleans(), min_size=k, max_size=k), min_size=1, max_size=4)
    )
)
def test_equals_the_elementwise_or_of_fixed_outcomes(outcomes):
    rules = tuple(_Fixed(done=tuple(row)) for row in outcomes)
    k = len(outcomes[0])
    z = torch.zeros(k, 2, 1, dtype=F64)
    got = AnyOf(rules=rules)(_check(z, z[0]))
    assert got.dtype == torch.bool
    assert got.tolist() == np.any(np.array(outcomes), axis=0).tolist()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_members=st.integers(1, 8),
    levels=st.lists(st.floats(0.0, 2.0, allow_nan=False), min_size=1, max_size=4),
)
def test_equals_the_or_of_below_noise_rules_and_memorized(seed, n_members, levels):
    gen = torch.Generator().manual_seed(seed)
    outputs = 1.5 * torch.randn(n_members, 5, 1, generator=gen, dtype=F64)
    targets = torch.sign(torch.randn(5, 1, generator=gen, dtype=F64))
    check = _check(outputs, targets)
    parts = (*(BelowNoise(noise_level=a, eps=0.0) for a in levels), Memorized())
    expected = torch.stack([rule(check) for rule in parts]).any(dim=0)
    assert torch.equal(AnyOf(rules=parts)(check), expected)
    # nesting changes nothing: OR is associative
    nested = AnyOf(rules=(AnyOf(rules=parts[:1]), AnyOf(rules=parts[1:])))
    assert torch.equal(nested(check), expected)


def test_history_window_accuracy_and_real_outputs_come_from_the_parts():
    conv, plateau, below = Converged(tol=0.01, window=6), AccuracyPlateau(epochs=3), BelowNoise()
    rule = AnyOf(rules=(conv, plateau))
    assert rule.history_window == 6
    assert rule.history_window >= max(conv.history_window, plateau.history_window)
    assert rule.uses_accuracy
    assert not rule.needs_real_outputs
    assert AnyOf(rules=(Converged(window=2), plateau)).history_window == 4
    assert not AnyOf(rules=(conv, Memorized())).uses_accuracy
    assert AnyOf(rules=(MaxSteps(), AnyOf(rules=(below,)))).needs_real_outputs
    with pytest.raises(ValidationError, match="needs real-valued outputs"):
        TrainOptions(stopping=AnyOf(rules=(Memorized(), below)), loss="cross-entropy")


def test_the_loop_keeps_the_longest_window_and_the_accuracy_history():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(16, 3, generator=gen, dtype=F64)
    y = torch.randint(0, 2, (16,), generator=gen)
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 4, 2)), seeds=[0, 1], dtype=F64)
    short, long = _Spy(window=2), _AccuracySpy(window=6)
    opts = TrainOptions(
        optimizer=Adam(lr=1e-3),
        loss="cross-entropy",
        stopping=AnyOf(rules=(short, AnyOf(rules=(long,)))),
        max_steps=10,
    )
    train_ensemble(ens, X, y, opts)
    assert long.seen == short.seen  # both see the composite's CheckPass
    assert [h for h, _ in long.seen] == [1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6]  # 10 steps + final
    assert all(a == h for h, a in long.seen)  # accuracy is tracked over the same checks


def test_minibatch_training_stops_at_the_first_of_the_two_rules():
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(24, 5, generator=gen, dtype=F64)
    y = torch.randint(0, 2, (24,), generator=gen)
    ens = init_mlp_ensemble(MLPSpec(layer_sizes=(5, 16, 2)), seeds=list(range(6)), dtype=F64)
    conv, plateau = Converged(tol=0.02, window=2), AccuracyPlateau(epochs=3)

    def n_steps(rule):
        opts = TrainOptions(
            optimizer=Adam(lr=3e-2),
            loss="cross-entropy",
            stopping=rule,
            max_steps=900,
            batch_size=8,
        )
        record = train_ensemble(ens, X, y, opts).record
        return record.n_steps, record.rule_met

    (a, met_a), (b, met_b) = n_steps(conv), n_steps(plateau)
    both, met = n_steps(AnyOf(rules=(conv, plateau)))
    assert both.tolist() == np.minimum(a, b).tolist()
    assert (both <= a).all()
    assert (both <= b).all()
    assert met.all()
    assert (met_a & met_b).all()
    assert (a < b).any()  # each rule decides for some member
    assert (b < a).any()


def test_registered_built_by_name_and_names_resolved():
    assert STOPPING_RULES["any-of"] is AnyOf
    assert resolve_stopping("any-of") == AnyOf(rules=(MaxSteps(),))
    rule = AnyOf(rules=["memorized", Converged(tol=0.5), "any-of"])
    assert rule.rules == (Memorized(), Converged(tol=0.5), AnyOf())
    assert TrainOptions(stopping="any-of").stopping == AnyOf()


@pytest.mark.parametrize(
    ("rules", "error", "match"),
    [
        ((), ValidationError, "AnyOf.rules must be a non-empty"),
        ([], ValidationError, "AnyOf.rules must be a non-empty"),
        ("memorized", ValidationError, "AnyOf.rules must be a non-empty tuple"),
        (Memorized(), ValidationError, "AnyOf.rules must be a non-empty tuple"),
        ((Memorized(), 3), ValidationError, "AnyOf.rules entries"),
        ((object(),), ValidationError, "AnyOf.rules entries"),
        ((MaxSteps,), ValidationError, "AnyOf.rules entries"),
        (("no-such-rule",), UnknownNameError, "no-such-rule"),
        (("accuracy_plateau",), UnknownNameError, "it is now called 'accuracy-plateau'"),
    ],
)
def test_bad_rules_are_refused(rules, error, match):
    with pytest.raises(error, match=match):
        AnyOf(rules=rules)
