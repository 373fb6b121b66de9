"""Everything that touches data and networks: ensembles, data, training (torch).

The subpackages :mod:`robustlaw.empirical.pruning` and :mod:`robustlaw.empirical.lipschitz`
are imported on their own (``from robustlaw.empirical.pruning import ...``).
"""

from robustlaw.empirical.data import (
    DATASETS,
    Dataset,
    digits_data,
    isoperimetry_constant,
    load_torchvision,
    random_labels_data,
    sample_inputs,
    teacher_data,
    two_patch_data,
)
from robustlaw.empirical.ensemble import (
    INITIALIZERS,
    Ensemble,
    MLPSpec,
    check_masks,
    forward,
    init_mlp_ensemble,
)
from robustlaw.empirical.ensemble_io import (
    ensemble_from_sequentials,
    load_ensemble,
    member_to_sequential,
    save_ensemble,
)
from robustlaw.empirical.modules import (
    ModuleEnsemble,
    TwoPatchNet,
    ensemble_from_modules,
    init_module_ensemble,
    small_cnn,
)
from robustlaw.empirical.torch_prune import from_torch_prune, to_torch_prune
from robustlaw.empirical.training import (
    GRADIENT_NOISES,
    LOSSES,
    OPTIMIZERS,
    PENALTIES,
    STOPPING_RULES,
    TrainOptions,
    TrainRecord,
    TrainResult,
    train_ensemble,
    train_params,
)

__all__ = [
    "DATASETS",
    "GRADIENT_NOISES",
    "INITIALIZERS",
    "LOSSES",
    "OPTIMIZERS",
    "PENALTIES",
    "STOPPING_RULES",
    "Dataset",
    "Ensemble",
    "MLPSpec",
    "ModuleEnsemble",
    "TrainOptions",
    "TrainRecord",
    "TrainResult",
    "TwoPatchNet",
    "check_masks",
    "digits_data",
    "ensemble_from_modules",
    "ensemble_from_sequentials",
    "forward",
    "from_torch_prune",
    "init_mlp_ensemble",
    "init_module_ensemble",
    "isoperimetry_constant",
    "load_ensemble",
    "load_torchvision",
    "member_to_sequential",
    "random_labels_data",
    "sample_inputs",
    "save_ensemble",
    "small_cnn",
    "teacher_data",
    "to_torch_prune",
    "train_ensemble",
    "train_params",
    "two_patch_data",
]
