"""A synthetic ``lor-scaling`` result table with known answers, for examples and checks.

Nothing is trained: the rows carry the columns :mod:`robustlaw.compare` reads, with Lipschitz
values set by formula, so every table and figure can be shown (and checked) in a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from robustlaw.compare._select import CONSTRUCTION, CONTROLS, DENSE, SEARCH

__all__ = ["DATA_DEPENDENT", "synthetic_results"]

DATA_DEPENDENT = ("snip", "grasp", "magnitude-after", "imp")
"""Method names the synthetic table marks as data-dependent (with mask information)."""


def _row(**fields: Any) -> dict[str, Any]:
    base = dict(role=SEARCH, method=DENSE, density=1.0, seed=0, search_weight=None,
                chosen=False, data_dependent=False, mask_info_bits=0.0, mask_info_source="zero",
                fit_below_noise=True,
                stated_lipschitz=None, conditions_hold=True, inputs="sphere",
                k_condition_bs=False, k_condition_nfp=False)  # fmt: skip
    return base | fields


def synthetic_results(
    *,
    sizes: Sequence[tuple[int, int]] = ((16, 4), (32, 4)),
    datasets: Sequence[int] = (0, 1, 2),
    p_over_nd: Sequence[float] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0),
    search_weights: Sequence[float] = (0.1, 1.0, 10.0),
    scale: float = 2.0,
    plateau: float = 2.0,
    control: float = 4.0,
    noise: float = 0.0,
    methods: Sequence[str] = (),
    densities: Sequence[float] = (0.5, 0.1),
    constructions: Sequence[str] = (),
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows shaped like ``lor-scaling``'s whose smallest fit follows the law exactly.

    For each ``(n, d)``, dataset and ``p = round(r * n * d)`` (``r`` in ``p_over_nd``), the
    chosen search member has ``lip_certified = scale * sqrt(nd/p) * (1 + noise * z)`` for
    ``p < nd`` and ``plateau * (1 + noise * z)`` beyond (``z`` standard normal per point); the
    other search members lie above it, both controls at ``control``. Lower estimates are a
    third (``lip_lower``) and a quarter (``lip_support``) of the certified value; the floors are
    ``1e-3 sqrt(nd/p)`` (BS) and ``1e-3 sqrt(nd/p_eff)`` (NFP). Pruned nets (one per method and
    density, on the largest dense architecture) follow the same law in ``p_eff_informal``;
    methods in :data:`DATA_DEPENDENT` carry ``0.5 kept`` bits of (made-up) measured mask
    information. Each
    construction is one fit at ``p = 4 nd`` with certified value ``1.5 * plateau``.

    Returns
    -------
    list of dict
        One row per network.

    Examples
    --------
    >>> rows = synthetic_results(sizes=((16, 4),), datasets=(0,))
    >>> best = [r for r in rows if r["chosen"]]
    >>> [(r["p"], r["lip_certified"]) for r in best][:2]
    [(8, 5.656854249492381), (16, 4.0)]
    """
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []

    def law(nd: int, x: float) -> float:
        z = float(rng.standard_normal()) if noise else 0.0
        return (scale * math.sqrt(nd / x) if x < nd else plateau) * (1 + noise * z)

    def members(value: float, **fields: Any) -> None:
        floors = dict(bound_bs=1e-3 * math.sqrt(nd / fields["p"]),
                      bound_nfp=1e-3 * math.sqrt(nd / fields["p_eff"]))  # fmt: skip
        for i, w in enumerate(search_weights):
            lip = value * (1 + 0.5 * i)
            rows.append(_row(**fields, **floors, seed=i, search_weight=w, chosen=i == 0,
                             lip_certified=lip, lip_lower=lip / 3,
                             lip_support=lip / 4))  # fmt: skip
        for role in CONTROLS:
            rows.append(_row(**fields, **floors, role=role, lip_certified=control,
                             lip_lower=control / 3, lip_support=control / 4))  # fmt: skip

    for n, d in sizes:
        nd = n * d
        ps = [max(1, round(r * nd)) for r in p_over_nd]
        for data in datasets:
            for p in ps:
                shape = dict(n=n, d=d, dataset=data, width=p, p=p, kept=p)
                members(law(nd, p), **shape, p_eff=20.0 * p, p_eff_informal=float(p))
            for method in methods:
                dependent = method in DATA_DEPENDENT
                for density in densities:
                    kept = max(1, round(density * ps[-1]))
                    bits = 0.5 * kept if dependent else 0.0
                    shape = dict(n=n, d=d, dataset=data, width=ps[-1], p=ps[-1], kept=kept,
                                 method=method, density=density, data_dependent=dependent,
                                 mask_info_bits=bits,
                                 mask_info_source="measured" if dependent else "zero")  # fmt: skip
                    informal = kept + bits
                    members(law(nd, informal), **shape, p_eff=20.0 * informal,
                            p_eff_informal=informal)  # fmt: skip
            for name in constructions:
                p = 4 * nd
                rows.append(_row(role=CONSTRUCTION, method=name, n=n, d=d, dataset=data,
                                 seed=-1, width=p, p=p, kept=p, p_eff=20.0 * p,
                                 p_eff_informal=float(p), lip_certified=1.5 * plateau,
                                 lip_lower=plateau, lip_support=plateau / 2,
                                 stated_lipschitz=plateau, bound_bs=1e-3 / 2,
                                 bound_nfp=1e-3 / math.sqrt(80)))  # fmt: skip
    return rows
