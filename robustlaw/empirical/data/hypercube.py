"""Vertices of the Boolean hypercube {±1}^d with uniform ±1 labels (No Free Prune Fig. 4).

The toy model of No Free Prune (Kumar, Luo, Sellke, ICML 2024, arXiv:2402.01089, Fig. 4;
THEORY.md §6.4) trains on 6 points of {±1}^3 with i.i.d. uniform ±1 outputs. This module draws
such points, with or without replacement (:func:`sample_vertices`), lists all ``2^d`` of them
for exact enumeration over a finite data space (:func:`all_vertices`), and builds the labelled
:class:`Dataset` (:func:`hypercube_data`).

The inputs are the vertices times ``scale`` (``scale = 1``: entries exactly ±1, norm
``sqrt(d)``; ``scale = 1 / sqrt(d)``: the normalized cube, norm 1).

**Isoperimetry.** The uniform distribution on the vertices is *not* O(1)-isoperimetric in the
Euclidean sense of THEORY.md §1.4, which is why :data:`robustlaw.bounds.ISOPERIMETRY` has no
entry for it: on the normalized cube, the distance to a half-cube fluctuates at scale
``d^(-1/4)``, which forces ``c >= const * sqrt(d)``. The constant reported here is the one
McDiarmid's bounded-differences inequality proves: flipping one coordinate moves ``x`` by
``2 scale``, so an ``L``-Lipschitz ``f`` changes by at most ``2 scale L`` and
``P(|f - E f| >= t) <= 2 exp(-t^2 / (2 d scale^2 L^2))``, which is the §1.4 definition with

.. math:: c = d^2 \\, \\mathrm{scale}^2

(``c = d`` for the normalized cube, ``c = d^2`` for entries ±1). It is valid but not sharp
(the truth lies between order ``d^(3/2) scale^2`` and ``d^2 scale^2``), so bounds computed with
it are correct and weak.

References
----------
C. McDiarmid, "On the method of bounded differences", Surveys in Combinatorics, 1989;
S. Boucheron, G. Lugosi, P. Massart, *Concentration Inequalities*, OUP 2013, Theorem 6.2.
"""

from __future__ import annotations

import math

import torch

from robustlaw._validation import check_bool, check_integer, check_interval, check_seed
from robustlaw.empirical.data.record import Dataset
from robustlaw.empirical.ensemble import resolve_device
from robustlaw.errors import ValidationError

__all__ = ["MAX_ENUMERATED_FEATURES", "all_vertices", "hypercube_data", "sample_vertices"]

#: The largest ``n_features`` :func:`all_vertices` lists (2^20, about a million, rows).
MAX_ENUMERATED_FEATURES = 20

_MAX_ENTRIES = 2**62  # beyond this torch cannot even index the tensor
_MAX_CODED_FEATURES = 62  # vertices are int64 codes below 2^62 up to this dimension
_SMALL_CUBE = 2**16  # below this many vertices (or 4 n), a permutation of all of them is cheap


def _decode(codes: torch.Tensor, d: int) -> torch.Tensor:
    """±1 rows (float64) of integer codes: column ``j`` is bit ``d - 1 - j`` (1 means +1)."""
    shifts = torch.arange(d - 1, -1, -1, dtype=torch.int64)
    return ((codes.unsqueeze(1) >> shifts) & 1).to(torch.float64) * 2 - 1


def _distinct(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` distinct vertices (float64 ±1 rows): a uniform ``n``-subset in uniform order.

    Repeated i.i.d. draws are deduplicated until ``n`` distinct values are found; their set is
    invariant under permutations of the cube, so a uniform ``n``-subset of it, in random order,
    is a uniform draw without replacement.
    """
    if d <= _MAX_CODED_FEATURES:
        size = 2**d
        if size <= max(4 * n, _SMALL_CUBE):
            return _decode(torch.randperm(size, generator=gen)[:n], d)
        found = torch.empty(0, dtype=torch.int64)
        while found.shape[0] < n:  # each draw is new with probability > 3/4: one round, usually
            missing = n - found.shape[0]
            draws = torch.randint(0, size, (missing + missing // 2 + 16,), generator=gen)
            found = torch.unique(torch.cat([found, draws]))
        return _decode(found[torch.randperm(found.shape[0], generator=gen)[:n]], d)
    found = torch.empty(0, d, dtype=torch.int64)  # 2^d > 2^62 vertices: collisions negligible
    while found.shape[0] < n:
        draws = torch.randint(0, 2, (n - found.shape[0], d), generator=gen)
        found = torch.unique(torch.cat([found, draws]), dim=0)
    return found[torch.randperm(found.shape[0], generator=gen)[:n]].to(torch.float64) * 2 - 1


def sample_vertices(
    n_samples: int,
    n_features: int,
    *,
    replace: bool = True,
    scale: float = 1.0,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Draw ``n_samples`` uniform vertices of {±1}^d, times ``scale``.

    With ``replace=True`` every entry is an independent fair sign (rows may repeat); with
    ``replace=False`` the rows are ``n_samples`` distinct vertices, a uniformly random subset in
    uniformly random order. Draws are made on the CPU from ``generator`` and then cast, like
    :func:`~robustlaw.empirical.data.sample_inputs`.

    Parameters
    ----------
    n_samples : int
        n, the number of points (at most ``2**n_features`` without replacement).
    n_features : int
        d, the dimension.
    replace : bool
        Whether rows may repeat.
    scale : float
        Factor on the entries (> 0): entries are ``±scale`` (input units).
    generator : torch.Generator
        CPU generator the draws come from.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        Shape ``(n_samples, n_features)``, entries exactly ``±scale``.

    Raises
    ------
    ValidationError
        For non-positive sizes or scale, a non-bool ``replace``, more entries than a tensor
        can index, or ``n_samples > 2**n_features`` without replacement.

    Examples
    --------
    >>> X = sample_vertices(8, 3, replace=False, generator=torch.Generator().manual_seed(0))
    >>> sorted(map(tuple, X.tolist())) == sorted(map(tuple, all_vertices(3).tolist()))
    True
    """
    n_samples = check_integer(n_samples, "n_samples", minimum=1)
    n_features = check_integer(n_features, "n_features", minimum=1)
    replace = check_bool(replace, "replace")
    scale = float(check_interval(scale, "scale", 0, math.inf))
    if n_samples * n_features > _MAX_ENTRIES:
        raise ValidationError(
            f"n_samples x n_features = {n_samples} x {n_features} exceeds {_MAX_ENTRIES:.3g} "
            "entries, more than a tensor can index"
        )
    # from d = 62 on, 2^d >= 2^62 >= n: only smaller cubes can run out of vertices
    if not replace and n_features < _MAX_CODED_FEATURES and n_samples > 2**n_features:
        raise ValidationError(
            f"n_samples must be at most 2**n_features = {2**n_features} to draw distinct "
            f"vertices of {{±1}}^{n_features} without replacement, got {n_samples}; pass "
            "replace=True or a larger n_features"
        )
    if replace:
        signs = torch.randint(0, 2, (n_samples, n_features), generator=generator)
        X = signs.to(torch.float64) * 2 - 1
    else:
        X = _distinct(n_samples, n_features, generator)
    return (X * scale).to(resolve_device(device), dtype)


def all_vertices(
    n_features: int,
    *,
    scale: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Every vertex of {±1}^d, times ``scale``, for exact enumeration over a finite data space.

    Row ``i`` is the binary expansion of ``i`` with the most significant bit first, 0 written
    as -1 and 1 as +1: rows are in lexicographic order, all -1 first and all +1 last.

    Parameters
    ----------
    n_features : int
        d, between 1 and :data:`MAX_ENUMERATED_FEATURES` (20).
    scale : float
        Factor on the entries (> 0).
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        Shape ``(2**n_features, n_features)``.

    Raises
    ------
    ValidationError
        If ``n_features`` is outside ``[1, MAX_ENUMERATED_FEATURES]`` or ``scale <= 0``.

    Examples
    --------
    >>> all_vertices(2).tolist()
    [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]
    """
    n_features = check_integer(n_features, "n_features", minimum=1, maximum=MAX_ENUMERATED_FEATURES)
    scale = float(check_interval(scale, "scale", 0, math.inf))
    X = _decode(torch.arange(2**n_features, dtype=torch.int64), n_features)
    return (X * scale).to(resolve_device(device), dtype)


def hypercube_data(
    n_samples: int,
    n_features: int,
    *,
    replace: bool = True,
    scale: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Uniform vertices of {±1}^d and i.i.d. uniform ±1 labels, independent of the inputs.

    As for :func:`~robustlaw.empirical.data.random_labels_data`, the target is ``g = 0`` and
    the noise level ``sigma^2 = 1`` (THEORY.md §1.1). ``replace=True`` (the default) draws the
    points i.i.d., as the theorems assume; then a repeated point may carry both labels, and no
    function interpolates. No Free Prune Fig. 4 uses ``n = 6``, ``d = 3`` and, by the default
    of THEORY.md §6.4, ``replace=False``. The isoperimetry constant is McDiarmid's
    ``c = d^2 scale^2``: valid, not sharp (see the module notes).

    Parameters
    ----------
    n_samples : int
        n (at most ``2**n_features`` without replacement).
    n_features : int
        d.
    replace : bool
        Whether points may repeat.
    scale : float
        Factor on the inputs (> 0): entries are ``±scale``.
    seed : int
        Seed of the one generator that draws the inputs, then the labels.
    dtype, device
        Of ``X`` and ``y``.

    Returns
    -------
    Dataset
        ``kind="hypercube"``, ``y`` of ±1 floats, ``n_classes=2``; ``extras`` holds
        ``replace`` and ``scale``.

    Examples
    --------
    >>> data = hypercube_data(6, 3, replace=False, seed=0)
    >>> data.X.abs().eq(1).all().item(), len(set(map(tuple, data.X.tolist())))
    (True, 6)
    >>> data.noise_level, data.isoperimetry_constant, data.y.abs().eq(1).all().item()
    (1.0, 9.0, True)
    """
    seed = check_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    X = sample_vertices(
        n_samples,
        n_features,
        replace=replace,
        scale=scale,
        generator=gen,
        dtype=dtype,
        device=device,
    )
    signs = torch.randint(0, 2, (X.shape[0],), generator=gen).to(torch.float64) * 2 - 1
    return Dataset(
        X=X,
        y=signs.to(X.device, dtype),
        kind="hypercube",
        noise_level=1.0,
        isoperimetry_constant=float(scale) ** 2 * float(n_features) ** 2,
        n_classes=2,
        labels_bounded=True,
        seed=seed,
        extras={"replace": bool(replace), "scale": float(scale)},
    )
