"""The record of ``nfp-memorization``: one pruned network trained on its seed's random labels."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STOP_REASONS", "MemorizationRecord"]

STOP_REASONS = ("loss-converged", "accuracy-plateau", "step-cap", "diverged")
"""Why a member stopped: the loss rule held (checked first), the accuracy rule held, it reached
the step cap without either, or its loss blew up (frozen by the trainer)."""


@dataclass(frozen=True, kw_only=True)
class MemorizationRecord:
    """One ``(seed, method, density)`` of ``nfp-memorization`` (units in brackets).

    Attributes
    ----------
    method : str
        The pruning method.
    seed : int
        The seed: it drew the dataset and the initialization shared by every method and
        density of this seed.
    exponent : int
        ``j`` of the target density ``(1 - rate)**j``; for IMP, the level.
    target_density : float
        ``(1 - rate)**j``.
    density : float
        Achieved density: ``kept_weights / prunable_weights``. One-shot methods keep
        ``n_keep_for_density(target_density, prunable_weights)`` weights; IMP keeps ``R_j``
        with ``R_0 = prunable_weights`` and ``R_{j+1} = R_j - ceil(rate R_j)``.
    kept_weights, prunable_weights : int
        Kept and prunable weights (every weight is prunable; biases are never pruned).
    memorized_fraction : float
        Share of training examples whose loss is at most ``fit_margin``.
    fit_margin : float
        The memorization threshold [nats for cross-entropy, squared error for MSE].
    loss : str
        ``"cross-entropy"`` or ``"mse"``.
    train_loss : float
        Final mean training loss [nats or squared error].
    train_accuracy : float
        Final share of training examples classified correctly.
    n_steps : int
        Full-batch Adam steps taken.
    stop_reason : str
        One of :data:`STOP_REASONS`.
    example_losses : str
        The final loss of every training example, in the dataset's order, as a JSON list of
        floats (float64 values of the training dtype's losses) [nats or squared error].
    n_samples, n_features, width : int
        ``n``, ``d`` and the hidden width.
    inputs : str
        The input distribution.
    """

    method: str
    seed: int
    exponent: int
    target_density: float
    density: float
    kept_weights: int
    prunable_weights: int
    memorized_fraction: float
    fit_margin: float
    loss: str
    train_loss: float
    train_accuracy: float
    n_steps: int
    stop_reason: str
    example_losses: str
    n_samples: int
    n_features: int
    width: int
    inputs: str
