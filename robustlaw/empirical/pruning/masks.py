"""Mask helpers: densities and exact top-k thresholding.

A mask is a dict of boolean tensors keyed by parameter name (``METHODS.md`` §2): weights, and
biases where a plan prunes them. In an
:class:`~robustlaw.empirical.ensemble.Ensemble` every tensor has a leading member axis of length
K, so one mask dict holds the masks of all members; the helpers here work on that stacked form
and treat the members independently. Masks are validated by
:func:`robustlaw.empirical.ensemble.check_masks`.

Counting rule (``METHODS.md`` §1): pruning a fraction ``s = 1 - density`` of ``N`` entries
removes ``n_prune = ceil(s N - 1e-9)`` of them, computed in float64; the tolerance absorbs float
error in grids like ``1 - 0.8**j``. Kept counts are exact.

Tie rule: entries are ranked by a stable descending sort over the concatenation of the layers
(registration order, then row-major), so among equal scores the lower flat index is kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from robustlaw.errors import ValidationError

__all__ = [
    "exact_top_k",
    "layer_blocks",
    "layer_densities",
    "mask_density",
    "n_keep_for_density",
]

Tensors = Mapping[str, torch.Tensor]


def n_keep_for_density(density: float, n_entries: int) -> int:
    """The number of entries a target density keeps: ``N - ceil((1 - density) N - 1e-9)``.

    Parameters
    ----------
    density : float
        The fraction of entries to keep, in ``(0, 1]``.
    n_entries : int
        ``N``, the number of entries thresholded together.

    Returns
    -------
    int
        The kept count, between 0 and ``n_entries``.

    Examples
    --------
    >>> n_keep_for_density(0.8**3, 1000)  # 1 - 0.8**3 = 0.488 exactly in real arithmetic
    512
    >>> n_keep_for_density(0.5, 3)
    1
    """
    n_prune = math.ceil((1.0 - float(density)) * n_entries - 1e-9)
    return n_entries - min(max(n_prune, 0), n_entries)


def layer_blocks(names: Sequence[str]) -> list[tuple[str, ...]]:
    """Group parameter names by layer (``"2.weight"`` and ``"2.bias"`` share layer ``2``).

    A layerwise scope thresholds each block on its own: a layer's weight alone, or its weight
    and bias together when biases are prunable.

    Examples
    --------
    >>> layer_blocks(["0.weight", "0.bias", "2.weight"])
    [('0.weight', '0.bias'), ('2.weight',)]
    """
    blocks: dict[str, list[str]] = {}
    for name in names:
        blocks.setdefault(name.rsplit(".", 1)[0], []).append(name)
    return [tuple(block) for block in blocks.values()]


def layer_densities(masks: Tensors) -> dict[str, torch.Tensor]:
    """Per-member density of each layer.

    Parameters
    ----------
    masks : mapping of str to torch.Tensor
        Stacked boolean masks of shape ``(n_members, ...)``.

    Returns
    -------
    dict of str to torch.Tensor
        For each key, a float64 tensor of shape ``(n_members,)``: kept entries over entries.

    Examples
    --------
    >>> m = {"0.weight": torch.tensor([[True, False], [True, True]])}
    >>> layer_densities(m)["0.weight"].tolist()
    [0.5, 1.0]
    """
    return {
        k: m.reshape(m.shape[0], -1).sum(1, dtype=torch.float64) / m[0].numel()
        for k, m in masks.items()
    }


def mask_density(masks: Tensors, names: Sequence[str] | None = None) -> torch.Tensor:
    """Per-member density over the concatenation of the layers ``names`` (default: all).

    Returns
    -------
    torch.Tensor
        A float64 tensor of shape ``(n_members,)``.

    Examples
    --------
    >>> m = {"a": torch.tensor([[True, False]]), "b": torch.tensor([[True, True, True]])}
    >>> mask_density(m).tolist()
    [0.8]
    """
    names = list(masks) if names is None else list(names)
    kept = sum(masks[k].reshape(masks[k].shape[0], -1).sum(1, dtype=torch.float64) for k in names)
    return kept / sum(masks[k][0].numel() for k in names)


def exact_top_k(scores: Tensors, alive: Tensors, n_keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """Keep exactly ``n_keep[k]`` of member ``k``'s alive entries, those with the largest scores.

    Scores are compared over the concatenation of the given layers (one global threshold per
    member; pass a single layer for layerwise thresholding). Already-pruned entries stay pruned
    whatever their score. Ties go to the lower flat index (registration order, then row-major),
    exactly as a stable descending sort would rank them; the selection finds each member's
    k-th largest score instead of sorting (see :func:`_keep_largest`).

    Parameters
    ----------
    scores : mapping of str to torch.Tensor
        Keep-scores of shape ``(n_members, ...)``; larger means more important.
    alive : mapping of str to torch.Tensor
        The current boolean masks, same keys and shapes.
    n_keep : torch.Tensor
        Integer tensor of shape ``(n_members,)``: how many entries each member keeps.

    Returns
    -------
    dict of str to torch.Tensor
        New boolean masks with exactly ``n_keep[k]`` entries set for member ``k``.

    Raises
    ------
    ValidationError
        If a score is NaN or a member asks to keep more entries than it has alive.

    Examples
    --------
    >>> s = {"w": torch.tensor([[1.0, 3.0, 3.0, 2.0]])}
    >>> a = {"w": torch.ones(1, 4, dtype=torch.bool)}
    >>> exact_top_k(s, a, torch.tensor([2]))["w"].tolist()
    [[False, True, True, False]]
    >>> exact_top_k(s, a, torch.tensor([1]))["w"].tolist()  # the tie goes to index 1
    [[False, True, False, False]]
    """
    names = list(scores)
    n_members = scores[names[0]].shape[0]
    flat = torch.cat([scores[k].reshape(n_members, -1) for k in names], dim=1)
    if bool(torch.isnan(flat).any()):
        raise ValidationError("keep-scores hold NaN; cannot rank them")
    live = torch.cat([alive[k].reshape(n_members, -1) for k in names], dim=1)
    n_keep = torch.as_tensor(n_keep, dtype=torch.long, device=flat.device).reshape(n_members)
    n_alive = live.sum(1)
    if bool((n_keep > n_alive).any()) or bool((n_keep < 0).any()):
        raise ValidationError(
            f"cannot keep {n_keep.tolist()} entries when {n_alive.tolist()} are alive"
        )
    keep = _keep_largest(torch.where(live, flat + 0.0, -math.inf), live, n_keep)
    out, start = {}, 0
    for k in names:
        size = scores[k][0].numel()
        out[k] = keep[:, start : start + size].reshape(scores[k].shape)
        start += size
    return out


def _keep_largest(flat: torch.Tensor, live: torch.Tensor, n_keep: torch.Tensor) -> torch.Tensor:
    """Per row, the ``n_keep`` largest alive entries, ties to the lower index (no full sort).

    Row ``i`` keeps every alive entry above its ``n_keep[i]``-th largest alive score ``t`` and,
    of the alive entries equal to ``t``, the first ones by index until ``n_keep[i]`` are kept:
    the same set as the first ``n_keep[i]`` of a stable descending sort. Dead entries hold
    ``-inf`` and are never kept; alive entries scored ``-inf`` are kept only after every
    finite one. One ``kthvalue`` call per distinct ``n_keep`` replaces an ``O(N log N)`` sort.
    """
    rows, width = flat.shape
    threshold = torch.full((rows, 1), math.inf, dtype=flat.dtype, device=flat.device)
    for k in torch.unique(n_keep).tolist():
        if k == 0:
            continue
        idx = (n_keep == k).nonzero().flatten()
        # the k-th largest of a row is its (width - k + 1)-th smallest; dead entries are -inf
        # and sort below every alive one, and an alive row has at least k entries
        threshold[idx] = torch.kthvalue(flat[idx], width - k + 1, dim=1, keepdim=True).values
    above = live & (flat > threshold)
    tied = live & (flat == threshold)
    room = (n_keep - above.sum(1)).unsqueeze(1)
    return above | (tied & (torch.cumsum(tied, dim=1) <= room))
