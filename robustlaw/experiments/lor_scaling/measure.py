"""One ``lor-scaling`` work unit: build, prune, train and measure an ensemble.

Every member becomes one :class:`~robustlaw.experiments.lor_scaling.record.LorScalingRecord`.
Lipschitz estimates go through :func:`~robustlaw.empirical.lipschitz.estimate_lipschitz` with
the methods the settings name; a failed estimate is a recorded status (value None), never a
crash. The theorem constants are chosen as ``THEORY.md`` §2.4 says (Euclidean diameter of a
stated box, ``J_BS``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from robustlaw.bounds.assumptions import k_condition_holds
from robustlaw.bounds.deep import (
    box_to_euclidean_diameter,
    mlp_parameter_count,
    parameter_lipschitz_constant,
)
from robustlaw.bounds.numeric import lipschitz_lower_bound, sparse_lipschitz_lower_bound
from robustlaw.bounds.peff import effective_parameter_count, mask_entropy_upper_bound
from robustlaw.empirical.data.synthetic import random_labels_data
from robustlaw.empirical.ensemble import MLPSpec, forward, init_mlp_ensemble
from robustlaw.empirical.lipschitz import estimate_lipschitz, weights_from_ensemble
from robustlaw.empirical.pruning import PrunePlan, get_pruner, prune
from robustlaw.empirical.training import MSE, Adam, BelowNoise, TrainOptions, train_ensemble
from robustlaw.experiments.lor_scaling.record import LorScalingRecord
from robustlaw.experiments.registry import WorkUnit

__all__ = ["measure", "members_of"]

logger = logging.getLogger(__name__)


def members_of(settings: Any, unit: WorkUnit) -> list[tuple[str, float, int]]:
    """The ``(method, density, seed)`` of each member of a unit, in member order."""
    if unit.params["kind"] == "dense":
        return [("dense", 1.0, s) for s in settings.seeds]
    return [
        (m, rho, s) for m in settings.methods for rho in settings.densities for s in settings.seeds
    ]


def _train_options(settings: Any, noise_level: float) -> TrainOptions:
    """Full-batch Adam on the MSE until the clipped MSE is at most ``sigma^2 - eps``."""
    return TrainOptions(
        optimizer=Adam(lr=settings.lr),
        loss=MSE(),
        stopping=BelowNoise(noise_level=noise_level, eps=settings.eps),
        max_steps=settings.max_steps,
    )


def _values(estimate) -> list[float | None]:
    """Per-member values with NaN (failed members) as None."""
    return [None if np.isnan(v) else float(v) for v in estimate.values]


def _sdp(ens, settings: Any, run: bool) -> list[tuple[float | None, str]]:
    """The SDP bound of each member (certified values only) and its status."""
    if not run:
        return [(None, "skipped")] * ens.n_members
    out = []
    for i in range(ens.n_members):
        est = estimate_lipschitz(
            settings.sdp_method, weights_from_ensemble(ens, i), settings.sdp_options
        )
        certified = est.certified and est.status.ok
        out.append((float(est.value) if certified else None, est.status.value))
    return out


def _bounds(*, n: int, d: int, p: int, kept: int, info_bits: float, depth: int, c: float, s):
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


def measure(
    settings: Any, unit: WorkUnit, *, device: str, progress: bool = False
) -> list[LorScalingRecord]:
    """Build, prune, train and measure one ensemble of ``lor-scaling``: one record per member.

    See :class:`~robustlaw.experiments.lor_scaling.record.LorScalingRecord` for the fields.
    """
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
    lower = estimate_lipschitz(
        settings.lower_method,
        ens,
        settings.lower_options,
        X=data.X,
        generator=torch.Generator().manual_seed(settings.data_seed),
    )
    upper = estimate_lipschitz(settings.upper_method, ens, settings.upper_options)
    sdp = _sdp(ens, settings, 0 < settings.depth * width <= settings.sdp_max_neurons)
    p = mlp_parameter_count(spec.layer_sizes, bias=True)
    prunable = mlp_parameter_count(spec.layer_sizes)
    n_bias = p - prunable  # biases are never pruned
    c = float(data.isoperimetry_constant)
    common = {
        "n": n,
        "d": d,
        "width": width,
        "depth": settings.depth,
        "p": p,
        "prunable": prunable,
        "lip_lower_method": settings.lower_method,
        "lip_lower_status": lower.status.value,
        "lip_upper_method": settings.upper_method,
        "lip_upper_status": upper.status.value,
        "lip_upper_certified": bool(upper.certified),
        "lip_sdp_method": settings.sdp_method,
        "weight_box": settings.weight_box,
        "input_radius": settings.input_radius,
        "input_norm_max": float(data.X.norm(dim=1).max()),
        "c": c,
        "sigma2": float(data.noise_level),
        "eps": settings.eps,
        "delta": settings.delta,
        "dtype": settings.dtype,
    }
    records = []
    rows = zip(members, _values(lower), _values(upper), sdp, strict=True)
    for i, ((method, density, seed), low, up, (sdp_value, sdp_status)) in enumerate(rows):
        kept = int(kept_w[i]) + n_bias
        entropy = float(mask_entropy_upper_bound(prunable, int(kept_w[i])))
        dependent = method != "dense" and get_pruner(method).needs_data
        info = entropy if dependent else 0.0
        bounds = _bounds(n=n, d=d, p=p, kept=kept, info_bits=info, depth=spec.n_layers, c=c,
                         s=settings)  # fmt: skip
        records.append(
            LorScalingRecord(
                method=method,
                density=density,
                seed=seed,
                kept=kept,
                kept_weights=int(kept_w[i]),
                data_dependent=dependent,
                mask_entropy_bits=entropy,
                mask_info_bits=info,
                n_steps=int(trained.record.n_steps[i]),
                train_mse=float(mse[i]),
                fit_below_noise=bool(mse[i] <= data.noise_level - settings.eps),
                lip_lower=low,
                lip_upper=up,
                lip_sdp=sdp_value,
                lip_sdp_status=sdp_status,
                w_inf=float(w_inf[i]),
                in_box=bool(w_inf[i] <= settings.weight_box),
                **common,
                **bounds,
            )
        )
    if any(r.lip_lower is None for r in records):
        logger.warning("unit %s: a lower estimate failed (%s)", unit.key, lower.status.value)
    return records
