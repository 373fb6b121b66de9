"""Batched training of masked ensembles; its options by part.

:class:`TrainOptions` composes the parts, each a small frozen dataclass from a registry (a part
may also be given by its registered name, hyphen-separated):

========================  ==============================================  ==================
part                      classes                                         registry
========================  ==============================================  ==================
``optimizer``             :class:`SGD`, :class:`Adam`, :class:`AdamW`     :data:`OPTIMIZERS`
``loss``                  :class:`MSE`, :class:`CrossEntropy`,            :data:`LOSSES`
                          :class:`Logistic`
``stopping``              :class:`MaxSteps`, :class:`BelowNoise`,         :data:`STOPPING_RULES`
                          :class:`Memorized`, :class:`Converged`,
                          :class:`AccuracyPlateau`, :class:`AnyOf`
``gradient_noise``        :class:`GaussianGradientNoise`                  :data:`GRADIENT_NOISES`
``penalty``               :class:`L2Penalty`, :class:`SpectralPenalty`,   :data:`PENALTIES`
                          :class:`TwoLayerOperatorPenalty`,
                          :class:`PathNormPenalty`,
                          :class:`GradientPenalty`
``constraint``            :class:`SpectralBall`                           :data:`CONSTRAINTS`
========================  ==============================================  ==================

:func:`train_ensemble` and :func:`train_params` run the training and return a
:class:`TrainResult`.

Examples
--------
>>> opts = TrainOptions(optimizer=SGD(lr=0.05, momentum=0.9), loss="cross-entropy",
...                     stopping=Memorized(), max_steps=200, batch_size=32)
>>> opts.loss
CrossEntropy(fit_margin=0.06931471805599453)
"""

from robustlaw.empirical.training.constraints import (
    CONSTRAINTS,
    Constraint,
    ConstraintState,
    SpectralBall,
    resolve_constraint,
)
from robustlaw.empirical.training.gradient_penalty import GradientPenalty, GradientPenaltyState
from robustlaw.empirical.training.losses import (
    LOSSES,
    MSE,
    CrossEntropy,
    Logistic,
    Loss,
    prepare_targets,
    resolve_loss,
)
from robustlaw.empirical.training.noise import (
    GRADIENT_NOISES,
    GaussianGradientNoise,
    GradientNoise,
    resolve_gradient_noise,
)
from robustlaw.empirical.training.optimizers import (
    OPTIMIZERS,
    SGD,
    Adam,
    AdamW,
    Optimizer,
    resolve_optimizer,
)
from robustlaw.empirical.training.options import TrainOptions
from robustlaw.empirical.training.penalties import (
    FIT_CONSTRAINTS,
    PENALTIES,
    L2Penalty,
    PathNormPenalty,
    Penalty,
    PenaltyState,
    SpectralPenalty,
    TwoLayerOperatorPenalty,
    resolve_penalty,
)
from robustlaw.empirical.training.stopping import (
    STOPPING_RULES,
    AccuracyPlateau,
    AnyOf,
    BelowNoise,
    CheckPass,
    Converged,
    MaxSteps,
    Memorized,
    StoppingRule,
    resolve_stopping,
    train_accuracy,
)
from robustlaw.empirical.training.train import (
    DIVERGENCE_FACTOR,
    TrainRecord,
    TrainResult,
    train_ensemble,
    train_params,
)

__all__ = [
    "CONSTRAINTS",
    "DIVERGENCE_FACTOR",
    "FIT_CONSTRAINTS",
    "GRADIENT_NOISES",
    "LOSSES",
    "MSE",
    "OPTIMIZERS",
    "PENALTIES",
    "SGD",
    "STOPPING_RULES",
    "AccuracyPlateau",
    "Adam",
    "AdamW",
    "AnyOf",
    "BelowNoise",
    "CheckPass",
    "Constraint",
    "ConstraintState",
    "Converged",
    "CrossEntropy",
    "GaussianGradientNoise",
    "GradientNoise",
    "GradientPenalty",
    "GradientPenaltyState",
    "L2Penalty",
    "Logistic",
    "Loss",
    "MaxSteps",
    "Memorized",
    "Optimizer",
    "PathNormPenalty",
    "Penalty",
    "PenaltyState",
    "SpectralBall",
    "SpectralPenalty",
    "StoppingRule",
    "TrainOptions",
    "TrainRecord",
    "TrainResult",
    "TwoLayerOperatorPenalty",
    "prepare_targets",
    "resolve_constraint",
    "resolve_gradient_noise",
    "resolve_loss",
    "resolve_optimizer",
    "resolve_penalty",
    "resolve_stopping",
    "train_accuracy",
    "train_ensemble",
    "train_params",
]
