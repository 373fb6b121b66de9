"""Row selection shared by the tables and figures: fits below the noise, chosen members, floors.

The rules stated once (``THEORY.md`` §7.1):

- Only fits below the noise count: every median and every point drawn is over rows with
  ``fit_below_noise`` and a certified upper bound ``lip_certified``.
- The search's bracket of :math:`L^\\star` from above at a ``(group, dataset)`` is the chosen
  member's ``lip_certified`` (the smallest certified upper bound among the search members
  that fit below the noise).
- The floor is Bubeck–Sellke at ``p`` for dense nets and No Free Prune at ``p_eff`` for pruned
  nets. Only a certified upper bound of a fit below the noise that lies under its floor
  contradicts a theorem; lower estimates bound their own network only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from robustlaw.errors import ValidationError
from robustlaw.io import rows_of

SEARCH, FIRST_FIT, INTERPOLATION = "search", "first-fit", "interpolation"
CONSTRUCTION = "construction"
CONTROLS = (FIRST_FIT, INTERPOLATION)
DENSE = "dense"

GROUP_KEYS = ("n", "d", "method", "density", "width", "p")
"""A search group: one architecture, pruning method and density at one (n, d)."""

COLUMNS = (
    "role", "method", "density", "dataset", "chosen", "n", "d", "width", "p", "kept",
    "data_dependent", "mask_info_source", "fit_below_noise", "lip_certified", "lip_lower",
    "lip_support",
    "stated_lipschitz", "conditions_hold", "p_eff", "p_eff_informal", "bound_bs", "bound_nfp",
    "k_condition_bs", "k_condition_nfp",
)  # fmt: skip
"""The columns of a ``lor-scaling`` result table that :mod:`robustlaw.compare` reads."""


def load_rows(results: Any, columns: Iterable[str] = COLUMNS) -> list[dict[str, Any]]:
    """``results`` as a list of dicts, after checking it is not empty and has ``columns``."""
    rows = rows_of(results)
    if not rows:
        raise ValidationError("results are empty: run the experiment first")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise ValidationError(f"results lack the columns {missing}")
    return rows


def is_fit(row: dict[str, Any]) -> bool:
    """Whether ``row`` fits below the noise and has a certified upper bound."""
    return bool(row["fit_below_noise"]) and row["lip_certified"] is not None


def median(values: Iterable[Any]) -> float | None:
    """Median of the values that are not None (None when there are none)."""
    kept = [float(v) for v in values if v is not None]
    return float(np.median(kept)) if kept else None


def group(rows: Iterable[dict[str, Any]], keys: Iterable[str]) -> dict[tuple, list]:
    """Rows grouped by the values of ``keys`` (insertion order)."""
    keys = tuple(keys)
    out: dict[tuple, list] = defaultdict(list)
    for r in rows:
        out[tuple(r[k] for k in keys)].append(r)
    return dict(out)


def method_order(method: str) -> tuple[bool, str]:
    """Sort key of method names: dense first, then alphabetical."""
    return (method != DENSE, method)


def chosen_per_dataset(rows: Iterable[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Per dataset, the chosen search member that fits below the noise (smallest if several).

    ``rows`` are one search group (same ``GROUP_KEYS``); the result is sorted by dataset.
    """
    best: dict[Any, dict[str, Any]] = {}
    for r in rows:
        if r["role"] != SEARCH or not r["chosen"] or not is_fit(r):
            continue
        old = best.get(r["dataset"])
        if old is None or r["lip_certified"] < old["lip_certified"]:
            best[r["dataset"]] = r
    return dict(sorted(best.items()))


def floor(row: dict[str, Any]) -> float:
    """The floor a row is held to: BS at ``p`` when dense, NFP at ``p_eff`` when pruned."""
    return float(row["bound_bs"] if row["method"] == DENSE else row["bound_nfp"])


def floor_name(method: str) -> str:
    """Which floor :func:`floor` takes for ``method``."""
    return "BS at p" if method == DENSE else "NFP at p_eff"


def lower_estimate(row: dict[str, Any]) -> float | None:
    """The lower estimate of a row's own network: on the support (sphere) when present."""
    return row["lip_support"] if row["lip_support"] is not None else row["lip_lower"]


def nd_label(n: Any, d: Any) -> str:
    """``"n=64, d=16"``."""
    return f"n={n}, d={d}"
