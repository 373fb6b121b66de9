r"""The gradient penalty: the size of :math:`\nabla_x f` over data, fresh and adversarial points.

The last Lipschitz proxy of THEORY §7.2 (searching for the smoothest fit): the mean (or max)
over a set of points of the input-gradient norm of each member, differentiated with respect to
the parameters (double backward). It is **not certified**: a small gradient on the points
visited says nothing about the points not visited, so a fit found with it must be measured
afterwards with a certified upper bound (:mod:`robustlaw.empirical.lipschitz`,
:func:`robustlaw.empirical.search.smallest_certified_fit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import torch

from robustlaw._validation import (
    check_bool,
    check_choice,
    check_integer,
    check_interval,
    check_seed,
)
from robustlaw.empirical.data.synthetic import sample_inputs
from robustlaw.empirical.ensemble import ACTIVATIONS
from robustlaw.empirical.training._input_gradients import (
    SUPPORTS,
    ascend,
    forward,
    jacobian_norms,
    mlp_layers,
)
from robustlaw.empirical.training._proxy import PenaltyState, _LipschitzProxy
from robustlaw.errors import ValidationError

__all__ = ["POINT_SETS", "GradientPenalty", "GradientPenaltyState"]

Params = dict[str, torch.Tensor]

#: The point sets a :class:`GradientPenalty` can measure the gradient on.
POINT_SETS = ("data", "fresh", "adversarial")


@dataclass
class GradientPenaltyState(PenaltyState):
    """A :class:`PenaltyState` with the generator of the fresh samples.

    Attributes
    ----------
    generator : torch.Generator or None
        Seeded from ``GradientPenalty.seed`` at ``init``; each call draws new points from it,
        so the samples differ from step to step and the run is reproducible.
    """

    generator: torch.Generator | None = None


@dataclass(frozen=True, kw_only=True)
class GradientPenalty(_LipschitzProxy):
    r"""``weight * reduce_x ||grad_x f(x)||_2`` over data, fresh or adversarial points.

    THEORY §7.2: "max or mean of :math:`\|\nabla_x f\|` over data, fresh samples of
    :math:`\mu` and adversarial points". Per member ``k`` the value is the mean (or max) over
    the chosen points of :math:`\|J_k(x)\|_F`, the Frobenius norm of the input Jacobian
    (:math:`\|\nabla_x f_k(x)\|_2` for a scalar output), in output units per input unit; with
    ``tangential`` it is :math:`\|J_k(x)(I - \hat x\hat x^\top)\|_F`, :math:`\hat x = x/\|x\|`,
    the rate of change along the sphere, which is the constant the proofs use for sphere data
    (THEORY §7.1). The value is differentiated with respect to the parameters through the
    gradient itself (double backward); the points are constants.

    The network is rebuilt from ``params``: the stacked linear layers ``"0.weight"``,
    ``"0.bias"``, ``"2.weight"``, ... of an :class:`~robustlaw.empirical.ensemble.Ensemble`
    (pruned entries are zero in ``params`` already) with ``activation`` between them. The
    penalty cannot see the ensemble's spec, so on its first call it checks that this network
    reproduces the trainer's ``outputs`` and raises otherwise (another activation, or a model
    that is not such an MLP). Not certified: measure the fit with a certified bound afterwards.

    Parameters
    ----------
    weight : float or tuple of float
        Strength (loss units per unit of gradient norm), or one per member.
    fit_target, fit_weight, fit_constraint, multiplier_every
        The fit constraint, as for the other Lipschitz proxies (:mod:`.penalties`).
    points : str or tuple of str
        ``"data"`` (the step's inputs, as given), ``"fresh"`` (``n_fresh`` new samples of
        ``distribution`` every call, shared by the members), ``"adversarial"`` (the step's
        inputs, projected onto the support of ``distribution``, then moved by
        ``ascent_steps`` steps of projected ascent on the gradient norm with the parameters
        held fixed), or a tuple of them (the reduction then runs over all their points
        together). Each set costs about one forward and two backward passes per step, and
        each ascent step as much again.
    reduction : str
        ``"mean"`` (default) or ``"max"`` over the points. The mean moves every point's
        gradient; the max has a gradient at one point per member only, so it moves the
        network slowly and erratically, although it is the closer proxy for ``Lip``.
    tangential : bool
        Measure the tangential gradient on the sphere (needs ``distribution="sphere"``).
    distribution : str
        The input distribution, a key of
        :data:`~robustlaw.empirical.data.synthetic.INPUT_SAMPLERS`: where fresh samples come
        from and the support that adversarial points are projected back onto.
    scale : float
        The inputs' scale, as in :func:`~robustlaw.empirical.data.synthetic.sample_inputs`
        (the sphere's radius; input units).
    n_fresh : int or None
        Fresh samples per call; None draws as many as the step's batch has.
    ascent_steps : int
        Ascent steps for the adversarial points (0 keeps the data projected to the support).
    ascent_step_size : float
        The length of each ascent step (input units).
    ascent_sharpness : float
        During the ascent only, ReLU is replaced by ``softplus(s z) / s`` with this ``s`` (per
        pre-activation unit): a ReLU network's gradient norm is piecewise constant, so its own
        gradient is zero almost everywhere. Each point keeps its iterate where the real
        network's gradient norm is largest, so adversarial points never score below their
        start.
    activation : str
        The network's hidden activation, a key of
        :data:`~robustlaw.empirical.ensemble.ACTIVATIONS`; must match the ensemble's spec.
    seed : int
        Seed of the fresh samples' generator (:class:`GradientPenaltyState`).

    Raises
    ------
    ValidationError
        For a bad field; at the first call, if ``params`` are not a stacked MLP whose outputs
        with ``activation`` match the trainer's, or ``inputs`` do not fit its first layer.

    Examples
    --------
    >>> import torch
    >>> params = {"0.weight": torch.tensor([[[3.0, 4.0]]])}  # f(x) = 3 x_1 + 4 x_2
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> GradientPenalty(weight=1.0)(params, x, None).tolist()
    [5.0]
    >>> GradientPenalty(weight=1.0, tangential=True)(params, x, None).tolist()  # ||w - (w.x)x||
    [3.5]
    """

    name: ClassVar[str] = "gradient"
    points: str | tuple[str, ...] = "data"
    reduction: str = "mean"
    tangential: bool = False
    distribution: str = "sphere"
    scale: float = 1.0
    n_fresh: int | None = None
    ascent_steps: int = 3
    ascent_step_size: float = 0.1
    ascent_sharpness: float = 10.0
    activation: str = "relu"
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        cls = type(self).__name__
        if isinstance(self.points, str):
            check_choice(self.points, f"{cls}.points", POINT_SETS)
        else:
            if not isinstance(self.points, (tuple, list)) or not self.points:
                raise ValidationError(
                    f"{cls}.points must be one of {', '.join(map(repr, POINT_SETS))} or a "
                    f"non-empty tuple of them, got {self.points!r}"
                )
            for entry in self.points:
                check_choice(entry, f"{cls}.points entry", POINT_SETS)
            if len(set(self.points)) != len(self.points):
                raise ValidationError(f"{cls}.points has a repeated entry: {self.points!r}")
            object.__setattr__(self, "points", tuple(self.points))
        check_choice(self.reduction, f"{cls}.reduction", ("mean", "max"))
        check_bool(self.tangential, f"{cls}.tangential")
        check_choice(self.distribution, f"{cls}.distribution", tuple(SUPPORTS))
        if self.tangential and self.distribution != "sphere":
            raise ValidationError(
                f"{cls}.tangential needs distribution='sphere', got {self.distribution!r}"
            )
        check_interval(self.scale, f"{cls}.scale", 0, math.inf, closed="neither", scalar=True)
        if self.n_fresh is not None:
            check_integer(self.n_fresh, f"{cls}.n_fresh", minimum=1)
        check_integer(self.ascent_steps, f"{cls}.ascent_steps", minimum=0)
        for name in ("ascent_step_size", "ascent_sharpness"):
            value = getattr(self, name)
            check_interval(value, f"{cls}.{name}", 0, math.inf, closed="neither", scalar=True)
        check_choice(self.activation, f"{cls}.activation", tuple(ACTIVATIONS))
        check_seed(self.seed, f"{cls}.seed")

    @property
    def point_sets(self) -> tuple[str, ...]:
        """``points`` as a tuple."""
        return (self.points,) if isinstance(self.points, str) else self.points

    def _new_state(self, params: Params) -> GradientPenaltyState:
        mlp_layers(params, type(self).__name__)  # refuse parameters without stacked weights
        return GradientPenaltyState(generator=torch.Generator().manual_seed(self.seed))

    def __call__(
        self,
        params: Params,
        inputs: torch.Tensor | None,
        outputs: torch.Tensor | None,
        state: PenaltyState | None = None,
        targets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if state is None:  # a one-off call: fresh samples from ``seed``, not carried
            state = self.init(params)
        if state.n_steps == 0 and outputs is not None:
            self._check_network(params, inputs, outputs)
        return super().__call__(params, inputs, outputs, state=state, targets=targets)

    # -- machinery --------------------------------------------------------------------------

    def _members_inputs(self, layers, inputs: torch.Tensor | None) -> torch.Tensor:
        """The step's inputs as ``(K, n, d)``, checked against the first layer."""
        cls = type(self).__name__
        w = layers[0][0]
        n_members, n_features = w.shape[0], w.shape[-1]
        if inputs is None:
            raise ValidationError(f"{cls} with points {self.points!r} needs the step's inputs")
        if inputs.ndim not in (2, 3) or inputs.shape[-1] != n_features:
            raise ValidationError(
                f"{cls} needs inputs of shape (n, {n_features}) or ({n_members}, n, "
                f"{n_features}), got {tuple(inputs.shape)}"
            )
        if inputs.ndim == 3 and inputs.shape[0] != n_members:
            raise ValidationError(
                f"{cls}: inputs have {inputs.shape[0]} members, expected {n_members}"
            )
        return inputs.detach().expand(n_members, *inputs.shape[-2:])

    def _check_network(self, params: Params, inputs, outputs: torch.Tensor) -> None:
        """Refuse parameters whose rebuilt MLP does not reproduce the trainer's outputs."""
        layers = mlp_layers(params, type(self).__name__)
        x = self._members_inputs(layers, inputs)
        act = ACTIVATIONS[self.activation]
        with torch.no_grad():
            try:
                rebuilt = forward([(w.detach(), b) for w, b in layers], x, act)
            except RuntimeError as err:
                rebuilt = err
        expected = outputs.detach()
        if isinstance(rebuilt, torch.Tensor) and rebuilt.shape == expected.shape:
            atol = 1e-3 * float(expected.abs().max().clamp_min(1.0))
            if torch.allclose(rebuilt, expected, rtol=1e-3, atol=atol):
                return
        raise ValidationError(
            f"{type(self).__name__} rebuilds the network from params as an MLP with "
            f"activation={self.activation!r} (layers {', '.join(k for k in params)}), but it "
            "does not reproduce the model's outputs: set activation to the ensemble's, or use "
            "another penalty for models that are not such MLPs"
        )

    def _points(self, layers, inputs, state: GradientPenaltyState) -> torch.Tensor:
        """Every point set asked for, concatenated: shape ``(K, m, d)`` (detached)."""
        w = layers[0][0]
        n_members, n_features = w.shape[0], w.shape[-1]
        project = partial(SUPPORTS[self.distribution], scale=self.scale)
        found = []
        for kind in self.point_sets:
            if kind == "fresh":
                if self.n_fresh is None and inputs is None:
                    raise ValidationError(
                        f"{type(self).__name__}: fresh points need n_fresh or the step's inputs"
                    )
                n = self.n_fresh if self.n_fresh is not None else inputs.shape[-2]
                fresh = sample_inputs(
                    self.distribution,
                    n,
                    n_features,
                    scale=self.scale,
                    generator=state.generator,
                    dtype=w.dtype,
                    device=w.device,
                )
                found.append(fresh.expand(n_members, n, n_features))
            elif kind == "data":
                found.append(self._members_inputs(layers, inputs))
            else:
                found.append(
                    ascend(
                        layers,
                        self._members_inputs(layers, inputs),
                        act_name=self.activation,
                        steps=self.ascent_steps,
                        step_size=self.ascent_step_size,
                        sharpness=self.ascent_sharpness,
                        project=project,
                        tangential=self.tangential,
                        on_sphere=self.distribution == "sphere",
                    )
                )
        return torch.cat(found, dim=1)

    def _proxy(self, params: Params, state: PenaltyState, inputs) -> torch.Tensor:
        if not isinstance(state, GradientPenaltyState):  # another penalty's state: no generator
            raise ValidationError(f"{type(self).__name__} needs the state its init returns")
        layers = mlp_layers(params, type(self).__name__)
        x = self._points(layers, inputs, state)
        act = ACTIVATIONS[self.activation]
        norms = jacobian_norms(layers, x, act, tangential=self.tangential, create_graph=True)
        return norms.mean(dim=1) if self.reduction == "mean" else norms.amax(dim=1)
