"""Settings, presets and work units of ``lor-scaling``.

For each point of a grid of ``(n, d)``, the data are ``x ~ N(0, I_d/d)`` (isoperimetry
constant ``c = 1``) with random ±1 labels (``sigma^2 = 1``; ``THEORY.md`` §1.1). Dense ReLU
MLPs of growing width and sparse MLPs of one width, pruned by every requested method at several
densities, are trained until they fit below the noise level (train MSE of the clipped outputs
at most ``sigma^2 - eps``). Each trained member is bracketed by a sound Lipschitz lower
estimate and certified upper bounds, and set beside the Bubeck–Sellke bound ([BS] Theorem 3)
and the No Free Prune bound ([NFP] Theorem 4).

Work units: one dense ensemble per ``(n, d, width)`` (its members are the seeds) and one
sparse ensemble per ``(n, d)`` (its members are methods x densities x seeds). All units at one
``(n, d)`` share the same data, drawn from ``data_seed``.

References
----------
Bubeck, Sellke, *A Universal Law of Robustness via Isoperimetry*, NeurIPS 2021
(arXiv:2105.12806). Kumar, Luo, Sellke, *No Free Prune*, ICML 2024 (arXiv:2402.01089).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustlaw._validation import check_choice, check_integer, check_interval, get_registered
from robustlaw.empirical.lipschitz import LIPSCHITZ_METHODS, GradientOptions
from robustlaw.errors import ValidationError
from robustlaw.experiments.registry import WorkUnit

__all__ = ["PRESETS", "LorScalingSettings", "expand"]


@dataclass(frozen=True, kw_only=True)
class LorScalingSettings:
    """Settings of ``lor-scaling``.

    Parameters
    ----------
    n_samples : tuple of int
        Training-set sizes n.
    n_features : tuple of int
        Input dimensions d.
    depth : int
        Hidden layers of every MLP (so ``depth + 1`` linear layers, D in [BS] §3).
    dense_widths : tuple of int
        Hidden widths of the dense MLPs.
    sparse_width : int
        Hidden width of the pruned MLPs.
    methods : tuple of str
        Pruning methods (names in the pruning registry).
    densities : tuple of float
        Fractions of weights kept, each in (0, 1).
    seeds : tuple of int
        Member seeds (initialization and randomized masks).
    data_seed : int
        Seed of the data at every ``(n, d)``.
    lr, max_steps : float, int
        Adam learning rate and step cap (full batch, MSE).
    eps : float
        Fit margin: members must reach train MSE <= 1 - eps; also the bounds' epsilon.
    delta : float
        Failure probability of the bounds.
    weight_box : float
        W_inf >= 1: the stated per-coordinate weight box. W = 2 W_inf sqrt(p) (Euclidean
        diameter) and J_BS = R (W_inf p)^D ([BS] Lemma 3.1, Q = 1); each member records whether
        its weights lie in the box.
    input_radius : float
        R, the stated input radius of J_BS; members record the largest training-input norm.
    lower_method, upper_method, sdp_method : str
        Lipschitz methods (names in ``LIPSCHITZ_METHODS``): a lower estimate, a cheap certified
        upper bound run on every member, and a tighter SDP bound run on small networks.
    lower_options, upper_options, sdp_options : options dataclass, optional
        The options of each method (its registered options class); None uses its defaults.
    sdp_max_neurons : int
        Run ``sdp_method`` only on networks with at most this many hidden neurons (0 disables
        it).
    dtype : {"float32", "float64"}
        Floating-point type of training and measurement.
    """

    n_samples: tuple[int, ...]
    n_features: tuple[int, ...]
    depth: int = 2
    dense_widths: tuple[int, ...]
    sparse_width: int
    methods: tuple[str, ...]
    densities: tuple[float, ...]
    seeds: tuple[int, ...] = (0, 1)
    data_seed: int = 0
    lr: float = 1e-2
    max_steps: int = 2000
    eps: float = 0.5
    delta: float = 0.1
    weight_box: float = 10.0
    input_radius: float = 3.0
    lower_method: str = "gradient"
    lower_options: Any = None
    upper_method: str = "spectral"
    upper_options: Any = None
    sdp_method: str = "lipsdp-neuron"
    sdp_options: Any = None
    sdp_max_neurons: int = 64
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("n_samples", "n_features", "dense_widths", "methods", "densities", "seeds"):
            value = tuple(getattr(self, name))
            if not value:
                raise ValidationError(f"{name} must not be empty")
            object.__setattr__(self, name, value)
        check_interval(self.densities, "densities", 0, 1, closed="neither")
        check_interval(self.eps, "eps", 0, 1)
        check_interval(self.delta, "delta", 0, 1)
        check_interval(self.weight_box, "weight_box", 1, float("inf"), closed="left")
        check_interval(self.input_radius, "input_radius", 0, float("inf"))
        check_integer(self.sdp_max_neurons, "sdp_max_neurons", minimum=0)
        check_choice(self.dtype, "dtype", ("float32", "float64"))
        for role, kind in (("lower", "lower"), ("upper", "upper"), ("sdp", "upper")):
            _check_lipschitz(getattr(self, f"{role}_method"), getattr(self, f"{role}_options"),
                             role=role, kind=kind)  # fmt: skip


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


def expand(settings: LorScalingSettings) -> tuple[WorkUnit, ...]:
    """Split the settings into work units: dense ensembles per width, one sparse per (n, d).

    Examples
    --------
    >>> [u.key for u in expand(PRESETS["tiny"])][:3]
    ['n32-d8-dense-w4', 'n32-d8-dense-w8', 'n32-d8-dense-w16']
    """
    units = []
    for n in settings.n_samples:
        for d in settings.n_features:
            grid = {"n": n, "d": d}
            for width in settings.dense_widths:
                params = {**grid, "width": width, "kind": "dense"}
                units.append((f"n{n}-d{d}-dense-w{width}", params))
            params = {**grid, "width": settings.sparse_width, "kind": "sparse"}
            units.append((f"n{n}-d{d}-sparse-w{settings.sparse_width}", params))
    return tuple(WorkUnit(key=k, index=i, params=p) for i, (k, p) in enumerate(units))


_ALL_METHODS = ("random", "magnitude", "snip", "grasp", "synflow", "magnitude-after", "imp")

PRESETS = {
    "tiny": LorScalingSettings(
        n_samples=(32,),
        n_features=(8,),
        dense_widths=(4, 8, 16, 32),
        sparse_width=16,
        methods=("random", "snip"),
        densities=(0.5, 0.25),
        seeds=(0, 1),
        lr=0.02,
        max_steps=800,
        lower_options=GradientOptions(ascent_steps=5, restarts=2),
        sdp_max_neurons=16,
    ),
    "default": LorScalingSettings(
        n_samples=(64, 128),
        n_features=(16,),
        dense_widths=(8, 16, 32, 64, 128),
        sparse_width=128,
        methods=_ALL_METHODS,
        densities=(0.5, 0.25, 0.1),
        seeds=(0, 1, 2),
        max_steps=1000,
        lower_options=GradientOptions(ascent_steps=20, restarts=4),
    ),
    "paper": LorScalingSettings(
        n_samples=(256, 1024, 4096),
        n_features=(32, 128),
        dense_widths=(16, 32, 64, 128, 256, 512, 1024),
        sparse_width=1024,
        methods=_ALL_METHODS,
        densities=(0.8, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01),
        seeds=tuple(range(10)),
        max_steps=20000,
        lr=3e-3,
        dtype="float32",
        lower_options=GradientOptions(ascent_steps=20, restarts=4),
        sdp_max_neurons=1024,
    ),
}
