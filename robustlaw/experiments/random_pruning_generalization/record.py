"""The record of ``random-pruning-generalization``: one pruned network at one logged step.

Each member (pruning fraction ``p``, seed) is logged every ``log_every`` steps of gradient
descent and at the end, so a member has one row per logged step (a long table: the member's
constants repeat on each of its rows). Its row with ``final = True`` holds the end of training;
the accuracy-against-``p`` figure reads those, the coefficient figure reads every row.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RandomPruningGeneralizationRecord"]


@dataclass(frozen=True, kw_only=True)
class RandomPruningGeneralizationRecord:
    """One randomly pruned two-patch network at one step of training (units in brackets).

    Attributes
    ----------
    pruning_fraction : float
        ``p``: each first-layer weight is pruned independently with this probability.
    seed : int
        Seed of the data (train and test), the initialization and the mask.
    step : int
        Gradient-descent steps taken when the row was logged (0: at initialization).
    final : bool
        Whether this is the member's last row (after ``n_steps`` steps).
    kept_weights, prunable_weights : int
        First-layer weights the mask keeps, and all of them (``n_classes * m * d``).
    density : float
        ``kept_weights / prunable_weights``; its expectation is ``1 - p``.
    signal_neurons : int
        Filters whose mask keeps the whole support of their class's signal ``mu_j`` (one
        coordinate for a one-hot ``mu``), summed over classes; expectation
        ``n_classes * m * (1 - p)`` for a one-hot ``mu``.
    classes_without_signal : int
        Classes none of whose ``m`` filters keep the support of their signal.
    masked_noise_norm_sq : float
        Mean over training examples ``i`` and filters ``r`` of ``||xi_i * M_r||^2``, the noise
        a filter sees [squared input units]; about ``(1 - p) sigma_p^2 d``.
    train_loss : float
        Mean training loss (logistic, or cross-entropy for more than two classes) [nats].
    train_accuracy, test_accuracy : float
        Share of the training examples, and of fresh test examples from the same
        distribution, classified correctly, in [0, 1] (chance: ``1 / n_classes``).
    signal_coefficient : float
        Signal learning: for each class ``j`` the largest ``<w_{j,r} * M_{j,r}, mu_j>`` over its
        filters ``r``, averaged over classes (binary: ``mu_{+1} = mu``, ``mu_{-1} = -mu``)
        [input units x weight units, the filter's pre-activation on the signal patch].
    noise_coefficient : float
        Noise memorization: for each training example ``i`` the largest
        ``<w_{y_i,r} * M_{y_i,r}, xi_i>`` over the filters of its own class, averaged over
        ``i`` [same units].
    n_samples, n_test, patch_dim, filters_per_class, n_classes : int
        ``n``, test examples, ``d``, ``m`` and classes.
    mu_norm, sigma_p, init_std, lr : float
        ``||mu||``, the noise standard deviation, ``sigma_0`` and the step ``eta``.
    activation : str
        ``"relu"`` or ``"relu-q"``.
    q : int
        The power of ``relu-q`` (1 for ``relu``).
    """

    pruning_fraction: float
    seed: int
    step: int
    final: bool
    kept_weights: int
    prunable_weights: int
    density: float
    signal_neurons: int
    classes_without_signal: int
    masked_noise_norm_sq: float
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    signal_coefficient: float
    noise_coefficient: float
    n_samples: int
    n_test: int
    patch_dim: int
    filters_per_class: int
    n_classes: int
    mu_norm: float
    sigma_p: float
    init_std: float
    lr: float
    activation: str
    q: int
