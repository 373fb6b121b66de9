"""The correlation of a fit with the label noise (``THEORY.md`` §3.3, §6.3).

No Free Prune (Kumar, Luo, Sellke, ICML 2024, arXiv:2402.01089) reduces fitting below the noise
level to a large correlation between the fit and the noise,

.. math::

    \\operatorname{corr}(f) = \\frac1n \\sum_{i=1}^n \\big(f(x_i) - \\mathbb E_\\mu f\\big) z_i,
    \\qquad z_i = y_i - g(x_i),

which the information lemma (NFP Lemma 1) caps in terms of :math:`I(f^W; D)`. Its Figs. 2–3
track it per epoch in a student–teacher task: it rises to about :math:`\\sigma^2` when a
network fits the noise (:math:`\\frac1n\\sum_i z_i^2 \\approx \\sigma^2`) and stays near 0 when
it does not. :func:`noise_correlation` computes it for one network or an ensemble, with
:math:`\\mathbb E_\\mu f` estimated by the mean output on fresh samples of :math:`\\mu` (one
mixture component, as in that task).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robustlaw._validation import real_array
from robustlaw.errors import ValidationError

__all__ = ["noise_correlation"]


def _as_float64(x: Any, name: str, expected: str) -> np.ndarray:
    """``x`` as a finite float64 array of 1 or 2 dimensions (tensors are read on the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to(device="cpu", dtype=torch.float64).numpy()
    arr = real_array(x, name)
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        hint = "; squeeze the trailing output axis" if arr.ndim == 3 and arr.shape[-1] == 1 else ""
        raise ValidationError(f"{name} must have shape {expected}, got {arr.shape}{hint}")
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} must be finite, but it holds NaN or infinity")
    return arr


def _check_shapes(train: np.ndarray, noise: np.ndarray, fresh: np.ndarray) -> None:
    """Raise unless the three arrays agree on members and training points."""
    if fresh.ndim != train.ndim or fresh.shape[:-1] != train.shape[:-1]:
        raise ValidationError(
            f"fresh_outputs must have one row per member of train_outputs: shape (m,) for "
            f"train_outputs of shape (n,), (K, m) for (K, n); got {fresh.shape} for "
            f"train_outputs of shape {train.shape}"
        )
    if noise.ndim > train.ndim or noise.shape != train.shape[train.ndim - noise.ndim :]:
        raise ValidationError(
            f"noise must have shape (n,) or that of train_outputs {train.shape}, got {noise.shape}"
        )


def noise_correlation(train_outputs: Any, noise: Any, fresh_outputs: Any) -> float | np.ndarray:
    """The correlation of the outputs with the label noise, per member.

    .. math::

        \\operatorname{corr}(f) = \\frac1n \\sum_{i=1}^n \\big(f(x_i) - \\hat{\\mathbb E}_\\mu
        f\\big) z_i, \\qquad \\hat{\\mathbb E}_\\mu f = \\frac1m \\sum_{j=1}^m f(x'_j),

    in the units of output times label (NFP §6, Figs. 2–3; ``THEORY.md`` §3.3, §6.3). Inputs
    are converted to float64 NumPy arrays (tensors are detached and read on the CPU).

    Parameters
    ----------
    train_outputs : array_like or torch.Tensor
        The network's outputs :math:`f(x_i)` on the training points: shape ``(n_samples,)``
        for one network, ``(n_members, n_samples)`` for an ensemble.
    noise : array_like or torch.Tensor
        The label noise :math:`z_i = y_i - g(x_i)`: shape ``(n_samples,)``, shared by all
        members, or ``(n_members, n_samples)``, one row per member.
    fresh_outputs : array_like or torch.Tensor
        The outputs on fresh samples :math:`x'_j \\sim \\mu`: shape ``(m,)`` for one network,
        ``(n_members, m)`` for an ensemble.

    Returns
    -------
    float or numpy.ndarray
        The correlation: a float for one network, a float64 array of shape ``(n_members,)``
        for an ensemble, each entry equal to the member's correlation computed alone.

    Raises
    ------
    ValidationError
        If an input is not a finite real array of the shapes above (a trailing output axis of
        size 1 must be squeezed), or the shapes disagree.

    Examples
    --------
    Outputs that copy the noise correlate with it by :math:`\\frac1n\\sum_i z_i^2`:

    >>> z = np.array([0.5, -1.0, 1.5, -1.0])
    >>> noise_correlation(z, z, np.zeros(100))
    1.125
    >>> noise_correlation(np.stack([z, np.ones(4)]), z, np.stack([np.zeros(5), np.ones(5)]))
    array([1.125, 0.   ])
    """
    train = _as_float64(train_outputs, "train_outputs", "(n_samples,) or (n_members, n_samples)")
    z = _as_float64(noise, "noise", "(n_samples,) or (n_members, n_samples)")
    fresh = _as_float64(fresh_outputs, "fresh_outputs", "(m,) or (n_members, m)")
    _check_shapes(train, z, fresh)
    centered = train - fresh.mean(axis=-1, keepdims=True)
    corr = (centered * z).mean(axis=-1)
    return float(corr) if train.ndim == 1 else corr
