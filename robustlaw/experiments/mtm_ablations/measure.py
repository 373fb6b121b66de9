"""The ``mtm-ablations`` work unit: prune one seed's grid, train it as one ensemble, test it.

Every member (dense baselines; each method x ablation x density x seed; IMP's tickets) is built
by :func:`~.grid.build_grid` and then trained together with one recipe (:func:`train_options`):
SGD with momentum on the cross-entropy, minibatches, a fixed number of epochs. The paper trains
with the same recipe before pruning (magnitude after training, every IMP level) and after it.
Accuracy is measured on the held-out test images and on the training images.

References
----------
Frankle, Dziugaite, Roy, Carbin, *Pruning Neural Networks at Initialization: Why Are We Missing
the Mark?*, ICLR 2021 (arXiv:2009.08576).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from functools import partial

import torch

from robustlaw.empirical.training import SGD, TrainOptions, TrainResult, train_ensemble
from robustlaw.experiments.mtm_ablations.configurations import (
    CONFIGURATIONS,
    NETWORKS,
    Split,
    load_split,
)
from robustlaw.experiments.mtm_ablations.grid import Member, build_grid
from robustlaw.experiments.mtm_ablations.record import MtmAblationsRecord
from robustlaw.experiments.mtm_ablations.settings import MtmAblationsSettings
from robustlaw.experiments.registry import WorkUnit

__all__ = ["TrainedGrid", "accuracy", "measure", "train_grid", "train_options", "unit_records"]

logger = logging.getLogger(__name__)

Settings = MtmAblationsSettings

EVAL_CHUNK = 250
"""Examples per forward pass when measuring accuracy (bounds memory at large K)."""


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainedGrid:
    """The grid after training.

    Attributes
    ----------
    split : Split
        The data it trained and was tested on.
    pruned : Ensemble or ModuleEnsemble
        The members before training (masks set, pruned entries zero).
    trained : Ensemble or ModuleEnsemble
        The members after training.
    members : tuple of Member
        What each member is, in ensemble order.
    result : TrainResult
        The training record.
    architecture : str
        The network, for the records.
    """

    split: Split
    pruned: object
    trained: object
    members: tuple[Member, ...]
    result: TrainResult
    architecture: str


def train_options(settings: Settings, n_train: int) -> TrainOptions:
    """The recipe: SGD with momentum and weight decay, cross-entropy, ``epochs`` full passes.

    One stopping check, at the end (the run has a fixed length).

    Examples
    --------
    >>> from robustlaw.experiments.mtm_ablations.settings import PRESETS
    >>> opts = train_options(PRESETS["default"], 1297)
    >>> opts.optimizer, opts.max_steps, opts.batch_size
    (SGD(lr=0.05, momentum=0.9, weight_decay=0.0001), 600, 64)
    """
    steps = settings.epochs * (n_train // min(settings.batch_size, n_train))
    optimizer = SGD(lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    return TrainOptions(optimizer=optimizer, loss="cross-entropy", max_steps=steps,
                        batch_size=settings.batch_size, check_every=steps)  # fmt: skip


def accuracy(ensemble, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's share of ``X`` classified as ``y``, shape ``(n_members,)``, in [0, 1].

    ``X`` is shared by all members; it is run ``EVAL_CHUNK`` examples at a time.
    """
    correct = torch.zeros(ensemble.n_members, device=y.device)
    with torch.no_grad():
        for start in range(0, len(y), EVAL_CHUNK):
            logits = ensemble(X[start : start + EVAL_CHUNK])
            correct += (logits.argmax(-1) == y[start : start + EVAL_CHUNK]).sum(1)
    return correct / len(y)


def train_grid(settings: Settings, *, device: str = "cpu") -> TrainedGrid:
    """Load the data, build the pruned grid and train all of its members together."""
    dtype = getattr(torch, settings.dtype)
    split = load_split(settings, dtype=dtype, device=device)
    network = NETWORKS[CONFIGURATIONS[settings.configuration].network]
    shape = tuple(split.X.shape[1:])
    init = partial(network.init, settings, shape, split.n_classes, dtype=dtype, device=device)
    options = train_options(settings, len(split.y))
    pruned, members = build_grid(settings, split, init, options)
    logger.info("training %d members for %d steps", pruned.n_members, options.max_steps)
    result = train_ensemble(pruned, split.X, split.y, options)
    return TrainedGrid(split=split, pruned=pruned, trained=result.to_ensemble(pruned),
                       members=tuple(members), result=result,
                       architecture=network.describe(settings, shape, split.n_classes))  # fmt: skip


def unit_records(settings: Settings, grid: TrainedGrid) -> list[MtmAblationsRecord]:
    """One record per member: its mask, test and train accuracy, and training."""
    masks = grid.trained.masks
    kept = sum(m.flatten(1).sum(1) for m in masks.values()).tolist()
    layer = {k: m.flatten(1).double().mean(1).tolist() for k, m in masks.items()}
    prunable = sum(m[0].numel() for m in masks.values())
    test = accuracy(grid.trained, grid.split.X_test, grid.split.y_test).tolist()
    train = accuracy(grid.trained, grid.split.X, grid.split.y).tolist()
    rec = grid.result.record
    return [
        MtmAblationsRecord(
            configuration=settings.configuration,
            architecture=grid.architecture,
            method=m.method,
            ablation=m.ablation,
            seed=m.seed,
            level=m.level,
            target_density=0.8**m.level,
            density=kept[i] / prunable,
            sparsity=1 - kept[i] / prunable,
            kept_weights=int(kept[i]),
            prunable_weights=prunable,
            layer_densities=json.dumps({k: v[i] for k, v in layer.items()}),
            test_accuracy=test[i],
            train_accuracy=train[i],
            final_loss=float(rec.final_loss[i]),
            n_steps=int(rec.n_steps[i]),
            n_train=len(grid.split.y),
            n_test=len(grid.split.y_test),
            rewind_step=settings.rewind_step,
        )
        for i, m in enumerate(grid.members)
    ]


def measure(
    settings: Settings, unit: WorkUnit, *, device: str = "cpu", progress: bool = False
) -> list[MtmAblationsRecord]:
    """Prune, train and test the grid of the unit's seed (``progress`` unused)."""
    one_seed = replace(settings, seeds=(unit.params["seed"],))
    return unit_records(one_seed, train_grid(one_seed, device=device))
