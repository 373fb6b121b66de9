"""The Law of Robustness as exact formulas and fast numpy functions (no torch, no I/O).

The formulas live once, as sympy expressions, in :mod:`robustlaw.bounds.symbolic` (imported on
first evaluation, so ``import robustlaw.bounds`` stays light); the functions below evaluate them
with numpy broadcasting in float64, validate their arguments and check the theorems'
preconditions (THEORY §4).

>>> from robustlaw.bounds import lipschitz_lower_bound
>>> round(lipschitz_lower_bound(n=6e4, d=784, p=1e6, eps=0.8, delta=0.1, W=10, J=10), 6)
0.003588
"""

from robustlaw.bounds.assumptions import (
    A1_SQUARED,
    BS_K_CONDITION_CONST,
    NFP_K_CONDITION_CONST,
    THEOREM2_DENOMINATOR,
    THEOREMS,
    AssumptionCheck,
    assumptions,
    k_condition_holds,
)
from robustlaw.bounds.deep import (
    ISOPERIMETRY,
    box_to_euclidean_diameter,
    isoperimetry_constant,
    mlp_parameter_count,
    parameter_lipschitz_constant,
)
from robustlaw.bounds.numeric import (
    BOUNDS,
    finite_class_failure_probability,
    lipschitz_lower_bound,
    max_robust_samples,
    required_effective_parameter_count,
    required_parameter_count,
    sparse_lipschitz_lower_bound,
    sparse_max_robust_samples,
)
from robustlaw.bounds.peff import (
    INFORMATION_SOURCES,
    MaskInformation,
    binary_entropy,
    effective_parameter_count,
    imp_to_pai_ratio,
    mask_entropy_upper_bound,
    mask_information,
    p_eff_informal,
)

__all__ = [
    "A1_SQUARED",
    "BOUNDS",
    "BS_K_CONDITION_CONST",
    "INFORMATION_SOURCES",
    "ISOPERIMETRY",
    "NFP_K_CONDITION_CONST",
    "THEOREM2_DENOMINATOR",
    "THEOREMS",
    "AssumptionCheck",
    "MaskInformation",
    "assumptions",
    "binary_entropy",
    "box_to_euclidean_diameter",
    "effective_parameter_count",
    "finite_class_failure_probability",
    "imp_to_pai_ratio",
    "isoperimetry_constant",
    "k_condition_holds",
    "lipschitz_lower_bound",
    "mask_entropy_upper_bound",
    "mask_information",
    "max_robust_samples",
    "mlp_parameter_count",
    "p_eff_informal",
    "parameter_lipschitz_constant",
    "required_effective_parameter_count",
    "required_parameter_count",
    "sparse_lipschitz_lower_bound",
    "sparse_max_robust_samples",
]
