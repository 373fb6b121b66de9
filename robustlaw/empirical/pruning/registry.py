"""The registry of named pruning methods (``METHODS.md`` §3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from robustlaw._validation import get_registered
from robustlaw.empirical.pruning._context import PruneContext
from robustlaw.empirical.pruning.erk import ErkOptions, prune_erk
from robustlaw.empirical.pruning.imp import (
    ImpOptions,
    MagnitudeAfterOptions,
    prune_imp,
    prune_magnitude_after,
)
from robustlaw.empirical.pruning.scorers import (
    GraspOptions,
    MagnitudeOptions,
    PrunerOutput,
    RandomOptions,
    SnipOptions,
    SynflowOptions,
    prune_grasp,
    prune_grasp_abs,
    prune_magnitude,
    prune_random,
    prune_snip,
    prune_synflow,
)

__all__ = ["PRUNERS", "Pruner", "get_pruner"]


@dataclass(frozen=True, kw_only=True)
class Pruner:
    """A registered pruning method.

    Attributes
    ----------
    run : callable
        ``run(ctx) -> PrunerOutput`` for a group of members.
    default_options : object
        The options used when a plan gives none; a plan's options must be of its type.
    needs_data : bool
        The method scores or trains on ``data=(X, y)``.
    needs_training : bool
        The method trains (``train_options`` required).
    prunes_biases : bool
        The method can rank biases with the weights (``PrunePlan(prune_biases=True)``). False
        for ERK and ER, whose layer densities come from weight shapes.
    description : str
        One line for listings.
    """

    run: Callable[[PruneContext], PrunerOutput]
    default_options: Any
    needs_data: bool = False
    needs_training: bool = False
    prunes_biases: bool = True
    description: str = ""


PRUNERS: dict[str, Pruner] = {
    "random": Pruner(
        run=prune_random, default_options=RandomOptions(), description="i.i.d. U(0,1) scores"
    ),
    "random-exact": Pruner(
        run=prune_random,
        default_options=RandomOptions(exact=True),
        description="a uniform subset of exactly N_l - ceil(s N_l) entries per layer",
    ),
    "erk": Pruner(
        run=prune_erk,
        default_options=ErkOptions(),
        prunes_biases=False,
        description="random at ERK layer densities",
    ),
    "er": Pruner(
        run=prune_erk,
        default_options=ErkOptions(kernel=False),
        prunes_biases=False,
        description="random at Erdős–Rényi layer densities",
    ),
    "magnitude": Pruner(
        run=prune_magnitude, default_options=MagnitudeOptions(), description="|θ_0|"
    ),
    "snip": Pruner(
        run=prune_snip, default_options=SnipOptions(), needs_data=True, description="|θ ⊙ g|"
    ),
    "grasp": Pruner(
        run=prune_grasp,
        default_options=GraspOptions(),
        needs_data=True,
        description="keep θ ⊙ Hg (prune the highest S = -θ ⊙ Hg)",
    ),
    "grasp-abs": Pruner(
        run=prune_grasp_abs, default_options=GraspOptions(), needs_data=True, description="|θ ⊙ Hg|"
    ),
    "synflow": Pruner(
        run=prune_synflow,
        default_options=SynflowOptions(),
        description="iterative synaptic flow, data-free",
    ),
    "magnitude-after": Pruner(
        run=prune_magnitude_after,
        default_options=MagnitudeAfterOptions(),
        needs_data=True,
        needs_training=True,
        description="|θ_T| after dense training, then rewind or finetune",
    ),
    "imp": Pruner(
        run=prune_imp,
        default_options=ImpOptions(),
        needs_data=True,
        needs_training=True,
        description="iterative magnitude pruning with rewinding",
    ),
}
"""Every pruning method by name."""


def get_pruner(name: str) -> Pruner:
    """The registered method ``name``.

    Raises
    ------
    UnknownNameError
        If ``name`` is not registered; the message lists the valid names.

    Examples
    --------
    >>> get_pruner("snip").needs_data
    True
    >>> get_pruner("snp")
    Traceback (most recent call last):
    ...
    robustlaw.errors.UnknownNameError: unknown pruning method 'snp'; valid names: er, erk, grasp, grasp-abs, imp, magnitude, magnitude-after, random, random-exact, snip, synflow
    >>> get_pruner("magnitude_after")
    Traceback (most recent call last):
    ...
    robustlaw.errors.UnknownNameError: unknown pruning method 'magnitude_after': it is now called 'magnitude-after'
    """  # noqa: E501
    return get_registered(PRUNERS, name, "pruning method")
