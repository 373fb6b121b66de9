"""The batched training loop behind :func:`robustlaw.empirical.training.train_params`.

Internal: inputs arrive validated. One :class:`Trainer` runs the steps, the per-member stopping
checks, minibatch order and gradient noise (each from per-member generators), and returns a
:class:`LoopOutput` that the public function turns into a ``TrainResult``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from robustlaw._validation import derived_seed
from robustlaw.empirical.training._leaves import CompressedLeaves, DenseLeaves
from robustlaw.empirical.training.options import TrainOptions
from robustlaw.empirical.training.stopping import CheckPass, train_accuracy

__all__ = ["DIVERGENCE_FACTOR", "LoopOutput", "Trainer", "TrainingData", "zero_pruned"]

logger = logging.getLogger(__name__)

Params = dict[str, torch.Tensor]
_SHUFFLE_STREAM, _NOISE_STREAM = 10_007, 20_011

#: A member has diverged when its training loss at a check is NaN or infinite, or exceeds
#: ``DIVERGENCE_FACTOR`` times its loss at the first check (an initial loss below 1 counts as
#: 1, so a member that starts almost fitted is not flagged for a small rise). Diverged members
#: are frozen like finished ones and reported in ``TrainRecord.diverged``.
DIVERGENCE_FACTOR = 1e6


@dataclass(frozen=True, kw_only=True)
class TrainingData:
    """The training set as the loop sees it.

    Attributes
    ----------
    inputs : torch.Tensor
        Shared ``(n_samples, *example_shape)`` or per member with a leading K.
    targets : torch.Tensor
        As returned by :func:`robustlaw.empirical.training.losses.prepare_targets`.
    inputs_per_member, targets_per_member : bool
        Whether ``inputs`` and ``targets`` have a leading member axis.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    inputs_per_member: bool
    targets_per_member: bool

    @property
    def n_samples(self) -> int:
        """The number of training examples."""
        return self.inputs.shape[1 if self.inputs_per_member else 0]

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's batch ``(inputs, targets)`` for per-member indices ``(K, batch)``."""
        return (
            _take(self.inputs, idx, self.inputs_per_member),
            _take(self.targets, idx, self.targets_per_member),
        )


class LoopOutput(NamedTuple):
    """What one training run produced (arrays of shape ``(n_members,)`` unless stated)."""

    params: Params
    n_steps: np.ndarray
    final_loss: np.ndarray
    fit_fraction: np.ndarray
    rule_met: np.ndarray
    diverged: np.ndarray
    snapshots: dict[int, Params]
    history: np.ndarray
    history_steps: np.ndarray


def _member_generators(seeds: Sequence[int], stream: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(derived_seed(s, stream)) for s in seeds]


class _Batches:
    """Per-member minibatch indices: a fresh permutation per member and epoch."""

    def __init__(self, seeds: Sequence[int], n_samples: int, batch_size: int, device) -> None:
        self.generators = _member_generators(seeds, _SHUFFLE_STREAM)
        self.n_samples, self.device = n_samples, device
        self.batch_size = min(batch_size, n_samples)
        self.per_epoch = n_samples // self.batch_size
        self.permutation: torch.Tensor | None = None

    def indices(self, step: int) -> torch.Tensor:
        j = step % self.per_epoch
        if j == 0:
            perms = [torch.randperm(self.n_samples, generator=g) for g in self.generators]
            self.permutation = torch.stack(perms).to(self.device)
        return self.permutation[:, j * self.batch_size : (j + 1) * self.batch_size]


def _take(t: torch.Tensor, idx: torch.Tensor, per_member: bool) -> torch.Tensor:
    if per_member:
        return t[torch.arange(idx.shape[0], device=idx.device).unsqueeze(1), idx]
    return t[idx]


def zero_pruned(tensors: Params, masks: Params) -> None:
    """Zero the entries of ``tensors`` at pruned positions (in place)."""
    with torch.no_grad():
        for k, m in masks.items():
            if k in tensors:
                tensors[k].mul_(m)


class Trainer:
    """The training loop's state, built by :func:`robustlaw.empirical.training.train_params`.

    Parameters
    ----------
    store : DenseLeaves or CompressedLeaves
        The leaves to update, the masks still to apply to their gradients, the parameters in
        their own shapes and the model's outputs.
    data : TrainingData
        The training set.
    options : TrainOptions
        The parts and settings.
    seeds : sequence of int
        One per member: minibatch order and gradient noise.
    lr : torch.Tensor
        Per-member learning rates, shape ``(K,)``.
    on_check : callable or None
        ``on_check(step, params)`` at every stopping check.
    """

    def __init__(
        self,
        *,
        store: DenseLeaves | CompressedLeaves,
        data: TrainingData,
        options: TrainOptions,
        seeds: Sequence[int],
        lr: torch.Tensor,
        on_check: Callable[[int, Params], None] | None,
    ) -> None:
        self.store, self.data, self.options = store, data, options
        self.lr, self.on_check = lr, on_check
        n = data.n_samples
        self.leaves, self.masks = store.leaves, store.masks  # what autograd and the optimizer see
        self.loss, self.rule, self.penalty = options.loss, options.stopping, options.penalty
        self.penalty_state = None if self.penalty is None else self.penalty.init(self.params)
        self.optimizer = options.optimizer
        self.optimizer_state = self.optimizer.init(self.leaves)
        self.constraint = options.constraint  # THEORY §7.2: a projection after every step
        self.constraint_state = (
            None if self.constraint is None else self.constraint.init(self.params)
        )
        k = len(seeds)
        self.active = torch.ones(k, dtype=torch.bool, device=lr.device)
        self.met = torch.zeros(k, dtype=torch.bool, device=lr.device)
        self.diverged = torch.zeros(k, dtype=torch.bool, device=lr.device)
        self.divergence_threshold: torch.Tensor | None = None
        self.n_steps = torch.zeros(k, dtype=torch.int64, device=lr.device)
        self.history: list[torch.Tensor] = []
        self.history_steps: list[int] = []
        self.accuracy_history: list[torch.Tensor] = []  # the last history_window checks only
        self.snapshots: dict[int, Params] = {}
        self.batches = None
        if options.batch_size is not None:
            self.batches = _Batches(seeds, n, options.batch_size, lr.device)
        self.check_every = options.check_every or (self.batches.per_epoch if self.batches else 1)
        self.noise = options.gradient_noise
        self.noise_generators = _member_generators(seeds, _NOISE_STREAM) if self.noise else []
        self.noise_shapes = {k: v.shape[1:] for k, v in self.params.items()} if self.noise else {}
        self.step_masks: Params | None = None
        self.last_check: CheckPass | None = None

    @property
    def params(self) -> Params:
        """The parameters in their own shapes."""
        return self.store.params()

    def _export(self) -> Params:
        """A contiguous copy of the parameters."""
        return {
            k: v.detach().clone(memory_format=torch.contiguous_format)
            for k, v in self.params.items()
        }

    def _check(self, step: int, outputs: torch.Tensor, final: bool = False) -> None:
        targets = self.data.targets
        per_example = self.loss.per_example(outputs, targets)
        self.history.append(per_example.mean(dim=1).to(torch.float64))
        self.history_steps.append(step)
        window = self.rule.history_window
        if self.rule.uses_accuracy:
            self.accuracy_history.append(train_accuracy(outputs, targets))
            del self.accuracy_history[:-window]
        check = CheckPass(
            outputs=outputs,
            targets=targets,
            per_example=per_example,
            fitted=per_example <= self.loss.fit_margin,
            final=final,
            history=torch.stack(self.history[-window:]),
            accuracy_history=(
                torch.stack(self.accuracy_history) if self.rule.uses_accuracy else None
            ),
        )
        self._check_divergence(step, self.history[-1])
        done = self.rule(check) & ~self.diverged
        self.met |= done
        if bool((done & self.active).any()):
            self.active &= ~done
            self.step_masks = None
        self.last_check = check
        if self.on_check is not None:
            self.on_check(step, {k: v.detach() for k, v in self.params.items()})

    def _check_divergence(self, step: int, loss: torch.Tensor) -> None:
        """Flag and freeze active members whose loss is non-finite or exploded."""
        if self.divergence_threshold is None:
            self.divergence_threshold = DIVERGENCE_FACTOR * loss.clamp(min=1.0)
        new = self.active & (~torch.isfinite(loss) | (loss > self.divergence_threshold))
        if bool(new.any()):
            self.diverged |= new
            self.active &= ~new
            self.step_masks = None
            members = torch.nonzero(new).flatten().tolist()
            logger.warning(
                "members %s diverged at step %d (training loss %s, above %g times the initial "
                "loss or not finite); they are frozen: lower the learning rate",
                members,
                step,
                loss[new].tolist(),
                DIVERGENCE_FACTOR,
            )

    def _full_pass(self) -> torch.Tensor:
        with torch.no_grad():
            return self.store.apply(self.data.inputs)

    def _objective(self, inputs: torch.Tensor, targets: torch.Tensor, outputs) -> torch.Tensor:
        """Sum over members of the mean loss (plus the penalty, if any)."""
        total = self.loss.per_example(outputs, targets).mean(dim=1).sum()
        if self.penalty is not None:
            if self.penalty_state is None:
                value = self.penalty(self.params, inputs, outputs)
            else:
                value = self.penalty(
                    self.params, inputs, outputs, state=self.penalty_state, targets=targets
                )
            total = total + value.sum()
        return total

    def run(self) -> LoopOutput:
        """Train until every member is done or the step cap is reached."""
        max_steps, snapshot_steps = self.options.max_steps, self.options.snapshot_steps
        step = 0
        for step in range(max_steps):
            if step in snapshot_steps:
                self.snapshots[step] = self._export()
            due = step % self.check_every == 0
            if self.batches is None:
                inputs, targets = self.data.inputs, self.data.targets
                outputs = self.store.apply(inputs)
                if due:
                    self._check(step, outputs.detach())
            else:
                if due:
                    self._check(step, self._full_pass())
                inputs, targets = self.data.take(self.batches.indices(step))
                outputs = self.store.apply(inputs)
            if not bool(self.active.any()):
                break
            total = self._objective(inputs, targets, outputs)
            grads = torch.autograd.grad(total, list(self.leaves.values()))
            grads = dict(zip(self.leaves, grads, strict=True))
            self._add_noise(grads)
            with torch.no_grad():
                self._update(grads)
            self.n_steps += self.active
        else:
            step = max_steps
        if not self.history_steps or self.history_steps[-1] != step:  # else: stopped at a check
            self._check(step, self._full_pass(), final=True)
        final = self._export()
        for s in snapshot_steps:
            self.snapshots.setdefault(s, final)
        check = self.last_check
        return LoopOutput(
            params={k: v.detach().contiguous() for k, v in self.params.items()},
            n_steps=self.n_steps.cpu().numpy(),
            final_loss=check.member_loss.to(torch.float64).cpu().numpy(),
            fit_fraction=check.fitted.to(torch.float64).mean(dim=1).cpu().numpy(),
            rule_met=self.met.cpu().numpy(),
            diverged=self.diverged.cpu().numpy(),
            snapshots=dict(sorted(self.snapshots.items())),
            history=torch.stack(self.history).cpu().numpy(),
            history_steps=np.asarray(self.history_steps, dtype=np.int64),
        )

    def _update(self, grads: Params) -> None:
        """Zero the gradients of pruned entries and inactive members, then step.

        Pruned entries then have zero gradient and (fresh, zero) optimizer state that stays
        exactly zero, so every optimizer leaves them at exactly zero: nothing can revive them.
        """
        if self.step_masks is None:  # the active members changed: refresh the gradient masks
            everyone = bool(self.active.all())
            self.step_masks = {
                k: (
                    (self.masks[k] if k in self.masks else torch.ones_like(g, dtype=torch.bool))
                    & self.active.reshape((-1,) + (1,) * (g.ndim - 1))
                ).to(g.dtype)  # float masks: multiplying by a bool tensor converts it each time
                for k, g in grads.items()
                if k in self.masks or not everyone
            }
        if bool(self.diverged.any()):  # NaN or inf times a zero mask is NaN: replace them
            grads.update(
                (k, torch.where(self.diverged.reshape((-1,) + (1,) * (g.ndim - 1)), 0.0, g))
                for k, g in grads.items()
            )
        zero_pruned(grads, self.step_masks)
        self.optimizer.step(self.leaves, grads, self.optimizer_state, self.lr, self.active)
        if self.constraint is not None:  # THEORY §7.2: project right after the step
            self.constraint.project(self.params, self.constraint_state, self.active)

    def _add_noise(self, grads: Params) -> None:
        if self.noise is None:
            return
        shapes = self.noise_shapes
        for k, g in grads.items():
            shape = shapes[k]  # drawn in the parameter's shape, however the leaf stores it
            noise = torch.stack(
                [
                    self.noise.draw(shape, generator=gen, dtype=g.dtype)
                    for gen in self.noise_generators
                ]
            )
            grads[k] = g + self.store.to_leaf(k, noise.to(g.device))
