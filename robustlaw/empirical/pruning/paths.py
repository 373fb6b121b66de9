"""IMP's whole path of levels for every member at once: the public door to ``imp_levels``.

``METHODS.md`` §3.7; Frankle & Carbin, *The Lottery Ticket Hypothesis*, ICLR 2019
(arXiv:1803.03635). :func:`~robustlaw.empirical.pruning.prune` returns one ticket per member,
at its target density; the No Free Prune experiments need every level of the path (Fig. 1:
densities ``0.8^j``), with the levels of every member (seed) advancing together in one
ensemble. :func:`imp_path` gives exactly that.
"""

from __future__ import annotations

from robustlaw._validation import check_bool, check_integer
from robustlaw.empirical.data import Dataset
from robustlaw.empirical.ensemble import Ensemble
from robustlaw.empirical.modules import ModuleEnsemble
from robustlaw.empirical.pruning._context import PruneContext
from robustlaw.empirical.pruning._data import prepare_scoring_data
from robustlaw.empirical.pruning.imp import ImpOptions, imp_levels
from robustlaw.empirical.pruning.members import with_bias_masks
from robustlaw.empirical.pruning.plan import prunable_names
from robustlaw.errors import ValidationError

__all__ = ["imp_path"]


def imp_path(
    ensemble: Ensemble | ModuleEnsemble,
    *,
    data: Dataset | tuple,
    train_options,
    n_levels: int,
    options: ImpOptions | None = None,
    prune_output_layer: bool = True,
    prune_biases: bool = False,
) -> list[Ensemble | ModuleEnsemble]:
    """The rewound ticket of every IMP level ``1..n_levels``, for every member at once.

    Level ``j`` keeps ``R_j`` weights by IMP's rounding rule (density ``≈ (1 - rate)^j``),
    global magnitude pruning of the previous level's trained weights, rewound to
    ``θ_rewind_step``. Every member follows its own path; all members train together.

    Parameters
    ----------
    ensemble : Ensemble or ModuleEnsemble
        The dense (or already pruned) members; their seeds set the data order.
    data : Dataset or tuple (X, y)
        Training data, shared or per member (``X`` of shape ``(n_members, n, *example)``).
    train_options : robustlaw.empirical.training.TrainOptions
        The training of every level (``max_steps`` is ``T``; a stopping rule may end earlier).
    n_levels : int
        How many levels (>= 1).
    options : ImpOptions, optional
        Rate and rewind step (default: 20% per level, rewound to the initialization).
    prune_output_layer, prune_biases : bool
        Which parameters are prunable, as in :class:`~robustlaw.empirical.pruning.PrunePlan`.

    Returns
    -------
    list of Ensemble or ModuleEnsemble
        ``n_levels`` ensembles: level ``j``'s rewound tickets, before their retraining.

    Examples
    --------
    >>> import torch
    >>> from robustlaw.empirical.ensemble import MLPSpec, init_mlp_ensemble
    >>> from robustlaw.empirical.training import TrainOptions
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 8, 1)), seeds=[0, 1])
    >>> X, y = torch.randn(10, 3), torch.randn(10)
    >>> path = imp_path(ens, data=(X, y), train_options=TrainOptions(max_steps=5), n_levels=3)
    >>> [int(t.masks["0.weight"][0].sum() + t.masks["2.weight"][0].sum()) for t in path]
    [25, 20, 16]
    """
    check_integer(n_levels, "n_levels", minimum=1)
    check_bool(prune_output_layer, "prune_output_layer")
    check_bool(prune_biases, "prune_biases")
    options = ImpOptions() if options is None else options
    if not isinstance(options, ImpOptions):
        raise ValidationError(f"options must be an ImpOptions, got {type(options).__name__}")
    names = prunable_names(ensemble, prune_output_layer, prune_biases)
    if prune_biases:
        ensemble = with_bias_masks(ensemble)
    scoring = prepare_scoring_data(data, loss=train_options.loss.name, ensemble=ensemble)
    ctx = PruneContext(
        ensemble=ensemble,
        names=names,
        densities=(1.0,) * ensemble.n_members,  # unread: the level count is fixed
        seeds=tuple(ensemble.seeds) or (0,) * ensemble.n_members,
        options=options,
        scope="global",
        invert=False,
        data=scoring,
        train_options=train_options,
    )
    return imp_levels(ctx, n_levels=n_levels)
