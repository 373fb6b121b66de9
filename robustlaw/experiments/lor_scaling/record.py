"""The record of ``lor-scaling``: one trained member, its Lipschitz bracket and the floors."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LorScalingRecord"]


@dataclass(frozen=True, kw_only=True)
class LorScalingRecord:
    """One member of a ``lor-scaling`` unit (units in brackets).

    Attributes
    ----------
    method : str
        The pruning method (``"dense"`` for unpruned networks).
    density : float
        Fraction of prunable weights the method was asked to keep, in (0, 1].
    seed : int
        The member's seed (initialization and randomized masks).
    n, d, width, depth : int
        Training-set size, input dimension, hidden width and number of hidden layers.
    p : int
        All weights and biases of the architecture.
    kept : int
        Kept weights plus biases: the ``||m||_1`` of the theorems (biases are never pruned).
    kept_weights, prunable : int
        Kept and prunable weights.
    data_dependent : bool
        Whether the pruning method reads the data.
    mask_entropy_bits : float
        ``log2 binom(prunable, kept_weights)`` [bits], an upper bound on the mask's entropy.
    mask_info_bits : float
        The mask information used in p_eff [bits]: 0 for data-independent masks, else the
        entropy bound.
    n_steps : int
        Optimizer steps taken.
    train_mse : float
        Training MSE of the outputs clipped to [-1, 1].
    fit_below_noise : bool
        Whether ``train_mse <= sigma2 - eps``: the theorems' condition on the fit.
    lip_lower : float or None
        Lower estimate of the Lipschitz constant (attained at real points); None if it failed.
    lip_lower_method, lip_lower_status : str
        The Lipschitz method that gave it and how it ended.
    lip_upper : float or None
        Upper bound of the Lipschitz constant; None if it failed.
    lip_upper_method, lip_upper_status : str
        Its method and status.
    lip_upper_certified : bool
        Whether ``lip_upper`` is a proven upper bound.
    lip_sdp : float or None
        The SDP upper bound (certified values only); None when the net is too large for it,
        when it is disabled, or when it was not certified.
    lip_sdp_method, lip_sdp_status : str
        Its method and status (``"skipped"`` when it did not run).
    w_inf : float
        Largest absolute parameter.
    in_box : bool
        Whether every parameter lies in the stated box ``[-weight_box, weight_box]``.
    weight_box, input_radius : float
        The stated W_inf and R of the constants.
    input_norm_max : float
        Largest training-input norm.
    c, sigma2, eps, delta : float
        Isoperimetry constant, noise level sigma^2, fit margin and failure probability.
    W, J : float
        Euclidean parameter-set diameter and the parameter-Lipschitz constant J_BS.
    p_eff : float
        Effective parameter count [bits].
    bound_bs, bound_nfp : float
        Bubeck–Sellke Theorem 3 and No Free Prune Theorem 4 floors (output per unit input).
    k_condition_bs, k_condition_nfp : bool
        Whether each theorem's k-condition holds at this n.
    dtype : str
        Floating-point type of training and measurement.
    """

    method: str
    density: float
    seed: int
    n: int
    d: int
    width: int
    depth: int
    p: int
    kept: int
    kept_weights: int
    prunable: int
    data_dependent: bool
    mask_entropy_bits: float
    mask_info_bits: float
    n_steps: int
    train_mse: float
    fit_below_noise: bool
    lip_lower: float | None
    lip_lower_method: str
    lip_lower_status: str
    lip_upper: float | None
    lip_upper_method: str
    lip_upper_status: str
    lip_upper_certified: bool
    lip_sdp: float | None
    lip_sdp_method: str
    lip_sdp_status: str
    w_inf: float
    in_box: bool
    weight_box: float
    input_radius: float
    input_norm_max: float
    c: float
    sigma2: float
    eps: float
    delta: float
    W: float
    J: float
    p_eff: float
    bound_bs: float
    bound_nfp: float
    k_condition_bs: bool
    k_condition_nfp: bool
    dtype: str
