"""Settings, presets and work units of ``lor-scaling``: the law of robustness put to a test.

The law bounds :math:`L^\\star(n, d, p)`, the *smallest* Lipschitz constant over all fits below
the noise, from below: :math:`L^\\star \\gtrsim \\sqrt{nd/p}` for :math:`p \\lesssim nd`, and
:math:`O(1)` is reachable beyond (``THEORY.md`` §7.1). So for every ``(n, d)`` and parameter
count ``p`` the experiment *searches* for the smoothest fit and brackets :math:`L^\\star`:

- from above, by the smallest certified upper bound over a grid of penalized trainings (the
  Lipschitz-proxy penalty of THEORY §7.2 with a hinge fit constraint; strengths and restarts
  are ensemble members) and by the explicit interpolators of [BLN] (§7.3);
- from below, by the Bubeck–Sellke floor ([BS] Theorem 3) and, for pruned nets, the No Free
  Prune floor ([NFP] Theorem 4), each with whether its k-condition holds.

Two controls run beside the search at every point: Adam stopped at the first fit below the
noise (what ``lor-scaling`` measured before) and Adam run to full interpolation.

Data: inputs uniform on the sphere :math:`\\mathbb S^{d-1}` (``c = d/(d-1)``) by default, with
uniform ±1 labels (``sigma^2 = 1``). Each entry of ``datasets`` draws an independent dataset, so
intervals are over datasets. Dense two-layer ReLU nets take widths whose parameter counts are
log-spaced from ``p_min_over_n * n`` to ``p_max_over_nd * nd``; sparse nets of one width (the
largest dense width by default) are pruned by every method at densities down to 1%.

Work units, per ``(n, d, dataset)``: one for the dense nets (every width trains in one ensemble,
zero-padded to the largest), one for the sparse nets, one for the constructions.

References
----------
Bubeck, Sellke, *A Universal Law of Robustness via Isoperimetry*, NeurIPS 2021
(arXiv:2105.12806). Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089).
Bubeck, Li, Nagaraj, *A law of robustness for two-layers neural networks*, COLT 2021
(arXiv:2009.14444).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from robustlaw._validation import check_choice, check_integer, check_interval, get_registered
from robustlaw.empirical.lipschitz import LIPSCHITZ_METHODS, GradientOptions, SphereGradientOptions
from robustlaw.empirical.pruning import PRUNERS
from robustlaw.empirical.training import PENALTIES
from robustlaw.errors import ValidationError
from robustlaw.experiments.lor_scaling.information import check_mask_information
from robustlaw.experiments.registry import WorkUnit

__all__ = ["CONSTRUCTIONS", "PRESETS", "SEARCH_PENALTIES", "LorScalingSettings", "dense_widths",
           "expand"]  # fmt: skip

SEARCH_PENALTIES = ("two-layer-operator", "path-norm", "spectral")
"""Lipschitz-proxy penalties the search may use (``"spectral"`` is the one for any depth)."""

CONSTRUCTIONS = ("min-norm-linear", "caps", "grouped-min-norm", "tensor")
"""The explicit interpolators of [BLN] §3 the experiment can build (THEORY §7.3 (a)-(d))."""

_TWO_LAYER_ONLY = ("two-layer-operator", "path-norm")


@dataclass(frozen=True, kw_only=True)
class LorScalingSettings:
    """Settings of ``lor-scaling``.

    Parameters
    ----------
    sizes : tuple of (int, int)
        The ``(n, d)`` pairs: training-set size and input dimension.
    inputs : {"sphere", "gaussian-normalized"}
        Input distribution: uniform on the unit sphere (``c = d/(d-1)``, the default) or
        ``N(0, I_d/d)`` (``c = 1``).
    datasets : tuple of int
        One independent dataset (inputs and labels) per entry, drawn from that seed.
    depth : int
        Hidden layers of every network (1: the two-layer nets of [BLN]).
    p_min_over_n, p_max_over_nd : float
        The dense parameter counts run from ``p_min_over_n * n`` to ``p_max_over_nd * n * d``.
    n_widths : int
        How many dense widths: their parameter counts are log-spaced over that range (widths
        that round to the same integer are kept once).
    sparse_width : int or None
        Hidden width of the pruned nets; None takes the largest dense width of each ``(n, d)``.
    methods : tuple of str
        Pruning methods (names in the pruning registry); empty runs no sparse nets.
    densities : tuple of float
        Fractions of weights kept, each in (0, 1).
    mask_information : tuple of (method, n, d, density, bits)
        Measured mask information ``I(m; D | init)`` in bits at points the settings run; the
        records' ``p_eff`` uses it there and says so (``mask_info_source="measured"``). Points
        without an entry are charged ``log2 binom(prunable, kept)`` (data-dependent methods)
        or 0 (data-independent ones). See :mod:`.information`.
    search_penalty : str
        The Lipschitz proxy the search minimizes, one of :data:`SEARCH_PENALTIES`.
    search_weights : tuple of float
        Penalty strengths; each is an ensemble member (times ``search_restarts``).
    sparse_search_weights : tuple of float or None
        The strengths searched for pruned nets (every method and density); None takes
        ``search_weights``. A shorter grid keeps the many pruned nets affordable.
    search_restarts, sparse_restarts : int
        Restarts (initialization seeds) per strength for dense and for pruned nets.
    fit_weight : float
        Strength of the hinge ``fit_weight * max(0, MSE - (sigma^2 - eps - fit_slack))``.
    fit_slack : float
        How far below the theorem's target ``sigma^2 - eps`` the hinge aims (>= 0), so that
        penalized members land below the noise rather than on its edge.
    search_lr, search_steps : float, int
        Adam learning rate and the number of full-batch steps of every search member.
    control_lr, control_steps : float, int
        Adam learning rate and step cap of the two controls (first fit, full interpolation).
    interpolation_margin : float
        The full-interpolation control stops once every squared error is at most this.
    constructions : tuple of str
        The explicit interpolators to build (names in :data:`CONSTRUCTIONS`).
    grouped_ks : int
        How many group counts ``k`` the grouped construction takes, log-spaced from
        ``n log n / d`` to ``n`` ([BLN] Theorem 3's range with C = 1).
    eps : float
        The fit margin: a fit is below the noise when its clipped train MSE is at most
        ``sigma^2 - eps``; also the theorems' epsilon.
    delta : float
        Failure probability of the floors.
    weight_box : float
        W_inf >= 1, the stated per-coordinate weight box of the floors' W and J.
    input_radius : float
        R, the stated input radius of J_BS (1 for sphere data).
    upper_method, sdp_method, lower_method, support_lower_method : str
        Lipschitz methods (names in ``LIPSCHITZ_METHODS``): a cheap certified upper bound run
        on every member, a tighter SDP bound run on the members that matter (the chosen fit of
        each search, the controls and the constructions), a lower estimate on ``R^d`` and one
        on the sphere (used only for sphere data).
    upper_options, sdp_options, lower_options, support_lower_options : dataclass or None
        Each method's options (its registered options class); None uses its defaults.
    sdp_max_neurons : int
        Run ``sdp_method`` only on networks with at most this many hidden neurons (0: never).
    dtype : {"float32", "float64"}
        Floating-point type of training and measurement.
    """

    sizes: tuple[tuple[int, int], ...]
    inputs: str = "sphere"
    datasets: tuple[int, ...] = (0, 1, 2)
    depth: int = 1
    p_min_over_n: float = 0.5
    p_max_over_nd: float = 4.0
    n_widths: int = 8
    sparse_width: int | None = None
    methods: tuple[str, ...] = ()
    densities: tuple[float, ...] = (0.5, 0.2, 0.1, 0.05, 0.02, 0.01)
    mask_information: tuple[tuple[str, int, int, float, float], ...] = ()
    search_penalty: str = "two-layer-operator"
    search_weights: tuple[float, ...] = (0.1, 0.3, 1.0, 2.0, 3.0, 5.0, 10.0)
    sparse_search_weights: tuple[float, ...] | None = None
    search_restarts: int = 2
    sparse_restarts: int = 1
    fit_weight: float = 30.0
    fit_slack: float = 0.05
    search_lr: float = 1e-2
    search_steps: int = 1500
    control_lr: float = 1e-2
    control_steps: int = 3000
    interpolation_margin: float = 0.01
    constructions: tuple[str, ...] = CONSTRUCTIONS
    grouped_ks: int = 4
    eps: float = 0.5
    delta: float = 0.1
    weight_box: float = 10.0
    input_radius: float = 1.0
    upper_method: str = "spectral"
    upper_options: Any = None
    sdp_method: str = "lipsdp-neuron"
    sdp_options: Any = None
    lower_method: str = "gradient"
    lower_options: Any = None
    support_lower_method: str = "gradient-sphere"
    support_lower_options: Any = None
    sdp_max_neurons: int = 256
    dtype: str = "float32"

    def __post_init__(self) -> None:
        self._check_grid()
        check_choice(self.inputs, "inputs", ("sphere", "gaussian-normalized"))
        check_integer(self.depth, "depth", minimum=1)
        check_interval(self.p_min_over_n, "p_min_over_n", 0, math.inf)
        check_interval(self.p_max_over_nd, "p_max_over_nd", 0, math.inf)
        check_integer(self.n_widths, "n_widths", minimum=2)
        if self.sparse_width is not None:
            check_integer(self.sparse_width, "sparse_width", minimum=1)
        for name in self.methods:
            get_registered(PRUNERS, name, "pruning method")
        check_interval(self.densities, "densities", 0, 1, closed="neither")
        object.__setattr__(self, "mask_information", check_mask_information(self))
        check_choice(self.search_penalty, "search_penalty", SEARCH_PENALTIES)
        get_registered(PENALTIES, self.search_penalty, "penalty")
        if self.depth > 1 and self.search_penalty in _TWO_LAYER_ONLY:
            raise ValidationError(
                f"search_penalty {self.search_penalty!r} is a two-layer proxy; with depth "
                f"{self.depth} use 'spectral'"
            )
        check_interval(self.search_weights, "search_weights", 0, math.inf, closed="left")
        if self.sparse_search_weights is not None:
            object.__setattr__(self, "sparse_search_weights", tuple(self.sparse_search_weights))
            if not self.sparse_search_weights:
                raise ValidationError("sparse_search_weights must not be empty (None: the same)")
            check_interval(self.sparse_search_weights, "sparse_search_weights", 0, math.inf,
                           closed="left")  # fmt: skip
        for name in ("search_restarts", "sparse_restarts", "search_steps", "control_steps"):
            check_integer(getattr(self, name), name, minimum=1)
        check_interval(self.fit_weight, "fit_weight", 0, math.inf)
        check_interval(self.fit_slack, "fit_slack", 0, math.inf, closed="left")
        for name in ("search_lr", "control_lr", "interpolation_margin"):
            check_interval(getattr(self, name), name, 0, math.inf)
        for name in self.constructions:
            check_choice(name, "constructions entry", CONSTRUCTIONS)
        check_integer(self.grouped_ks, "grouped_ks", minimum=1)
        check_interval(self.eps, "eps", 0, 1)
        check_interval(self.delta, "delta", 0, 1)
        if self.eps + self.fit_slack >= 1:
            raise ValidationError(f"eps + fit_slack must be below sigma^2 = 1, got "
                                  f"{self.eps + self.fit_slack}")  # fmt: skip
        check_interval(self.weight_box, "weight_box", 1, math.inf, closed="left")
        check_interval(self.input_radius, "input_radius", 0, math.inf)
        check_integer(self.sdp_max_neurons, "sdp_max_neurons", minimum=0)
        check_choice(self.dtype, "dtype", ("float32", "float64"))
        roles = (("lower", "lower"), ("support_lower", "lower"), ("upper", "upper"),
                 ("sdp", "upper"))  # fmt: skip
        for role, kind in roles:
            _check_lipschitz(getattr(self, f"{role}_method"), getattr(self, f"{role}_options"),
                             role=role, kind=kind)  # fmt: skip

    def _check_grid(self) -> None:
        for name in ("sizes", "datasets", "methods", "densities", "search_weights",
                     "constructions"):  # fmt: skip
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("sizes", "datasets", "search_weights"):
            if not getattr(self, name):
                raise ValidationError(f"{name} must not be empty")
        if self.methods and not self.densities:
            raise ValidationError("densities must not be empty when methods are given")
        sizes = []
        for pair in self.sizes:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValidationError(f"sizes entries must be (n, d) pairs, got {pair!r}")
            n = check_integer(pair[0], "n (sizes entry)", minimum=2)
            d = check_integer(pair[1], "d (sizes entry)", minimum=2)
            sizes.append((n, d))
        if len(set(sizes)) != len(sizes):
            raise ValidationError(f"sizes must not repeat a pair, got {sizes}")
        object.__setattr__(self, "sizes", tuple(sizes))
        for seed in self.datasets:
            check_integer(seed, "datasets entry", minimum=0)
        if len(set(self.datasets)) != len(self.datasets):
            raise ValidationError(f"datasets must not repeat a seed, got {self.datasets}")


def _check_lipschitz(name: str, options: Any, *, role: str, kind: str) -> None:
    """A settings' Lipschitz method must exist, be of ``kind``, and get its own options."""
    entry = get_registered(LIPSCHITZ_METHODS, name, f"Lipschitz method ({role}_method)")
    if entry.kind != kind:
        raise ValidationError(f"{role}_method must be a {kind} method, got {name!r} ({entry.kind})")
    if options is not None and not isinstance(options, entry.options):
        raise ValidationError(
            f"{role}_options must be {entry.options.__name__} for {name!r}, "
            f"got {type(options).__name__}"
        )


def _width_for(p: float, d: int, depth: int) -> int:
    """The hidden width whose MLP ``(d, k, ..., k, 1)`` with biases has about ``p`` parameters."""
    # p(k) = (depth - 1) k^2 + (d + depth + 1) k + 1
    a, b, c = depth - 1, d + depth + 1, 1 - p
    k = (-c / b) if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return max(1, round(k))


def dense_widths(settings: LorScalingSettings, n: int, d: int) -> tuple[int, ...]:
    """The dense widths at ``(n, d)``: parameter counts log-spaced over the settings' range.

    Examples
    --------
    >>> s = LorScalingSettings(sizes=((64, 16),))
    >>> dense_widths(s, 64, 16)
    (2, 3, 7, 14, 28, 57, 114, 228)
    """
    targets = np.geomspace(settings.p_min_over_n * n, settings.p_max_over_nd * n * d,
                           settings.n_widths)  # fmt: skip
    return tuple(sorted({_width_for(float(p), d, settings.depth) for p in targets}))


def expand(settings: LorScalingSettings) -> tuple[WorkUnit, ...]:
    """Split the settings into work units: per ``(n, d, dataset)`` the dense nets, the sparse
    nets and the constructions.

    Examples
    --------
    >>> [u.key for u in expand(PRESETS["tiny"])][:3]
    ['n24-d6-data0-dense', 'n24-d6-data0-sparse-w72', 'n24-d6-data0-constructions']
    """
    units = []
    for n, d in settings.sizes:
        widths = dense_widths(settings, n, d)
        for data in settings.datasets:
            grid = {"n": n, "d": d, "dataset": data}
            prefix = f"n{n}-d{d}-data{data}"
            units.append((f"{prefix}-dense", {**grid, "kind": "dense", "widths": widths}))
            if settings.methods:
                width = settings.sparse_width or widths[-1]
                units.append((f"{prefix}-sparse-w{width}", {**grid, "kind": "sparse",
                                                             "width": width}))  # fmt: skip
            if settings.constructions:
                units.append((f"{prefix}-constructions", {**grid, "kind": "constructions"}))
    return tuple(WorkUnit(key=k, index=i, params=p) for i, (k, p) in enumerate(units))


_ALL_METHODS = ("random", "magnitude", "snip", "grasp", "synflow", "magnitude-after", "imp")

PRESETS = {
    "tiny": LorScalingSettings(
        sizes=((24, 6),),
        datasets=(0, 1),
        p_min_over_n=0.8,
        n_widths=5,
        methods=("random", "snip"),
        densities=(0.3, 0.1),
        search_weights=(0.3, 3.0, 30.0),
        search_restarts=1,
        search_steps=200,
        control_steps=300,
        search_lr=0.03,
        control_lr=0.03,
        grouped_ks=2,
        lower_options=GradientOptions(ascent_steps=5, restarts=2, n_points=128, hop_rounds=5),
        support_lower_options=SphereGradientOptions(
            ascent_steps=5, restarts=2, n_points=128, hop_rounds=5
        ),
        sdp_max_neurons=16,
    ),
    "default": LorScalingSettings(
        sizes=((32, 16), (64, 16), (32, 32)),
        methods=_ALL_METHODS,
        densities=(0.2, 0.05, 0.01),
        sparse_search_weights=(0.3, 1.0, 3.0),
        control_steps=1500,
        lower_options=GradientOptions(ascent_steps=20, restarts=4),
        support_lower_options=SphereGradientOptions(ascent_steps=20, restarts=4),
    ),
    "paper": LorScalingSettings(
        sizes=((256, 32), (1024, 32), (256, 128), (1024, 128)),
        datasets=tuple(range(5)),
        n_widths=10,
        methods=_ALL_METHODS,
        search_weights=(0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0),
        search_restarts=3,
        sparse_restarts=2,
        search_steps=6000,
        control_steps=20000,
        search_lr=3e-3,
        control_lr=3e-3,
        grouped_ks=6,
        lower_options=GradientOptions(ascent_steps=20, restarts=4),
        support_lower_options=SphereGradientOptions(ascent_steps=20, restarts=4),
        sdp_max_neurons=1024,
    ),
}
