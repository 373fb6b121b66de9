"""Scoring data for the data-using scorers (SNIP, GraSP): subsets and per-member losses.

Classification losses (cross-entropy, logistic) score on a class-balanced subset:
``samples_per_class`` examples of every class, drawn without replacement by a generator seeded
with the member's pruning seed. Regression (MSE, e.g. random ±1 labels of the Law of
Robustness setting) has no classes: the subset is a seeded uniform draw of
``2 * samples_per_class`` examples, as many as a balanced binary problem would use.
``samples_per_class=None`` scores on the whole data set, in its order, for every member.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from robustlaw._validation import check_tensor, get_registered
from robustlaw.empirical.data import Dataset
from robustlaw.empirical.pruning._architectures import architecture, n_outputs
from robustlaw.empirical.training.losses import LOSSES, prepare_targets
from robustlaw.errors import ValidationError

__all__ = ["ScoringData", "member_losses", "prepare_scoring_data"]


@dataclass(frozen=True)
class ScoringData:
    """Validated scoring data: inputs, canonical targets, loss name, member axis flag."""

    x: torch.Tensor
    y: torch.Tensor
    loss: str
    per_member: bool

    @property
    def n_samples(self) -> int:
        """The number of examples (per member)."""
        return self.x.shape[1 if self.per_member else 0]

    def members(self, idx: torch.Tensor) -> ScoringData:
        """The data of the members ``idx`` (shared data is returned as is)."""
        if not self.per_member:
            return self
        return ScoringData(self.x[idx], self.y[idx], self.loss, True)

    def indices(self, seeds: Sequence[int], samples_per_class: int | None) -> torch.Tensor:
        """Per-member example indices of shape ``(n_members, n_classes, samples_per_class)``."""
        n = self.n_samples
        if samples_per_class is None:
            return torch.arange(n).expand(len(seeds), 1, n)
        rows = []
        for k, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(seed)
            y = (self.y[k] if self.per_member else self.y).cpu()
            if self.loss == "mse":
                groups = [torch.arange(n)]
                size = 2 * samples_per_class
            else:
                labels = y.reshape(n, -1)[:, 0]
                groups = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
                size = samples_per_class
            for g in groups:
                if len(g) < size:
                    raise ValidationError(
                        f"samples_per_class={samples_per_class} asks for {size} examples of a "
                        f"group that has only {len(g)}; lower it or pass None for all data"
                    )
            rows.append(
                torch.stack([g[torch.randperm(len(g), generator=gen)[:size]] for g in groups])
            )
        try:
            return torch.stack(rows)
        except RuntimeError:
            raise ValidationError("every member's labels must contain the same classes") from None

    def gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs ``(K, B, *example)`` and targets ``(K, B, ...)`` at indices ``(K, B)``."""
        idx = idx.to(self.x.device)
        rows = torch.arange(idx.shape[0], device=idx.device).unsqueeze(1)
        if self.per_member:
            return self.x[rows, idx], self.y[rows, idx]
        return self.x[idx], self.y[idx]


def prepare_scoring_data(
    data: Dataset | tuple[torch.Tensor, torch.Tensor], *, loss: str, ensemble
) -> ScoringData:
    """Validate the data at the boundary and bring it to the parameters' dtype and device.

    ``data`` is a :class:`~robustlaw.empirical.data.Dataset` or a pair ``(X, y)``. ``X`` is
    shared ``(n_samples, *example)`` or per member ``(n_members, n_samples, *example)``, with
    the example shape ``ensemble`` takes (``(n_features,)`` for an MLP); ``y`` follows
    :func:`robustlaw.empirical.training.losses.prepare_targets`.
    """
    get_registered(LOSSES, loss, "loss")
    if isinstance(data, Dataset):
        data = (data.X, data.y)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValidationError(f"data must be a Dataset or a pair (X, y), got {type(data).__name__}")
    like = next(iter(ensemble.params.values()))
    n_members, nd = ensemble.n_members, ensemble.example_ndim
    x = check_tensor(data[0], "X", ndim=(nd + 1, nd + 2), dtype=like.dtype, device=like.device)
    architecture(ensemble).check_inputs(ensemble, x.shape, n_members)
    per_member = x.ndim == nd + 2
    n_samples = x.shape[1 if per_member else 0]
    y = check_tensor(data[1], "y", device=like.device)
    if y.is_floating_point():
        y = y.to(like.dtype)
    n_out = n_outputs(ensemble, x)
    y = prepare_targets(y, loss, n_samples=n_samples, n_members=n_members, n_outputs=n_out)
    member_axis = y.ndim == (2 if LOSSES[loss].integer_targets else 3)
    if member_axis and not per_member:
        x = x.expand(n_members, *x.shape)
        per_member = True
    elif per_member and not member_axis:
        y = y.expand(n_members, *y.shape)
    return ScoringData(x, y, loss, per_member)


def member_losses(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-member mean loss, shape ``(n_members,)``; sum it to get per-member gradients."""
    return LOSSES[loss]().per_example(out, y).mean(dim=1)
