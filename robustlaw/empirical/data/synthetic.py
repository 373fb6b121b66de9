"""Synthetic data that report the constants the theorems need.

Every generator returns a frozen :class:`Dataset` carrying, beside ``X`` and ``y``, the noise
level ``sigma^2 = E Var(y | x)`` and the isoperimetry constant ``c`` of the input distribution
(THEORY.md §1.1, §1.4), so that :mod:`robustlaw.bounds` is called with the right values.

Input distributions (:data:`INPUT_SAMPLERS`, keyed like
:data:`robustlaw.bounds.ISOPERIMETRY`, which supplies ``c``):

=================== ================================== ====================
kind                distribution                       c
=================== ================================== ====================
gaussian-normalized N(0, I_d / d)                      1
gaussian            N(0, I_d)                          d
sphere              uniform on the unit sphere         d / (d - 1)
cube                uniform on [0, 1/sqrt(d)]^d        1 / (2 pi)
=================== ================================== ====================

``scale`` multiplies the inputs, and ``c`` by ``scale**2`` (THEORY.md §1.4).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from robustlaw._validation import check_integer, check_interval, check_seed, get_registered
from robustlaw.bounds import ISOPERIMETRY, isoperimetry_constant
from robustlaw.empirical.data.record import Dataset
from robustlaw.empirical.ensemble import Ensemble, MLPSpec, init_mlp_ensemble, resolve_device
from robustlaw.errors import ValidationError

__all__ = [
    "INPUT_SAMPLERS",
    "random_labels_data",
    "sample_inputs",
    "teacher_data",
]


def _gaussian(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(n, d, generator=gen, dtype=torch.float64)


def _gaussian_normalized(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    return _gaussian(n, d, gen) / math.sqrt(d)


def _sphere(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    z = _gaussian(n, d, gen)
    return z / z.norm(dim=1, keepdim=True)


def _cube(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, d, generator=gen, dtype=torch.float64) / math.sqrt(d)


INPUT_SAMPLERS: dict[str, Callable[[int, int, torch.Generator], torch.Tensor]] = {
    "gaussian-normalized": _gaussian_normalized,
    "gaussian": _gaussian,
    "sphere": _sphere,
    "cube": _cube,
}
"""Samplers ``(n_samples, n_features, generator) -> float64 (n_samples, n_features)`` at
scale 1, one per key of :data:`robustlaw.bounds.ISOPERIMETRY`."""


_MAX_ENTRIES = 2**62  # beyond this torch cannot even index the tensor


def sample_inputs(
    kind: str,
    n_samples: int,
    n_features: int,
    *,
    scale: float = 1.0,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Draw ``n_samples`` inputs of an :data:`INPUT_SAMPLERS` kind, times ``scale``.

    Draws are made in float64 on the CPU from ``generator`` and then cast, so results do not
    depend on dtype or device beyond rounding.

    Returns
    -------
    torch.Tensor
        Shape ``(n_samples, n_features)``.

    Raises
    ------
    ValidationError
        For an unknown kind (listing the valid ones), non-positive sizes or scale, or a
        dimension below the distribution's minimum (2 for the sphere).
    """
    sampler = get_registered(INPUT_SAMPLERS, kind, "input distribution")
    n_samples = check_integer(n_samples, "n_samples", minimum=1)
    n_features = check_integer(n_features, "n_features", minimum=1)
    if n_samples * n_features > _MAX_ENTRIES:
        raise ValidationError(
            f"n_samples x n_features = {n_samples} x {n_features} exceeds {_MAX_ENTRIES:.3g} "
            "entries, more than a tensor can index"
        )
    if n_features < ISOPERIMETRY[kind].min_d:
        raise ValidationError(
            f"n_features must be at least {ISOPERIMETRY[kind].min_d:g} for {kind}, got {n_features}"
        )
    scale = float(check_interval(scale, "scale", 0, math.inf))
    return (sampler(n_samples, n_features, generator) * scale).to(resolve_device(device), dtype)


def _signs(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=gen, dtype=torch.int64).to(torch.float64) * 2 - 1


def random_labels_data(
    n_samples: int,
    n_features: int,
    *,
    inputs: str = "gaussian-normalized",
    scale: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Inputs from a distribution and i.i.d. uniform ±1 labels, independent of the inputs.

    The target is ``g = 0`` and the noise level ``sigma^2 = 1`` (THEORY.md §1.1); exact
    interpolation fits below the noise level for every ``eps < 1``. No Free Prune Fig. 1a uses
    ``n = d = 30`` with ``inputs="gaussian"`` (standard normal entries, ``c = d``).

    Examples
    --------
    >>> data = random_labels_data(30, 30, seed=0)
    >>> data.noise_level, data.isoperimetry_constant, tuple(data.X.shape)
    (1.0, 1.0, (30, 30))
    """
    seed = check_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    X = sample_inputs(
        inputs, n_samples, n_features, scale=scale, generator=gen, dtype=dtype, device=device
    )
    y = _signs(n_samples, gen).to(X.device, dtype)
    return Dataset(
        X=X,
        y=y,
        kind="random-labels",
        noise_level=1.0,
        isoperimetry_constant=float(isoperimetry_constant(inputs, n_features, scale)),
        n_classes=2,
        labels_bounded=True,
        seed=seed,
        extras={"inputs": inputs, "scale": scale},
    )


def teacher_data(
    n_samples: int,
    n_features: int,
    *,
    teacher: Ensemble | None = None,
    hidden: tuple[int, ...] = (50, 50),
    noise_std: float = 1.0,
    inputs: str = "gaussian-normalized",
    scale: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Student-teacher data: ``y = teacher(x) + z`` with ``z ~ N(0, noise_std^2)`` drawn once.

    The teacher is the first member of ``teacher``, or a fresh ReLU MLP
    ``(n_features, *hidden, 1)`` initialized from ``seed`` (No Free Prune §6.3: three linear
    layers of width 50). The labels are unbounded, so this is a proxy for the theorems
    (``labels_bounded=False``); ``noise_level = noise_std**2``. The noise draw is kept in
    ``extras["noise"]`` for the noise-correlation metric.

    Examples
    --------
    >>> data = teacher_data(100, 5, seed=1)
    >>> data.noise_level, data.labels_bounded, tuple(data.extras["noise"].shape)
    (1.0, False, (100,))
    """
    seed = check_seed(seed)
    noise_std = float(check_interval(noise_std, "noise_std", 0, math.inf, closed="left"))
    gen = torch.Generator().manual_seed(seed)
    X = sample_inputs(
        inputs, n_samples, n_features, scale=scale, generator=gen, dtype=torch.float64
    )
    if teacher is None:
        spec = MLPSpec(layer_sizes=(n_features, *hidden, 1))
        teacher = init_mlp_ensemble(spec, seeds=[seed], dtype=torch.float64)
    if teacher.spec.layer_sizes[0] != n_features or teacher.spec.layer_sizes[-1] != 1:
        raise ValidationError(
            f"teacher must map {n_features} features to 1 output, got layer sizes "
            f"{teacher.spec.layer_sizes}"
        )
    with torch.no_grad():
        clean = teacher.to(device="cpu", dtype=torch.float64)(X)[0, :, 0]
    noise = torch.randn(n_samples, generator=gen, dtype=torch.float64) * noise_std
    dev = resolve_device(device)
    return Dataset(
        X=X.to(dev, dtype),
        y=(clean + noise).to(dev, dtype),
        kind="teacher",
        noise_level=noise_std**2,
        isoperimetry_constant=float(isoperimetry_constant(inputs, n_features, scale)),
        n_classes=None,
        labels_bounded=False,
        seed=seed,
        extras={"teacher": teacher, "noise": noise.to(dev, dtype), "clean": clean.to(dev, dtype)},
    )
