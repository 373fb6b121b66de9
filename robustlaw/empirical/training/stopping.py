"""Per-member stopping rules for batched training.

A rule looks at one full pass over the training set (a :class:`CheckPass`) and returns a
boolean ``(n_members,)`` tensor: ``True`` for members that are done. Done members stop changing
(their updates are multiplied by an ``active`` flag, METHODS.md §7); training ends when every
member is done or the step cap is reached.

Registry :data:`STOPPING_RULES`:

``"max-steps"`` (:class:`MaxSteps`)
    Never done early; met once the step cap is reached.
``"below-noise"`` (:class:`BelowNoise`)
    Fit below the noise level, THEORY.md §1.1: the mean squared error of the outputs clipped to
    ``[-1, 1]`` is at most ``noise_level - eps``.
``"memorized"`` (:class:`Memorized`)
    Every training example is fitted: per-example loss at most the loss's ``fit_margin``.
``"converged"`` (:class:`Converged`)
    The train loss moved by at most ``tol`` over the last ``window`` checks.
``"accuracy-plateau"`` (:class:`AccuracyPlateau`)
    The train accuracy (:func:`train_accuracy`) did not change over the last ``epochs`` checks
    (No Free Prune Fig. 1b: three epochs).
``"any-of"`` (:class:`AnyOf`)
    Any of its rules is done (per member); No Free Prune Fig. 1b stops on
    ``AnyOf(rules=(Converged(tol=0.01, ...), AccuracyPlateau(epochs=3)))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from robustlaw._validation import check_integer, check_interval
from robustlaw.empirical.training._parts import resolve_part
from robustlaw.errors import ValidationError

__all__ = [
    "STOPPING_RULES",
    "AccuracyPlateau",
    "AnyOf",
    "BelowNoise",
    "CheckPass",
    "Converged",
    "MaxSteps",
    "Memorized",
    "StoppingRule",
    "resolve_stopping",
    "train_accuracy",
]


def train_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Share of examples each member predicts correctly, shape ``(n_members,)`` (float64).

    The prediction is the argmax of the outputs for class-index targets (cross-entropy); for
    real targets with one output (logistic, or MSE on ±1 labels) it is correct when output and
    target have the same strict sign (an output of exactly 0 is wrong); for real targets with
    several outputs (MSE on one-hot rows) it is correct when both argmaxes agree. The value is
    ``k / n`` with ``k`` an exact count, so equal counts give equal values.

    Parameters
    ----------
    outputs : torch.Tensor
        Shape ``(n_members, n_samples, n_outputs)``.
    targets : torch.Tensor
        As returned by :func:`robustlaw.empirical.training.losses.prepare_targets`: int64 class
        indices ``(n_samples,)`` or ``(n_members, n_samples)``, or real values
        ``(n_samples, n_outputs)`` or ``(n_members, n_samples, n_outputs)``.

    Returns
    -------
    torch.Tensor
        Accuracy in [0, 1] per member.

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[[0.5], [-2.0], [0.0]]])
    >>> train_accuracy(out, torch.tensor([[1.0], [1.0], [-1.0]])).tolist()
    [0.3333333333333333]
    >>> train_accuracy(torch.tensor([[[0.0, 1.0], [3.0, 1.0]]]), torch.tensor([1, 1])).tolist()
    [0.5]
    """
    if not targets.is_floating_point():
        correct = outputs.argmax(dim=-1) == targets
    elif outputs.shape[-1] == 1:
        correct = (outputs * targets > 0).squeeze(-1)
    else:
        correct = outputs.argmax(dim=-1) == targets.argmax(dim=-1)
    return correct.expand(outputs.shape[:-1]).to(torch.float64).mean(dim=1)


@dataclass(frozen=True, kw_only=True)
class CheckPass:
    """One evaluation of every member on its whole training set.

    Attributes
    ----------
    outputs : torch.Tensor
        Shape ``(n_members, n_samples, n_outputs)``.
    targets : torch.Tensor
        Targets as returned by :func:`robustlaw.empirical.training.losses.prepare_targets`.
    per_example : torch.Tensor
        Loss per example, shape ``(n_members, n_samples)``.
    fitted : torch.Tensor
        Boolean ``(n_members, n_samples)``: per-example loss at most the loss's margin.
    history : torch.Tensor
        Member losses at the most recent checks (at most the rule's ``history_window``), shape
        ``(n_checks_kept, n_members)``, this pass last.
    final : bool
        Whether this is the pass after the last step (the step cap is reached).
    accuracy_history : torch.Tensor or None
        Member train accuracies (:func:`train_accuracy`) at the same checks as ``history``,
        same shape, float64; None where they are not tracked (the training loop tracks them
        for rules with ``uses_accuracy``).
    """

    outputs: torch.Tensor
    targets: torch.Tensor
    per_example: torch.Tensor
    fitted: torch.Tensor
    history: torch.Tensor
    final: bool = False
    accuracy_history: torch.Tensor | None = None

    @property
    def member_loss(self) -> torch.Tensor:
        """Mean loss of each member, shape ``(n_members,)``."""
        return self.per_example.mean(dim=1)


class StoppingRule:
    """Base of the stopping parts: ``rule(check) -> done``, a boolean ``(n_members,)`` tensor.

    Subclasses are frozen keyword-only dataclasses with a class attribute ``name`` (the
    registry key). ``history_window`` is how many recent checks the rule reads from
    ``check.history``; ``needs_real_outputs`` refuses losses on class indices;
    ``uses_accuracy`` makes the training loop fill ``check.accuracy_history``.
    """

    name: ClassVar[str]
    needs_real_outputs: ClassVar[bool] = False
    uses_accuracy: ClassVar[bool] = False

    @property
    def history_window(self) -> int:
        """The number of recent checks kept in ``CheckPass.history``."""
        return 1

    def __call__(self, check: CheckPass) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class MaxSteps(StoppingRule):
    """Train to the step cap; the rule counts as met once the cap is reached.

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(2, 3, 1)
    >>> MaxSteps()(CheckPass(outputs=z, targets=z[0], per_example=z[..., 0],
    ...                      fitted=z[..., 0] > 0, history=z[:1, :, 0], final=True)).tolist()
    [True, True]
    """

    name: ClassVar[str] = "max-steps"

    def __call__(self, check: CheckPass) -> torch.Tensor:
        n_members = check.outputs.shape[0]
        device = check.outputs.device
        return torch.full((n_members,), check.final, dtype=torch.bool, device=device)


@dataclass(frozen=True, kw_only=True)
class BelowNoise(StoppingRule):
    """Done once the clipped training MSE is at most ``noise_level - eps`` (THEORY.md §1.1).

    Parameters
    ----------
    noise_level : float
        sigma^2, the variance of the label noise (squared output units).
    eps : float
        How far below the noise level the clipped MSE must go (squared output units).

    Examples
    --------
    >>> import torch
    >>> out = torch.tensor([[[0.9], [2.0]]])  # clipped to [0.9, 1.0]
    >>> y = torch.ones(2, 1)
    >>> BelowNoise(noise_level=1.0, eps=0.5)(CheckPass(outputs=out, targets=y,
    ...     per_example=out[..., 0], fitted=out[..., 0] > 0, history=out[:, :1, 0])).tolist()
    [True]
    """

    name: ClassVar[str] = "below-noise"
    needs_real_outputs: ClassVar[bool] = True
    noise_level: float = 1.0
    eps: float = 0.1

    def __post_init__(self) -> None:
        check_interval(
            self.noise_level, "BelowNoise.noise_level", 0, math.inf, closed="left", scalar=True
        )
        check_interval(self.eps, "BelowNoise.eps", 0, math.inf, closed="left", scalar=True)

    def __call__(self, check: CheckPass) -> torch.Tensor:
        err = (check.outputs.clamp(-1.0, 1.0) - check.targets).square()
        mse = err.flatten(1).mean(dim=1)
        return mse <= self.noise_level - self.eps


@dataclass(frozen=True, kw_only=True)
class Memorized(StoppingRule):
    """Done once every training example is fitted (loss at most the loss's ``fit_margin``).

    Examples
    --------
    >>> import torch
    >>> fitted = torch.tensor([[True, True], [True, False]])
    >>> z = torch.zeros(2, 2, 1)
    >>> Memorized()(CheckPass(outputs=z, targets=z[0], per_example=z[..., 0],
    ...                       fitted=fitted, history=z[:1, :, 0])).tolist()
    [True, False]
    """

    name: ClassVar[str] = "memorized"

    def __call__(self, check: CheckPass) -> torch.Tensor:
        return check.fitted.all(dim=1)


@dataclass(frozen=True, kw_only=True)
class Converged(StoppingRule):
    """Done once the member's train loss moved by at most ``tol`` over ``window`` checks.

    Parameters
    ----------
    tol : float
        Largest loss range over the window (loss units: nats or squared error).
    window : int
        The number of checks the window spans (at least 1).

    Examples
    --------
    >>> import torch
    >>> h = torch.tensor([[1.0, 1.0], [1.0, 0.5]])
    >>> z = torch.zeros(2, 1, 1)
    >>> Converged(tol=1e-3, window=2)(CheckPass(outputs=z, targets=z[0],
    ...     per_example=z[..., 0], fitted=z[..., 0] > 0, history=h)).tolist()
    [True, False]
    """

    name: ClassVar[str] = "converged"
    tol: float = 1e-4
    window: int = 10

    def __post_init__(self) -> None:
        check_interval(self.tol, "Converged.tol", 0, math.inf, closed="left", scalar=True)
        check_integer(self.window, "Converged.window", minimum=1)

    @property
    def history_window(self) -> int:
        return self.window

    def __call__(self, check: CheckPass) -> torch.Tensor:
        h = check.history
        if h.shape[0] < self.window:
            return torch.zeros(h.shape[1], dtype=torch.bool, device=h.device)
        last = h[-self.window :]
        return (last.max(dim=0).values - last.min(dim=0).values) <= self.tol


@dataclass(frozen=True, kw_only=True)
class AccuracyPlateau(StoppingRule):
    """Done once the member's train accuracy is unchanged for ``epochs`` consecutive checks.

    The accuracy (:func:`train_accuracy`: share of examples predicted correctly) must be
    identical at the last ``epochs + 1`` checks, i.e. no check among the last ``epochs``
    changed it; any change restarts the count. With minibatches the loop checks once per epoch
    (unless ``TrainOptions.check_every`` says otherwise), so checks are epochs and the default
    is No Free Prune's "accuracy unchanged for 3 consecutive epochs" (Kumar, Luo, Sellke,
    ICML 2024, arXiv:2402.01089, §4, Fig. 1b; THEORY.md §6.2). Full batch, the checks are
    ``check_every`` steps apart (every step by default). The paper stops at this rule *or*
    when the loss converges to within 0.01 (:class:`Converged`).

    Parameters
    ----------
    epochs : int
        The number of consecutive checks (epochs, with minibatches) without a change in
        accuracy (at least 1).

    Examples
    --------
    >>> import torch
    >>> acc = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.5, 0.7], [0.5, 0.7]])  # (checks, K)
    >>> z = torch.zeros(2, 1, 1)
    >>> AccuracyPlateau(epochs=3)(CheckPass(outputs=z, targets=z[0], per_example=z[..., 0],
    ...     fitted=z[..., 0] > 0, history=acc, accuracy_history=acc)).tolist()
    [True, False]
    """

    name: ClassVar[str] = "accuracy-plateau"
    uses_accuracy: ClassVar[bool] = True
    epochs: int = 3

    def __post_init__(self) -> None:
        check_integer(self.epochs, "AccuracyPlateau.epochs", minimum=1)

    @property
    def history_window(self) -> int:
        return self.epochs + 1

    def __call__(self, check: CheckPass) -> torch.Tensor:
        h = check.accuracy_history
        if h is None:
            raise ValidationError(
                "AccuracyPlateau needs CheckPass.accuracy_history (the train accuracy at recent "
                "checks); build the CheckPass with it"
            )
        if h.shape[0] < self.history_window:
            return torch.zeros(h.shape[1], dtype=torch.bool, device=h.device)
        last = h[-self.history_window :]
        return (last == last[-1]).all(dim=0)


@dataclass(frozen=True, kw_only=True)
class AnyOf(StoppingRule):
    """Done for a member once any of ``rules`` is done for it (elementwise OR).

    Each rule sees the same :class:`CheckPass`; the composite keeps the longest history any
    rule reads (``history_window`` is the maximum over the rules), tracks train accuracy if
    any rule uses it, and needs real-valued outputs if any rule does. No Free Prune Fig. 1b
    stops when the loss converged to within 0.01 or the train accuracy is unchanged for three
    epochs (Kumar, Luo, Sellke, ICML 2024, arXiv:2402.01089, §4):
    ``AnyOf(rules=(Converged(tol=0.01, window=...), AccuracyPlateau(epochs=3)))``.

    Parameters
    ----------
    rules : tuple of StoppingRule or str
        At least one rule, each a :class:`StoppingRule` (an ``AnyOf`` too) or a name in
        :data:`STOPPING_RULES` (built with its defaults). The default, ``(MaxSteps(),)``,
        trains to the step cap like :class:`MaxSteps`.

    Examples
    --------
    >>> import torch
    >>> h = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.5, 0.5]])  # loss history (checks, K)
    >>> acc = torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.7]])
    >>> z = torch.zeros(3, 1, 1)
    >>> rule = AnyOf(rules=(Converged(tol=1e-3, window=2), AccuracyPlateau(epochs=1)))
    >>> rule.history_window, rule.uses_accuracy
    (2, True)
    >>> rule(CheckPass(outputs=z, targets=z[0], per_example=z[..., 0], fitted=z[..., 0] > 0,
    ...                history=h, accuracy_history=acc)).tolist()
    [True, True, False]
    >>> AnyOf(rules=("memorized",)).rules
    (Memorized(),)
    """

    name: ClassVar[str] = "any-of"
    rules: tuple[StoppingRule | str, ...] = (MaxSteps(),)

    def __post_init__(self) -> None:
        if not isinstance(self.rules, (tuple, list)) or not self.rules:
            raise ValidationError(
                "AnyOf.rules must be a non-empty tuple of stopping rules or names in "
                f"STOPPING_RULES, got {self.rules!r}"
            )
        for rule in self.rules:
            if not isinstance(rule, (StoppingRule, str)):
                raise ValidationError(
                    "AnyOf.rules entries must be StoppingRule instances or names in "
                    f"STOPPING_RULES, got {rule!r}"
                )
        object.__setattr__(self, "rules", tuple(resolve_stopping(r) for r in self.rules))

    @property
    def history_window(self) -> int:
        return max(rule.history_window for rule in self.rules)

    @property
    def uses_accuracy(self) -> bool:
        return any(rule.uses_accuracy for rule in self.rules)

    @property
    def needs_real_outputs(self) -> bool:
        return any(rule.needs_real_outputs for rule in self.rules)

    def __call__(self, check: CheckPass) -> torch.Tensor:
        done = self.rules[0](check)
        for rule in self.rules[1:]:
            done = done | rule(check)
        return done


STOPPING_RULES: dict[str, type[StoppingRule]] = {
    cls.name: cls for cls in (MaxSteps, BelowNoise, Memorized, Converged, AccuracyPlateau, AnyOf)
}
"""Stopping parts by name."""


def resolve_stopping(stopping: StoppingRule | str) -> StoppingRule:
    """A stopping part, or the registered rule ``stopping`` with its defaults.

    Examples
    --------
    >>> resolve_stopping("below-noise")
    BelowNoise(noise_level=1.0, eps=0.1)
    """
    return resolve_part(stopping, StoppingRule, STOPPING_RULES, "stopping")
