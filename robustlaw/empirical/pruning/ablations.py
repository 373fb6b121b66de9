"""Ablations of a pruning method's choices (Frankle et al., ICLR 2021, *Missing the Mark*).

``METHODS.md`` §4. Each acts on one member's mask (a dict of boolean tensors, any shapes) or on
keep-scores, and is seeded. In :func:`robustlaw.empirical.pruning.prune` they are fields of a
:class:`~robustlaw.empirical.pruning.PrunePlan`: ``invert=True``, ``shuffle="layerwise"`` or
``"global"``, ``reinit_seed=...``.

Two pitfalls of the Synaptic-Flow reference are avoided on purpose: its ``shuffle`` rebinds a
local variable and leaves the mask unchanged (here the permuted mask is returned and tests
check that positions move), and its ``invert`` maps a score ``v`` to ``1/v``, wrong for zero
and signed scores (here inversion is negation).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from robustlaw._validation import check_seed, derived_seed

__all__ = ["SHUFFLES", "invert_scores", "shuffle_global", "shuffle_layerwise"]

Tensors = Mapping[str, torch.Tensor]


def _generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(derived_seed(check_seed(seed), stream))


def _permuted(flat: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return flat[torch.randperm(flat.numel(), generator=gen).to(flat.device)]


def shuffle_layerwise(mask: Tensors, seed: int) -> dict[str, torch.Tensor]:
    """Permute each tensor's mask independently; per-layer counts stay exactly the same.

    Layer ``l`` (in the dict's order) is permuted by a generator seeded with
    ``seed * 1_000_003 + l``. The weights are not touched: the same values now sit under a
    different mask.

    Parameters
    ----------
    mask : mapping of str to torch.Tensor
        One member's boolean masks.
    seed : int
        The shuffle seed.

    Returns
    -------
    dict of str to torch.Tensor
        New masks of the same shapes.

    Examples
    --------
    >>> m = {"w": torch.tensor([[True, True, False, False, False, False]])}
    >>> s = shuffle_layerwise(m, seed=0)
    >>> int(s["w"].sum()), s["w"].shape
    (2, torch.Size([1, 6]))
    """
    return {
        k: _permuted(m.flatten(), _generator(seed, l)).reshape(m.shape)
        for l, (k, m) in enumerate(mask.items())
    }


def shuffle_global(mask: Tensors, seed: int) -> dict[str, torch.Tensor]:
    """Permute the concatenated mask; the total count stays, per-layer counts become ~uniform.

    Examples
    --------
    >>> m = {"a": torch.ones(3, dtype=torch.bool), "b": torch.zeros(5, dtype=torch.bool)}
    >>> s = shuffle_global(m, seed=1)
    >>> int(s["a"].sum() + s["b"].sum())
    3
    """
    flat = _permuted(torch.cat([m.flatten() for m in mask.values()]), _generator(seed, 0))
    out, start = {}, 0
    for k, m in mask.items():
        out[k] = flat[start : start + m.numel()].reshape(m.shape)
        start += m.numel()
    return out


def invert_scores(scores: Tensors) -> dict[str, torch.Tensor]:
    """Negate keep-scores, so the thresholder prunes what the method deems most important.

    Not ``1/score``: negation reverses the ranking exactly, for zero and signed scores too.

    Examples
    --------
    >>> invert_scores({"w": torch.tensor([2.0, 0.0, -1.0])})["w"].tolist()
    [-2.0, -0.0, 1.0]
    """
    return {k: -v for k, v in scores.items()}


SHUFFLES = {"layerwise": shuffle_layerwise, "global": shuffle_global}
"""Mask shuffles usable as ``PrunePlan(shuffle=...)``."""
