"""The context of one ``lor-scaling`` work unit: its data, training recipes, estimates, floors.

:class:`UnitContext` draws the unit's dataset, builds the three training recipes (the search,
the first-fit control, the full-interpolation control), runs the Lipschitz methods the settings
name, evaluates the floors of [BS] Theorem 3 and [NFP] Theorem 4 (``THEORY.md`` §2.4: the
Euclidean diameter of the stated box, ``J_BS``) and assembles
:class:`~robustlaw.experiments.lor_scaling.record.LorScalingRecord` rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robustlaw.bounds.assumptions import k_condition_holds
from robustlaw.bounds.deep import (
    box_to_euclidean_diameter,
    mlp_parameter_count,
    parameter_lipschitz_constant,
)
from robustlaw.bounds.numeric import lipschitz_lower_bound, sparse_lipschitz_lower_bound
from robustlaw.bounds.peff import effective_parameter_count, mask_information
from robustlaw.empirical.data.synthetic import random_labels_data
from robustlaw.empirical.ensemble import Ensemble
from robustlaw.empirical.lipschitz import estimate_lipschitz, weights_from_ensemble
from robustlaw.empirical.pruning import get_pruner, select_members
from robustlaw.empirical.training import (
    MSE,
    PENALTIES,
    Adam,
    BelowNoise,
    MaxSteps,
    Memorized,
    TrainOptions,
    train_ensemble,
)
from robustlaw.experiments.lor_scaling.ensembles import clipped_mse
from robustlaw.experiments.lor_scaling.information import measured_bits
from robustlaw.experiments.lor_scaling.record import LorScalingRecord
from robustlaw.experiments.registry import WorkUnit

__all__ = ["SKIPPED", "Member", "UnitContext"]

SKIPPED = (None, "skipped")
"""A Lipschitz estimate that did not run: no value, status ``"skipped"``."""


@dataclass(frozen=True)
class Member:
    """What one network of a unit is: role, mask recipe, seed, width and penalty strength."""

    role: str
    method: str
    density: float
    seed: int
    width: int
    weight: float | None = None


def _values(estimate, certified_only: bool = False) -> list[float | None]:
    """Per-member values, None where not finite (or, with ``certified_only``, not certified)."""
    if certified_only and not (estimate.certified and estimate.status.ok):
        return [None] * len(estimate.values)
    return [float(v) if math.isfinite(v) else None for v in estimate.values]


class UnitContext:
    """The dataset and settings of one unit, and how its networks are trained and measured."""

    def __init__(self, settings: Any, unit: WorkUnit, device: str) -> None:
        self.s, self.unit = settings, unit
        self.n, self.d = unit.params["n"], unit.params["d"]
        self.dtype = getattr(torch, settings.dtype)
        self.data = random_labels_data(
            self.n, self.d, inputs=settings.inputs, seed=unit.params["dataset"],
            dtype=self.dtype, device=device,
        )  # fmt: skip
        self.noise_level = float(self.data.noise_level)
        self.target = self.noise_level - settings.eps
        self.sphere = settings.inputs == "sphere"

    # -- training --------------------------------------------------------------------------

    def search_options(self, weights: Sequence[float]) -> TrainOptions:
        """Adam on the MSE plus the settings' proxy (one strength per member) and the hinge."""
        s = self.s
        penalty = PENALTIES[s.search_penalty](
            weight=tuple(weights), fit_target=self.target - s.fit_slack, fit_weight=s.fit_weight
        )
        return TrainOptions(optimizer=Adam(lr=s.search_lr), loss=MSE(), stopping=MaxSteps(),
                            max_steps=s.search_steps, penalty=penalty)  # fmt: skip

    def first_fit_options(self) -> TrainOptions:
        """Adam on the MSE, each member stopped at its first fit below the noise."""
        rule = BelowNoise(noise_level=self.noise_level, eps=self.s.eps)
        return TrainOptions(optimizer=Adam(lr=self.s.control_lr), loss=MSE(), stopping=rule,
                            max_steps=self.s.control_steps)  # fmt: skip

    def interpolation_options(self) -> TrainOptions:
        """Adam on the MSE until every squared error is at most ``interpolation_margin``."""
        return TrainOptions(optimizer=Adam(lr=self.s.control_lr),
                            loss=MSE(fit_margin=self.s.interpolation_margin),
                            stopping=Memorized(), max_steps=self.s.control_steps)  # fmt: skip

    def train(self, ens: Ensemble, options: TrainOptions) -> tuple[Ensemble, np.ndarray]:
        """The trained ensemble and each member's step count."""
        trained = train_ensemble(ens, self.data.X, self.data.y, options)
        return trained.to_ensemble(ens), np.asarray(trained.record.n_steps)

    # -- measuring -------------------------------------------------------------------------

    def estimates(self, ens: Ensemble, members: Sequence[Member], full: Sequence[bool]):
        """The Lipschitz fields of every member.

        The cheap certified bound runs on all; the lower estimates and the SDP bound only where
        ``full`` (the SDP only on nets with at most ``sdp_max_neurons`` hidden units).
        """
        s = self.s
        upper = estimate_lipschitz(s.upper_method, ens, s.upper_options)
        idx = [i for i, f in enumerate(full) if f]
        lowers = supports = [SKIPPED] * ens.n_members
        if idx:
            lowers = self._lower(ens, idx, s.lower_method, s.lower_options)
            if self.sphere:
                supports = self._lower(ens, idx, s.support_lower_method, s.support_lower_options)
        depth = ens.spec.n_layers - 1
        out = []
        for i, value in enumerate(_values(upper, certified_only=True)):
            small = 0 < members[i].width * depth <= s.sdp_max_neurons
            sdp = self._sdp(ens, i) if full[i] and small else SKIPPED
            out.append(self.lipschitz_fields(
                upper=(value, upper.status.value), sdp=sdp, lower=lowers[i], support=supports[i]
            ))  # fmt: skip
        return out

    def lipschitz_fields(self, *, upper, sdp, lower, support, methods=None) -> dict[str, Any]:
        """A record's Lipschitz fields from ``(value, status)`` pairs; ``lip_certified`` is the
        smaller certified value."""
        s = self.s
        names = methods or (s.upper_method, s.sdp_method, s.lower_method,
                            s.support_lower_method if self.sphere else "none")  # fmt: skip
        certified = [v for v in (upper[0], sdp[0]) if v is not None]
        fields = {"lip_certified": min(certified) if certified else None}
        for key, (value, status), name in zip(
            ("lip_upper", "lip_sdp", "lip_lower", "lip_support"),
            (upper, sdp, lower, support), names, strict=True,
        ):  # fmt: skip
            fields.update({key: value, f"{key}_status": status, f"{key}_method": name})
        return fields

    def _lower(self, ens, idx, method, options) -> list[tuple[float | None, str]]:
        gen = torch.Generator().manual_seed(self.unit.params["dataset"])
        est = estimate_lipschitz(method, select_members(ens, idx), options,
                                 X=self.data.X.to(ens.dtype), generator=gen)  # fmt: skip
        out = [SKIPPED] * ens.n_members
        for i, v in zip(idx, _values(est), strict=True):
            out[i] = (v, est.status.value)
        return out

    def _sdp(self, ens: Ensemble, i: int) -> tuple[float | None, str]:
        est = estimate_lipschitz(self.s.sdp_method, weights_from_ensemble(ens, i),
                                 self.s.sdp_options)  # fmt: skip
        ok = est.certified and est.status.ok and math.isfinite(est.value)
        return (float(est.value) if ok else None), est.status.value

    def floors(self, *, p: int, kept: int, info_bits: float, depth: int) -> dict[str, Any]:
        """The floors of [BS] Theorem 3 at ``p`` and [NFP] Theorem 4 at ``p_eff``.

        ``depth`` counts linear layers (D of ``J_BS``).
        """
        s, n, d = self.s, self.n, self.d
        c = float(self.data.isoperimetry_constant)
        W = float(box_to_euclidean_diameter(W_inf=s.weight_box, p=p))
        J = float(parameter_lipschitz_constant(R=s.input_radius, W_inf=s.weight_box, p=p,
                                               D=depth))  # fmt: skip
        p_eff = float(effective_parameter_count(kept=kept, mutual_information_bits=info_bits,
                                                W=W, J=J, eps=s.eps))  # fmt: skip
        common = {"n": n, "d": d, "eps": s.eps, "delta": s.delta, "c": c,
                  "check_assumptions": False}  # fmt: skip
        nfp_condition = k_condition_holds(n=n, eps=s.eps, delta=s.delta, k_condition_const=8**3)
        return {
            "W": W, "J": J, "c": c, "p_eff": p_eff, "p_eff_informal": float(kept + info_bits),
            "bound_bs": float(lipschitz_lower_bound(p=p, W=W, J=J, **common)),
            "bound_nfp": float(sparse_lipschitz_lower_bound(p_eff=p_eff, **common)),
            "k_condition_bs": bool(k_condition_holds(n=n, eps=s.eps, delta=s.delta)),
            "k_condition_nfp": bool(nfp_condition),
        }  # fmt: skip

    def record(self, m: Member, *, kept_weights: int, w_inf: float, mse: float, steps: int,
               chosen: bool, lipschitz: dict[str, Any], dtype: str, stated: float | None = None,
               conditions: bool = True) -> LorScalingRecord:  # fmt: skip
        """One record: the network ``m``, its measurements and the floors at its counts."""
        s, depth = self.s, self.s.depth if m.role != "construction" else 1
        sizes = (self.d, *([m.width] * depth), 1)
        p, prunable = mlp_parameter_count(sizes, bias=True), mlp_parameter_count(sizes)
        dependent = m.role != "construction" and m.method != "dense" and (
            get_pruner(m.method).needs_data)  # fmt: skip
        measured = measured_bits(self.s.mask_information, method=m.method, n=self.n, d=self.d,
                                 density=m.density)  # fmt: skip
        info = mask_information(p=prunable, kept=kept_weights, data_dependent=dependent,
                                measured=measured)  # fmt: skip
        kept = kept_weights + p - prunable  # biases are never pruned
        return LorScalingRecord(
            role=m.role, method=m.method, density=m.density, dataset=self.unit.params["dataset"],
            seed=m.seed, search_weight=m.weight, chosen=chosen, n=self.n, d=self.d,
            width=m.width, depth=depth, p=p, kept=kept, kept_weights=kept_weights,
            prunable=prunable, data_dependent=dependent, mask_info_bits=info.bits,
            mask_info_source=info.source, n_steps=steps,
            train_mse=mse, fit_below_noise=mse <= self.target, stated_lipschitz=stated,
            conditions_hold=conditions, w_inf=w_inf, in_box=w_inf <= s.weight_box,
            weight_box=s.weight_box, input_radius=s.input_radius,
            input_norm_max=float(self.data.X.norm(dim=1).max()), sigma2=self.noise_level,
            eps=s.eps, delta=s.delta, inputs=s.inputs, dtype=dtype, **lipschitz,
            **self.floors(p=p, kept=kept, info_bits=info.bits, depth=depth + 1),
        )  # fmt: skip

    def ensemble_records(self, ens: Ensemble, members: Sequence[Member], *, steps, chosen,
                         full, stated=None, conditions=None) -> list[LorScalingRecord]:  # fmt: skip
        """One record per member of a trained (or built) ensemble."""
        mse = clipped_mse(ens, self.data.X.to(ens.dtype), self.data.y.to(ens.dtype))
        lips = self.estimates(ens, members, full)
        with torch.no_grad():
            kept_w = sum(m.sum(dim=(1, 2)) for m in ens.masks.values()).cpu().numpy()
            w_inf = torch.stack([v.abs().flatten(1).amax(1) for v in ens.params.values()])
            w_inf = w_inf.amax(0).double().cpu().numpy()
        dtype = str(ens.dtype).removeprefix("torch.")
        return [
            self.record(m, kept_weights=int(kept_w[i]), w_inf=float(w_inf[i]),
                        mse=float(mse[i]), steps=int(steps[i]), chosen=bool(chosen[i]),
                        lipschitz=lips[i], dtype=dtype,
                        stated=None if stated is None else stated[i],
                        conditions=True if conditions is None else bool(conditions[i]))
            for i, m in enumerate(members)
        ]  # fmt: skip
