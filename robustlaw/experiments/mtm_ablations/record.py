"""The record of ``mtm-ablations``: one trained network (method, ablation, seed, density)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DENSE", "NO_ABLATION", "MtmAblationsRecord"]

DENSE = "dense"
"""The ``method`` of the unpruned baseline members (``level`` 0, density 1)."""

NO_ABLATION = "none"
"""The ``ablation`` of a method's own mask, unablated."""


@dataclass(frozen=True, kw_only=True)
class MtmAblationsRecord:
    """One network after training (units in brackets).

    Attributes
    ----------
    configuration : str
        Data and network (``"digits-mlp"``, ``"digits-cnn"``, ``"cifar10-cnn"``).
    architecture : str
        The network, e.g. ``"mlp 64-100-100-10"``.
    method : str
        The pruning method (a name in ``PRUNERS``), or ``"dense"`` for the unpruned baseline.
    ablation : str
        ``"none"``, ``"shuffle"`` (each layer's mask permuted), ``"reinit"`` (same mask, weights
        redrawn) or ``"invert"`` (the method's keep-scores negated).
    seed : int
        The run seed: initialization, minibatch order, pruning randomness, shuffle permutation.
    level : int
        ``j`` of the target density ``0.8**j``; 0 for the dense baseline.
    target_density : float
        The density asked for.
    density : float
        Fraction of the prunable weights kept (every Linear and Conv weight is prunable, biases
        never are).
    sparsity : float
        ``1 - density``.
    kept_weights, prunable_weights : int
        Kept and prunable weights.
    layer_densities : str
        JSON object: each prunable weight's name to its kept fraction.
    test_accuracy : float
        Share of the held-out test images classified correctly, in [0, 1].
    train_accuracy : float
        Share of the training images classified correctly, in [0, 1].
    final_loss : float
        Mean training cross-entropy at the end of training [nats].
    n_steps : int
        Optimizer steps of the final training.
    n_train, n_test : int
        Training and test images.
    rewind_step : int
        The step IMP and magnitude after training rewind to.
    """

    configuration: str
    architecture: str
    method: str
    ablation: str
    seed: int
    level: int
    target_density: float
    density: float
    sparsity: float
    kept_weights: int
    prunable_weights: int
    layer_densities: str
    test_accuracy: float
    train_accuracy: float
    final_loss: float
    n_steps: int
    n_train: int
    n_test: int
    rewind_step: int
