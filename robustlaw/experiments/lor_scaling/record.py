"""The record of ``lor-scaling``: one network (trained or built), its Lipschitz bracket, floors."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROLES", "LorScalingRecord"]

ROLES = ("search", "first-fit", "interpolation", "construction")
"""What a record's network is: a member of the smoothest-fit search, one of the two controls,
or an explicit interpolator."""


@dataclass(frozen=True, kw_only=True)
class LorScalingRecord:
    """One network of a ``lor-scaling`` unit (units in brackets).

    Attributes
    ----------
    role : str
        One of :data:`ROLES`.
    method : str
        The pruning method (``"dense"`` for unpruned nets), or the construction's name.
    density : float
        Fraction of prunable weights the method was asked to keep, in (0, 1] (1 when dense).
    dataset : int
        The dataset's seed: records with the same ``(n, d, dataset)`` saw the same data.
    seed : int
        The member's initialization seed (-1 for constructions).
    search_weight : float or None
        The penalty strength of a search member; None for controls and constructions.
    chosen : bool
        Whether this search member has the smallest certified upper bound among the search
        members of its group (same unit, method and density) that fit below the noise: the
        group's bracket of :math:`L^\\star` from above. False for controls and constructions.
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
    mask_info_bits : float
        The mask information used in p_eff [bits]: 0 for data-independent masks; for
        data-dependent ones the measured value where the settings' ``mask_information`` gives
        one, else the upper bound ``log2 binom(prunable, kept_weights)``.
    mask_info_source : str
        ``"zero"`` (data-independent mask, exact), ``"measured"`` (an estimate from the
        settings) or ``"entropy-bound"`` (an upper bound).
    n_steps : int
        Optimizer steps taken (0 for constructions).
    train_mse : float
        Training MSE of the outputs clipped to [-1, 1].
    fit_below_noise : bool
        Whether ``train_mse <= sigma2 - eps``: the theorems' condition on the fit.
    lip_upper : float or None
        Certified upper bound on the global Lipschitz constant from ``lip_upper_method``;
        None when it failed or was not certified.
    lip_upper_method, lip_upper_status : str
        Its method and how it ended.
    lip_sdp : float or None
        The SDP bound (certified values only); None when it did not run (status ``skipped``:
        not a chosen member, a control or a construction, or a net too large) or failed.
    lip_sdp_method, lip_sdp_status : str
        Its method and status.
    lip_certified : float or None
        The smaller of ``lip_upper`` and ``lip_sdp``: the best certified upper bound. For a
        fit below the noise it bounds :math:`L^\\star` at this ``p`` from above; only such a
        value *under a floor* would contradict the theorem.
    lip_lower : float or None
        Lower estimate of the global constant (a Jacobian norm attained at a real point); None
        when skipped (search members that were not chosen) or failed.
    lip_lower_method, lip_lower_status : str
        Its method and status.
    lip_support : float or None
        Lower estimate of the constant on the support (tangential, on the sphere); None for
        Gaussian inputs or when skipped. It bounds *this network* only, never :math:`L^\\star`.
    lip_support_method, lip_support_status : str
        Its method and status.
    stated_lipschitz : float or None
        A construction's stated constant (when its conditions hold); None otherwise.
    conditions_hold : bool
        Whether a construction's conditions hold on this data (True for trained nets).
    w_inf : float
        Largest absolute parameter.
    in_box : bool
        Whether every parameter lies in ``[-weight_box, weight_box]``.
    weight_box, input_radius : float
        The stated W_inf and R of the floors' constants.
    input_norm_max : float
        Largest training-input norm.
    c, sigma2, eps, delta : float
        Isoperimetry constant, noise level sigma^2, fit margin and failure probability.
    W, J : float
        Euclidean parameter-set diameter and the parameter-Lipschitz constant J_BS.
    p_eff : float
        The effective parameter count of [NFP] Theorem 4 [bits], from ``kept`` and
        ``mask_info_bits``.
    p_eff_informal : float
        The informal form ``kept + mask_info_bits`` ([NFP] §3.5).
    bound_bs, bound_nfp : float
        Bubeck–Sellke Theorem 3 floor at ``p`` and No Free Prune Theorem 4 floor at ``p_eff``
        (output per unit input).
    k_condition_bs, k_condition_nfp : bool
        Whether each theorem's k-condition holds at this n (the floors are drawn either way).
    inputs, dtype : str
        The input distribution and the floating-point type.
    """

    role: str
    method: str
    density: float
    dataset: int
    seed: int
    search_weight: float | None
    chosen: bool
    n: int
    d: int
    width: int
    depth: int
    p: int
    kept: int
    kept_weights: int
    prunable: int
    data_dependent: bool
    mask_info_bits: float
    mask_info_source: str
    n_steps: int
    train_mse: float
    fit_below_noise: bool
    lip_upper: float | None
    lip_upper_method: str
    lip_upper_status: str
    lip_sdp: float | None
    lip_sdp_method: str
    lip_sdp_status: str
    lip_certified: float | None
    lip_lower: float | None
    lip_lower_method: str
    lip_lower_status: str
    lip_support: float | None
    lip_support_method: str
    lip_support_status: str
    stated_lipschitz: float | None
    conditions_hold: bool
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
    p_eff_informal: float
    bound_bs: float
    bound_nfp: float
    k_condition_bs: bool
    k_condition_nfp: bool
    inputs: str
    dtype: str
