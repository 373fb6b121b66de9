"""One ``nfp-memorization`` unit: prune every seed's net to every density, train, count.

A unit is one method and a block of seeds. Its members are ``seeds x exponents`` (seed-major),
each on its own seed's data (the ``(n_members, n_samples, n_features)`` input form), pruned
before training (one-shot methods: :func:`~robustlaw.empirical.pruning.prune`; IMP:
:func:`~robustlaw.empirical.pruning.imp_levels`, every seed's levels advancing together), then
trained as one ensemble with the No Free Prune stopping rule. A member's memorized fraction is
the share of its training examples whose final loss is at most the settings' margin.

SNIP and GraSP score on the whole training set (``samples_per_class=None``): with 30 random
labels a class can hold fewer than the scorers' default 10 examples per class.

References
----------
Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089), §4, Fig. 1a.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import torch

from robustlaw._validation import derived_seed
from robustlaw.empirical.data import random_labels_data
from robustlaw.empirical.ensemble import Ensemble, MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import (
    GraspOptions,
    ImpOptions,
    PrunePlan,
    SnipOptions,
    imp_path,
    prune,
    select_members,
)
from robustlaw.empirical.training import (
    LOSSES,
    AccuracyPlateau,
    Adam,
    AnyOf,
    Converged,
    TrainOptions,
    TrainResult,
    prepare_targets,
    train_accuracy,
    train_ensemble,
)
from robustlaw.experiments.nfp_memorization.record import MemorizationRecord
from robustlaw.experiments.nfp_memorization.settings import MemorizationSettings
from robustlaw.experiments.registry import WorkUnit

__all__ = ["SUBNETWORKS", "draw_data", "init_networks", "measure", "train_options"]

_DATA_STREAM, _INIT_STREAM = 1, 2

_SCORING_OPTIONS = {
    "snip": SnipOptions(samples_per_class=None),
    "grasp": GraspOptions(samples_per_class=None),
}
"""Plan options that differ from a method's defaults (score on every training example)."""

Data = tuple[torch.Tensor, torch.Tensor]


def draw_data(settings: MemorizationSettings, seeds: Sequence[int], *, device: str = "cpu") -> Data:
    """Every seed's dataset, stacked: inputs ``(S, n, d)`` and targets.

    Targets are class indices ``(S, n)`` (int64, label +1 is class 1) for cross-entropy and
    ±1 values ``(S, n)`` for MSE. Seed ``s`` draws from the seed ``derived_seed(s, 1)``.

    Examples
    --------
    >>> X, y = draw_data(MemorizationSettings(), [0, 1])
    >>> tuple(X.shape), tuple(y.shape), y.dtype
    ((2, 30, 30), (2, 30), torch.int64)
    """
    dtype = getattr(torch, settings.dtype)
    sets = [
        random_labels_data(settings.n_samples, settings.n_features, inputs=settings.inputs,
                           seed=derived_seed(s, _DATA_STREAM), dtype=dtype, device=device)
        for s in seeds
    ]  # fmt: skip
    X, y = torch.stack([d.X for d in sets]), torch.stack([d.y for d in sets])
    return X, (y > 0).to(torch.int64) if settings.loss == "cross-entropy" else y


def init_networks(
    settings: MemorizationSettings, seeds: Sequence[int], *, device: str = "cpu"
) -> Ensemble:
    """One dense net per seed (``nn.Linear``'s initialization from ``derived_seed(s, 2)``)."""
    n_outputs = 2 if settings.loss == "cross-entropy" else 1
    sizes = (settings.n_features, *[settings.width] * settings.hidden_layers, n_outputs)
    return init_mlp_ensemble(MLPSpec(layer_sizes=sizes),
                             [derived_seed(s, _INIT_STREAM) for s in seeds],
                             dtype=getattr(torch, settings.dtype), device=device)  # fmt: skip


def train_options(settings: MemorizationSettings) -> TrainOptions:
    """Adam, the settings' loss, and NFP's rule: loss converged or accuracy on a plateau.

    The rule is checked once per epoch of ``epoch_steps`` full-batch steps.
    """
    rule = AnyOf(rules=(Converged(tol=settings.loss_tol, window=2),
                        AccuracyPlateau(epochs=settings.plateau_epochs)))  # fmt: skip
    return TrainOptions(optimizer=Adam(lr=settings.lr), loss=LOSSES[settings.loss](),
                        stopping=rule, max_steps=settings.max_epochs * settings.epoch_steps,
                        check_every=settings.epoch_steps)  # fmt: skip


def _repeat(t: torch.Tensor, times: int) -> torch.Tensor:
    return t.repeat_interleave(times, dim=0)


def _one_shot(settings: MemorizationSettings, method: str, seeds, base: Ensemble, data: Data):
    """Every seed's net pruned once per density (seed-major); the seed seeds the method."""
    n_levels = len(settings.exponents)
    nets = select_members(base, [i for i in range(base.n_members) for _ in range(n_levels)])
    plans = [PrunePlan(method=method, density=rho, seed=seed, options=_SCORING_OPTIONS.get(method))
             for seed in seeds for rho in settings.densities]  # fmt: skip
    X, y = (_repeat(t, n_levels) for t in data)
    return prune(nets, plans, data=(X, y), loss=settings.loss).ensemble


def _imp(settings: MemorizationSettings, method: str, seeds, base: Ensemble, data: Data):
    """IMP's rewound tickets at the levels ``exponents`` of every seed (seed-major)."""
    imp = ImpOptions(rate=settings.rate)
    tickets = imp_path(base, data=data, train_options=train_options(settings),
                       n_levels=max(settings.exponents), options=imp)  # fmt: skip
    chosen = [tickets[j - 1] for j in settings.exponents]

    def stacked(field: str) -> dict[str, torch.Tensor]:
        return {k: torch.stack([getattr(t, field)[k] for t in chosen], dim=1).flatten(0, 1)
                for k in getattr(base, field)}  # fmt: skip

    member_seeds = [s for s in base.seeds for _ in chosen]
    return Ensemble(
        spec=base.spec, params=stacked("params"), masks=stacked("masks"), seeds=member_seeds
    )


SUBNETWORKS: dict[str, Callable[..., Ensemble]] = {"imp": _imp}
"""Methods that build their subnetworks their own way; every other method is one-shot."""


def _stop_reasons(result: TrainResult, loss_tol: float) -> list[str]:
    """Why each member stopped (see ``STOP_REASONS``), read from the trainer's loss history."""
    rec, history, steps = result.record, result.history, result.history_steps
    reasons = []
    for i, n in enumerate(rec.n_steps):
        c = int(np.searchsorted(steps, n))
        if rec.diverged[i]:
            reasons.append("diverged")
        elif not rec.rule_met[i]:  # neither rule held by the step cap
            reasons.append("step-cap")
        elif c >= 1 and abs(history[c, i] - history[c - 1, i]) <= loss_tol:
            reasons.append("loss-converged")
        else:
            reasons.append("accuracy-plateau")
    return reasons


def measure(
    settings: MemorizationSettings, unit: WorkUnit, *, device: str, progress: bool = False
) -> list[MemorizationRecord]:
    """Measure one unit: one record per seed and density.

    ``progress`` is accepted for the framework's signature; a unit is one training run.
    """
    method, seeds = unit.params["method"], unit.params["seeds"]
    data = draw_data(settings, seeds, device=device)
    base = init_networks(settings, seeds, device=device)
    nets = SUBNETWORKS.get(method, _one_shot)(settings, method, seeds, base, data)
    n_levels = len(settings.exponents)
    X, y = (_repeat(t, n_levels) for t in data)
    options = train_options(settings)
    result = train_ensemble(nets, X, y, options)
    trained = result.to_ensemble(nets)
    n_outputs = nets.spec.layer_sizes[-1]
    targets = prepare_targets(
        y, options.loss, n_samples=settings.n_samples, n_members=nets.n_members, n_outputs=n_outputs
    )
    with torch.no_grad():
        outputs = trained(X)
        losses = options.loss.per_example(outputs, targets).double().cpu().numpy()
        accuracy = train_accuracy(outputs, targets).cpu().numpy()
    kept = sum(m.flatten(1).sum(1) for m in nets.masks.values()).cpu().numpy()
    prunable = nets.spec.n_weights()
    reasons = _stop_reasons(result, settings.loss_tol)
    margin = settings.margin
    records = []
    for i in range(nets.n_members):
        seed, level = seeds[i // n_levels], i % n_levels
        records.append(MemorizationRecord(
            method=method, seed=seed, exponent=settings.exponents[level],
            target_density=settings.densities[level], density=float(kept[i]) / prunable,
            kept_weights=int(kept[i]), prunable_weights=prunable,
            memorized_fraction=float(np.mean(losses[i] <= margin)), fit_margin=margin,
            loss=settings.loss, train_loss=float(losses[i].mean()),
            train_accuracy=float(accuracy[i]), n_steps=int(result.record.n_steps[i]),
            stop_reason=reasons[i], example_losses=json.dumps(losses[i].tolist()),
            n_samples=settings.n_samples, n_features=settings.n_features, width=settings.width,
            inputs=settings.inputs,
        ))  # fmt: skip
    return records
