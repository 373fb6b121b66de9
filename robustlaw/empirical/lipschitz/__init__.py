"""Lipschitz constants of MLPs and ensembles: attained lower estimates, certified upper bounds.

Every registered method (:data:`LIPSCHITZ_METHODS`) has the signature
``method(net, options, *, X=None, generator=None)`` and returns a :class:`LipschitzEstimate`
(value, kind, method, status, certified, seconds, details); :func:`estimate_lipschitz` runs any
of them by name and records failures as statuses. See ``docs/tutorials/lipschitz.md``.
"""

from robustlaw.empirical.lipschitz.activation_bounds import (
    ACTIVATION_SLOPE_BOUNDS as ACTIVATION_SLOPE_BOUNDS,
)
from robustlaw.empirical.lipschitz.activation_bounds import (
    activation_slope_bounds as activation_slope_bounds,
)
from robustlaw.empirical.lipschitz.compositional import EclipseFastOptions as EclipseFastOptions
from robustlaw.empirical.lipschitz.compositional import EclipseOptions as EclipseOptions
from robustlaw.empirical.lipschitz.compositional import eclipse as eclipse
from robustlaw.empirical.lipschitz.compositional import eclipse_fast as eclipse_fast
from robustlaw.empirical.lipschitz.krylov import lanczos as lanczos
from robustlaw.empirical.lipschitz.lipsdp import lipsdp_layer as lipsdp_layer
from robustlaw.empirical.lipschitz.lipsdp import lipsdp_neuron as lipsdp_neuron
from robustlaw.empirical.lipschitz.lipsdp_prepare import LipSDPOptions as LipSDPOptions
from robustlaw.empirical.lipschitz.lower import GradientOptions as GradientOptions
from robustlaw.empirical.lipschitz.lower import gradient_lower_bound as gradient_lower_bound
from robustlaw.empirical.lipschitz.lower import jacobian as jacobian
from robustlaw.empirical.lipschitz.registry import LIPSCHITZ_METHODS as LIPSCHITZ_METHODS
from robustlaw.empirical.lipschitz.registry import LipschitzMethod as LipschitzMethod
from robustlaw.empirical.lipschitz.registry import estimate_lipschitz as estimate_lipschitz
from robustlaw.empirical.lipschitz.result import EstimateStatus as EstimateStatus
from robustlaw.empirical.lipschitz.result import LipschitzEstimate as LipschitzEstimate
from robustlaw.empirical.lipschitz.spectral import PowerIterationResult as PowerIterationResult
from robustlaw.empirical.lipschitz.spectral import SpectralOptions as SpectralOptions
from robustlaw.empirical.lipschitz.spectral import power_iteration as power_iteration
from robustlaw.empirical.lipschitz.spectral import spectral_norm_bounds as spectral_norm_bounds
from robustlaw.empirical.lipschitz.spectral import spectral_product as spectral_product
from robustlaw.empirical.lipschitz.sphere import SphereGradientOptions as SphereGradientOptions
from robustlaw.empirical.lipschitz.sphere import (
    sphere_gradient_lower_bound as sphere_gradient_lower_bound,
)
from robustlaw.empirical.lipschitz.weights import Network as Network
from robustlaw.empirical.lipschitz.weights import as_network as as_network
from robustlaw.empirical.lipschitz.weights import as_weight_list as as_weight_list
from robustlaw.empirical.lipschitz.weights import compress_input as compress_input
from robustlaw.empirical.lipschitz.weights import drop_dead_units as drop_dead_units
from robustlaw.empirical.lipschitz.weights import weights_from_ensemble as weights_from_ensemble

__all__ = [
    "ACTIVATION_SLOPE_BOUNDS",
    "LIPSCHITZ_METHODS",
    "EclipseFastOptions",
    "EclipseOptions",
    "EstimateStatus",
    "GradientOptions",
    "LipSDPOptions",
    "LipschitzEstimate",
    "LipschitzMethod",
    "Network",
    "PowerIterationResult",
    "SpectralOptions",
    "SphereGradientOptions",
    "activation_slope_bounds",
    "as_network",
    "as_weight_list",
    "compress_input",
    "drop_dead_units",
    "eclipse",
    "eclipse_fast",
    "estimate_lipschitz",
    "gradient_lower_bound",
    "jacobian",
    "lanczos",
    "lipsdp_layer",
    "lipsdp_neuron",
    "power_iteration",
    "spectral_norm_bounds",
    "spectral_product",
    "sphere_gradient_lower_bound",
    "weights_from_ensemble",
]
