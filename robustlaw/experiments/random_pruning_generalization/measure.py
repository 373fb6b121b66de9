"""The work unit of ``random-pruning-generalization``: prune at random, train by GD, log.

Every ``(p, seed)`` member is a :class:`~robustlaw.empirical.modules.TwoPatchNet` drawn by
:func:`~robustlaw.empirical.modules.init_module_ensemble` (``init="normal"``, std
``sigma_0``) and masked by :func:`random_masks`; the members train as one ensemble by full-batch
gradient descent (:func:`train_options`), each on its own seed's data (:func:`seed_data`). At
every ``log_every`` steps and at the end, :class:`Logger` records the signal and noise
coefficients and the train and test accuracies (Cao et al.'s decomposition of the filters into
signal learning and noise memorization, ``METHODS.md`` §6).

References
----------
Yang, Liang, Guo, Wu, Wang, arXiv:2301.00335; Cao, Chen, Belkin, Gu, NeurIPS 2022.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustlaw._validation import derived_seed
from robustlaw.empirical.data import two_patch_data
from robustlaw.empirical.modules import ModuleEnsemble, TwoPatchNet, init_module_ensemble
from robustlaw.empirical.training import (
    SGD,
    CrossEntropy,
    Logistic,
    MaxSteps,
    TrainOptions,
    TrainResult,
    prepare_targets,
    train_accuracy,
    train_ensemble,
)
from robustlaw.experiments.random_pruning_generalization.record import (
    RandomPruningGeneralizationRecord,
)
from robustlaw.experiments.random_pruning_generalization.settings import (
    RandomPruningGeneralizationSettings,
)
from robustlaw.experiments.registry import WorkUnit

__all__ = ["MASK_STREAM", "Logger", "Member", "SeedData", "TrainedUnit", "build_ensemble",
           "measure", "member_grid", "random_masks", "seed_data", "train_options", "train_unit",
           "unit_records"]  # fmt: skip

Settings = RandomPruningGeneralizationSettings

_SETTINGS_COLUMNS = ("n_samples", "n_test", "patch_dim", "filters_per_class", "n_classes",
                     "mu_norm", "sigma_p", "init_std", "lr", "activation")  # fmt: skip

MASK_STREAM = 0x6D61736B
"""The :func:`~robustlaw._validation.derived_seed` stream of the mask uniforms (the weights'
initialization uses stream 0)."""


@dataclass(frozen=True)
class Member:
    """One network: its pruning fraction ``p`` and its seed."""

    pruning_fraction: float
    seed: int


@dataclass(frozen=True, kw_only=True, eq=False)
class SeedData:
    """One seed's data (first ``n`` examples train, the next ``n_test`` test).

    Attributes
    ----------
    X, X_test : torch.Tensor
        Inputs ``[x1, x2]``, shapes ``(n, 2 d)`` and ``(n_test, 2 d)``.
    y, y_test : torch.Tensor
        Labels: float ±1 (binary) or int64 classes.
    classes : torch.Tensor
        int64 class index of each training example (binary: 0 for -1, 1 for +1), ``(n,)``.
    signals : torch.Tensor
        The signal of each class as the network's filters see it, ``(n_classes, d)``: binary
        ``[-mu, mu]``, else ``mu_k``.
    noise : torch.Tensor
        The training examples' noise patches ``xi_i``, ``(n, d)``.
    """

    X: torch.Tensor
    y: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: torch.Tensor
    signals: torch.Tensor
    noise: torch.Tensor


def member_grid(settings: Settings) -> tuple[Member, ...]:
    """Every ``(p, seed)`` pair, ``p`` major."""
    return tuple(Member(p, s) for p in settings.pruning_fractions for s in settings.seeds)


def seed_data(settings: Settings, seed: int, *, device: str = "cpu") -> SeedData:
    """Draw ``n + n_test`` two-patch examples with ``seed`` and split them into train and test.

    One draw keeps train and test on the same signal ``mu`` whatever ``mu_kind`` is.
    """
    n = settings.n_samples
    data = two_patch_data(
        n + settings.n_test, settings.patch_dim, settings.mu_norm, settings.sigma_p,
        settings.noise_orthogonal, settings.mu_kind, settings.n_classes, seed,
        dtype=getattr(torch, settings.dtype), device=device,
    )  # fmt: skip
    mu = data.extras["mu"]
    binary = settings.n_classes == 2
    return SeedData(
        X=data.X[:n],
        y=data.y[:n],
        X_test=data.X[n:],
        y_test=data.y[n:],
        classes=((data.y[:n] + 1) / 2).long() if binary else data.y[:n],
        signals=torch.cat([-mu, mu]) if binary else mu,
        noise=data.extras["noise"][:n],
    )


def random_masks(settings: Settings, members: tuple[Member, ...]) -> torch.Tensor:
    """I.i.d. Bernoulli(``1 - p``) masks of the filters, nested across ``p`` within a seed.

    Seed ``s`` draws one uniform ``u`` per first-layer weight (its own generator, stream
    :data:`MASK_STREAM`); member ``(p, s)`` keeps the weights with ``u >= p``.

    Returns
    -------
    torch.Tensor
        bool, shape ``(n_members, n_classes * m, d)``.
    """
    shape = (settings.n_classes * settings.filters_per_class, settings.patch_dim)
    uniforms = {
        s: torch.rand(shape, generator=torch.Generator().manual_seed(derived_seed(s, MASK_STREAM)),
                      dtype=torch.float64)
        for s in {m.seed for m in members}
    }  # fmt: skip
    return torch.stack([uniforms[m.seed] >= m.pruning_fraction for m in members])


def build_ensemble(
    settings: Settings, members: tuple[Member, ...], *, device: str = "cpu"
) -> ModuleEnsemble:
    """The members' networks at initialization, masked (pruned entries zero)."""
    net = TwoPatchNet(settings.patch_dim, settings.filters_per_class, settings.n_classes,
                      settings.activation, settings.q)  # fmt: skip
    ens = init_module_ensemble(net, [m.seed for m in members], init="normal",
                               init_std=settings.init_std, dtype=getattr(torch, settings.dtype),
                               device=device)  # fmt: skip
    return ens.with_masks({"weight": random_masks(settings, members).to(device)})


def train_options(settings: Settings) -> TrainOptions:
    """Full-batch GD with step ``eta`` for ``n_steps`` steps, checked every ``log_every``."""
    loss = Logistic() if settings.n_classes == 2 else CrossEntropy()
    return TrainOptions(optimizer=SGD(lr=settings.lr), loss=loss, stopping=MaxSteps(),
                        max_steps=settings.n_steps, check_every=settings.log_every)  # fmt: skip


class Logger:
    """The ``on_check`` callback: coefficients and accuracies of every member at each check.

    Parameters
    ----------
    ens : ModuleEnsemble
        The ensemble being trained (its ``apply`` and masks).
    data : sequence of SeedData
        Each member's data, in ensemble order.
    loss : Loss
        The training loss (to prepare the targets for :func:`train_accuracy`).
    """

    def __init__(self, ens: ModuleEnsemble, data, loss) -> None:
        n_classes = ens.base.n_classes
        self.ens, self.n_classes = ens, n_classes
        self.X = torch.stack([d.X for d in data])
        self.X_test = torch.stack([d.X_test for d in data])
        shape = {"n_members": len(data), "n_outputs": 1 if n_classes == 2 else n_classes}
        self.y = prepare_targets(torch.stack([d.y for d in data]), loss,
                                 n_samples=self.X.shape[1], **shape)  # fmt: skip
        self.y_test = prepare_targets(torch.stack([d.y_test for d in data]), loss,
                                      n_samples=self.X_test.shape[1], **shape)  # fmt: skip
        self.classes = torch.stack([d.classes for d in data])
        self.signals = torch.stack([d.signals for d in data])
        self.noise = torch.stack([d.noise for d in data])
        self.steps: list[int] = []
        self.rows: dict[str, list[np.ndarray]] = {
            name: []
            for name in ("signal_coefficient", "noise_coefficient", "train_accuracy",
                         "test_accuracy")
        }  # fmt: skip

    def __call__(self, step: int, params: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            k, rows, d = params["weight"].shape
            w = params["weight"].reshape(k, self.n_classes, rows // self.n_classes, d)
            signal = torch.einsum("kcrd,kcd->kcr", w, self.signals).amax(-1).mean(-1)
            every = torch.einsum("kcrd,knd->kncr", w, self.noise).amax(-1)  # (k, n, classes)
            noise = every.gather(2, self.classes.unsqueeze(-1)).squeeze(-1).mean(-1)
            train = train_accuracy(self.ens.apply(params, self.X), self.y)
            test = train_accuracy(self.ens.apply(params, self.X_test), self.y_test)
        self.steps.append(step)
        for name, value in (("signal_coefficient", signal), ("noise_coefficient", noise),
                            ("train_accuracy", train), ("test_accuracy", test)):  # fmt: skip
            self.rows[name].append(value.double().cpu().numpy())


def _mask_statistics(masks: torch.Tensor, data, n_classes: int) -> dict[str, torch.Tensor]:
    """Per member: kept weights, density, signal-keeping filters, classes without one, and the
    masked noise norm (the record's fields, one value per member)."""
    k, rows, d = masks.shape
    per_class = masks.reshape(k, n_classes, rows // n_classes, d)
    support = torch.stack([dd.signals != 0 for dd in data])  # (k, c, d)
    keeps = (per_class | ~support.unsqueeze(2)).all(-1)  # (k, c, m): whole support kept
    noise_sq = torch.stack([(dd.noise.double() ** 2).sum(0) for dd in data])  # (k, d)
    n = data[0].noise.shape[0]
    masked = (noise_sq * masks.double().sum(1)).sum(-1) / (n * rows)
    kept = masks.flatten(1).sum(1)
    return {
        "kept_weights": kept,
        "density": kept.double() / masks[0].numel(),
        "signal_neurons": keeps.sum((1, 2)),
        "classes_without_signal": (~keeps.any(-1)).sum(-1),
        "masked_noise_norm_sq": masked,
    }


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainedUnit:
    """The unit after training: its members, their data, the trained ensemble and the log.

    Attributes
    ----------
    members : tuple of Member
        In ensemble order.
    data : tuple of SeedData
        Each member's data (members of one seed share it).
    initial, trained : ModuleEnsemble
        The masked networks at initialization and after ``n_steps`` steps.
    result : TrainResult
        The trainer's record; ``result.history`` is the training loss at each logged step.
    log : Logger
        The coefficients and accuracies at each logged step.
    """

    members: tuple[Member, ...]
    data: tuple[SeedData, ...]
    initial: ModuleEnsemble
    trained: ModuleEnsemble
    result: TrainResult
    log: Logger


def train_unit(settings: Settings, *, device: str = "cpu") -> TrainedUnit:
    """Draw, prune and train every ``(p, seed)`` member as one ensemble, logging as it goes."""
    members = member_grid(settings)
    by_seed = {s: seed_data(settings, s, device=device) for s in settings.seeds}
    data = tuple(by_seed[m.seed] for m in members)
    ens = build_ensemble(settings, members, device=device)
    options = train_options(settings)
    log = Logger(ens, data, options.loss)
    result = train_ensemble(ens, log.X, torch.stack([d.y for d in data]), options, on_check=log)
    if list(result.history_steps) != log.steps:
        raise RuntimeError("the trainer's checks and the logged steps disagree")
    return TrainedUnit(members=members, data=data, initial=ens, trained=result.to_ensemble(ens),
                       result=result, log=log)  # fmt: skip


def unit_records(settings: Settings, run: TrainedUnit) -> list[RandomPruningGeneralizationRecord]:
    """One record per member and logged step, step major."""
    masks = run.initial.masks["weight"]
    per_member = _mask_statistics(masks, run.data, settings.n_classes)
    per_step = dict(run.log.rows, train_loss=list(run.result.history))
    fixed = {name: getattr(settings, name) for name in _SETTINGS_COLUMNS}
    last = len(run.log.steps) - 1
    return [
        RandomPruningGeneralizationRecord(
            pruning_fraction=m.pruning_fraction,
            seed=m.seed,
            step=int(step),
            final=t == last,
            prunable_weights=masks[0].numel(),
            q=settings.power,
            **{name: values[i].item() for name, values in per_member.items()},
            **{name: float(values[t][i]) for name, values in per_step.items()},
            **fixed,
        )
        for t, step in enumerate(run.log.steps)
        for i, m in enumerate(run.members)
    ]


def measure(
    settings: Settings, unit: WorkUnit, *, device: str = "cpu", progress: bool = False
) -> list[RandomPruningGeneralizationRecord]:
    """Prune, train and log every member (``progress`` is unused)."""
    return unit_records(settings, train_unit(settings, device=device))
