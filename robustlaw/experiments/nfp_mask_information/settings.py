"""Settings, presets and work units of ``nfp-mask-information`` (No Free Prune Fig. 4).

The toy model of NFP Fig. 4 (``THEORY.md`` §6.4): ``n_samples = 6`` points of {±1}^3, drawn
without replacement by default, with i.i.d. uniform ±1 outputs. Two model variants
(:data:`VARIANTS`):

- ``regression``: one hidden ReLU layer of width 4 and a scalar output trained on MSE,
  ``3·4 + 4 + 4 + 1 = 21`` parameters;
- ``classification``: hidden width 3 trained on cross-entropy. The paper's "21 parameters"
  matches no obvious head, so the head is a setting (:data:`HEADS`): two logits (the default,
  20 parameters) or one logit with the logistic loss (16). Records carry the count.

Every parameter is prunable, biases included (``PrunePlan(prune_biases=True)``). Both variants
train by full-batch gradient descent (SGD without momentum) for a fixed number of steps, so the
mask is a deterministic function of (init, data) and ``I(m; D | init) = H(m | init)``.

Choices the paper leaves open, with their defaults: the learning rate (0.2) and step count
(500), chosen so that the dense regression net fits (every squared error at most 0.1) at
least 97% of the datasets at every default init; the initializer (PyTorch's Kaiming-uniform,
scale 1); the classification head (two logits); SNIP and GraSP score on all six points; IMP
removes 20% of the remaining parameters per level and rewinds to the init.

Work units: one per (variant, init). A unit trains every dataset it needs as one ensemble whose
members share the init: all datasets of the space when ``exact`` is set, else the distinct
datasets among the ``n_sampled`` draws.

References
----------
Kumar, Luo, Sellke, *No Free Prune: Information-Theoretic Barriers to Pruning at
Initialization*, ICML 2024 (arXiv:2402.01089), §4, Fig. 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robustlaw._validation import (
    check_bool,
    check_choice,
    check_integer,
    check_interval,
    check_seed,
    get_registered,
)
from robustlaw.empirical.ensemble import INITIALIZERS, MLPSpec
from robustlaw.empirical.information import ENTROPY_ESTIMATORS
from robustlaw.empirical.pruning import PRUNERS
from robustlaw.errors import ValidationError
from robustlaw.experiments.registry import WorkUnit

__all__ = ["HEADS", "PRESETS", "VARIANTS", "MaskInformationSettings", "Model", "expand"]


@dataclass(frozen=True, kw_only=True)
class Model:
    """One variant's network and loss: ``(d, width, n_outputs)`` with biases, ReLU."""

    width: int
    n_outputs: int
    loss: str

    def spec(self, settings: MaskInformationSettings) -> MLPSpec:
        """The MLP architecture of this variant."""
        sizes = (settings.n_features, self.width, self.n_outputs)
        return MLPSpec(layer_sizes=sizes, init=settings.init)

    def n_params(self, settings: MaskInformationSettings) -> int:
        """Weights plus biases: every one of them is prunable."""
        return (settings.n_features + 1) * self.width + (self.width + 1) * self.n_outputs


HEADS = {
    "two-logit": {"n_outputs": 2, "loss": "cross-entropy"},
    "one-logit": {"n_outputs": 1, "loss": "logistic"},
}
"""Classification heads: two logits with softmax cross-entropy, or one logit with the logistic
loss (labels ±1). Both are cross-entropy losses; only the parameter count differs."""

VARIANTS = {
    "regression": lambda s: Model(width=s.regression_width, n_outputs=1, loss="mse"),
    "classification": lambda s: Model(width=s.classification_width, **HEADS[s.classification_head]),
}
"""The model variants of NFP Fig. 4, each ``settings -> Model``."""

METHODS = ("imp", "magnitude-after", "snip", "grasp", "synflow")
"""NFP Fig. 4's methods, plus SynFlow as the check (its mask ignores the data: 0 bits)."""


@dataclass(frozen=True, kw_only=True)
class MaskInformationSettings:
    """Settings of ``nfp-mask-information``.

    Parameters
    ----------
    variants : tuple of str
        Keys of :data:`VARIANTS`: ``"regression"`` and/or ``"classification"``.
    inits : tuple of int
        Seeds of the fixed initializations; each (variant, init) is one curve and one unit.
    n_samples, n_features : int
        The points per dataset and the cube's dimension (NFP: 6 and 3).
    replace : bool
        Whether the points are drawn with replacement (default False, ``THEORY.md`` §6.4).
    regression_width, classification_width : int
        Hidden widths (NFP: 4 and 3).
    classification_head : str
        A key of :data:`HEADS` (default ``"two-logit"``).
    methods : tuple of str
        Pruning methods (keys of ``PRUNERS`` that can prune biases).
    n_pruned : tuple of int or None
        Numbers of parameters pruned, each between 0 and the variant's parameter count; None
        takes every count ``0 .. p``.
    init : str
        The initializer, a key of ``INITIALIZERS`` (default PyTorch's Kaiming-uniform).
    init_scale : float
        Factor on every initial parameter (default 1).
    lr : float
        The gradient-descent step size.
    steps : int
        Full-batch steps of every training (dense, and each IMP level from the init).
    imp_rate : float
        Fraction of the remaining parameters IMP removes per level (NFP: 0.2).
    synflow_iterations : int
        SynFlow's pruning rounds (default 100, the reference's).
    prune_seed : int
        The pruning seed of every plan (used by random pruning only).
    exact : bool
        Compute ``H(m | init)`` exactly over every dataset of the space (costs training all
        of them: 1792 without replacement, 54 264 with).
    n_sampled : int
        Datasets drawn i.i.d. for the sampled estimates (NFP: 32 000); 0 draws none.
    sample_seed : int
        Seeds the draws.
    estimators : tuple of str
        Sampled estimators, keys of ``ENTROPY_ESTIMATORS`` (NFP: the plug-in).
    n_boot : int
        Bootstrap resamples of each sampled estimate's interval (0: none).
    level : float
        The intervals' coverage.
    dtype : {"float64", "float32"}
        Training precision (float64 by default: ranks of trained magnitudes that tie to the
        last bit are decided by rounding, so more bits make the masks more reproducible).
    """

    variants: tuple[str, ...] = ("regression", "classification")
    inits: tuple[int, ...] = (0, 1, 2)
    n_samples: int = 6
    n_features: int = 3
    replace: bool = False
    regression_width: int = 4
    classification_width: int = 3
    classification_head: str = "two-logit"
    methods: tuple[str, ...] = METHODS
    n_pruned: tuple[int, ...] | None = None
    init: str = "kaiming-uniform"
    init_scale: float = 1.0
    lr: float = 0.2
    steps: int = 500
    imp_rate: float = 0.2
    synflow_iterations: int = 100
    prune_seed: int = 0
    exact: bool = True
    n_sampled: int = 32_000
    sample_seed: int = 0
    estimators: tuple[str, ...] = ("plug-in", "miller-madow")
    n_boot: int = 100
    level: float = 0.95
    dtype: str = "float64"

    def __post_init__(self) -> None:
        for name in ("variants", "inits", "methods", "estimators"):
            values = tuple(getattr(self, name))
            if not values or len(set(values)) < len(values):
                raise ValidationError(f"{name} must be non-empty without repeats, got {values}")
            object.__setattr__(self, name, values)
        for name in self.variants:
            get_registered(VARIANTS, name, "variant")
        for seed in self.inits:
            check_seed(seed, "inits entry")
        check_integer(self.n_samples, "n_samples", minimum=1)
        check_integer(self.n_features, "n_features", minimum=1, maximum=20)
        check_bool(self.replace, "replace")
        if not self.replace and self.n_samples > 2**self.n_features:
            raise ValidationError(
                f"n_samples={self.n_samples} distinct points need at most 2**n_features = "
                f"{2**self.n_features}; lower n_samples or set replace=True"
            )
        for name in ("regression_width", "classification_width", "steps", "synflow_iterations"):
            check_integer(getattr(self, name), name, minimum=1)
        get_registered(HEADS, self.classification_head, "classification head")
        for name in self.methods:
            if not get_registered(PRUNERS, name, "pruning method").prunes_biases:
                raise ValidationError(f"method {name!r} cannot prune biases; every parameter "
                                      "of the toy model is prunable")  # fmt: skip
        self._check_counts()
        get_registered(INITIALIZERS, self.init, "init")
        for name in ("init_scale", "lr"):
            check_interval(getattr(self, name), name, 0, math.inf, scalar=True)
        check_interval(self.imp_rate, "imp_rate", 0, 1, scalar=True)
        check_seed(self.prune_seed, "prune_seed")
        check_bool(self.exact, "exact")
        check_integer(self.n_sampled, "n_sampled", minimum=0)
        if not self.exact and self.n_sampled == 0:
            raise ValidationError("exact=False with n_sampled=0 estimates nothing; set one")
        check_seed(self.sample_seed, "sample_seed")
        for name in self.estimators:
            get_registered(ENTROPY_ESTIMATORS, name, "entropy estimator")
        check_integer(self.n_boot, "n_boot", minimum=0)
        check_interval(self.level, "level", 0, 1, scalar=True)
        check_choice(self.dtype, "dtype", ("float64", "float32"))

    def _check_counts(self) -> None:
        if self.n_pruned is None:
            return
        counts = tuple(self.n_pruned)
        if not counts or len(set(counts)) < len(counts):
            raise ValidationError(f"n_pruned must be non-empty without repeats, got {counts}")
        top = min(self.model(v).n_params(self) for v in self.variants)
        for k in counts:
            check_integer(k, "n_pruned entry", minimum=0, maximum=top)
        object.__setattr__(self, "n_pruned", counts)

    def model(self, variant: str) -> Model:
        """The network and loss of ``variant``."""
        return get_registered(VARIANTS, variant, "variant")(self)

    def pruned_counts(self, variant: str) -> tuple[int, ...]:
        """The numbers of parameters pruned for ``variant``, increasing.

        Examples
        --------
        >>> MaskInformationSettings().pruned_counts("classification")[-3:]
        (18, 19, 20)
        """
        p = self.model(variant).n_params(self)
        return tuple(sorted(self.n_pruned)) if self.n_pruned is not None else tuple(range(p + 1))


def expand(settings: MaskInformationSettings) -> tuple[WorkUnit, ...]:
    """One unit per (variant, init).

    Examples
    --------
    >>> [u.key for u in expand(PRESETS["default"])][:2]
    ['regression-init0', 'regression-init1']
    """
    grid = [(v, i) for v in settings.variants for i in settings.inits]
    return tuple(
        WorkUnit(key=f"{v}-init{i}", index=j, params={"variant": v, "init": i})
        for j, (v, i) in enumerate(grid)
    )


PRESETS = {
    "tiny": MaskInformationSettings(
        variants=("regression",),
        inits=(0,),
        methods=(*METHODS, "random"),
        n_pruned=(0, 3, 6, 10, 21),
        steps=200,
        synflow_iterations=20,
        n_sampled=300,
        n_boot=50,
    ),
    "default": MaskInformationSettings(),
    "paper": MaskInformationSettings(inits=tuple(range(10)), n_boot=1000),
}
