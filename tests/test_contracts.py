"""One contract for every registry entry: registering a method puts it under these tests.

For each pruning method, Lipschitz method, training part (optimizer, loss, stopping rule,
gradient noise, penalty) and experiment: it runs on a tiny input and returns its declared type
with values that are right for that input; every field of its options rejects a wrong value
with a ``ValueError`` that names the field; its old underscore name, if it has one, is refused
with the new name; experiments' ``tiny`` presets run, resume and round-trip through the store.
"""

import csv
import dataclasses
import math

import numpy as np
import pytest
import torch

from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.lipschitz import LIPSCHITZ_METHODS, LipschitzEstimate, estimate_lipschitz
from robustlaw.empirical.pruning import PRUNERS, PrunePlan, prune
from robustlaw.empirical.training import (
    CONSTRAINTS,
    GRADIENT_NOISES,
    LOSSES,
    OPTIMIZERS,
    PENALTIES,
    STOPPING_RULES,
    TrainOptions,
    TrainResult,
    train_ensemble,
)
from robustlaw.errors import UnknownNameError, ValidationError
from robustlaw.experiments import EXPERIMENTS, Store, export, list_experiments, load, run

# A wrong value for any field: object() is never a valid option; the others catch fields that
# would take any object of a type (numbers, strings, sequences) without checking it.
BAD_VALUES = (object(), -1, float("nan"), "no-such-choice", (0.5, -1.0))


def _assert_fields_reject_bad_values(options_cls, **required):
    """Every field refuses at least one bad value with a ValueError naming it, nothing else."""
    unchecked = []
    for f in dataclasses.fields(options_cls):
        if f.name in required:
            continue
        named = False
        for bad in BAD_VALUES:
            try:
                options_cls(**{**required, f.name: bad})
            except ValueError as err:
                named = named or f.name in str(err)
            except Exception as err:  # noqa: BLE001 - the contract: only ValueError
                pytest.fail(f"{options_cls.__name__}({f.name}={bad!r}) raised {err!r}")
        if not named:
            unchecked.append(f.name)
    assert not unchecked, f"{options_cls.__name__} accepts every bad value of {unchecked}"


def _assert_old_name_is_refused(registry_lookup, name):
    old = name.replace("-", "_")
    if old != name:
        with pytest.raises(UnknownNameError, match=f"it is now called '{name}'"):
            registry_lookup(old)


@pytest.fixture(scope="module")
def tiny_data():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(32, 4, generator=gen, dtype=torch.float64)
    y = torch.sign(torch.randn(32, generator=gen, dtype=torch.float64))
    return X, y


# -- pruning methods ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_pruner_keeps_exact_counts_and_is_deterministic(name, tiny_data):
    from robustlaw.empirical.training import MSE, SGD, MaxSteps

    spec = MLPSpec(layer_sizes=(4, 12, 12, 1))
    ens = init_mlp_ensemble(spec, seeds=[0, 1], dtype=torch.float64)
    plans = [PrunePlan(method=name, density=0.25, seed=s) for s in (0, 1)]
    options = TrainOptions(optimizer=SGD(lr=0.05), loss=MSE(), stopping=MaxSteps(), max_steps=5)
    kwargs = {"data": tiny_data, "train_options": options}
    first, again = (prune(ens, plans, **kwargs) for _ in range(2))
    prunable = spec.n_weights()
    keep = prunable - math.ceil(0.75 * prunable - 1e-9)
    for result in (first, again):
        kept = sum(m.sum(dim=(1, 2)) for m in result.ensemble.masks.values())
        assert kept.tolist() == [keep, keep]
        for key, mask in result.ensemble.masks.items():  # pruned entries are exactly zero
            assert torch.all(result.ensemble.params[key][~mask] == 0)
    for key in first.ensemble.masks:
        assert torch.equal(first.ensemble.masks[key], again.ensemble.masks[key])


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_pruner_options_reject_bad_values_and_old_names(name):
    from robustlaw.empirical.pruning import get_pruner

    _assert_fields_reject_bad_values(type(PRUNERS[name].default_options))
    _assert_old_name_is_refused(get_pruner, name)


# -- Lipschitz methods ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LIPSCHITZ_METHODS))
def test_lipschitz_method_brackets_a_linear_map(name):
    """On one linear layer every method must give the top singular value (lower or upper)."""
    W = torch.tensor([[3.0, 0.0, 1.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    exact = float(torch.linalg.matrix_norm(W, 2))
    entry = LIPSCHITZ_METHODS[name]
    X = torch.randn(8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    est = entry.function([W], entry.options(), X=X, generator=torch.Generator().manual_seed(0))
    assert isinstance(est, LipschitzEstimate)
    assert (est.kind, est.method) == (entry.kind, name)
    if entry.kind == "upper":
        assert est.certified
        assert exact * (1 - 1e-9) <= est.value <= exact * (1 + 1e-5)
    else:
        assert est.value <= exact * (1 + 1e-9)
        assert est.value >= 0.9 * exact  # a linear map's gradient is the same everywhere
    via_registry = estimate_lipschitz(name, [W], X=X, generator=torch.Generator().manual_seed(0))
    assert via_registry.value == pytest.approx(est.value, rel=1e-9)


@pytest.mark.parametrize("name", sorted(LIPSCHITZ_METHODS))
def test_lipschitz_options_reject_bad_values_and_old_names(name):
    _assert_fields_reject_bad_values(LIPSCHITZ_METHODS[name].options)
    _assert_old_name_is_refused(lambda n: estimate_lipschitz(n, [np.eye(2)]), name)
    with pytest.raises(ValidationError, match="options"):
        estimate_lipschitz(name, [np.eye(2)], options=object())


# -- training parts -------------------------------------------------------------------------

PARTS = {
    "optimizer": OPTIMIZERS,
    "loss": LOSSES,
    "stopping": STOPPING_RULES,
    "gradient_noise": GRADIENT_NOISES,
    "penalty": PENALTIES,
    "constraint": CONSTRAINTS,
}
PART_ENTRIES = [(field, name) for field, reg in PARTS.items() for name in sorted(reg)]


def _targets(loss_name, y):
    return (y > 0).long() if LOSSES[loss_name].integer_targets else y


@pytest.mark.parametrize(("field", "name"), PART_ENTRIES)
def test_training_part_trains_and_keeps_masks(field, name, tiny_data):
    X, y = tiny_data
    spec = MLPSpec(layer_sizes=(4, 8, 2 if name == "cross-entropy" else 1))
    ens = init_mlp_ensemble(spec, seeds=[0, 1], dtype=torch.float64)
    ens = prune(ens, PrunePlan(method="random", density=0.5, seed=0)).ensemble
    options = TrainOptions(**{field: name}, max_steps=20)
    result = train_ensemble(ens, X, _targets(options.loss.name, y), options)
    assert isinstance(result, TrainResult)
    assert result.record.n_steps.shape == (2,)
    assert np.all((result.record.n_steps >= 0) & (result.record.n_steps <= 20))
    for key, mask in ens.masks.items():
        assert torch.all(result.params[key][~mask] == 0)  # pruned weights stay exactly zero
    if field in ("optimizer", "penalty", "gradient_noise"):  # something was learnt
        assert not torch.equal(result.params["0.weight"], ens.params["0.weight"])


@pytest.mark.parametrize(("field", "name"), PART_ENTRIES)
def test_training_part_options_reject_bad_values_and_old_names(field, name):
    registry = PARTS[field]
    _assert_fields_reject_bad_values(registry[name])
    _assert_old_name_is_refused(lambda n: TrainOptions(**{field: n}), name)
    with pytest.raises(TypeError):  # unknown keywords are errors, never dropped
        registry[name](no_such_option=1)


# -- experiments ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[e.name for e in list_experiments()])
def tiny_run(request, tmp_path_factory):
    name = request.param
    path = tmp_path_factory.mktemp(name) / "r.sqlite"
    first = run(name, "tiny", store=path, device="cpu", threads=1)
    return EXPERIMENTS[name], path, first


def test_experiment_tiny_preset_runs_resumes_and_round_trips(tiny_run, tmp_path):
    experiment, path, first = tiny_run
    units = experiment.expand(experiment.preset("tiny"))
    assert (first.n_units, first.n_run) == (len(units), len(units))
    again = run(experiment.name, "tiny", store=path, device="cpu", threads=1)
    assert (again.n_run, again.n_skipped) == (0, len(units))  # resumes: nothing reruns
    rows = load(path, experiment.name, as_frame=False)
    with Store(path, readonly=True) as db:
        assert len(db.done_units(experiment.name, first.settings_hash, _version())) == len(units)
    for row in rows:  # every stored value has its record field's type
        for column in experiment.columns:
            value = row[column.name]
            assert (value is None and column.nullable) or type(value) is column.type
    (csv_path, *_) = export(path, experiment.name, tmp_path)
    with open(csv_path, newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert len(exported) == len(rows)
    for row, line in zip(rows, exported, strict=True):
        for column in experiment.columns:
            if column.type is float and row[column.name] is not None:
                assert float(line[column.name]) == row[column.name]  # bitwise through CSV


def _version():
    import robustlaw

    return robustlaw.__version__
