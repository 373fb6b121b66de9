"""Ensemble plumbing of ``lor-scaling``: selecting, repeating, padding and joining members."""

from __future__ import annotations

import numpy as np
import torch

from robustlaw.empirical.ensemble import Ensemble, MLPSpec
from robustlaw.empirical.pruning import select_members

__all__ = ["clipped_mse", "padded", "repeat_members"]


def repeat_members(ens: Ensemble, times: int) -> Ensemble:
    """Every member of ``ens`` repeated ``times`` times in a row (member-major)."""
    return select_members(ens, [i for i in range(ens.n_members) for _ in range(times)])


def _shape(spec: MLPSpec, key: str) -> tuple[int, ...]:
    """The per-member shape of parameter ``key`` (``"2l.weight"`` or ``"2l.bias"``)."""
    layer = int(key.split(".")[0]) // 2
    fan_in, fan_out = spec.layer_sizes[layer], spec.layer_sizes[layer + 1]
    return (fan_out, fan_in) if key.endswith("weight") else (fan_out,)


def padded(ens: Ensemble, width: int) -> Ensemble:
    """``ens`` with every hidden layer zero-padded to ``width`` units (padding masked out).

    The padded units have no incoming or outgoing weights and zero biases, get no gradient
    and are dead to every Lipschitz method, so each member computes, trains and measures as
    its own narrower network; nets of several widths then train as one ensemble.
    """
    sizes = ens.spec.layer_sizes
    spec = MLPSpec(
        layer_sizes=(sizes[0], *([width] * (len(sizes) - 2)), sizes[-1]),
        activation=ens.spec.activation,
        bias=ens.spec.bias,
        init=ens.spec.init,
    )
    params, masks = {}, {}
    for key, value in ens.params.items():
        block = (slice(None), *(slice(0, n) for n in value.shape[1:]))
        params[key] = value.new_zeros(value.shape[:1] + _shape(spec, key))
        params[key][block] = value
        if key in ens.masks:
            masks[key] = torch.zeros_like(params[key], dtype=torch.bool)
            masks[key][block] = ens.masks[key]
    return Ensemble(spec=spec, params=params, masks=masks, seeds=ens.seeds)


def clipped_mse(predict, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Per-member training MSE of the outputs clipped to ``[-1, 1]``, shape ``(K,)``.

    ``predict`` maps ``(n, d)`` inputs to ``(K, n, 1)`` or ``(n,)`` outputs (an ensemble or a
    construction).
    """
    with torch.no_grad():
        out = predict(X).reshape(-1, X.shape[0]).clamp(-1.0, 1.0)
    return ((out - y) ** 2).mean(dim=1).double().cpu().numpy()
