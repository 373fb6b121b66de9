"""Training options by part: registries, names, unknown keywords and bad values."""

import math

import pytest

from robustlaw.empirical.training import (
    GRADIENT_NOISES,
    LOSSES,
    MSE,
    OPTIMIZERS,
    PENALTIES,
    SGD,
    STOPPING_RULES,
    Adam,
    AdamW,
    BelowNoise,
    Converged,
    CrossEntropy,
    GaussianGradientNoise,
    L2Penalty,
    Logistic,
    MaxSteps,
    Memorized,
    TrainOptions,
)
from robustlaw.errors import UnknownNameError, ValidationError

REGISTRIES = {
    "optimizer": OPTIMIZERS,
    "loss": LOSSES,
    "stopping": STOPPING_RULES,
    "gradient_noise": GRADIENT_NOISES,
    "penalty": PENALTIES,
}
PARTS = [cls for registry in REGISTRIES.values() for cls in registry.values()]


@pytest.mark.parametrize("field", list(REGISTRIES))
def test_registry_names_are_hyphenated_and_build_the_defaults(field):
    for name, cls in REGISTRIES[field].items():
        assert name == cls.name
        assert "_" not in name
        opts = TrainOptions(**{field: name})
        assert getattr(opts, field) == cls()


@pytest.mark.parametrize(
    ("field", "old", "new"),
    [
        ("stopping", "below_noise", "below-noise"),
        ("stopping", "max_steps", "max-steps"),
        ("loss", "cross_entropy", "cross-entropy"),
    ],
)
def test_old_underscore_names_are_refused_naming_the_new(field, old, new):
    with pytest.raises(UnknownNameError, match=f"it is now called '{new}'"):
        TrainOptions(**{field: old})


@pytest.mark.parametrize("field", list(REGISTRIES))
def test_unknown_name_lists_the_valid_ones(field):
    with pytest.raises(UnknownNameError, match="valid names"):
        TrainOptions(**{field: "nonsense"})


@pytest.mark.parametrize("field", list(REGISTRIES))
def test_a_part_of_the_wrong_kind_is_refused(field):
    with pytest.raises(ValidationError, match=f"{field} must be a"):
        TrainOptions(**{field: 3})


@pytest.mark.parametrize("cls", [*PARTS, TrainOptions], ids=lambda c: c.__name__)
def test_unknown_keyword_is_an_error(cls):
    with pytest.raises(TypeError, match="no_such_option"):
        cls(no_such_option=1)


@pytest.mark.parametrize("cls", [*PARTS, TrainOptions], ids=lambda c: c.__name__)
def test_parts_are_keyword_only_and_frozen(cls):
    with pytest.raises(TypeError):
        cls(0.1)
    with pytest.raises(AttributeError):
        cls().name_of_nothing = 1


def test_flat_options_of_the_old_api_are_unknown_keywords():
    for old in ("lr", "momentum", "fit_eps", "noise_level", "grad_noise_std", "converge_tol"):
        with pytest.raises(TypeError, match=old):
            TrainOptions(**{old: 0.1})


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SGD(lr=0.0), "SGD.lr"),
        (lambda: SGD(lr=(0.1, -0.1)), "SGD.lr"),
        (lambda: SGD(momentum=1.0), "SGD.momentum"),
        (lambda: SGD(weight_decay=-1.0), "SGD.weight_decay"),
        (lambda: Adam(lr=math.nan), "Adam.lr"),
        (lambda: Adam(betas=(0.9, 1.0)), "Adam.betas"),
        (lambda: Adam(betas=(0.9,)), "Adam.betas"),
        (lambda: Adam(eps=-1e-8), "Adam.eps"),
        (lambda: AdamW(weight_decay=-0.1), "AdamW.weight_decay"),
        (lambda: MSE(fit_margin=-0.1), "MSE.fit_margin"),
        (lambda: CrossEntropy(fit_margin=math.inf), "CrossEntropy.fit_margin"),
        (lambda: Logistic(fit_margin="a"), "Logistic.fit_margin"),
        (lambda: BelowNoise(noise_level=-1.0), "BelowNoise.noise_level"),
        (lambda: BelowNoise(eps=-0.5), "BelowNoise.eps"),
        (lambda: Converged(tol=-1.0), "Converged.tol"),
        (lambda: Converged(window=0), "Converged.window"),
        (lambda: Converged(window=2.0), "Converged.window"),
        (lambda: GaussianGradientNoise(std=0.0), "GaussianGradientNoise.std"),
        (lambda: L2Penalty(weight=-1.0), "L2Penalty.weight"),
        (lambda: TrainOptions(max_steps=-1), "max_steps"),
        (lambda: TrainOptions(max_steps=2.5), "max_steps"),
        (lambda: TrainOptions(max_steps=True), "max_steps"),
        (lambda: TrainOptions(batch_size=0), "batch_size"),
        (lambda: TrainOptions(check_every=0), "check_every"),
        (lambda: TrainOptions(snapshot_steps=(-1,)), "snapshot_steps"),
        (lambda: TrainOptions(snapshot_steps=3), "snapshot_steps"),
        (lambda: TrainOptions(loss=CrossEntropy(), stopping=BelowNoise()), "below-noise"),
    ],
)
def test_bad_value_names_the_field(make, match):
    with pytest.raises(ValidationError, match=match):
        make()


def test_composition_and_normalization():
    opts = TrainOptions(
        optimizer=SGD(lr=[0.1, 0.2], momentum=0.9, weight_decay=5e-4),
        loss="logistic",
        stopping=Memorized(),
        gradient_noise="gaussian",
        penalty=L2Penalty(weight=1e-3),
        snapshot_steps=[0, 5],
    )
    assert opts.optimizer.lr == (0.1, 0.2)
    assert opts.loss == Logistic()
    assert opts.loss.fit_margin == pytest.approx(math.log(2) / 10)
    assert opts.gradient_noise == GaussianGradientNoise(std=1.0)
    assert opts.snapshot_steps == (0, 5)
    assert TrainOptions().stopping == MaxSteps()
    assert TrainOptions().penalty is None
    assert hash(opts) == hash(
        TrainOptions(**{f: getattr(opts, f) for f in opts.__dataclass_fields__})
    )
