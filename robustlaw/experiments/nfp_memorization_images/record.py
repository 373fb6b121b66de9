"""The record of ``nfp-memorization-images``: one trained sparse network of one seed."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STOP_REASONS", "NfpMemorizationImagesRecord"]

STOP_REASONS = ("converged", "accuracy-plateau", "epoch-cap", "diverged")
"""Why a member stopped: its loss converged (checked first), its train accuracy plateaued, it
trained to the epoch cap, or it diverged."""


@dataclass(frozen=True, kw_only=True)
class NfpMemorizationImagesRecord:
    """One pruned network after training (units in brackets).

    Attributes
    ----------
    method : str
        The pruning method (a name in ``PRUNERS``).
    seed : int
        Seed of the noisy data, the initialization, the minibatch order and the scores.
    imp_level : int or None
        The IMP level ``j`` (density about ``0.8**j``); None for the other methods.
    target_density : float
        The density asked for: ``0.8**j`` for IMP, else a ``densities`` entry.
    density : float
        Fraction of the prunable weights kept (every weight is prunable, biases never are).
    sparsity : float
        ``1 - density``.
    kept_weights, prunable_weights : int
        Kept and prunable weights.
    train_accuracy : float
        Share of the noisy training images classified correctly, in [0, 1].
    final_loss : float
        Mean training cross-entropy after training [nats].
    n_steps : int
        Optimizer steps taken.
    epochs : float
        ``n_steps`` in passes over the training set.
    stop_reason : str
        One of :data:`STOP_REASONS`.
    dataset : str
        ``"digits"`` or ``"fashion-mnist"``.
    n_samples, n_features, n_classes : int
        Training images, pixels per image and classes (chance accuracy is ``1 / n_classes``).
    width : int
        Width of both hidden layers.
    noise_variance : float
        Variance of the pixel noise [pixel units squared].
    """

    method: str
    seed: int
    imp_level: int | None
    target_density: float
    density: float
    sparsity: float
    kept_weights: int
    prunable_weights: int
    train_accuracy: float
    final_loss: float
    n_steps: int
    epochs: float
    stop_reason: str
    dataset: str
    n_samples: int
    n_features: int
    n_classes: int
    width: int
    noise_variance: float
