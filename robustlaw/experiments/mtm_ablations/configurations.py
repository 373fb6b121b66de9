"""The configurations of ``mtm-ablations``: a data source and a network, each from a registry.

Missing the Mark prunes ResNet-20 and VGG-16 on CIFAR-10 (and larger nets on TinyImageNet and
ImageNet); ``METHODS.md`` §5 allows a small CNN or MLP as the reduced-cost analogue. A
configuration pairs a data source (:data:`DATA_SOURCES`) with a network (:data:`NETWORKS`):

* ``digits-mlp`` (the default, what CI runs): scikit-learn's 8x8 digits, a 64-w-w-10 ReLU MLP;
* ``digits-cnn``: the same digits as 1x8x8 images through
  :func:`~robustlaw.empirical.modules.small_cnn` (the convolutional path, on a CPU);
* ``cifar10-cnn``: CIFAR-10 from a local folder through the same small CNN (a GPU).

Inputs are standardized per channel with the training split's mean and standard deviation, as
OpenLTH does for CIFAR-10.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from robustlaw.empirical.data import digits_data, load_torchvision
from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
from robustlaw.empirical.modules import init_module_ensemble, small_cnn

__all__ = ["CONFIGURATIONS", "DATA_SOURCES", "DIGITS_TEST_SIZE", "NETWORKS", "Configuration",
           "DataSource", "Network", "Split", "load_split"]  # fmt: skip

DIGITS_TEST_SIZE = 500
"""Digits images held out for testing (of 1797; the other 1297 train), drawn by ``split_seed``."""


@dataclass(frozen=True, kw_only=True, eq=False)
class Split:
    """Training and test images, standardized, as ``(n, channels, height, width)`` tensors.

    Attributes
    ----------
    X, y : torch.Tensor
        Training images and int64 labels.
    X_test, y_test : torch.Tensor
        Test images and labels.
    n_classes : int
        Number of classes.
    """

    X: torch.Tensor
    y: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def image_shape(self) -> tuple[int, ...]:
        """One image's ``(channels, height, width)``."""
        return tuple(self.X.shape[1:])


def _subset(X, y, n: int | None, gen: torch.Generator):
    if n is None or n >= len(y):
        return X, y
    keep = torch.randperm(len(y), generator=gen)[:n].to(y.device)
    return X[keep], y[keep]


def _digits(settings, dtype, device) -> Split:
    data = digits_data(dtype=dtype, device=device)
    images = data.X.reshape(-1, 1, 8, 8)
    gen = torch.Generator().manual_seed(settings.split_seed)
    order = torch.randperm(len(data.y), generator=gen).to(device)
    test, train = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
    X, y = _subset(images[train], data.y[train], settings.n_train, gen)
    X_test, y_test = _subset(images[test], data.y[test], settings.n_test, gen)
    return Split(X=X, y=y, X_test=X_test, y_test=y_test, n_classes=data.n_classes)


def _cifar10(settings, dtype, device) -> Split:
    def part(train: bool, n_samples: int | None):
        return load_torchvision("cifar10", settings.data_root, train=train, n_samples=n_samples,
                                seed=settings.split_seed, dtype=dtype, device=device)  # fmt: skip

    train, test = part(True, settings.n_train), part(False, settings.n_test)
    return Split(X=train.X, y=train.y, X_test=test.X, y_test=test.y, n_classes=train.n_classes)


@dataclass(frozen=True)
class DataSource:
    """A data set: ``load(settings, dtype, device) -> Split`` (raw pixels in [0, 1])."""

    load: Callable[[Any, torch.dtype, Any], Split]
    needs_root: bool


DATA_SOURCES = {
    "digits": DataSource(load=_digits, needs_root=False),
    "cifar10": DataSource(load=_cifar10, needs_root=True),
}
"""Digits (built into scikit-learn) and CIFAR-10 (read by torchvision from ``data_root``; the
loader's own error says what is missing)."""


def _standardized(split: Split) -> Split:
    mean = split.X.mean(dim=(0, 2, 3), keepdim=True)
    std = split.X.std(dim=(0, 2, 3), keepdim=True)
    return Split(X=(split.X - mean) / std, y=split.y, X_test=(split.X_test - mean) / std,
                 y_test=split.y_test, n_classes=split.n_classes)  # fmt: skip


@dataclass(frozen=True)
class Network:
    """A network family.

    Attributes
    ----------
    example_shape : callable
        ``example_shape(image_shape) -> shape`` of one input example (the MLP flattens).
    init : callable
        ``init(settings, image_shape, n_classes, seeds, dtype, device) -> ensemble``, one member
        per seed, each drawn from its own generator.
    describe : callable
        ``describe(settings, image_shape, n_classes) -> str`` for the records.
    """

    example_shape: Callable[[tuple[int, ...]], tuple[int, ...]]
    init: Callable[..., Any]
    describe: Callable[..., str]


def _mlp_spec(settings, shape, n_classes) -> MLPSpec:
    sizes = (math.prod(shape), settings.width, settings.width, n_classes)
    return MLPSpec(layer_sizes=sizes, init=settings.init)


def _mlp_init(settings, shape, n_classes, seeds, dtype, device):
    return init_mlp_ensemble(_mlp_spec(settings, shape, n_classes), seeds, dtype=dtype,
                             device=device)  # fmt: skip


def _mlp_describe(settings, shape, n_classes) -> str:
    return "mlp " + "-".join(map(str, _mlp_spec(settings, shape, n_classes).layer_sizes))


def _cnn_init(settings, shape, n_classes, seeds, dtype, device):
    module = small_cnn(shape[0], shape[1], n_classes, channels=settings.cnn_channels)
    return init_module_ensemble(module, seeds, example_shape=shape, init=settings.init,
                                dtype=dtype, device=device)  # fmt: skip


def _cnn_describe(settings, shape, n_classes) -> str:
    channels = "-".join(map(str, settings.cnn_channels))
    return f"small_cnn {'x'.join(map(str, shape))} channels {channels} to {n_classes}"


NETWORKS = {
    "mlp": Network(example_shape=lambda shape: (math.prod(shape),), init=_mlp_init,
                   describe=_mlp_describe),
    "cnn": Network(example_shape=tuple, init=_cnn_init, describe=_cnn_describe),
}  # fmt: skip
"""The 2-hidden-layer ReLU MLP (``width`` wide) and
:func:`~robustlaw.empirical.modules.small_cnn` (two stride-2 3x3 convolutions with
``cnn_channels`` channels, then a linear classifier), both drawn with the ``init`` setting."""


@dataclass(frozen=True)
class Configuration:
    """A data source and a network, by their registry names."""

    data: str
    network: str
    description: str


CONFIGURATIONS = {
    "digits-mlp": Configuration("digits", "mlp", "scikit-learn digits, 64-w-w-10 MLP (CPU)"),
    "digits-cnn": Configuration("digits", "cnn", "digits as 1x8x8 images, small CNN (CPU)"),
    "cifar10-cnn": Configuration("cifar10", "cnn", "CIFAR-10 from data_root, small CNN (GPU)"),
}
"""Every configuration by name (``MtmAblationsSettings.configuration``)."""


def load_split(settings, *, dtype: torch.dtype, device) -> Split:
    """The configuration's training and test images, standardized, shaped for its network.

    Returns
    -------
    Split
        Images flattened to ``(n, features)`` for the MLP, kept as ``(n, C, H, W)`` for the
        CNN.

    Raises
    ------
    ValidationError
        From the loader, unchanged, when CIFAR-10's files or torchvision are missing.
    """
    config = CONFIGURATIONS[settings.configuration]
    split = _standardized(DATA_SOURCES[config.data].load(settings, dtype, device))
    shape = NETWORKS[config.network].example_shape(split.image_shape)
    return Split(X=split.X.reshape(-1, *shape), y=split.y,
                 X_test=split.X_test.reshape(-1, *shape), y_test=split.y_test,
                 n_classes=split.n_classes)  # fmt: skip
