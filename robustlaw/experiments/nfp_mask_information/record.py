"""The record of ``nfp-mask-information``: the information of one method's masks at one count."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MaskInformationRecord"]


@dataclass(frozen=True, kw_only=True)
class MaskInformationRecord:
    """``I(m; D | init)`` of one (variant, init, method, count), by one estimator (in bits).

    Attributes
    ----------
    variant : str
        ``"regression"`` or ``"classification"``.
    init_seed : int
        The seed of the fixed initialization.
    method : str
        The pruning method.
    n_pruned, n_kept : int
        Parameters pruned and kept (``n_pruned + n_kept = n_params``).
    n_params : int
        Every weight and bias of the variant's network (all prunable).
    estimator : str
        ``"exact"`` (enumeration of the dataset space) or a sampled estimator (``"plug-in"``,
        the paper's, or a bias-corrected one).
    bits : float
        The information in bits; with the init fixed and training deterministic it equals
        ``H(m | init)``.
    ci_low, ci_high : float or None
        The bootstrap percentile interval of a sampled estimate [bits]; None for ``exact``.
    ceiling_bits : float
        ``log2 binom(n_params, n_kept)``: the entropy of a uniform mask of this count.
    data_entropy_bits : float
        ``H(D)``, the other ceiling: ``log2 1792`` for 6 of 8 vertices without replacement.
    n_datasets : int
        Datasets behind the estimate: every dataset of the space (``exact``) or the draws.
    n_distinct : int
        Distinct masks among them.
    dense_fit_fraction : float
        Probability that the dense net fits a dataset (every example's loss at most the
        loss's fit margin), over the datasets the unit trained.
    """

    variant: str
    init_seed: int
    method: str
    n_pruned: int
    n_kept: int
    n_params: int
    estimator: str
    bits: float
    ci_low: float | None
    ci_high: float | None
    ceiling_bits: float
    data_entropy_bits: float
    n_datasets: int
    n_distinct: int
    dense_fit_fraction: float
