"""The finite dataset space of No Free Prune Fig. 4: ``n`` points of {±1}^d with ±1 labels.

A dataset is an *unordered* collection of ``(vertex, label)`` pairs: full-batch training sums
the per-example gradients, so it does not depend on the order of the points (up to float
rounding in the sum; ``tests/experiments/test_nfp_mask_information.py`` checks that shuffled
datasets give the same masks). Every dataset is therefore stored, trained and pruned in one
canonical order: its pairs sorted by vertex code (``all_vertices`` row index), then label.

- Without replacement (the default of ``THEORY.md`` §6.4): a uniform ``n``-subset of the
  ``2^d`` vertices with i.i.d. uniform labels, so each of the ``binom(2^d, n) 2^n`` datasets
  (1792 for ``n = 6``, ``d = 3``) has the same probability.
- With replacement: ``n`` i.i.d. uniform ``(vertex, label)`` pairs; an unordered dataset is a
  multiset of the ``2^{d+1}`` pairs with the multinomial probability
  ``n! / prod(c!) / 2^{(d+1) n}`` (54 264 datasets for ``n = 6``, ``d = 3``).

:func:`sample_datasets` draws datasets the way the paper does (uniform points, fair-coin
labels) and maps each to its row in the space, so sampled and enumerated masks come from the
same computation.

References
----------
Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089), §4, Fig. 4.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from robustlaw.empirical.data import all_vertices
from robustlaw.errors import ValidationError

__all__ = ["MAX_DATASETS", "DatasetSpace", "dataset_space", "sample_datasets"]

MAX_DATASETS = 200_000
"""The largest dataset space :func:`dataset_space` enumerates."""


@dataclass(frozen=True, kw_only=True, eq=False)
class DatasetSpace:
    """Every dataset of the space, in canonical order, with its probability.

    Attributes
    ----------
    codes : numpy.ndarray
        int64 vertex codes of shape ``(n_datasets, n_samples)`` (row ``c`` of
        :func:`~robustlaw.empirical.data.all_vertices`), sorted within each dataset.
    labels : numpy.ndarray
        ±1 labels (int64) of the same shape, paired with ``codes``.
    probabilities : numpy.ndarray
        float64 of shape ``(n_datasets,)``, summing to 1.
    n_features : int
        ``d``.
    replace : bool
        Whether points were drawn with replacement.
    """

    codes: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    n_features: int
    replace: bool

    @property
    def n_datasets(self) -> int:
        """How many datasets the space holds."""
        return int(self.codes.shape[0])

    @property
    def entropy_bits(self) -> float:
        """``H(D)`` in bits: the most information any mask can carry about the data."""
        p = self.probabilities
        return float(math.fsum(-p * np.log2(p)))

    def index(self) -> dict[bytes, int]:
        """A lookup from a dataset's canonical pairs (as bytes) to its row."""
        keys = np.stack([self.codes, self.labels], axis=-1)
        return {row.tobytes(): i for i, row in enumerate(keys)}

    def tensors(self, rows: np.ndarray, *, dtype: torch.dtype, device: torch.device):
        """Inputs ``(len(rows), n_samples, d)`` and ±1 labels ``(len(rows), n_samples)``."""
        vertices = all_vertices(self.n_features, dtype=dtype, device=device)
        codes = torch.as_tensor(self.codes[rows], device=device)
        labels = torch.as_tensor(self.labels[rows], device=device).to(dtype)
        return vertices[codes], labels


def _multinomial(counts) -> int:
    n = sum(counts)
    return math.factorial(n) // math.prod(math.factorial(c) for c in counts)


def dataset_space(n_samples: int, n_features: int, *, replace: bool) -> DatasetSpace:
    """Enumerate the datasets of ``n_samples`` labelled vertices of {±1}^``n_features``.

    Raises
    ------
    ValidationError
        If the space holds more than :data:`MAX_DATASETS` datasets or none.

    Examples
    --------
    >>> space = dataset_space(6, 3, replace=False)
    >>> space.n_datasets, round(space.entropy_bits, 4)  # binom(8, 6) 2^6 = 1792
    (1792, 10.8074)
    >>> dataset_space(6, 3, replace=True).n_datasets  # multisets of 6 of the 16 pairs
    54264
    """
    n_vertices = 2**n_features
    if replace:
        size = math.comb(2 * n_vertices + n_samples - 1, n_samples)
    else:
        size = math.comb(n_vertices, n_samples) * 2**n_samples
    if not 0 < size <= MAX_DATASETS or (2 * n_vertices) ** n_samples >= 2**62:
        raise ValidationError(
            f"{n_samples} points of {{±1}}^{n_features} (replace={replace}) make {size} "
            f"datasets; the enumeration handles 1 to {MAX_DATASETS}"
        )
    if replace:
        pairs = [(v, y) for v in range(n_vertices) for y in (-1, 1)]
        rows = list(itertools.combinations_with_replacement(pairs, n_samples))
        weights = [_multinomial([len(list(g)) for _, g in itertools.groupby(r)]) for r in rows]
        probabilities = np.array(weights, dtype=np.float64) / (2 * n_vertices) ** n_samples
    else:
        rows = [
            tuple(zip(combo, labels, strict=True))
            for combo in itertools.combinations(range(n_vertices), n_samples)
            for labels in itertools.product((-1, 1), repeat=n_samples)
        ]
        probabilities = np.full(len(rows), 1.0 / len(rows))
    table = np.array(rows, dtype=np.int64).reshape(len(rows), n_samples, 2)
    return DatasetSpace(
        codes=table[..., 0],
        labels=table[..., 1],
        probabilities=probabilities,
        n_features=n_features,
        replace=replace,
    )


def sample_datasets(space: DatasetSpace, n_datasets: int, *, seed: int) -> np.ndarray:
    """Draw ``n_datasets`` i.i.d. datasets as the paper does; return their rows in ``space``.

    One generator seeded with ``seed`` draws every dataset's points (without replacement: the
    first ``n`` entries of a uniform permutation of the ``2^d`` vertices, as
    :func:`~robustlaw.empirical.data.sample_vertices` does for small cubes; with replacement:
    i.i.d. uniform vertices) and then their fair ±1 labels. Each dataset is put in canonical
    order and looked up in the space.

    Returns
    -------
    numpy.ndarray
        int64 rows of shape ``(n_datasets,)``.

    Examples
    --------
    >>> space = dataset_space(2, 1, replace=False)  # {(-1, y1), (+1, y2)}: 4 datasets
    >>> rows = sample_datasets(space, 4000, seed=0)
    >>> np.bincount(rows, minlength=4).tolist()  # each about 1000
    [930, 1053, 1038, 979]
    """
    n_samples, n_vertices = space.codes.shape[1], 2**space.n_features
    gen = torch.Generator().manual_seed(seed)
    if space.replace:
        codes = torch.randint(0, n_vertices, (n_datasets, n_samples), generator=gen)
    else:
        codes = torch.rand(n_datasets, n_vertices, generator=gen).argsort(dim=1)[:, :n_samples]
    labels = torch.randint(0, 2, (n_datasets, n_samples), generator=gen) * 2 - 1
    drawn = _pair_keys(codes.numpy(), labels.numpy(), n_vertices)
    known = _pair_keys(space.codes, space.labels, n_vertices)
    order = np.argsort(known)
    rows = order[np.searchsorted(known, drawn, sorter=order)]
    if not np.array_equal(known[rows], drawn):
        raise RuntimeError("a sampled dataset is missing from the enumerated space")
    return rows


def _pair_keys(codes: np.ndarray, labels: np.ndarray, n_vertices: int) -> np.ndarray:
    """One int64 per dataset: its sorted ``(vertex, label)`` pairs as the digits of a number."""
    pairs = np.sort(codes * 2 + (labels > 0), axis=1)
    return (pairs * (2 * n_vertices) ** np.arange(pairs.shape[1] - 1, -1, -1)).sum(axis=1)
