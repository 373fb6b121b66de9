"""Measuring ``nfp-noise-correlation``: train students, read the noise correlation every epoch.

A work unit is one sweep (:data:`SWEEP_RUNNERS`). Its students train as one ensemble, one member
per seed and value, each member on its own seed's data (the ``(n_members, n_samples,
n_features)`` form); the gradient-noise sweep trains one ensemble per noise level, since the
level is part of the training options. The trainer's check hook (``on_check``, once per epoch
with minibatches) hands over the parameters of every epoch without storing them; the hook
evaluates each member on its training inputs and fresh inputs and records
:func:`~robustlaw.empirical.noise_correlation.noise_correlation`. The training MSE is the
trainer's own loss history at the same checks.

IMP (NFP Figs. 2a, 3): train ``epochs`` epochs, prune ``imp_rate`` of the remaining weights by
global magnitude (:func:`~robustlaw.empirical.pruning.prune` with ``"magnitude"`` on the trained
weights, pruned weights staying pruned), rewind the survivors to ``rewind_epoch`` and train
again. This is :func:`~robustlaw.empirical.pruning.imp_levels` with every cycle's training
observed; the tests check that a cycle equals pruning's own IMP ticket trained alone.

References
----------
Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089), §6, Figs. 2–3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from robustlaw._validation import derived_seed
from robustlaw.empirical.data.synthetic import sample_inputs, teacher_data
from robustlaw.empirical.ensemble import Ensemble, MLPSpec, init_mlp_ensemble
from robustlaw.empirical.noise_correlation import noise_correlation
from robustlaw.empirical.pruning import PrunePlan, prunable_names, prune
from robustlaw.empirical.training import (
    MSE,
    Adam,
    GaussianGradientNoise,
    MaxSteps,
    TrainOptions,
    TrainResult,
    train_ensemble,
)
from robustlaw.experiments.nfp_noise_correlation.record import NoiseCorrelationRecord
from robustlaw.experiments.nfp_noise_correlation.settings import (
    NoiseCorrelationSettings,
    imp_kept_counts,
)
from robustlaw.experiments.registry import WorkUnit

__all__ = ["SWEEP_RUNNERS", "SeedData", "draw_data", "init_students", "measure", "student_seed"]

_STUDENT_STREAM, _FRESH_STREAM = 1, 2


@dataclass(frozen=True, kw_only=True, eq=False)
class SeedData:
    """Every seed's data, stacked on a leading seed axis (``S = len(settings.seeds)``).

    Attributes
    ----------
    X : torch.Tensor
        Training inputs, shape ``(S, n_samples, n_features)``.
    y : torch.Tensor
        Noisy labels ``g(x) + z``, shape ``(S, n_samples)``.
    noise : torch.Tensor
        The label noise ``z``, shape ``(S, n_samples)``.
    fresh : torch.Tensor
        Fresh inputs from the same distribution, shape ``(S, fresh_samples, n_features)``.
    """

    X: torch.Tensor
    y: torch.Tensor
    noise: torch.Tensor
    fresh: torch.Tensor

    def noise_power(self) -> np.ndarray:
        """``(1/n) sum_i z_i^2`` per seed, float64 of shape ``(S,)``."""
        return self.noise.double().square().mean(dim=1).cpu().numpy()


def draw_data(settings: NoiseCorrelationSettings, *, device: str = "cpu") -> SeedData:
    """Draw every seed's teacher, training set, noise and fresh inputs.

    Seed ``s`` draws its teacher and data with
    :func:`~robustlaw.empirical.data.teacher_data` (``seed=s``) and its fresh inputs from the
    generator seeded ``derived_seed(s, 2)``.
    """
    s, dtype = settings, getattr(torch, settings.dtype)
    sets = [teacher_data(s.n_samples, s.n_features, hidden=s.teacher_hidden,
                         noise_std=s.noise_std, inputs=s.inputs, seed=seed, dtype=dtype,
                         device=device) for seed in s.seeds]  # fmt: skip
    fresh = [sample_inputs(s.inputs, s.fresh_samples, s.n_features, dtype=dtype, device=device,
                           generator=torch.Generator().manual_seed(
                               derived_seed(seed, _FRESH_STREAM)))
             for seed in s.seeds]  # fmt: skip
    return SeedData(
        X=torch.stack([d.X for d in sets]),
        y=torch.stack([d.y for d in sets]),
        noise=torch.stack([d.extras["noise"] for d in sets]),
        fresh=torch.stack(fresh),
    )


def student_seed(seed: int) -> int:
    """The student's seed for data seed ``seed`` (its init, minibatch order, gradient noise).

    A stream of its own: with the data seed itself the student's first layer would start as a
    copy of the teacher's (both drawn from the same generator).
    """
    return derived_seed(seed, _STUDENT_STREAM)


def init_students(
    settings: NoiseCorrelationSettings, members: Sequence[int], *, device: str = "cpu"
) -> Ensemble:
    """Fresh students, one per entry of ``members`` (indices into ``settings.seeds``)."""
    spec = MLPSpec(layer_sizes=(settings.n_features, *settings.student_hidden, 1))
    seeds = [student_seed(settings.seeds[i]) for i in members]
    return init_mlp_ensemble(spec, seeds, dtype=getattr(torch, settings.dtype), device=device)


class _Observed(NamedTuple):
    """One training run, observed once per epoch (arrays of shape ``(n_checks, n_members)``)."""

    result: TrainResult
    epochs: np.ndarray  # (n_checks,), epochs trained at each check
    correlation: np.ndarray
    mse: np.ndarray


@dataclass(frozen=True, kw_only=True)
class _Unit:
    """One sweep's settings, data and device."""

    s: NoiseCorrelationSettings
    data: SeedData
    device: str
    progress: bool

    @property
    def steps_per_epoch(self) -> int:
        return self.s.n_samples // self.s.batch_size

    def options(self, lr, *, epochs: int, noise: float = 0.0, snapshot_epoch: int | None = None):
        """Adam on the MSE for ``epochs`` epochs, checked (and observed) once per epoch, with
        Gaussian gradient noise of std ``noise`` (none at 0) and a snapshot after
        ``snapshot_epoch`` epochs (none at None)."""
        per_epoch = self.steps_per_epoch
        snapshots = () if snapshot_epoch is None else (snapshot_epoch * per_epoch,)
        gradient_noise = GaussianGradientNoise(std=noise) if noise else None
        return TrainOptions(optimizer=Adam(lr=lr), loss=MSE(), stopping=MaxSteps(),
                            max_steps=epochs * per_epoch, batch_size=self.s.batch_size,
                            check_every=per_epoch, snapshot_steps=snapshots,
                            gradient_noise=gradient_noise)  # fmt: skip

    def train(self, ens: Ensemble, members: Sequence[int], options: TrainOptions) -> _Observed:
        """Train ``ens`` (member ``j`` on seed ``members[j]``'s data); observe every epoch."""
        idx = torch.as_tensor(list(members), device=self.data.X.device)
        X, z, fresh = self.data.X[idx], self.data.noise[idx], self.data.fresh[idx]
        correlations = []

        def observe(step: int, params: dict[str, torch.Tensor]) -> None:
            with torch.no_grad():
                train_out, fresh_out = ens.apply(params, X), ens.apply(params, fresh)
            correlations.append(noise_correlation(train_out[..., 0], z, fresh_out[..., 0]))

        result = train_ensemble(ens, X, self.data.y[idx], options, on_check=observe)
        epochs = result.history_steps // self.steps_per_epoch
        return _Observed(result, epochs, np.stack(correlations), result.history)

    def records(self, sweep: str, members: Sequence[int], run: _Observed, *, lr: Sequence[float],
                noise: float = 0.0, cycle: int = 0, first_epoch: int = 0,
                kept: Sequence[float] | None = None) -> list[NoiseCorrelationRecord]:  # fmt: skip
        """One record per member and observed epoch."""
        power = self.data.noise_power()
        return [
            NoiseCorrelationRecord(
                sweep=sweep,
                seed=self.s.seeds[i],
                learning_rate=float(lr[j]),
                gradient_noise=float(noise),
                cycle=cycle,
                epoch=first_epoch + int(e),
                kept_fraction=1.0 if kept is None else float(kept[j]),
                correlation=float(run.correlation[row, j]),
                train_mse=float(run.mse[row, j]),
                noise_power=float(power[i]),
                sigma2=self.s.noise_std**2,
            )  # fmt: skip
            for j, i in enumerate(members)
            for row, e in enumerate(run.epochs)
        ]


def _learning_rate(u: _Unit) -> list[NoiseCorrelationRecord]:
    """NFP Fig. 2b: no pruning, every learning rate times every seed in one ensemble."""
    grid = [(lr, i) for lr in u.s.learning_rates for i in range(len(u.s.seeds))]
    members, lrs = [i for _, i in grid], tuple(lr for lr, _ in grid)
    ens = init_students(u.s, members, device=u.device)
    observed = u.train(ens, members, u.options(lrs, epochs=u.s.epochs))
    return u.records("learning-rate", members, observed, lr=lrs)


def _gradient_noise(u: _Unit) -> list[NoiseCorrelationRecord]:
    """NFP Fig. 2c: no pruning, learning rate ``lr``, one ensemble of all seeds per level."""
    members, records = list(range(len(u.s.seeds))), []
    for std in tqdm(u.s.gradient_noise_stds, desc="noise levels", disable=not u.progress):
        ens = init_students(u.s, members, device=u.device)
        observed = u.train(ens, members, u.options(u.s.lr, epochs=u.s.epochs, noise=std))
        records += u.records("gradient-noise", members, observed, lr=[u.s.lr] * len(members),
                             noise=std)  # fmt: skip
    return records


def _imp(u: _Unit) -> list[NoiseCorrelationRecord]:
    """NFP Figs. 2a, 3: train, prune by global magnitude, rewind, repeat; observe every cycle."""
    s, members = u.s, list(range(len(u.s.seeds)))
    lrs = [s.lr] * len(members)
    ticket = init_students(s, members, device=u.device)
    names = prunable_names(ticket.spec, s.prune_output_layer)
    counts, rewound, records = imp_kept_counts(s), ticket, []
    for cycle in tqdm(range(s.imp_cycles), desc="IMP cycles", disable=not u.progress):
        first = 0 if cycle == 0 else s.rewind_epoch
        rewind = s.rewind_epoch if cycle == 0 else None
        options = u.options(s.lr, epochs=s.epochs - first, snapshot_epoch=rewind)
        observed = u.train(ticket, members, options)
        kept = [int(sum(ticket.masks[k][j].sum() for k in names)) / s.prunable_weights
                for j in members]  # fmt: skip
        records += u.records("imp", members, observed, lr=lrs, cycle=cycle, first_epoch=first,
                             kept=kept)  # fmt: skip
        result = observed.result
        if cycle == 0:
            rewound = ticket.with_params(result.snapshots[s.rewind_epoch * u.steps_per_epoch])
        if cycle + 1 < s.imp_cycles:
            plan = PrunePlan(method="magnitude", density=counts[cycle + 1] / s.prunable_weights,
                             prune_output_layer=s.prune_output_layer)  # fmt: skip
            masks = prune(result.to_ensemble(ticket), plan).ensemble.masks
            ticket = rewound.with_masks(masks)
    return records


SWEEP_RUNNERS: dict[str, Callable[[_Unit], list[NoiseCorrelationRecord]]] = {
    "imp": _imp,
    "learning-rate": _learning_rate,
    "gradient-noise": _gradient_noise,
}
"""How each sweep (a key of :data:`~.settings.SWEEPS`) is measured."""


def measure(
    settings: NoiseCorrelationSettings, unit: WorkUnit, *, device: str, progress: bool = False
) -> list[NoiseCorrelationRecord]:
    """Measure one sweep: a record per student and epoch (see :class:`NoiseCorrelationRecord`)."""
    unit_context = _Unit(s=settings, data=draw_data(settings, device=device), device=device,
                         progress=progress)  # fmt: skip
    return SWEEP_RUNNERS[unit.params["sweep"]](unit_context)
