"""The two-patch signal-plus-noise data of Yang et al. (METHODS.md §6).

Each example is ``x = [x1, x2]`` in R^{2d}: one patch carries the class signal, the other
Gaussian noise (Cao, Chen, Belkin & Gu, NeurIPS 2022; Yang, Liang, Guo, Wu & Wang,
arXiv:2301.00335). The regime is governed by the signal-to-noise ratio
``||mu|| / (sigma_p sqrt(d))``, recorded in ``extras["snr"]``.
"""

from __future__ import annotations

import math

import torch

from robustlaw._validation import check_integer, check_interval, check_seed, get_registered
from robustlaw.empirical.data.record import Dataset
from robustlaw.empirical.ensemble import resolve_device
from robustlaw.errors import ValidationError

__all__ = ["MU_KINDS", "signal_vectors", "two_patch_data"]


def _one_hot(n_signals: int, d: int, gen: torch.Generator) -> torch.Tensor:
    return torch.eye(n_signals, d, dtype=torch.float64)


def _sparse(n_signals: int, d: int, gen: torch.Generator) -> torch.Tensor:
    support = max(1, min(10, d // n_signals))
    coords = torch.randperm(d, generator=gen)[: support * n_signals].reshape(n_signals, support)
    signs = torch.randint(0, 2, (n_signals, support), generator=gen).to(torch.float64) * 2 - 1
    mu = torch.zeros(n_signals, d, dtype=torch.float64)
    mu.scatter_(1, coords, signs)
    return mu / math.sqrt(support)


def _dense(n_signals: int, d: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, n_signals, generator=gen, dtype=torch.float64))
    return q.T.contiguous()


MU_KINDS = {"one-hot": _one_hot, "sparse": _sparse, "dense": _dense}
"""Unit signal directions ``(n_signals, d)``, mutually orthogonal: ``one-hot`` (e_1, e_2, ...),
``sparse`` (disjoint supports of up to 10 coordinates with random signs) and ``dense``
(orthonormalized Gaussian vectors)."""


def signal_vectors(
    mu_kind: str, n_signals: int, d: int, mu_norm: float, generator: torch.Generator
) -> torch.Tensor:
    """Orthogonal signal vectors of norm ``mu_norm``, shape ``(n_signals, d)`` (float64)."""
    fn = get_registered(MU_KINDS, mu_kind, "mu_kind")
    if d < n_signals:
        raise ValidationError(f"d must be at least the number of signals {n_signals}, got {d}")
    return fn(n_signals, d, generator) * mu_norm


def two_patch_data(
    n: int,
    d: int,
    mu_norm: float,
    sigma_p: float = 1.0,
    noise_orthogonal: bool = True,
    mu_kind: str = "one-hot",
    n_classes: int = 2,
    seed: int = 0,
    *,
    random_order: bool = False,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Draw ``n`` two-patch examples.

    Binary data (``n_classes=2``): ``y ~ Unif{-1, +1}``, signal patch ``y mu``. Multi-class:
    ``y ~ Unif{0, ..., K-1}``, signal patch ``mu_y`` with orthogonal ``mu_k``. The noise patch
    is ``xi ~ N(0, sigma_p^2 (I - P))`` with ``P`` the projection on the signals'
    span when ``noise_orthogonal`` (the default), else ``N(0, sigma_p^2 I)``.

    Parameters
    ----------
    n, d : int
        Number of examples and patch dimension (inputs have ``2 d`` features).
    mu_norm : float
        ``||mu||`` (> 0).
    sigma_p : float
        Noise standard deviation per coordinate.
    noise_orthogonal : bool
        Remove the signal directions from the noise.
    mu_kind : {"one-hot", "sparse", "dense"}
        The signal directions (:data:`MU_KINDS`).
    n_classes : int
        2 for the binary model, more for one signal per class.
    seed : int
        Seed of every draw.
    random_order : bool
        Swap the two patches of each example with probability 1/2 (else signal first).
    dtype, device
        Of the returned tensors.

    Returns
    -------
    Dataset
        ``X`` of shape ``(n, 2 d)``; ``y`` float ±1 (binary) or int64 classes.
        ``noise_level = 0``: the label is a function of the input.
        ``isoperimetry_constant`` is None. ``extras``: ``mu`` (signals, ``(n_signals, d)``),
        ``noise`` (``(n, d)``), ``signal_first`` (bool ``(n,)``), ``snr``.

    Examples
    --------
    >>> data = two_patch_data(8, 50, mu_norm=5.0, seed=0)
    >>> tuple(data.X.shape), data.n_classes, float(data.X[:, 0].abs().max())
    ((8, 100), 2, 5.0)
    """
    n = check_integer(n, "n", minimum=1)
    d = check_integer(d, "d", minimum=1)
    n_classes = check_integer(n_classes, "n_classes", minimum=1)
    if n_classes < 2:
        raise ValidationError(f"n_classes must be at least 2, got {n_classes}")
    mu_norm = float(check_interval(mu_norm, "mu_norm", 0, math.inf))
    sigma_p = float(check_interval(sigma_p, "sigma_p", 0, math.inf, closed="left"))
    seed = check_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    binary = n_classes == 2
    mu = signal_vectors(mu_kind, 1 if binary else n_classes, d, mu_norm, gen)
    if binary:
        y = torch.randint(0, 2, (n,), generator=gen).to(torch.float64) * 2 - 1
        signal = y.unsqueeze(1) * mu[0]
    else:
        y = torch.randint(0, n_classes, (n,), generator=gen)
        signal = mu[y]
    noise = torch.randn(n, d, generator=gen, dtype=torch.float64) * sigma_p
    if noise_orthogonal:
        basis = mu / mu_norm
        noise = noise - (noise @ basis.T) @ basis
    signal_first = (
        torch.rand(n, generator=gen) < 0.5 if random_order else torch.ones(n, dtype=torch.bool)
    )
    first = torch.where(signal_first.unsqueeze(1), signal, noise)
    second = torch.where(signal_first.unsqueeze(1), noise, signal)
    dev = resolve_device(device)
    return Dataset(
        X=torch.cat([first, second], dim=1).to(dev, dtype),
        y=y.to(dev, dtype) if binary else y.to(dev),
        kind="two-patch",
        noise_level=0.0,
        isoperimetry_constant=None,
        n_classes=n_classes,
        labels_bounded=True,
        seed=seed,
        extras={
            "mu": mu.to(dev, dtype),
            "noise": noise.to(dev, dtype),
            "signal_first": signal_first.to(dev),
            "snr": mu_norm / (sigma_p * math.sqrt(d)) if sigma_p > 0 else math.inf,
        },
    )
