"""One ``nfp-memorization-images`` work unit: prune one method's members, train them, measure.

Each seed draws its noisy training images once (:func:`noisy_images`); every method of that
seed trains on exactly these images from the same initialization. The unit's members (seeds x
densities, or seeds x recorded IMP levels) are pruned and then trained as one ensemble, each
member on its own seed's images, with No Free Prune's recipe (:func:`train_options`): Adam,
batch 64, cross-entropy, stopped per member when the loss converged or the train accuracy
plateaued, or at the epoch cap.

IMP: the seeds advance along the 0.8^j path together, as one ensemble
(:func:`~robustlaw.empirical.pruning.imp_levels`, rewinding to the initialization, 20% of the
remaining weights per level, global); the recorded levels' rewound tickets are then trained like
every other mask. MagAfter (``magnitude-after``) trains the dense net, keeps the largest
trained weights and rewinds the survivors to the initialization (``METHODS.md`` §3.6).

References
----------
Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089), §4, Fig. 1b.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from robustlaw.empirical.data import digits_data, load_torchvision
from robustlaw.empirical.ensemble import Ensemble, MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import (
    ImpOptions,
    PrunePlan,
    concat_members,
    get_pruner,
    imp_path,
    prune,
)
from robustlaw.empirical.training import (
    AccuracyPlateau,
    Adam,
    AnyOf,
    Converged,
    CrossEntropy,
    TrainOptions,
    TrainResult,
    train_accuracy,
    train_ensemble,
)
from robustlaw.experiments.nfp_memorization_images.record import NfpMemorizationImagesRecord
from robustlaw.experiments.nfp_memorization_images.settings import NfpMemorizationImagesSettings
from robustlaw.experiments.registry import WorkUnit

__all__ = ["Member", "TrainedUnit", "measure", "noisy_images", "stop_reasons", "train_options",
           "train_unit", "unit_records"]  # fmt: skip

Settings = NfpMemorizationImagesSettings

_LOADERS: dict[str, Callable] = {
    "digits": lambda settings, **kw: digits_data(**kw),
    "fashion-mnist": lambda settings, **kw: load_torchvision(
        "fashion-mnist", settings.data_root, **kw
    ),
}


@dataclass(frozen=True)
class Member:
    """What one network of a unit is: its seed, target density and IMP level (or None)."""

    seed: int
    target_density: float
    imp_level: int | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainedUnit:
    """A unit after training: the ensemble, each member's images, and how training went.

    Attributes
    ----------
    method : str
        The pruning method of every member.
    ensemble : Ensemble
        The trained members, pruned entries exactly zero.
    X : torch.Tensor
        Each member's noisy images, shape ``(n_members, n_samples, n_features)``.
    y : torch.Tensor
        Each member's labels, int64 of shape ``(n_members, n_samples)``.
    members : tuple of Member
        What each member is, in ensemble order.
    result : TrainResult
        The training record and loss history.
    options : TrainOptions
        The recipe it was trained with.
    steps_per_epoch : int
        Optimizer steps per pass over the training set.
    """

    method: str
    ensemble: Ensemble
    X: torch.Tensor
    y: torch.Tensor
    members: tuple[Member, ...]
    result: TrainResult
    options: TrainOptions
    steps_per_epoch: int


def noisy_images(settings: Settings, seed: int, *, device: str = "cpu"):
    """The training images of ``seed`` with their pixel noise, drawn once, and the labels.

    Pixels are in [0, 1] before the noise; every pixel gets i.i.d. Gaussian noise of variance
    ``settings.noise_variance`` (through the data registry's ``input_noise_std``); labels are
    unchanged. The same seed always gives the same images.

    Returns
    -------
    X : torch.Tensor
        Shape ``(n_samples, n_features)`` (images flattened), ``settings.dtype``.
    y : torch.Tensor
        int64 class indices, shape ``(n_samples,)``.
    n_classes : int
        The number of classes.
    """
    data = _LOADERS[settings.dataset](
        settings,
        input_noise_std=math.sqrt(settings.noise_variance),
        n_samples=settings.n_samples,
        seed=seed,
        dtype=getattr(torch, settings.dtype),
        device=device,
    )
    return data.X.flatten(1), data.y, data.n_classes


def train_options(settings: Settings, n_samples: int) -> TrainOptions:
    """No Free Prune's recipe: Adam, minibatches, cross-entropy, converged-or-plateau stopping.

    The cap is ``max_epochs`` passes over ``n_samples`` images, rounded down to a whole number
    of checks when ``check_every`` is set, so the last check comes a full interval after the
    one before it (a check a few steps after the previous one would find the loss "converged").
    """
    per_epoch = n_samples // min(settings.batch_size, n_samples)
    cap = settings.max_epochs * per_epoch
    if settings.check_every is not None:
        cap -= cap % settings.check_every
    stopping = AnyOf(rules=(
        Converged(tol=settings.converged_tol, window=settings.converged_checks),
        AccuracyPlateau(epochs=settings.plateau_checks),
    ))  # fmt: skip
    return TrainOptions(optimizer=Adam(lr=settings.lr), loss=CrossEntropy(), stopping=stopping,
                        max_steps=cap, batch_size=settings.batch_size,
                        check_every=settings.check_every)  # fmt: skip


def stop_reasons(result: TrainResult, options: TrainOptions) -> list[str]:
    """Why each member stopped (:data:`~.record.STOP_REASONS`).

    A member that trained to the cap is ``"epoch-cap"`` (even if the rule held at that last
    check); one that stopped earlier is ``"converged"`` if the loss criterion held at its last
    check (its loss history up to its own stop), else ``"accuracy-plateau"``.
    """
    converged = options.stopping.rules[0]
    rec, reasons = result.record, []
    for i, steps in enumerate(rec.n_steps):
        window = result.history[result.history_steps <= steps, i][-converged.window :]
        if rec.diverged[i]:
            reasons.append("diverged")
        elif not rec.rule_met[i] or steps == options.max_steps:
            reasons.append("epoch-cap")
        elif len(window) == converged.window and np.ptp(window) <= converged.tol:
            reasons.append("converged")
        else:
            reasons.append("accuracy-plateau")
    return reasons


def _imp_tickets(settings, method, spec, images, options) -> tuple[Ensemble, list[Member]]:
    """The rewound IMP tickets of the recorded levels, every seed's path in one ensemble."""
    seeds = settings.seeds
    ens = init_mlp_ensemble(spec, seeds, dtype=getattr(torch, settings.dtype),
                            device=images[seeds[0]][0].device)  # fmt: skip
    X = torch.stack([images[s][0] for s in seeds])
    y = torch.stack([images[s][1] for s in seeds])
    imp = ImpOptions()
    tickets = imp_path(ens, data=(X, y), train_options=options,
                       n_levels=max(settings.imp_levels), options=imp)  # fmt: skip
    members = [Member(s, (1 - imp.rate) ** j, j) for j in settings.imp_levels for s in seeds]
    return concat_members([tickets[j - 1] for j in settings.imp_levels]), members


def _pruned(settings, method, spec, images, options) -> tuple[Ensemble, list[Member]]:
    """Every seed x density of a one-shot method, pruned in one call."""
    members = [Member(s, d) for d in settings.densities for s in settings.seeds]
    seeds = [m.seed for m in members]
    X = torch.stack([images[s][0] for s in seeds])
    ens = init_mlp_ensemble(spec, seeds, dtype=X.dtype, device=X.device)
    plans = [PrunePlan(method=method, density=m.target_density, seed=m.seed) for m in members]
    trains = get_pruner(method).needs_training
    res = prune(ens, plans, data=(X, torch.stack([images[s][1] for s in seeds])),
                loss="cross-entropy", train_options=options if trains else None)  # fmt: skip
    return res.ensemble, members


def train_unit(settings: Settings, unit: WorkUnit, *, device: str = "cpu") -> TrainedUnit:
    """Prune the unit's members, then train them together with the paper's recipe."""
    images = {s: noisy_images(settings, s, device=device) for s in settings.seeds}
    X0, _, n_classes = images[settings.seeds[0]]
    n_samples, n_features = X0.shape
    spec = MLPSpec(layer_sizes=(n_features, settings.width, settings.width, n_classes))
    options = train_options(settings, n_samples)
    method = unit.params["method"]
    build = _imp_tickets if method == "imp" else _pruned
    pruned, members = build(settings, method, spec, images, options)
    X = torch.stack([images[m.seed][0] for m in members])
    y = torch.stack([images[m.seed][1] for m in members])
    result = train_ensemble(pruned, X, y, options)
    return TrainedUnit(
        method=method, ensemble=result.to_ensemble(pruned), X=X, y=y, members=tuple(members),
        result=result, options=options,
        steps_per_epoch=n_samples // min(settings.batch_size, n_samples),
    )  # fmt: skip


def unit_records(settings: Settings, run: TrainedUnit) -> list[NfpMemorizationImagesRecord]:
    """One record per member of a trained unit: its mask, train accuracy and training."""
    ens, rec = run.ensemble, run.result.record
    with torch.no_grad():
        accuracy = train_accuracy(ens(run.X), run.y).cpu().numpy()
        kept = sum(m.flatten(1).sum(1) for m in ens.masks.values()).cpu().numpy()
    prunable = ens.spec.n_weights()
    n_samples, n_features = run.X.shape[1:]
    reasons = stop_reasons(run.result, run.options)
    return [
        NfpMemorizationImagesRecord(
            method=run.method,
            seed=m.seed,
            imp_level=m.imp_level,
            target_density=m.target_density,
            density=int(kept[i]) / prunable,
            sparsity=1 - int(kept[i]) / prunable,
            kept_weights=int(kept[i]),
            prunable_weights=prunable,
            train_accuracy=float(accuracy[i]),
            final_loss=float(rec.final_loss[i]),
            n_steps=int(rec.n_steps[i]),
            epochs=int(rec.n_steps[i]) / run.steps_per_epoch,
            stop_reason=reasons[i],
            dataset=settings.dataset,
            n_samples=n_samples,
            n_features=n_features,
            n_classes=ens.spec.layer_sizes[-1],
            width=settings.width,
            noise_variance=settings.noise_variance,
        )  # fmt: skip
        for i, m in enumerate(run.members)
    ]


def measure(
    settings: Settings, unit: WorkUnit, *, device: str = "cpu", progress: bool = False
) -> list[NfpMemorizationImagesRecord]:
    """Prune, train and record the unit's members (``progress`` is unused)."""
    return unit_records(settings, train_unit(settings, unit, device=device))
