"""What every LipSDP backend shares: options, variants, preprocessing, rescaling, certification.

LipSDP is Fazlyab, Robey, Hassani, Morari, Pappas, "Efficient and Accurate Estimation of
Lipschitz Constants for Deep Neural Networks" (NeurIPS 2019, arXiv 1906.04893). Only the two
sound variants exist here: Neuron (one multiplier per hidden unit) and Layer (one per layer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robustlaw._validation import check_integer, check_interval, get_registered
from robustlaw.empirical.lipschitz.activation_bounds import activation_slope_bounds
from robustlaw.empirical.lipschitz.certify import certify_rho
from robustlaw.empirical.lipschitz.weights import as_weight_list, compress_input, drop_dead_units
from robustlaw.errors import UnknownNameError, ValidationError

__all__ = [
    "VARIANTS",
    "LipSDPOptions",
    "Prepared",
    "check_variant",
    "layer_scales",
    "multiplier_factors",
    "prepare",
]


@dataclass(frozen=True, kw_only=True)
class LipSDPOptions:
    """Options of the ``"lipsdp-neuron"`` and ``"lipsdp-layer"`` methods.

    Attributes
    ----------
    activation : str or (alpha, beta), optional
        A registered activation (``"relu"``, ``"leaky-relu"``, ``"tanh"``, ``"sigmoid"``) or
        slope bounds ``(alpha, beta)``; by default (None) the network's own (``"relu"`` for
        plain weights).
    solver : str
        ``"ipm"``: the structured interior-point method (:mod:`.sdp_solver`), in torch float64
        on ``device``. Any other name is a cvxpy solver (``"SCS"``, ``"CLARABEL"``, ...) on the
        LMI written in cvxpy (:mod:`.lipsdp_cvxpy`); it must be installed.
    ipm_tol : float
        ``"ipm"``: stop when the relative duality gap and infeasibilities are below it.
    ipm_max_iter : int
        ``"ipm"``: iteration limit.
    cvxpy_eps : float
        cvxpy solvers: tolerance (SCS ``eps_abs``/``eps_rel``, Clarabel gap and feasibility).
    cvxpy_max_iter : int
        cvxpy solvers: iteration limit.
    device : str
        Where ``"ipm"`` runs: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``,
        ``"cuda[:i]"``.

    Examples
    --------
    >>> LipSDPOptions(solver="CLARABEL").cvxpy_eps
    1e-09
    """

    activation: str | tuple[float, float] | None = None
    solver: str = "ipm"
    ipm_tol: float = 1e-8
    ipm_max_iter: int = 100
    cvxpy_eps: float = 1e-9
    cvxpy_max_iter: int = 200_000
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.activation is not None:
            activation_slope_bounds(self.activation)
        for name in ("solver", "device"):
            if not isinstance(getattr(self, name), str):
                raise ValidationError(f"{name} must be a string, got {getattr(self, name)!r}")
        check_interval(self.ipm_tol, "ipm_tol", 0.0, 1.0)
        check_integer(self.ipm_max_iter, "ipm_max_iter", minimum=1)
        check_interval(self.cvxpy_eps, "cvxpy_eps", 0.0, 1.0)
        check_integer(self.cvxpy_max_iter, "cvxpy_max_iter", minimum=1)


def _neuron_groups(sizes: list[int]) -> np.ndarray:
    return np.arange(sum(sizes))


def _layer_groups(sizes: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(sizes)), sizes)


#: LipSDP variants: name -> function mapping hidden sizes to each unit's multiplier index.
VARIANTS: dict[str, Callable[[list[int]], np.ndarray]] = {
    "neuron": _neuron_groups,
    "layer": _layer_groups,
}

_REJECTED = {
    "network": (
        "LipSDP-Network is not implemented because it is unsound: its coupling of pairs of "
        "neurons returns values below the true Lipschitz constant (down to 0.69x on small ReLU "
        "nets); use variant='neuron' (tightest sound one) or 'layer'"
    ),
}


def check_variant(variant: str) -> Callable[[list[int]], np.ndarray]:
    """Return the grouping function of a variant; ``"network"`` gets an explanation.

    Examples
    --------
    >>> check_variant("layer")([2, 3]).tolist()
    [0, 0, 1, 1, 1]
    """
    if isinstance(variant, str) and variant.lower() in _REJECTED:
        raise UnknownNameError(_REJECTED[variant.lower()])
    return get_registered(VARIANTS, variant, "LipSDP variant")


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A network ready for LipSDP: biases dropped (the bound holds for any biases), dead units
    removed, input compressed.

    Attributes
    ----------
    weights : list of numpy.ndarray
        Float64 ``(out, in)`` matrices ``W_0, ..., W_L``.
    groups : numpy.ndarray
        Multiplier index of every hidden unit, shape ``(N,)``.
    n_multipliers : int
        ``m``, the number of free multipliers.
    details : dict
        ``layer_sizes`` before and after, ``dead_units_dropped``.
    """

    weights: list[np.ndarray]
    groups: np.ndarray
    n_multipliers: int
    details: dict[str, Any]

    @property
    def closed_form(self) -> tuple[float, str] | None:
        """The exact constant and why, when no SDP is needed, else None.

        A zero layer makes the network constant (0); a single linear layer has ``||W||_2``.
        """
        if any(not np.any(w) for w in self.weights):
            return 0.0, "a layer is zero: the network is constant"
        if len(self.weights) == 1:
            return float(np.linalg.norm(self.weights[0], 2)), "one linear layer: ||W||_2"
        return None

    def certify(self, multipliers: np.ndarray, slopes: tuple[float, float]) -> float:
        """``rho(lambda)`` for free multipliers (shape ``(m,)``), in float64; see certify_rho."""
        return certify_rho(self.weights, np.asarray(multipliers)[self.groups], slopes)


def prepare(weights: Any, variant: str) -> Prepared:
    """Validate, drop dead units, then compress the input exactly (``LIPSCHITZ.md`` §4)."""
    grouping = check_variant(variant)
    original = as_weight_list(weights)
    alive = drop_dead_units(original)
    compressed = [w.detach().cpu().numpy() for w in compress_input(alive)]
    sizes = [w.shape[0] for w in compressed[:-1]]
    groups = grouping(sizes)
    sizes_of = lambda ws: [ws[0].shape[1], *(w.shape[0] for w in ws)]  # noqa: E731
    details = {
        "layer_sizes": sizes_of(original),
        "compressed_sizes": sizes_of(compressed),
        "dead_units_dropped": sum(sizes_of(original)[1:-1]) - sum(sizes),
    }
    return Prepared(
        weights=compressed,
        groups=groups,
        n_multipliers=int(groups.max()) + 1 if groups.size else 0,
        details=details,
    )


def multiplier_factors(prepared: Prepared, squares: np.ndarray) -> np.ndarray:
    """Per free multiplier, the factor from the network with ``W_l / s_l`` back to ``W_l``.

    LipSDP is invariant under ``W_l -> W_l / s_l``: then ``rho = rho' prod_l s_l^2`` and a unit
    of hidden layer ``l`` gets ``lambda = lambda' prod_{k >= l} s_k^2``. ``squares`` holds
    ``s_l^2`` for ``l = 0..L``.
    """
    unit_factor = np.cumprod(squares[::-1])[::-1][1:]  # prod_{k >= l} s_k^2 for l = 1..L
    per_multiplier = np.zeros(prepared.n_multipliers)
    sizes = [w.shape[0] for w in prepared.weights[:-1]]
    per_multiplier[prepared.groups] = np.repeat(unit_factor, sizes)
    return per_multiplier


def layer_scales(weights: list[np.ndarray], n_iter: int = 30) -> np.ndarray:
    """Approximate spectral norms ``s_l`` (power iteration), used only to rescale the LMI.

    Any positive numbers are valid scales (the rescaled problem is equivalent); they only need
    to be close to the norms for good conditioning, so this is not certified.
    """
    rng = np.random.default_rng(0)
    scales = []
    for w in weights:
        v = rng.standard_normal(w.shape[1])
        for _ in range(n_iter):
            v = w.T @ (w @ v)
            v /= np.linalg.norm(v)
        scales.append(float(np.linalg.norm(w @ v)))
    return np.asarray(scales)


def as_torch(weights: list[np.ndarray], device: torch.device | str) -> list[torch.Tensor]:
    """The weights as float64 tensors on ``device``."""
    return [torch.as_tensor(w, dtype=torch.float64, device=device) for w in weights]
