"""The facts every explicit interpolator of ``THEORY.md`` §7.3 reports, whatever its form."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConstructionFacts"]


@dataclass(frozen=True, kw_only=True, eq=False)
class ConstructionFacts:
    """Fields shared by :class:`~robustlaw.empirical.constructions.ConstructionResult` and
    :class:`~robustlaw.empirical.tensor_construction.TensorConstructionResult`; each
    documents them for its construction."""

    name: str
    fits: bool
    max_abs_error: float
    atol: float
    conditions_hold: bool
    conditions: str
    stated_lipschitz: float
    lipschitz_scope: str
    n_hidden: int
    n_params: int
