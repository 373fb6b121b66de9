"""Erdős–Rényi(-Kernel) layer densities and random pruning at those densities.

Evci et al., *Rigging the Lottery*, ICML 2020 (arXiv:1911.11134); ``METHODS.md`` §3.1. Layer
``l`` with weight shape ``(n_out, n_in, *kernel)`` gets the raw factor
``r_l = (sum(shape) / prod(shape)) ** power_scale`` (ERK; for a linear layer
``(n_in + n_out) / (n_in n_out)``); ER ignores the kernel dimensions. Densities ``ε r_l`` are
solved with the dense-set redistribution loop, so none exceeds 1, and turned into integer counts
by the largest-remainder method, so they sum exactly to the kept count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from robustlaw._validation import check_bool
from robustlaw.empirical.pruning._context import PruneContext
from robustlaw.empirical.pruning.masks import n_keep_for_density
from robustlaw.empirical.pruning.scorers import PrunerOutput, random_scores
from robustlaw.errors import ValidationError

__all__ = ["ErkOptions", "erk_counts", "erk_densities", "prune_erk"]


@dataclass(frozen=True, kw_only=True)
class ErkOptions:
    """Options of ERK / ER random pruning.

    Parameters
    ----------
    power_scale : float
        The exponent ``β`` of the raw factor (default 1).
    kernel : bool
        True: ERK (kernel dimensions count). False: ER. They agree for linear layers.
    """

    power_scale: float = 1.0
    kernel: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.power_scale, (int, float)) and math.isfinite(self.power_scale)):
            raise ValidationError(f"power_scale must be a finite number, got {self.power_scale!r}")
        check_bool(self.kernel, "kernel")


def _raw_factor(shape: Sequence[int], options: ErkOptions) -> float:
    dims = tuple(shape) if options.kernel else tuple(shape[:2])
    return (sum(dims) / math.prod(dims)) ** options.power_scale


def erk_densities(shapes: Sequence[Sequence[int]], n_keep: int, options: ErkOptions) -> list[float]:
    """Per-layer densities that keep ``n_keep`` entries in total, none above 1.

    Parameters
    ----------
    shapes : sequence of shapes
        One weight shape ``(n_out, n_in, *kernel)`` per layer (no member axis).
    n_keep : int
        The total number of entries to keep.
    options : ErkOptions

    Returns
    -------
    list of float

    Examples
    --------
    >>> d = erk_densities([(2, 2), (100, 100)], 1004, ErkOptions())
    >>> d[0], round(d[1], 6)  # the tiny layer is dense; the rest goes to the big one
    (1.0, 0.1)
    """
    sizes = [math.prod(s) for s in shapes]
    raw = [_raw_factor(s, options) for s in shapes]
    dense: set[int] = set()
    eps = 0.0
    while len(dense) < len(shapes):
        rest = [l for l in range(len(shapes)) if l not in dense]
        eps = (n_keep - sum(sizes[l] for l in dense)) / sum(raw[l] * sizes[l] for l in rest)
        violators = {l for l in rest if eps * raw[l] > 1.0}
        if not violators:
            break
        dense |= violators
    return [1.0 if l in dense else eps * raw[l] for l in range(len(shapes))]


def erk_counts(shapes: Sequence[Sequence[int]], n_keep: int, options: ErkOptions) -> list[int]:
    """Integer kept counts per layer: ERK densities rounded by the largest-remainder method.

    The counts sum to ``n_keep`` exactly and none exceeds its layer's size; remainders are
    handed out in decreasing order, ties to the earlier layer.

    Examples
    --------
    >>> erk_counts([(3, 3), (3, 3), (3, 3)], 10, ErkOptions())
    [4, 3, 3]
    """
    sizes = [math.prod(s) for s in shapes]
    ideal = [d * n for d, n in zip(erk_densities(shapes, n_keep, options), sizes, strict=True)]
    counts = [min(math.floor(c), n) for c, n in zip(ideal, sizes, strict=True)]
    order = sorted(range(len(sizes)), key=lambda l: (-(ideal[l] - counts[l]), l))
    for l in order[: n_keep - sum(counts)]:
        counts[l] += 1
    if sum(counts) != n_keep or any(c > n for c, n in zip(counts, sizes, strict=True)):
        raise ValidationError(f"cannot keep {n_keep} entries in layers of sizes {sizes}")
    return counts


def prune_erk(ctx: PruneContext) -> PrunerOutput:
    """Random pruning at ERK (or ER) layer densities: a uniform subset of each layer's count."""
    shapes = [tuple(ctx.params[k].shape[1:]) for k in ctx.names]
    n_total = sum(math.prod(s) for s in shapes)
    counts = torch.tensor(
        [erk_counts(shapes, n_keep_for_density(d, n_total), ctx.options) for d in ctx.densities]
    )
    scores = random_scores(ctx)
    masks: dict[str, torch.Tensor] = {}
    for l, k in enumerate(ctx.names):
        masks |= ctx.select_counts({k: scores[k]}, counts[:, l], ctx.masks)
    return PrunerOutput(masks, scope="erk" if ctx.options.kernel else "er")
