"""Keep-scores of the pruning-at-initialization methods (``METHODS.md`` §3.1–3.5).

Every scorer takes a :class:`~robustlaw.empirical.pruning._context.PruneContext` and returns one
float tensor of keep-scores per prunable parameter (weights, and biases when the plan prunes
them), with the member axis first; larger means more important. All members of a group are
scored at once: members are independent, so the gradient of the *sum* over members of
per-member mean losses holds every member's own gradient, and the same holds for
Hessian-gradient products (the Hessian of the sum is block-diagonal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from robustlaw._validation import MAX_SEED, check_bool, check_choice, check_integer
from robustlaw.empirical.pruning._architectures import architecture, stream
from robustlaw.empirical.pruning._context import PruneContext
from robustlaw.empirical.pruning._data import member_losses
from robustlaw.errors import ValidationError

__all__ = [
    "GraspOptions",
    "MagnitudeOptions",
    "PrunerOutput",
    "RandomOptions",
    "SnipOptions",
    "SynflowOptions",
    "grasp_abs_scores",
    "grasp_hessian_gradient",
    "grasp_scores",
    "magnitude_scores",
    "one_shot",
    "prune_grasp",
    "prune_grasp_abs",
    "prune_magnitude",
    "prune_random",
    "prune_snip",
    "prune_synflow",
    "random_scores",
    "snip_scores",
    "synflow_scores",
]

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class PrunerOutput:
    """What a pruner returns: new masks, optional new parameters, the scope actually used."""

    masks: Tensors
    params: Tensors | None = None
    scope: str | None = None


def _check_optional_count(value, name: str) -> None:
    if value is not None:
        check_integer(value, name, minimum=1)


@dataclass(frozen=True, kw_only=True)
class RandomOptions:
    """Options of random pruning.

    Parameters
    ----------
    exact : bool
        False (``random``): i.i.d. ``U(0, 1)`` scores under the plan's scope (global by default),
        so each layer lands near the target up to binomial fluctuation. True
        (``random-exact``): every layer keeps a uniform subset of exactly
        ``N_l - ceil(s N_l - 1e-9)`` entries.
    """

    exact: bool = False

    def __post_init__(self) -> None:
        check_bool(self.exact, "exact")


@dataclass(frozen=True, kw_only=True)
class MagnitudeOptions:
    """Magnitude pruning at initialization has no options."""


@dataclass(frozen=True, kw_only=True)
class SnipOptions:
    """Options of SNIP (Lee et al., ICLR 2019).

    Parameters
    ----------
    samples_per_class : int or None
        Examples per class of the seeded class-balanced scoring subset (default 10); ``None``
        uses all data. Regression draws ``2 * samples_per_class`` examples uniformly.
    reduce : {"abs-of-sum", "mean-of-abs"}
        Multi-batch reduction: ``|θ ⊙ Σ_b w_b g_b|`` (Synaptic-Flow) or ``Σ_b w_b |θ ⊙ g_b|``
        (Missing the Mark), with batch-size weights ``w_b``. They agree for one batch.
    batch_size : int or None
        Split the subset into batches of this size (``None``: one batch, the default).
    """

    samples_per_class: int | None = 10
    reduce: str = "abs-of-sum"
    batch_size: int | None = None

    def __post_init__(self) -> None:
        _check_optional_count(self.samples_per_class, "samples_per_class")
        _check_optional_count(self.batch_size, "batch_size")
        check_choice(self.reduce, "reduce", ("abs-of-sum", "mean-of-abs"))


@dataclass(frozen=True, kw_only=True)
class GraspOptions:
    """Options of GraSP (Wang et al., ICLR 2020).

    Parameters
    ----------
    temperature : float
        Logits are divided by it in both passes (default 200). It applies to the
        classification losses (cross-entropy, logistic); MSE outputs are regression values,
        not logits, and are never divided.
    samples_per_class : int or None
        As in :class:`SnipOptions` (default 10).
    batch_mode : {"same", "split-halves"}
        ``same``: ``g`` and ``Hg`` from one batch (Missing the Mark). ``split-halves`` (the
        official code): ``g`` summed over two halves, ``Hg = Σ_h H_h g``.
    reinit_linear : bool
        Score a copy whose weights are redrawn from ``xavier_normal`` (the official code);
        the copy of member ``k`` draws layer ``l`` from the seed ``seed_k + l``.
    """

    temperature: float = 200.0
    samples_per_class: int | None = 10
    batch_mode: str = "same"
    reinit_linear: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValidationError(f"temperature must be positive, got {self.temperature!r}")
        _check_optional_count(self.samples_per_class, "samples_per_class")
        check_choice(self.batch_mode, "batch_mode", ("same", "split-halves"))
        check_bool(self.reinit_linear, "reinit_linear")


@dataclass(frozen=True, kw_only=True)
class SynflowOptions:
    """Options of SynFlow (Tanaka et al., NeurIPS 2020).

    Parameters
    ----------
    iterations : int
        Pruning rounds ``n`` (default 100); the last one lands on the target exactly.
    schedule : {"exponential", "linear"}
        Density after round ``k``: ``d**(k/n)`` or ``1 - (1 - d) k / n``.
    dtype : {"float64", "float32"}
        Scoring precision (default float64; the parameters keep their own dtype).
    """

    iterations: int = 100
    schedule: str = "exponential"
    dtype: str = "float64"

    def __post_init__(self) -> None:
        check_integer(self.iterations, "iterations", minimum=1)
        check_choice(self.schedule, "schedule", ("exponential", "linear"))
        check_choice(self.dtype, "dtype", ("float64", "float32"))


def _layer_generator(seed: int, layer: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed + layer) % (MAX_SEED + 1))


def random_scores(ctx: PruneContext) -> Tensors:
    """i.i.d. ``U(0, 1)`` keep-scores; member ``k``'s tensor ``t`` uses the seed ``seed_k + t``.

    ``t = l`` for the ``l``-th prunable weight and ``t = L + b`` for the ``b``-th bias (``L``
    weights): for an MLP, layer ``l``'s weight and bias.
    """
    return {
        k: torch.stack(
            [
                torch.rand(
                    ctx.params[k].shape[1:], generator=_layer_generator(s, stream(ctx.ensemble, k))
                )
                for s in ctx.seeds
            ]
        ).to(ctx.params[k].device)
        for k in ctx.names
    }


def prune_random(ctx: PruneContext) -> PrunerOutput:
    if ctx.options.exact:
        ctx = replace(ctx, scope="layerwise")
    return PrunerOutput(ctx.select(random_scores(ctx)), scope=ctx.scope)


def magnitude_scores(ctx: PruneContext) -> Tensors:
    """Keep-score ``|θ|`` of the current parameters (``|θ_0|`` at initialization)."""
    return {k: ctx.params[k].detach().abs() for k in ctx.names}


def _leaves(tensors: Tensors, names) -> Tensors:
    return {k: tensors[k].detach().clone().requires_grad_(True) for k in names}


def _subset(ctx: PruneContext, samples_per_class: int | None) -> torch.Tensor:
    if ctx.data is None:
        raise ValidationError("this method scores on data; pass data=(X, y)")
    return ctx.data.indices(ctx.seeds, samples_per_class)


def snip_scores(ctx: PruneContext) -> Tensors:
    """SNIP keep-score ``|θ ⊙ ∇_θ L|`` = ``|∂L/∂m|`` at ``m = 1`` (per-member mean loss)."""
    opts: SnipOptions = ctx.options
    idx = _subset(ctx, opts.samples_per_class).transpose(1, 2).flatten(1)
    chunks = [idx] if opts.batch_size is None else list(idx.split(opts.batch_size, dim=1))
    w = _leaves(ctx.params, ctx.names)
    acc = {k: torch.zeros_like(v) for k, v in w.items()}
    for chunk in chunks:
        x, y = ctx.data.gather(chunk)
        total = member_losses(ctx.forward(w, x), y, ctx.data.loss).sum()
        grads = torch.autograd.grad(total, list(w.values()))
        weight = chunk.shape[1] / idx.shape[1]
        for (k, theta), g in zip(w.items(), grads, strict=True):
            acc[k] += weight * (g if opts.reduce == "abs-of-sum" else (theta.detach() * g).abs())
    if opts.reduce == "abs-of-sum":
        return {k: (w[k].detach() * acc[k]).abs() for k in w}
    return acc


def _xavier_copy(ctx: PruneContext) -> Tensors:
    """Weights redrawn from ``xavier_normal``; biases kept, as the official code leaves them.

    A weight of shape ``(out, in, *kernel)`` has ``fan_in = in * prod(kernel)`` and
    ``fan_out = out * prod(kernel)``, as in ``torch.nn.init``.
    """
    biases = architecture(ctx.ensemble).bias_names(ctx.ensemble)
    out = {}
    for k in ctx.names:
        if k in biases:
            out[k] = ctx.params[k]
            continue
        shape = ctx.params[k].shape[1:]
        receptive = math.prod(shape[2:])
        fan_out, fan_in = shape[0] * receptive, shape[1] * receptive
        std = math.sqrt(2.0 / (fan_in + fan_out))
        draws = [
            torch.randn(shape, generator=_layer_generator(s, stream(ctx.ensemble, k)))
            for s in ctx.seeds
        ]
        out[k] = (torch.stack(draws) * std).to(ctx.params[k])
    return out


def grasp_hessian_gradient(ctx: PruneContext) -> tuple[Tensors, Tensors]:
    """The weights GraSP scores and their Hessian-gradient product ``Hg`` (double backprop).

    ``Hg = ∇_θ ⟨sg(g), ∇_θ L⟩`` with ``g = ∇_θ L``, summed over the batch parts of
    ``batch_mode`` (``Σ_h H_h g`` with ``g = Σ_h g_h`` for ``split-halves``).

    Returns
    -------
    theta, hg : dict of str to torch.Tensor
        The scored weights (a re-initialized copy under ``reinit_linear``) and ``Hg``.
    """
    opts: GraspOptions = ctx.options
    idx = _subset(ctx, opts.samples_per_class)
    if opts.batch_mode == "split-halves":
        half = idx.shape[2] // 2
        if half == 0:
            raise ValidationError("batch_mode='split-halves' needs samples_per_class >= 2")
        parts = [idx[:, :, :half], idx[:, :, half:]]
    else:
        parts = [idx]
    theta = _xavier_copy(ctx) if opts.reinit_linear else ctx.params
    scale = 1.0 if ctx.data.loss == "mse" else 1.0 / opts.temperature
    w = _leaves(theta, ctx.names)
    grads = []
    for part in parts:
        x, y = ctx.data.gather(part.transpose(1, 2).flatten(1))
        total = member_losses(ctx.forward(w, x) * scale, y, ctx.data.loss).sum()
        grads.append(torch.autograd.grad(total, list(w.values()), create_graph=True))
    g_ref = [sum(gs).detach() for gs in zip(*grads, strict=True)]
    z = sum((gr * g).sum() for gs in grads for gr, g in zip(g_ref, gs, strict=True))
    hg = torch.autograd.grad(z, list(w.values()))
    return {k: theta[k].detach() for k in ctx.names}, dict(zip(ctx.names, hg, strict=True))


def grasp_scores(ctx: PruneContext) -> Tensors:
    """GraSP keep-score ``θ ⊙ Hg = -S``: GraSP prunes the highest ``S = -θ ⊙ Hg``."""
    theta, hg = grasp_hessian_gradient(ctx)
    return {k: theta[k] * hg[k] for k in theta}


def grasp_abs_scores(ctx: PruneContext) -> Tensors:
    """Absolute GraSP keep-score ``|θ ⊙ Hg|`` (the improved GraSP of Missing the Mark)."""
    return {k: v.abs() for k, v in grasp_scores(ctx).items()}


def synflow_scores(abs_params: Tensors, alive: Tensors, ctx: PruneContext) -> Tensors:
    """SynFlow keep-score ``|θ ⊙ ∂R/∂θ|`` with ``R = Σ f(1; |θ| ⊙ m)`` (all-ones input).

    As in the Synaptic-Flow reference, every parameter enters ``R`` by its absolute value,
    biases included; a prunable bias ``b`` scores ``|b ∂R/∂b|``.
    """
    example = architecture(ctx.ensemble).example_shape(ctx.ensemble)
    x = torch.ones(1, *example, dtype=abs_params[ctx.names[0]].dtype)
    w = _leaves(abs_params, ctx.names)
    total = ctx.forward({**abs_params, **w}, x.to(w[ctx.names[0]].device), alive).sum()
    grads = torch.autograd.grad(total, list(w.values()))
    return {k: (w[k] * g).detach().abs() for k, g in zip(w, grads, strict=True)}


def prune_synflow(ctx: PruneContext) -> PrunerOutput:
    opts: SynflowOptions = ctx.options
    dtype = getattr(torch, opts.dtype)
    abs_params = {k: v.detach().abs().to(dtype) for k, v in ctx.params.items()}
    alive = {k: ctx.masks[k] for k in ctx.names}
    n = opts.iterations
    for it in range(1, n + 1):
        if it == n:
            densities = ctx.densities
        elif opts.schedule == "exponential":
            densities = tuple(d ** (it / n) for d in ctx.densities)
        else:
            densities = tuple(1.0 - (1.0 - d) * it / n for d in ctx.densities)
        alive = ctx.select(synflow_scores(abs_params, alive, ctx), densities, alive)
    return PrunerOutput(alive)


def one_shot(score):
    """A pruner that thresholds ``score(ctx)`` once under the group's scope."""

    def run(ctx: PruneContext) -> PrunerOutput:
        return PrunerOutput(ctx.select(score(ctx)))

    run.__doc__ = f"One-shot pruning by :func:`{score.__name__}`."
    return run


prune_magnitude = one_shot(magnitude_scores)
prune_snip = one_shot(snip_scores)
prune_grasp = one_shot(grasp_scores)
prune_grasp_abs = one_shot(grasp_abs_scores)
