"""Real image data with label or input noise: scikit-learn digits, MNIST, FashionMNIST, CIFAR-10.

Digits ship inside scikit-learn, so tests use them. MNIST, FashionMNIST and CIFAR-10 are read
from a local root through ``torchvision`` when it is installed and the files are there; they
are never downloaded. Pixels are scaled to [0, 1]. The noise level and isoperimetry constant of
real data are unknown and reported as None.

Noise (No Free Prune §6.2): ``input_noise_std`` adds i.i.d. Gaussian noise to every pixel,
drawn once; ``label_noise`` replaces that fraction of the labels (exactly
``round(label_noise * n)`` of them, at random positions) by a uniformly drawn *different*
class.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robustlaw._validation import check_integer, check_interval, check_seed, get_registered
from robustlaw.empirical.data.record import Dataset
from robustlaw.empirical.ensemble import resolve_device
from robustlaw.errors import ValidationError

__all__ = ["TORCHVISION_DATASETS", "add_noise", "digits_data", "load_torchvision"]


def add_noise(
    X: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    *,
    label_noise: float,
    input_noise_std: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Add input noise and replace a fraction of the labels; float64 CPU tensors in and out.

    Returns
    -------
    X, y, flipped
        Noisy inputs, noisy labels and the boolean ``(n,)`` flag of replaced labels.
    """
    label_noise = float(check_interval(label_noise, "label_noise", 0, 1, closed="both"))
    std = float(check_interval(input_noise_std, "input_noise_std", 0, math.inf, closed="left"))
    n = y.shape[0]
    if std > 0:
        X = X + std * torch.randn(X.shape, generator=generator, dtype=X.dtype)
    flipped = torch.zeros(n, dtype=torch.bool)
    n_flip = round(label_noise * n)
    if n_flip:
        where = torch.randperm(n, generator=generator)[:n_flip]
        shift = torch.randint(1, n_classes, (n_flip,), generator=generator)
        y = y.clone()
        y[where] = (y[where] + shift) % n_classes
        flipped[where] = True
    return X, y, flipped


def _finish(X, y, n_classes, kind, seed, label_noise, input_noise_std, n_samples, dtype, device):
    seed = check_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if n_samples is not None:
        n_samples = check_integer(n_samples, "n_samples", minimum=1, maximum=y.shape[0])
        keep = torch.randperm(y.shape[0], generator=gen)[:n_samples]
        X, y = X[keep], y[keep]
    X, y, flipped = add_noise(
        X, y, n_classes, label_noise=label_noise, input_noise_std=input_noise_std, generator=gen
    )
    dev = resolve_device(device)
    return Dataset(
        X=X.to(dev, dtype),
        y=y.to(dev),
        kind=kind,
        noise_level=None,
        isoperimetry_constant=None,
        n_classes=n_classes,
        labels_bounded=True,
        seed=seed,
        extras={
            "label_noise": label_noise,
            "input_noise_std": input_noise_std,
            "flipped": flipped.to(dev),
        },
    )


def digits_data(
    *,
    label_noise: float = 0.0,
    input_noise_std: float = 0.0,
    n_samples: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, 10 classes), pixels in [0, 1], with noise.

    Parameters
    ----------
    label_noise : float
        Fraction of labels replaced by a different random class, in [0, 1].
    input_noise_std : float
        Standard deviation of Gaussian noise added to every pixel.
    n_samples : int, optional
        Keep a random subset of this size.
    seed : int
        Seed of the subset and the noise.
    dtype, device
        Of ``X``.

    Returns
    -------
    Dataset
        ``X`` of shape ``(n, 64)``, ``y`` int64 in [0, 10).

    Examples
    --------
    >>> data = digits_data(label_noise=0.1, n_samples=100, seed=0)
    >>> tuple(data.X.shape), int(data.extras["flipped"].sum())
    ((100, 64), 10)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = torch.as_tensor(bunch.data, dtype=torch.float64) / 16.0
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    return _finish(X, y, 10, "digits", seed, label_noise, input_noise_std, n_samples, dtype, device)


@dataclass(frozen=True)
class _Source:
    class_name: str
    n_classes: int


TORCHVISION_DATASETS = {
    "mnist": _Source("MNIST", 10),
    "fashion-mnist": _Source("FashionMNIST", 10),
    "cifar10": _Source("CIFAR10", 10),
}


def load_torchvision(
    name: str,
    root: str | Path,
    *,
    train: bool = True,
    label_noise: float = 0.0,
    input_noise_std: float = 0.0,
    n_samples: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Load MNIST, FashionMNIST or CIFAR-10 from a local ``root`` (never downloads).

    Parameters
    ----------
    name : {"mnist", "fashion-mnist", "cifar10"}
        The data set.
    root : str or path
        The folder torchvision reads (``download=False``).
    train : bool
        The training split, else the test split.
    label_noise, input_noise_std, n_samples, seed, dtype, device
        As in :func:`digits_data`.

    Returns
    -------
    Dataset
        ``X`` of shape ``(n, channels, height, width)`` in [0, 1] before noise, ``y`` int64.

    Raises
    ------
    ValidationError
        If torchvision is not installed, ``root`` does not exist or the files are missing.
    """
    source = get_registered(TORCHVISION_DATASETS, name, "torchvision data set")
    try:
        datasets = importlib.import_module("torchvision.datasets")
    except ImportError:
        raise ValidationError(
            f"loading {name!r} needs torchvision, which is not installed "
            "(pip install torchvision); scikit-learn's digits_data() needs nothing extra"
        ) from None
    root = Path(root)
    if not root.is_dir():
        raise ValidationError(f"root {str(root)!r} is not a directory holding the {name} files")
    try:
        ds = getattr(datasets, source.class_name)(root=str(root), train=train, download=False)
    except RuntimeError as exc:
        raise ValidationError(
            f"{name} files not found under {str(root)!r} ({exc}); place them there, this "
            "loader never downloads"
        ) from None
    pixels = torch.as_tensor(np.asarray(ds.data), dtype=torch.float64) / 255.0
    X = pixels.unsqueeze(1) if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
    y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    return _finish(
        X, y, source.n_classes, name, seed, label_noise, input_noise_std, n_samples, dtype, device
    )
