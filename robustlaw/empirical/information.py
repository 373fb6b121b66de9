"""The information a pruning mask carries about its data, the init fixed (``THEORY.md`` §3, §6.4).

No Free Prune (Kumar, Luo, Sellke, ICML 2024, arXiv:2402.01089) charges a fit for
:math:`p_{\\text{eff}}`, whose data-dependent part is :math:`I(\\mathbf m; D \\mid
\\text{init})` in **bits** (``THEORY.md`` §3.3–3.4). When pruning and training are deterministic
given the init and the data, the mask is a function of the data, so
:math:`H(\\mathbf m \\mid D, \\text{init}) = 0` and

.. math::

    I(\\mathbf m; D \\mid \\text{init}) = H(\\mathbf m \\mid \\text{init}) - H(\\mathbf m \\mid D,
    \\text{init}) = H(\\mathbf m \\mid \\text{init}).

This module measures that entropy: from masks computed on sampled datasets
(:func:`estimate_mask_entropy`, with the estimators and bootstrap intervals of
:mod:`robustlaw.empirical.entropy`) or exactly, by enumerating a finite dataset space
(:func:`exact_mask_entropy`).
Randomness beyond the init (minibatch order, a pruner's seed) must be fixed as well; otherwise
:math:`H(\\mathbf m)` exceeds :math:`I(\\mathbf m; D)` by :math:`H(\\mathbf m \\mid D)`.

A mask is a boolean array or tensor, or a mapping from layer names to them. Two masks are the
same when every layer holds the same bits; a mask is hashed by the packed bits of its layers
in sorted key order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sized
from typing import Any

import numpy as np
import torch

from robustlaw._validation import check_bool, check_integer, check_interval
from robustlaw.empirical.entropy import ENTROPY_ESTIMATORS as ENTROPY_ESTIMATORS
from robustlaw.empirical.entropy import EntropyEstimate as EntropyEstimate
from robustlaw.empirical.entropy import entropy_from_counts as entropy_from_counts
from robustlaw.errors import ValidationError

__all__ = [
    "ENTROPY_ESTIMATORS",
    "EntropyEstimate",
    "entropy_from_counts",
    "estimate_mask_entropy",
    "exact_mask_entropy",
    "mask_counts",
]


def _layer_bits(layer: Any, name: str) -> tuple[tuple[int, ...], bytes]:
    """The shape and packed bits of one boolean layer (tensors are read on the CPU)."""
    if isinstance(layer, torch.Tensor):
        layer = layer.detach().cpu().numpy()
    arr = np.asarray(layer)
    if arr.dtype != np.bool_:
        raise ValidationError(f"{name} must be a boolean array or tensor, got dtype {arr.dtype}")
    return arr.shape, np.packbits(arr.ravel()).tobytes()


def _mask_key(mask: Any, name: str) -> tuple[Hashable, bytes]:
    """The mask's structure (layer names and shapes) and its packed bits in sorted key order."""
    if not isinstance(mask, Mapping):
        shape, bits = _layer_bits(mask, name)
        return ((None, shape),), bits
    if not mask or not all(isinstance(k, str) for k in mask):
        raise ValidationError(
            f"{name} must map layer names (str) to boolean arrays, got keys {list(mask)[:5]}"
        )
    keys = sorted(mask)
    parts = [_layer_bits(mask[k], f"{name}[{k!r}]") for k in keys]
    return tuple(zip(keys, (s for s, _ in parts), strict=True)), b"".join(b for _, b in parts)


def _same_structure(structure: Hashable, shape: Hashable, name: str) -> Hashable:
    """``shape`` if it matches the first mask's ``structure`` (None before the first mask)."""
    if structure is not None and shape != structure:
        raise ValidationError(
            f"{name} has layers and shapes {shape}, but the first mask has {structure}"
        )
    return shape


def _keys(masks: Iterable[Any]) -> Iterable[bytes]:
    """Yield each mask's bits, checking that all masks share the first one's structure."""
    structure = None
    for i, mask in enumerate(masks):
        shape, bits = _mask_key(mask, f"masks[{i}]")
        structure = _same_structure(structure, shape, f"masks[{i}]")
        yield bits


def mask_counts(masks: Iterable[Any]) -> np.ndarray:
    """How often each distinct mask occurs, in decreasing order.

    Parameters
    ----------
    masks : iterable of mask
        Boolean arrays or tensors, or mappings from layer names to them, all with the same
        layers and shapes. Read once, so a generator keeps only one mask in memory.

    Returns
    -------
    numpy.ndarray
        int64 counts of shape ``(n_distinct,)``, sorted in decreasing order (which mask is which
        does not matter to an entropy, and the order makes bootstraps depend on counts only).

    Raises
    ------
    ValidationError
        If there is no mask, a mask is not boolean, or two masks differ in layers or shapes.

    Examples
    --------
    >>> m = np.array([True, False])
    >>> mask_counts([m, ~m, m]).tolist()
    [2, 1]
    """
    counter = Counter(_keys(masks))
    if not counter:
        raise ValidationError("masks must hold at least one mask, got none")
    return np.array(sorted(counter.values(), reverse=True), dtype=np.int64)


def estimate_mask_entropy(
    masks: Iterable[Any], method: str, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> EntropyEstimate:
    """Estimate :math:`I(\\mathbf m; D \\mid \\text{init}) = H(\\mathbf m)` in bits from samples.

    Each mask is the pruning method's output on one dataset drawn from the data distribution,
    with the init (and every other source of randomness) fixed. The mask is then a function of
    the data, so its entropy is its mutual information with the data (No Free Prune, Kumar,
    Luo, Sellke, ICML 2024, arXiv:2402.01089; ``THEORY.md`` §3.3, §6.4).

    Parameters
    ----------
    masks : iterable of mask
        One mask per sampled dataset: boolean arrays or tensors, or mappings from layer names to
        them, all with the same layers and shapes (see :func:`mask_counts`).
    method : str
        A key of :data:`~robustlaw.empirical.entropy.ENTROPY_ESTIMATORS`.
    n_boot, level, seed
        The bootstrap, as in :func:`~robustlaw.empirical.entropy.entropy_from_counts`.

    Returns
    -------
    EntropyEstimate
        The estimate in bits, with ``n_samples`` datasets and ``n_distinct`` masks.

    Raises
    ------
    ValidationError
        If there is no mask, a mask is not boolean, masks differ in layers or shapes, or an
        option is bad.
    UnknownNameError
        If ``method`` is not a registered estimator.

    See Also
    --------
    exact_mask_entropy : the exact value over a small, finite dataset space.

    Examples
    --------
    A mask that keeps weight 0 iff the data's first bit is +1 carries 1 bit:

    >>> rng = np.random.default_rng(0)
    >>> masks = [np.array([x > 0, True]) for x in rng.choice([-1, 1], size=4000)]
    >>> est = estimate_mask_entropy(masks, "jackknife", n_boot=200)
    >>> round(est.bits, 3), est.ci_low <= est.bits <= est.ci_high
    (1.0, True)
    """
    return entropy_from_counts(mask_counts(masks), method, n_boot=n_boot, level=level, seed=seed)


def _pairs(datasets: Iterable[Any], weighted: bool) -> Iterable[tuple[Any, float]]:
    """``(dataset, probability)`` pairs; equally likely datasets get weight 1 (normalized later)."""
    for i, item in enumerate(datasets):
        if not weighted:
            yield item, 1.0
            continue
        if not isinstance(item, tuple) or len(item) != 2:
            raise ValidationError(f"datasets[{i}] must be a (dataset, probability) pair")
        name = f"the probability of datasets[{i}]"
        yield item[0], float(check_interval(item[1], name, 0.0, 1.0, closed="both", scalar=True))


def _too_many(size: Any, max_datasets: int) -> ValidationError:
    return ValidationError(
        f"the dataset space holds {size} datasets, more than max_datasets={max_datasets}; "
        "raise max_datasets or sample datasets and use estimate_mask_entropy"
    )


def _mask_probabilities(
    mask_of: Callable[[Any], Any], pairs: Iterable[tuple[Any, float]], max_datasets: int
) -> tuple[dict[bytes, list[float]], list[float]]:
    """Each distinct mask's dataset probabilities, and every dataset's probability."""
    by_mask: dict[bytes, list[float]] = {}
    every: list[float] = []
    structure = None
    for i, (dataset, prob) in enumerate(pairs):
        if i == max_datasets:
            raise _too_many(f"more than {max_datasets}", max_datasets)
        every.append(prob)
        if prob > 0:
            name = f"mask_of(datasets[{i}])"
            shape, bits = _mask_key(mask_of(dataset), name)
            structure = _same_structure(structure, shape, name)
            by_mask.setdefault(bits, []).append(prob)
    return by_mask, every


def exact_mask_entropy(
    mask_of: Callable[[Any], Any],
    datasets: Iterable[Any],
    *,
    weighted: bool = False,
    max_datasets: int = 100_000,
) -> EntropyEstimate:
    """The exact entropy in bits of the mask over a finite dataset space, the init fixed.

    Computes :math:`H(\\mathbf m) = \\sum_{\\mathbf m} P(\\mathbf m) \\log_2 (1/P(\\mathbf m))`
    with :math:`P(\\mathbf m)` the total probability of the datasets that give mask
    :math:`\\mathbf m`. With the init fixed, the mask is a function of the data, so this is
    :math:`I(\\mathbf m; D \\mid \\text{init})` exactly (No Free Prune, Kumar, Luo, Sellke, ICML
    2024, arXiv:2402.01089; ``THEORY.md`` §3.3, §6.4), and at most :math:`H(D)`.

    Parameters
    ----------
    mask_of : callable
        ``mask_of(dataset) -> mask``: the pruning pipeline from the fixed init, deterministic;
        a mask as in :func:`mask_counts`. Not called on datasets of probability 0.
    datasets : iterable
        Every dataset of the space, equally likely; or, with ``weighted=True``, ``(dataset,
        probability)`` pairs whose probabilities sum to 1. Read once, lazily.
    weighted : bool
        Whether ``datasets`` holds ``(dataset, probability)`` pairs. Stated, not guessed: a
        dataset may itself be a pair ``(X, y)``.
    max_datasets : int
        The most datasets to enumerate. A larger space raises before any ``mask_of`` call when
        ``datasets`` has a length, else as soon as the limit is passed.

    Returns
    -------
    EntropyEstimate
        ``method="exact"``; ``n_samples`` counts the datasets of positive probability; no
        interval.

    Raises
    ------
    ValidationError
        If the space holds more than ``max_datasets`` datasets or none, a probability is not in
        ``[0, 1]`` or they do not sum to 1, or the masks are not boolean or differ in layers or
        shapes.

    Examples
    --------
    The mask keeps weight 0 iff the first of three uniform ±1 bits is +1: exactly 1 bit.

    >>> import itertools
    >>> space = list(itertools.product([-1, 1], repeat=3))
    >>> exact_mask_entropy(lambda x: np.array([x[0] > 0, True]), space).bits
    1.0
    """
    weighted = check_bool(weighted, "weighted")
    max_datasets = check_integer(max_datasets, "max_datasets", minimum=1)
    if isinstance(datasets, Sized) and len(datasets) > max_datasets:
        raise _too_many(len(datasets), max_datasets)
    by_mask, every = _mask_probabilities(mask_of, _pairs(datasets, weighted), max_datasets)
    if not every:
        raise ValidationError("datasets must hold at least one dataset, got none")
    total = math.fsum(every)
    if weighted and not math.isclose(total, 1.0, rel_tol=0.0, abs_tol=1e-9):
        raise ValidationError(f"the probabilities of datasets must sum to 1, got {total!r}")
    probs = [math.fsum(p) / total for p in by_mask.values()]
    return EntropyEstimate(
        bits=math.fsum(p * math.log2(1 / p) for p in probs),
        method="exact",
        n_samples=sum(len(p) for p in by_mask.values()),
        n_distinct=len(probs),
    )
