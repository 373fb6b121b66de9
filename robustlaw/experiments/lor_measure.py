"""One ``lor-scaling`` work unit: build, prune, train and measure an ensemble.

Kept apart from :mod:`robustlaw.experiments.lor_scaling` (settings, presets, expansion) so that
the experiment's definition stays readable. Every member records the quantities listed in
:func:`run_unit`; the theorem constants are chosen as ``THEORY.md`` §2.4 says (Euclidean
diameter of a stated box, ``J_BS``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from robustlaw.experiments.registry import MemberResult, UnitResult, WorkUnit

__all__ = ["members_of", "run_unit"]

logger = logging.getLogger(__name__)


def members_of(settings: Any, unit: WorkUnit) -> list[tuple[str, float, int]]:
    """The ``(method, density, seed)`` of each member of a unit, in member order."""
    if unit.params["kind"] == "dense":
        return [("dense", 1.0, s) for s in settings.seeds]
    return [
        (m, rho, s) for m in settings.methods for rho in settings.densities for s in settings.seeds
    ]


def _train_options(settings: Any, noise_level: float):
    from robustlaw.empirical.training import TrainOptions

    return TrainOptions(
        optimizer="adam",
        lr=settings.lr,
        max_steps=settings.max_steps,
        loss="mse",
        stopping="below_noise",
        noise_level=noise_level,
        fit_eps=settings.eps,
    )


def _lower_estimates(ens, X, settings: Any) -> tuple[np.ndarray, str]:
    """Sound lower estimates (attained gradient norms), one per member."""
    from robustlaw.empirical.lipschitz.lower import gradient_lower_bound

    est = gradient_lower_bound(
        ens,
        X,
        ascent_steps=settings.ascent_steps,
        restarts=settings.restarts,
        generator=torch.Generator().manual_seed(settings.data_seed),
    )
    return np.asarray(est.values, dtype=float), est.method


def _lipsdp(ens, member: int) -> tuple[float | None, str]:
    from robustlaw.empirical.lipschitz.lipsdp import lipsdp
    from robustlaw.empirical.lipschitz.weights import weights_from_ensemble
    from robustlaw.errors import SolverError

    try:
        est = lipsdp(weights_from_ensemble(ens, member), variant="neuron", activation="relu")
    except (SolverError, RuntimeError) as err:  # a failed solve is a status, not a crash
        logger.warning("LipSDP failed on member %d: %s", member, err)
        return None, f"failed: {type(err).__name__}"
    ok = est.certified and est.status.ok
    return (float(est.value) if ok else None), est.status.name.lower()


def _bounds(*, n: int, d: int, p: int, kept: int, info_bits: float, depth: int, c: float, s):
    from robustlaw.bounds.assumptions import k_condition_holds
    from robustlaw.bounds.deep import box_to_euclidean_diameter, parameter_lipschitz_constant
    from robustlaw.bounds.numeric import lipschitz_lower_bound, sparse_lipschitz_lower_bound
    from robustlaw.bounds.peff import effective_parameter_count

    W = float(box_to_euclidean_diameter(W_inf=s.weight_box, p=p))
    J = float(parameter_lipschitz_constant(R=s.input_radius, W_inf=s.weight_box, p=p, D=depth))
    p_eff = float(
        effective_parameter_count(kept=kept, mutual_information_bits=info_bits, W=W, J=J, eps=s.eps)
    )
    common = {"n": n, "d": d, "eps": s.eps, "delta": s.delta, "c": c, "check_assumptions": False}
    return {
        "W": W,
        "J": J,
        "p_eff": p_eff,
        "bound_bs": float(lipschitz_lower_bound(p=p, W=W, J=J, **common)),
        "bound_nfp": float(sparse_lipschitz_lower_bound(p_eff=p_eff, **common)),
        "k_condition_bs": bool(k_condition_holds(n=n, eps=s.eps, delta=s.delta)),
        "k_condition_nfp": bool(
            k_condition_holds(n=n, eps=s.eps, delta=s.delta, k_condition_const=8**3)
        ),
    }


def run_unit(settings: Any, unit: WorkUnit, *, device: str, progress: bool = False) -> UnitResult:
    """Build, prune, train and measure one ensemble of ``lor-scaling``.

    Each member records (units in brackets): ``n``, ``d``, ``width``, ``depth``; ``p`` (all
    weights and biases of the architecture), ``kept`` (kept weights plus biases, the
    ``||m||_1`` of the theorems with biases never pruned), ``kept_weights``, ``prunable``;
    ``data_dependent`` (the method reads data) and ``mask_info_bits`` (the I used in p_eff:
    0 for data-independent masks, else the upper bound ``log2 binom(prunable, kept_weights)``),
    ``mask_entropy_bits`` (that bound, for every pruned member); ``n_steps``, ``train_mse``
    (clipped outputs), ``fit_below_noise``; ``lip_lower`` (gradient-norm lower estimate),
    ``lip_upper`` (certified spectral product), ``lip_lipsdp`` (LipSDP-Neuron, None when the
    net is too large) and its status; ``w_inf`` (largest absolute parameter), ``in_box``,
    ``weight_box``, ``input_radius``, ``input_norm_max``; ``c``, ``sigma2``, ``eps``,
    ``delta``, ``W``, ``J``, ``p_eff`` [bits], ``bound_bs``, ``bound_nfp`` and whether each
    theorem's k-condition holds.
    """
    from robustlaw.bounds.peff import mask_entropy_upper_bound
    from robustlaw.empirical.data.synthetic import random_labels_data
    from robustlaw.empirical.ensemble import MLPSpec, forward, init_mlp_ensemble
    from robustlaw.empirical.lipschitz.spectral import spectral_product
    from robustlaw.empirical.pruning import PrunePlan, get_pruner, prune
    from robustlaw.empirical.training import train_ensemble

    dtype = getattr(torch, settings.dtype)
    n, d, width = unit.params["n"], unit.params["d"], unit.params["width"]
    data = random_labels_data(n, d, seed=settings.data_seed, dtype=dtype, device=device)
    spec = MLPSpec(layer_sizes=(d, *([width] * settings.depth), 1))
    members = members_of(settings, unit)
    ens = init_mlp_ensemble(spec, [s for *_, s in members], dtype=dtype, device=device)
    options = _train_options(settings, float(data.noise_level))
    if unit.params["kind"] == "sparse":
        plans = [PrunePlan(method=m, density=rho, seed=s) for m, rho, s in members]
        ens = prune(ens, plans, data=(data.X, data.y), train_options=options).ensemble
    with tqdm(
        total=settings.max_steps, desc=f"{unit.key} steps", leave=False, disable=not progress
    ) as bar:
        trained = train_ensemble(
            ens, data.X, data.y, options, on_check=lambda step, _: bar.update(step - bar.n)
        )
    ens = trained.to_ensemble(ens)

    with torch.no_grad():
        out = forward(spec, ens.params, ens.masks, data.X).squeeze(-1).clamp(-1.0, 1.0)
        mse = ((out - data.y) ** 2).mean(dim=1).double().cpu().numpy()
        kept_w = sum(m.sum(dim=(1, 2)) for m in ens.masks.values()).cpu().numpy()
        w_inf = torch.stack([v.abs().flatten(1).amax(1) for v in ens.params.values()]).amax(0)
    lower, lower_method = _lower_estimates(ens, data.X, settings)
    upper = spectral_product(ens)
    n_bias = sum(spec.layer_sizes[1:])
    prunable, p = spec.n_weights(), spec.n_weights() + n_bias
    run_sdp = 0 < settings.depth * width <= settings.lipsdp_max_neurons
    c = float(data.isoperimetry_constant)
    results = []
    for i, (method, density, seed) in enumerate(members):
        kept = int(kept_w[i]) + n_bias
        entropy = float(mask_entropy_upper_bound(prunable, int(kept_w[i])))
        dependent = method != "dense" and get_pruner(method).needs_data
        sdp, sdp_status = _lipsdp(ens, i) if run_sdp else (None, "skipped: too large")
        metrics = {
            "n": n,
            "d": d,
            "width": width,
            "depth": settings.depth,
            "p": p,
            "kept": kept,
            "kept_weights": int(kept_w[i]),
            "prunable": prunable,
            "data_dependent": dependent,
            "mask_entropy_bits": entropy,
            "mask_info_bits": entropy if dependent else 0.0,
            "n_steps": int(trained.record.n_steps[i]),
            "train_mse": float(mse[i]),
            "fit_below_noise": bool(mse[i] <= data.noise_level - settings.eps),
            "lip_lower": float(lower[i]),
            "lip_lower_method": lower_method,
            "lip_upper": float(upper.values[i]),
            "lip_upper_certified": bool(upper.certified),
            "lip_lipsdp": sdp,
            "lip_lipsdp_status": sdp_status,
            "w_inf": float(w_inf[i]),
            "in_box": bool(w_inf[i] <= settings.weight_box),
            "weight_box": settings.weight_box,
            "input_radius": settings.input_radius,
            "input_norm_max": float(data.X.norm(dim=1).max()),
            "c": c,
            "sigma2": float(data.noise_level),
            "eps": settings.eps,
            "delta": settings.delta,
        }
        metrics |= _bounds(
            n=n, d=d, p=p, kept=kept, info_bits=metrics["mask_info_bits"],
            depth=spec.n_layers, c=c, s=settings,
        )  # fmt: skip
        results.append(MemberResult(method=method, density=density, seed=seed, metrics=metrics))
    if not math.isfinite(sum(lower)):
        logger.warning("unit %s: a lower estimate is not finite", unit.key)
    return UnitResult(members=tuple(results), dtype=settings.dtype)
