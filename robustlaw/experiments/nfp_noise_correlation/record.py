"""The record of ``nfp-noise-correlation``: one student at one epoch of one run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NoiseCorrelationRecord"]


@dataclass(frozen=True, kw_only=True)
class NoiseCorrelationRecord:
    """One student of one sweep at one epoch (units in brackets).

    Attributes
    ----------
    sweep : str
        ``"imp"``, ``"learning-rate"`` or ``"gradient-noise"``.
    seed : int
        The seed of the teacher, data, noise draw and student.
    learning_rate : float
        Adam's learning rate of the run.
    gradient_noise : float
        Standard deviation of the Gaussian gradient noise (0: none) [loss per weight unit].
    cycle : int
        The IMP cycle (0: dense; always 0 outside the IMP sweep).
    epoch : int
        Epochs trained within the cycle or run; 0 is the (rewound) start.
    kept_fraction : float
        Prunable weights kept divided by all prunable weights (1 when dense).
    correlation : float
        ``(1/n) sum_i (f(x_i) - E_mu f) z_i`` with ``E_mu f`` the mean output on the seed's fresh
        samples [output times label units].
    train_mse : float
        Mean squared error on the noisy training labels [label units squared].
    noise_power : float
        ``(1/n) sum_i z_i^2``, the correlation of a fit that copies the noise exactly.
    sigma2 : float
        ``sigma^2``, the variance of the label noise (the paper's plateau line).
    """

    sweep: str
    seed: int
    learning_rate: float
    gradient_noise: float
    cycle: int
    epoch: int
    kept_fraction: float
    correlation: float
    train_mse: float
    noise_power: float
    sigma2: float
