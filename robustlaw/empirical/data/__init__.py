"""Data generators and loaders that report their noise level and isoperimetry constant.

Every function returns a frozen :class:`Dataset` (``X``, ``y``, ``noise_level`` sigma^2,
``isoperimetry_constant`` c, ``kind``, ``n_classes``, ``seed``, ...). :data:`DATASETS` maps
names to the generators, for experiment registries. ``isoperimetry_constant`` is
:func:`robustlaw.bounds.isoperimetry_constant`, re-exported.
"""

from robustlaw.bounds import isoperimetry_constant
from robustlaw.empirical.data.hypercube import (
    MAX_ENUMERATED_FEATURES,
    all_vertices,
    hypercube_data,
    sample_vertices,
)
from robustlaw.empirical.data.real import (
    TORCHVISION_DATASETS,
    add_noise,
    digits_data,
    load_torchvision,
)
from robustlaw.empirical.data.record import Dataset
from robustlaw.empirical.data.synthetic import (
    INPUT_SAMPLERS,
    random_labels_data,
    sample_inputs,
    teacher_data,
)
from robustlaw.empirical.data.two_patch import MU_KINDS, signal_vectors, two_patch_data

__all__ = [
    "DATASETS",
    "INPUT_SAMPLERS",
    "MAX_ENUMERATED_FEATURES",
    "MU_KINDS",
    "TORCHVISION_DATASETS",
    "Dataset",
    "add_noise",
    "all_vertices",
    "digits_data",
    "hypercube_data",
    "isoperimetry_constant",
    "load_torchvision",
    "random_labels_data",
    "sample_inputs",
    "sample_vertices",
    "signal_vectors",
    "teacher_data",
    "two_patch_data",
]

DATASETS = {
    "random-labels": random_labels_data,
    "hypercube": hypercube_data,
    "teacher": teacher_data,
    "two-patch": two_patch_data,
    "digits": digits_data,
    "torchvision": load_torchvision,
}
"""Names of the data generators, for experiment registries (look up with
:func:`robustlaw._validation.get_registered`)."""
