"""The batched training loop behind :func:`robustlaw.empirical.training.train_params`.

Internal: inputs arrive validated. One :class:`Trainer` runs the steps, the per-member stopping
checks, minibatch order and gradient noise (each from per-member generators), and returns a
:class:`LoopOutput` that the public function turns into a ``TrainResult``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from robustlaw.empirical.losses import LOSSES
from robustlaw.empirical.optim import OPTIMIZERS
from robustlaw.empirical.stopping import STOPPING_RULES, CheckPass

__all__ = ["LoopOutput", "Trainer", "zero_pruned"]

Params = dict[str, torch.Tensor]
_SHUFFLE_STREAM, _NOISE_STREAM = 10_007, 20_011


class LoopOutput(NamedTuple):
    """What one training run produced (arrays of shape ``(n_members,)`` unless stated)."""

    params: Params
    n_steps: np.ndarray
    final_loss: np.ndarray
    fit_fraction: np.ndarray
    rule_met: np.ndarray
    snapshots: dict[int, Params]
    history: np.ndarray
    history_steps: np.ndarray


def _member_generators(seeds: Sequence[int], stream: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s * 1_000_003 + stream) for s in seeds]


class _Batches:
    """Per-member minibatch indices: a fresh permutation per member and epoch."""

    def __init__(self, seeds: Sequence[int], n_samples: int, batch_size: int, device) -> None:
        self.gens = _member_generators(seeds, _SHUFFLE_STREAM)
        self.n, self.b, self.device = n_samples, min(batch_size, n_samples), device
        self.per_epoch = n_samples // self.b
        self.perm: torch.Tensor | None = None

    def indices(self, step: int) -> torch.Tensor:
        j = step % self.per_epoch
        if j == 0:
            perms = [torch.randperm(self.n, generator=g) for g in self.gens]
            self.perm = torch.stack(perms).to(self.device)
        return self.perm[:, j * self.b : (j + 1) * self.b]


def _take(t: torch.Tensor, idx: torch.Tensor, per_member: bool) -> torch.Tensor:
    if per_member:
        return t[torch.arange(idx.shape[0], device=idx.device).unsqueeze(1), idx]
    return t[idx]


def _transposed_grads(apply, params: Params, x: torch.Tensor) -> frozenset[str]:
    """Names of the parameters whose gradients come out as transposed views.

    A weight used as ``w.mT`` in a batched matmul gets its gradient as the transpose of a
    contiguous product; stored transposed, its gradient is contiguous, and the element-wise
    masking and optimizer passes then read memory in order (several times faster on CPU).
    """
    grads = torch.autograd.grad(apply(params, x).sum(), list(params.values()))
    return frozenset(
        k
        for k, g in zip(params, grads, strict=True)
        if g.ndim >= 2 and not g.is_contiguous() and g.mT.is_contiguous()
    )


def _flip(t: torch.Tensor, flip: bool) -> torch.Tensor:
    return t.mT if flip else t


def zero_pruned(tensors: Params, masks: Params) -> None:
    """Zero the entries of ``tensors`` at pruned positions (in place)."""
    with torch.no_grad():
        for k, m in masks.items():
            if k in tensors:
                tensors[k].mul_(m)


class Trainer:
    """The training loop's state, built by :func:`robustlaw.empirical.training.train_params`."""

    def __init__(self, apply, params, masks, X, y, options, seeds, pmx, pmy, lr, on_check):
        self.apply, self.X, self.y = apply, X, y
        n = X.shape[1] if pmx else X.shape[0]
        self.flips = _transposed_grads(apply, params, X.narrow(1 if pmx else 0, 0, min(n, 1)))
        # the leaves autograd and the optimizer see: each parameter in its gradient's layout
        self.leaves = {
            k: v.detach().mT.contiguous().requires_grad_(True) if k in self.flips else v
            for k, v in params.items()
        }
        self.masks = {k: _flip(m, k in self.flips).contiguous() for k, m in masks.items()}
        self.o, self.seeds, self.pmx, self.pmy, self.lr = options, seeds, pmx, pmy, lr
        self.on_check = on_check
        self.loss = LOSSES[options.loss]
        self.rule = STOPPING_RULES[options.stopping]
        opt = OPTIMIZERS[options.optimizer]
        self.opt_step = opt.step
        self.state = opt.init(self.leaves, momentum=options.momentum)
        self.step_kwargs = opt.hyper(options)
        k = len(seeds)
        self.active = torch.ones(k, dtype=torch.bool, device=lr.device)
        self.met = torch.zeros(k, dtype=torch.bool, device=lr.device)
        self.n_steps = torch.zeros(k, dtype=torch.int64, device=lr.device)
        self.history: list[torch.Tensor] = []
        self.history_steps: list[int] = []
        self.snapshots: dict[int, Params] = {}
        self.batches = None
        if options.batch_size is not None:
            self.batches = _Batches(seeds, n, options.batch_size, lr.device)
        self.check_every = options.check_every or (self.batches.per_epoch if self.batches else 1)
        self.noise_gens = _member_generators(seeds, _NOISE_STREAM) if options.grad_noise_std else []
        self.step_masks: Params | None = None

    @property
    def params(self) -> Params:
        """The parameters in their own shapes: views of the leaves."""
        return {k: _flip(v, k in self.flips) for k, v in self.leaves.items()}

    def _export(self) -> Params:
        """A contiguous copy of the parameters."""
        return {
            k: v.detach().clone(memory_format=torch.contiguous_format)
            for k, v in self.params.items()
        }

    def _check(self, step: int, out: torch.Tensor, final: bool = False) -> None:
        pe = self.loss.per_example(out, self.y)
        self.history.append(pe.mean(dim=1).to(torch.float64))
        self.history_steps.append(step)
        check = CheckPass(
            outputs=out,
            targets=self.y,
            per_example=pe,
            fitted=pe <= self.o.margin,
            final=final,
            history=torch.stack(self.history[-self.o.converge_window :]),
        )
        done = self.rule(check, self.o)
        self.met |= done
        if bool((done & self.active).any()):
            self.active &= ~done
            self.step_masks = None
        self.last_check = check
        if self.on_check is not None:
            self.on_check(step, {k: v.detach() for k, v in self.params.items()})

    def _full_pass(self) -> torch.Tensor:
        with torch.no_grad():
            return self.apply(self.params, self.X)

    def run(self) -> LoopOutput:
        o = self.o
        step = 0
        for step in range(o.max_steps):
            if step in o.snapshot_steps:
                self.snapshots[step] = self._export()
            due = step % self.check_every == 0
            if self.batches is None:
                out = self.apply(self.params, self.X)
                y = self.y
                if due:
                    self._check(step, out.detach())
            else:
                if due:
                    self._check(step, self._full_pass())
                idx = self.batches.indices(step)
                out = self.apply(self.params, _take(self.X, idx, self.pmx))
                y = _take(self.y, idx, self.pmy)
            if not bool(self.active.any()):
                break
            total = self.loss.per_example(out, y).mean(dim=1).sum()
            grads = torch.autograd.grad(total, list(self.leaves.values()))
            grads = dict(zip(self.leaves, grads, strict=True))
            self._add_noise(grads)
            with torch.no_grad():
                self._update(grads)
            self.n_steps += self.active
        else:
            step = o.max_steps
        if not self.history_steps or self.history_steps[-1] != step:  # else: stopped at a check
            self._check(step, self._full_pass(), final=True)
        final = self._export()
        for s in o.snapshot_steps:
            self.snapshots.setdefault(s, final)
        check = self.last_check
        return LoopOutput(
            params={k: v.detach().contiguous() for k, v in self.params.items()},
            n_steps=self.n_steps.cpu().numpy(),
            final_loss=check.member_loss.to(torch.float64).cpu().numpy(),
            fit_fraction=check.fitted.to(torch.float64).mean(dim=1).cpu().numpy(),
            rule_met=self.met.cpu().numpy(),
            snapshots=dict(sorted(self.snapshots.items())),
            history=torch.stack(self.history).cpu().numpy(),
            history_steps=np.asarray(self.history_steps, dtype=np.int64),
        )

    def _update(self, grads: Params) -> None:
        """Zero the gradients of pruned entries and inactive members, then step.

        Pruned entries then have zero gradient and (fresh, zero) optimizer state that stays
        exactly zero, so both optimizers leave them at exactly zero: nothing can revive them.
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
        zero_pruned(grads, self.step_masks)
        self.opt_step(self.leaves, grads, self.state, self.lr, self.active, **self.step_kwargs)

    def _add_noise(self, grads: Params) -> None:
        if not self.noise_gens:
            return
        std = self.o.grad_noise_std
        for k, g in grads.items():
            shape = self.params[k].shape[1:]  # drawn in the parameter's shape, as stored or not
            noise = torch.stack(
                [torch.randn(shape, generator=gen, dtype=g.dtype) for gen in self.noise_gens]
            )
            grads[k] = g + std * _flip(noise, k in self.flips).to(g.device)
