"""Data generators: statistics, reported constants, noise, loaders, bad input."""

import math
import sys
import types

import numpy as np
import pytest
import torch

from robustlaw._validation import get_registered
from robustlaw.empirical.data import (
    DATASETS,
    Dataset,
    digits_data,
    isoperimetry_constant,
    load_torchvision,
    random_labels_data,
    sample_inputs,
    teacher_data,
    two_patch_data,
)
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.errors import UnknownNameError, ValidationError


def _dataset(X, y, noise_level=1.0):
    return Dataset(
        X=X,
        y=y,
        kind="x",
        noise_level=noise_level,
        isoperimetry_constant=1.0,
        n_classes=None,
        labels_bounded=True,
        seed=0,
    )


F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_gaussian_inputs_have_unit_mean_squared_norm():
    n, d = 4000, 25
    X = sample_inputs("gaussian-normalized", n, d, generator=_gen(), dtype=torch.float64)
    sq = X.square().sum(dim=1)
    # ||x||^2 ~ chi2_d / d: mean 1, variance 2/d; the sample mean is within 5 standard errors
    assert abs(float(sq.mean()) - 1) < 5 * math.sqrt(2 / d / n)
    assert abs(float(X.mean())) < 5 / math.sqrt(n * d * d)


def test_sphere_inputs_have_norm_one_and_zero_mean():
    X = sample_inputs("sphere", 2000, 10, generator=_gen(), dtype=torch.float64)
    torch.testing.assert_close(X.norm(dim=1), torch.ones(2000, dtype=torch.float64))
    assert float(X.mean(dim=0).abs().max()) < 5 / math.sqrt(2000 * 10)


def test_cube_inputs_fill_the_scaled_cube():
    d = 16
    X = sample_inputs("cube", 3000, d, generator=_gen(), dtype=torch.float64)
    assert float(X.min()) >= 0
    assert float(X.max()) <= 1 / math.sqrt(d)
    assert abs(float(X.mean()) * math.sqrt(d) - 0.5) < 0.01


def test_scale_multiplies_inputs_and_constant():
    a = sample_inputs("gaussian-normalized", 5, 4, generator=_gen(3), dtype=torch.float64)
    b = sample_inputs("gaussian-normalized", 5, 4, scale=2.0, generator=_gen(3), dtype=F64)
    std = sample_inputs("gaussian", 5, 4, generator=_gen(3), dtype=torch.float64)
    torch.testing.assert_close(b, 2 * a)
    torch.testing.assert_close(std, 2 * a)  # N(0, I_d) is N(0, I_d / d) scaled by sqrt(d) = 2
    assert isoperimetry_constant("gaussian-normalized", 4, scale=2.0) == pytest.approx(4.0)
    assert random_labels_data(5, 4, inputs="gaussian").isoperimetry_constant == 4.0


@pytest.mark.parametrize(
    ("kind", "d", "c"),
    [
        ("gaussian-normalized", 7, 1.0),
        ("gaussian", 7, 7.0),
        ("sphere", 7, 7 / 6),
        ("cube", 7, 1 / (2 * math.pi)),
    ],
)
def test_isoperimetry_table(kind, d, c):
    assert isoperimetry_constant(kind, d) == pytest.approx(c, rel=1e-15)
    data = random_labels_data(10, d, inputs=kind, seed=0)
    assert data.isoperimetry_constant == pytest.approx(c, rel=1e-15)


def test_random_labels_are_pm1_with_unit_noise_level():
    data = random_labels_data(2000, 3, seed=4)
    assert set(data.y.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(data.y.mean())) < 5 / math.sqrt(2000)
    assert data.noise_level == 1.0
    assert data.labels_bounded
    assert data.class_targets().tolist() == (data.y > 0).long().tolist()
    again = random_labels_data(2000, 3, seed=4)
    assert torch.equal(again.X, data.X)
    assert torch.equal(again.y, data.y)


def test_teacher_data_is_teacher_plus_recorded_noise():
    teacher = init_mlp_ensemble(MLPSpec(layer_sizes=(5, 8, 1)), seeds=[2], dtype=torch.float64)
    data = teacher_data(3000, 5, teacher=teacher, noise_std=0.5, seed=1, dtype=torch.float64)
    clean = teacher(data.X)[0, :, 0]
    torch.testing.assert_close(data.y - clean, data.extras["noise"])
    assert data.noise_level == 0.25
    assert not data.labels_bounded
    assert abs(float(data.extras["noise"].var()) / 0.25 - 1) < 0.1
    with pytest.raises(ValidationError, match="teacher must map"):
        teacher_data(10, 4, teacher=teacher)


def test_two_patch_binary_signal_and_orthogonal_noise():
    n, d = 200, 60
    data = two_patch_data(n, d, mu_norm=3.0, sigma_p=1.0, seed=0, dtype=torch.float64)
    mu = data.extras["mu"][0]
    assert float(mu.norm()) == pytest.approx(3.0)
    signal, noise = data.X[:, :d], data.X[:, d:]
    torch.testing.assert_close(signal, data.y.unsqueeze(1) * mu)
    assert float((noise @ mu).abs().max()) < 1e-10
    # E ||xi||^2 = sigma_p^2 (d - 1) after projecting out one direction
    assert abs(float(noise.square().sum(dim=1).mean()) / (d - 1) - 1) < 0.05
    assert data.extras["snr"] == pytest.approx(3.0 / math.sqrt(d))
    plain = two_patch_data(n, d, mu_norm=3.0, noise_orthogonal=False, seed=0)
    assert float((plain.X[:, d:] @ mu.float()).abs().max()) > 0.1


@pytest.mark.parametrize("mu_kind", ["one-hot", "sparse", "dense"])
def test_two_patch_multiclass_orthogonal_signals(mu_kind):
    data = two_patch_data(
        90,
        40,
        mu_norm=2.0,
        n_classes=3,
        mu_kind=mu_kind,
        seed=1,
        random_order=True,
        dtype=torch.float64,
    )
    mu = data.extras["mu"]
    torch.testing.assert_close(mu @ mu.T, 4.0 * torch.eye(3, dtype=torch.float64))
    first = data.extras["signal_first"]
    signal = torch.where(first.unsqueeze(1), data.X[:, :40], data.X[:, 40:])
    torch.testing.assert_close(signal, mu[data.y])
    assert 0 < int(first.sum()) < 90
    assert data.y.dtype == torch.int64


def test_digits_label_noise_is_exact_and_input_noise_has_its_std():
    clean = digits_data(n_samples=500, seed=3, dtype=torch.float64)
    noisy = digits_data(n_samples=500, seed=3, label_noise=0.2, dtype=torch.float64)
    flipped = noisy.extras["flipped"]
    assert int(flipped.sum()) == 100
    assert bool((noisy.y[flipped] != clean.y[flipped]).all())
    assert torch.equal(noisy.y[~flipped], clean.y[~flipped])
    assert float(clean.X.min()) >= 0
    assert float(clean.X.max()) <= 1
    jittered = digits_data(n_samples=500, seed=3, input_noise_std=0.5, dtype=torch.float64)
    assert abs(float((jittered.X - clean.X).std()) / 0.5 - 1) < 0.02
    assert clean.noise_level is None
    assert clean.n_classes == 10


def test_torchvision_loader_errors_clearly(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(ValidationError, match="needs torchvision"):
        load_torchvision("mnist", tmp_path)
    with pytest.raises(UnknownNameError, match="cifar10"):
        load_torchvision("svhn", tmp_path)


def test_torchvision_loader_reads_local_files_without_download(monkeypatch, tmp_path):
    calls = []

    class FakeMNIST:
        def __init__(self, root, train, download):
            calls.append(download)
            if not (tmp_path / "MNIST").exists():
                raise RuntimeError("Dataset not found.")
            self.data = torch.full((6, 28, 28), 255, dtype=torch.uint8)
            self.targets = torch.arange(6)

    fake = types.ModuleType("torchvision.datasets")
    fake.MNIST = FakeMNIST
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", fake)
    with pytest.raises(ValidationError, match="not a directory"):
        load_torchvision("mnist", tmp_path / "absent")
    with pytest.raises(ValidationError, match="never downloads"):
        load_torchvision("mnist", tmp_path)
    (tmp_path / "MNIST").mkdir()
    data = load_torchvision("mnist", tmp_path)
    assert tuple(data.X.shape) == (6, 1, 28, 28)
    assert float(data.X.max()) == 1.0
    assert data.y.tolist() == list(range(6))
    assert calls == [False, False]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: random_labels_data(0, 3), "n_samples"),
        (lambda: random_labels_data(5, 3, inputs="boolean_cube"), "gaussian"),
        (lambda: random_labels_data(5, 1, inputs="sphere"), "at least 2"),
        (lambda: random_labels_data(5, 3, scale=-1.0), "scale"),
        (lambda: random_labels_data(5, 3, seed=-2), "seed"),
        (lambda: two_patch_data(5, 3, mu_norm=0.0), "mu_norm"),
        (lambda: two_patch_data(5, 2, mu_norm=1.0, n_classes=3), "d must"),
        (lambda: two_patch_data(5, 3, mu_norm=1.0, mu_kind="wavy"), "mu_kind"),
        (lambda: digits_data(label_noise=1.5), "label_noise"),
        (lambda: digits_data(n_samples=5000), "n_samples must be an integer >= 1 and <= 1797"),
        (lambda: _dataset(torch.zeros(3, 2), torch.zeros(4)), "same positive number"),
        (lambda: _dataset(torch.full((3, 2), math.nan), torch.zeros(3)), "finite"),
        (lambda: _dataset(torch.zeros(3), torch.zeros(3)), "dimensions"),
        (lambda: _dataset(torch.zeros(3, 2), torch.zeros(3), noise_level=-1.0), "noise_level"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValidationError, match=match):
        call()


@pytest.mark.parametrize(
    ("call", "old", "new"),
    [
        (lambda: sample_inputs("gaussian_normalized", 2, 2, generator=torch.Generator()),
         "gaussian_normalized", "gaussian-normalized"),
        (lambda: two_patch_data(5, 3, mu_norm=1.0, mu_kind="one_hot"), "one_hot", "one-hot"),
        (lambda: load_torchvision("fashion_mnist", "."), "fashion_mnist", "fashion-mnist"),
        (lambda: get_registered(DATASETS, "random_labels", "data set"),
         "random_labels", "random-labels"),
        (lambda: get_registered(DATASETS, "two_patch", "data set"), "two_patch", "two-patch"),
    ],
)  # fmt: skip
def test_underscore_names_are_refused_with_the_new_name(call, old, new):
    with pytest.raises(UnknownNameError, match=f"'{old}': it is now called '{new}'"):
        call()


def test_datasets_record_their_registry_name():
    assert random_labels_data(4, 2).kind == "random-labels"
    assert two_patch_data(4, 3, mu_norm=1.0).kind == "two-patch"
    assert DATASETS["random-labels"] is random_labels_data
    assert DATASETS["two-patch"] is two_patch_data


def test_counts_must_be_integers():
    for bad in (2.0, True, "3", None):
        message = f"n_samples must be an integer >= 1, got {bad!r}"
        with pytest.raises(ValidationError, match=message):
            random_labels_data(bad, 3)
    assert sample_inputs("cube", np.int64(3), 2, generator=torch.Generator()).shape == (3, 2)


def test_registry_and_regression_targets():
    assert set(DATASETS) >= {"random-labels", "teacher", "two-patch", "digits"}
    with pytest.raises(ValidationError, match="regression"):
        teacher_data(5, 3).class_targets()
    assert np.isclose(
        random_labels_data(4, 2, inputs="cube").isoperimetry_constant, 1 / (2 * np.pi)
    )
