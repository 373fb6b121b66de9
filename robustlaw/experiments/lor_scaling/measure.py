"""One ``lor-scaling`` work unit: search for the smoothest fit, run the controls, measure.

A unit is one ``(n, d, dataset)`` and one of three kinds (:data:`UNIT_KINDS`): a dense width,
the pruned nets, or the explicit constructions. Trained units hold two ensembles:

- the **search**: every penalty strength times every restart (times every mask) is a member,
  trained with the settings' Lipschitz proxy and hinge fit constraint (THEORY §7.2); per group
  (method, density) :func:`~robustlaw.empirical.search.smallest_certified_fit` picks the member
  with the smallest certified upper bound among the fits below the noise;
- the **controls**: Adam stopped at the first fit below the noise, and Adam run to full
  interpolation (every squared error at most ``interpolation_margin``).

The cheap certified bound runs on every member; the lower estimates (on ``R^d`` and on the
sphere) and the SDP bound run on the chosen members, the controls and the constructions.
Failed estimates are recorded statuses (value None), never crashes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
from robustlaw.bounds.peff import effective_parameter_count, mask_entropy_upper_bound
from robustlaw.empirical import constructions
from robustlaw.empirical.data.synthetic import random_labels_data
from robustlaw.empirical.ensemble import Ensemble, MLPSpec, init_mlp_ensemble
from robustlaw.empirical.lipschitz import estimate_lipschitz, weights_from_ensemble
from robustlaw.empirical.pruning import PrunePlan, get_pruner, prune
from robustlaw.empirical.search import smallest_certified_fit
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
from robustlaw.experiments.lor_scaling.record import LorScalingRecord
from robustlaw.experiments.registry import WorkUnit

__all__ = ["UNIT_KINDS", "measure"]

_SKIPPED = (None, "skipped")


@dataclass(frozen=True)
class _Member:
    """What a trained member is: its role, mask recipe, seed and penalty strength."""

    role: str
    method: str
    density: float
    seed: int
    width: int
    weight: float | None = None


def _subset(ens: Ensemble, idx: Sequence[int]) -> Ensemble:
    """The members ``idx`` of an ensemble, as a new ensemble."""
    idx = list(idx)
    return Ensemble(
        spec=ens.spec,
        params={k: v[idx] for k, v in ens.params.items()},
        masks={k: v[idx] for k, v in ens.masks.items()},
        seeds=tuple(ens.seeds[i] for i in idx) if ens.seeds else (),
    )


def _repeat(ens: Ensemble, times: int) -> Ensemble:
    """Every member of ``ens`` repeated ``times`` times in a row (member-major)."""
    return _subset(ens, [i for i in range(ens.n_members) for _ in range(times)])


def _padded(ens: Ensemble, width: int) -> Ensemble:
    """``ens`` with every hidden layer zero-padded to ``width`` units (padding masked out).

    The padded units have no incoming or outgoing weights and zero biases, get no gradient
    and are dead to every Lipschitz method, so each member computes, trains and measures as
    its own narrower network; nets of several widths then train as one ensemble.
    """
    sizes = ens.spec.layer_sizes
    spec = MLPSpec(
        layer_sizes=(sizes[0], *([width] * (len(sizes) - 2)), sizes[-1]),
        activation=ens.spec.activation,
        bias=ens.spec.bias,
        init=ens.spec.init,
    )
    params, masks = {}, {}
    for key, value in ens.params.items():
        full = torch.zeros(value.shape[:1] + _shape(spec, key), dtype=value.dtype,
                           device=value.device)  # fmt: skip
        full[(slice(None), *(slice(0, n) for n in value.shape[1:]))] = value
        params[key] = full
        if key in ens.masks:
            mask = torch.zeros_like(full, dtype=torch.bool)
            mask[(slice(None), *(slice(0, n) for n in value.shape[1:]))] = ens.masks[key]
            masks[key] = mask
    return Ensemble(spec=spec, params=params, masks=masks, seeds=ens.seeds)


def _shape(spec: MLPSpec, key: str) -> tuple[int, ...]:
    """The per-member shape of parameter ``key`` (``"2l.weight"`` or ``"2l.bias"``)."""
    layer = int(key.split(".")[0]) // 2
    fan_in, fan_out = spec.layer_sizes[layer], spec.layer_sizes[layer + 1]
    return (fan_out, fan_in) if key.endswith("weight") else (fan_out,)


def _concat(parts: Sequence[Ensemble]) -> Ensemble:
    """The members of several ensembles of one spec, in order, as one ensemble."""
    first = parts[0]
    return Ensemble(spec=first.spec,
                    params={k: torch.cat([e.params[k] for e in parts]) for k in first.params},
                    masks={k: torch.cat([e.masks[k] for e in parts]) for k in first.masks},
                    seeds=tuple(s for e in parts for s in e.seeds))  # fmt: skip


def _clipped_mse(ens: Ensemble, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        out = ens(X).squeeze(-1).clamp(-1.0, 1.0)
    return ((out - y) ** 2).mean(dim=1).double().cpu().numpy()


def _values(estimate, certified_only: bool = False) -> list[float | None]:
    """Per-member values, None where NaN (or, with ``certified_only``, not certified)."""
    if certified_only and not (estimate.certified and estimate.status.ok):
        return [None] * len(estimate.values)
    return [None if not math.isfinite(v) else float(v) for v in estimate.values]


class _Unit:
    """The data, settings and floors of one unit; measures ensembles into records."""

    def __init__(self, settings: Any, unit: WorkUnit, device: str) -> None:
        self.s, self.unit = settings, unit
        self.n, self.d = unit.params["n"], unit.params["d"]
        self.dtype = getattr(torch, settings.dtype)
        self.data = random_labels_data(self.n, self.d, inputs=settings.inputs,
                                       seed=unit.params["dataset"], dtype=self.dtype,
                                       device=device)  # fmt: skip
        self.target = float(self.data.noise_level) - settings.eps
        self.sphere = settings.inputs == "sphere"

    # -- training --------------------------------------------------------------------------

    def search_options(self, weights: Sequence[float]) -> TrainOptions:
        s = self.s
        penalty = PENALTIES[s.search_penalty](weight=tuple(weights),
                                              fit_target=self.target - s.fit_slack,
                                              fit_weight=s.fit_weight)  # fmt: skip
        return TrainOptions(optimizer=Adam(lr=s.search_lr), loss=MSE(), stopping=MaxSteps(),
                            max_steps=s.search_steps, penalty=penalty)  # fmt: skip

    def first_fit_options(self) -> TrainOptions:
        rule = BelowNoise(noise_level=float(self.data.noise_level), eps=self.s.eps)
        return TrainOptions(optimizer=Adam(lr=self.s.control_lr), loss=MSE(), stopping=rule,
                            max_steps=self.s.control_steps)  # fmt: skip

    def interpolation_options(self) -> TrainOptions:
        return TrainOptions(optimizer=Adam(lr=self.s.control_lr),
                            loss=MSE(fit_margin=self.s.interpolation_margin),
                            stopping=Memorized(), max_steps=self.s.control_steps)  # fmt: skip

    def train(self, ens: Ensemble, options: TrainOptions) -> tuple[Ensemble, np.ndarray]:
        trained = train_ensemble(ens, self.data.X, self.data.y, options)
        return trained.to_ensemble(ens), np.asarray(trained.record.n_steps)

    # -- measuring -------------------------------------------------------------------------

    def estimates(self, ens: Ensemble, full: Sequence[bool], neurons: Sequence[int],
                  ) -> list[dict[str, Any]]:  # fmt: skip
        """The Lipschitz fields of every member; lower and SDP estimates only where ``full``
        (the SDP only for members with at most ``sdp_max_neurons`` hidden ``neurons``)."""
        s = self.s
        upper = estimate_lipschitz(s.upper_method, ens, s.upper_options)
        uppers = _values(upper, certified_only=True)
        out = [{"lip_upper": u, "lip_upper_status": upper.status.value} for u in uppers]
        idx = [i for i, f in enumerate(full) if f]
        lowers = supports = [_SKIPPED] * ens.n_members
        if idx:
            sub = _subset(ens, idx)
            lowers = self._lower(sub, s.lower_method, s.lower_options, idx, ens.n_members)
            if self.sphere:
                supports = self._lower(sub, s.support_lower_method, s.support_lower_options,
                                       idx, ens.n_members)  # fmt: skip
        for i, row in enumerate(out):
            small = 0 < neurons[i] <= s.sdp_max_neurons
            sdp = self._sdp(ens, i) if full[i] and small else _SKIPPED
            certified = [v for v in (row["lip_upper"], sdp[0]) if v is not None]
            row.update(lip_sdp=sdp[0], lip_sdp_status=sdp[1], lip_lower=lowers[i][0],
                       lip_lower_status=lowers[i][1], lip_support=supports[i][0],
                       lip_support_status=supports[i][1],
                       lip_certified=min(certified) if certified else None)  # fmt: skip
        return out

    def _lower(self, sub, method, options, idx, k) -> list[tuple[float | None, str]]:
        gen = torch.Generator().manual_seed(self.unit.params["dataset"])
        est = estimate_lipschitz(method, sub, options, X=self.data.X.to(sub.dtype),
                                 generator=gen)  # fmt: skip
        out = [_SKIPPED] * k
        for i, v in zip(idx, _values(est), strict=True):
            out[i] = (v, est.status.value)
        return out

    def _sdp(self, ens: Ensemble, i: int) -> tuple[float | None, str]:
        est = estimate_lipschitz(self.s.sdp_method, weights_from_ensemble(ens, i),
                                 self.s.sdp_options)  # fmt: skip
        ok = est.certified and est.status.ok and math.isfinite(est.value)
        return (float(est.value) if ok else None), est.status.value

    def floors(self, *, p: int, kept: int, info_bits: float, depth: int) -> dict[str, Any]:
        """The floors of [BS] Theorem 3 at ``p`` and [NFP] Theorem 4 at ``p_eff``."""
        s, n, d = self.s, self.n, self.d
        c = float(self.data.isoperimetry_constant)
        W = float(box_to_euclidean_diameter(W_inf=s.weight_box, p=p))
        J = float(parameter_lipschitz_constant(R=s.input_radius, W_inf=s.weight_box, p=p,
                                               D=depth))  # fmt: skip
        p_eff = float(effective_parameter_count(kept=kept, mutual_information_bits=info_bits,
                                                W=W, J=J, eps=s.eps))  # fmt: skip
        common = {"n": n, "d": d, "eps": s.eps, "delta": s.delta, "c": c,
                  "check_assumptions": False}  # fmt: skip
        return {
            "W": W, "J": J, "p_eff": p_eff, "p_eff_informal": float(kept + info_bits), "c": c,
            "bound_bs": float(lipschitz_lower_bound(p=p, W=W, J=J, **common)),
            "bound_nfp": float(sparse_lipschitz_lower_bound(p_eff=p_eff, **common)),
            "k_condition_bs": bool(k_condition_holds(n=n, eps=s.eps, delta=s.delta)),
            "k_condition_nfp": bool(k_condition_holds(n=n, eps=s.eps, delta=s.delta,
                                                      k_condition_const=8**3)),
        }  # fmt: skip

    def records(self, ens: Ensemble, members: Sequence[_Member], *, steps, chosen, full,
                stated=None, conditions=None) -> list[LorScalingRecord]:  # fmt: skip
        """One record per member of a measured ensemble."""
        s, spec = self.s, ens.spec
        mse = _clipped_mse(ens, self.data.X.to(ens.dtype), self.data.y.to(ens.dtype))
        depth = spec.n_layers - 1
        lips = self.estimates(ens, full, [m.width * depth for m in members])
        with torch.no_grad():
            kept_w = sum(m.sum(dim=(1, 2)) for m in ens.masks.values()).cpu().numpy()
            w_inf = torch.stack([v.abs().flatten(1).amax(1) for v in ens.params.values()])
            w_inf = w_inf.amax(0).double().cpu().numpy()
        out = []
        for i, m in enumerate(members):
            sizes = (self.d, *([m.width] * depth), 1)
            p = mlp_parameter_count(sizes, bias=True)
            prunable = mlp_parameter_count(sizes)
            dependent = m.role != "construction" and m.method != "dense" and (
                get_pruner(m.method).needs_data)  # fmt: skip
            info = float(mask_entropy_upper_bound(prunable, int(kept_w[i]))) if dependent else 0.0
            kept = int(kept_w[i]) + p - prunable  # biases are never pruned
            out.append(LorScalingRecord(
                role=m.role, method=m.method, density=m.density, dataset=self.unit.params[
                    "dataset"], seed=m.seed, search_weight=m.weight, chosen=bool(chosen[i]),
                n=self.n, d=self.d, width=m.width, depth=depth, p=p,
                kept=kept, kept_weights=int(kept_w[i]), prunable=prunable,
                data_dependent=dependent, mask_info_bits=info,
                mask_info_source="entropy-bound" if dependent else "zero",
                n_steps=int(steps[i]), train_mse=float(mse[i]),
                fit_below_noise=bool(mse[i] <= self.target),
                lip_upper_method=s.upper_method, lip_sdp_method=s.sdp_method,
                lip_lower_method=s.lower_method,
                lip_support_method=s.support_lower_method if self.sphere else "none",
                stated_lipschitz=None if stated is None else stated[i],
                conditions_hold=True if conditions is None else conditions[i],
                w_inf=float(w_inf[i]), in_box=bool(w_inf[i] <= s.weight_box),
                weight_box=s.weight_box, input_radius=s.input_radius,
                input_norm_max=float(self.data.X.norm(dim=1).max()),
                sigma2=float(self.data.noise_level), eps=s.eps, delta=s.delta,
                inputs=s.inputs, dtype=str(ens.dtype).removeprefix("torch."),
                **lips[i], **self.floors(p=p, kept=kept, info_bits=info, depth=spec.n_layers),
            ))  # fmt: skip
        return out

    # -- the search and the controls ---------------------------------------------------------

    def search_and_controls(self, base: Ensemble, recipes: Sequence[_Member],
                            ) -> list[LorScalingRecord]:  # fmt: skip
        """Search every base member (penalty strengths x restarts), then run both controls.

        ``base`` holds one member per mask recipe and restart, in the order of ``recipes``.
        """
        s = self.s
        ws = s.search_weights
        search = _repeat(base, len(ws))
        members = [replace(r, weight=w) for r in recipes for w in ws]
        search, steps = self.train(search, self.search_options([m.weight for m in members]))
        groups = [(m.method, m.density, m.width) for m in members]
        fits = smallest_certified_fit(
            search,
            self.data.X,
            self.data.y,
            groups=groups,
            noise_level=float(self.data.noise_level),
            eps=s.eps,
            upper_method=s.upper_method,
            upper_options=s.upper_options,
            lower_method=s.lower_method,
            lower_options=s.lower_options,
        )
        chosen = np.zeros(len(members), dtype=bool)
        chosen[[f.member for f in fits if f.member is not None]] = True
        records = self.records(search, members, steps=steps, chosen=chosen, full=chosen)
        for role, options in (("first-fit", self.first_fit_options()),
                              ("interpolation", self.interpolation_options())):  # fmt: skip
            trained, steps = self.train(base, options)
            controls = [replace(r, role=role) for r in recipes]
            k = len(controls)
            records += self.records(trained, controls, steps=steps, chosen=[False] * k,
                                    full=[True] * k)  # fmt: skip
        return records


def _dense(u: _Unit) -> list[LorScalingRecord]:
    """Every dense width, zero-padded to the largest, as one ensemble."""
    s = u.s
    widths, seeds = u.unit.params["widths"], list(range(s.search_restarts))
    parts = [
        init_mlp_ensemble(
            MLPSpec(layer_sizes=(u.d, *([k] * s.depth), 1)),
            seeds,
            dtype=u.dtype,
            device=u.data.X.device,
        )
        for k in widths
    ]
    base = _concat([_padded(e, max(widths)) for e in parts])
    recipes = [_Member("search", "dense", 1.0, r, k) for k in widths for r in seeds]
    return u.search_and_controls(base, recipes)


def _sparse(u: _Unit) -> list[LorScalingRecord]:
    s = u.s
    spec = MLPSpec(layer_sizes=(u.d, *([u.unit.params["width"]] * s.depth), 1))
    width = u.unit.params["width"]
    recipes = [_Member("search", m, rho, r, width) for m in s.methods for rho in s.densities
               for r in range(s.sparse_restarts)]  # fmt: skip
    base = init_mlp_ensemble(spec, [r.seed for r in recipes], dtype=u.dtype,
                             device=u.data.X.device)  # fmt: skip
    plans = [PrunePlan(method=r.method, density=r.density, seed=r.seed) for r in recipes]
    base = prune(base, plans, data=(u.data.X, u.data.y),
                 train_options=u.first_fit_options()).ensemble  # fmt: skip
    return u.search_and_controls(base, recipes)


def _grouped_ks(n: int, d: int, count: int) -> list[int]:
    """``count`` group counts log-spaced over [BLN] Theorem 3's range ``[n log n / d, n]``."""
    low = min(n, max(1, math.ceil(n * math.log(n) / d)))
    return sorted({int(round(k)) for k in np.geomspace(low, n, count)})


def _constructions(u: _Unit) -> list[LorScalingRecord]:
    X, y = u.data.X.double(), u.data.y.double()
    built = []
    for name in u.s.constructions:
        if name == "grouped-min-norm":
            built += [constructions.grouped_min_norm_network(X, y, k=k)
                      for k in _grouped_ks(u.n, u.d, u.s.grouped_ks)]  # fmt: skip
        else:
            built.append(CONSTRUCTION_BUILDERS[name](X, y))
    records = []
    for c in built:
        member = _Member("construction", c.name, 1.0, -1, c.n_hidden)
        records += u.records(c.ensemble, [member], steps=[0], chosen=[False], full=[True],
                             stated=[c.stated_lipschitz if c.conditions_hold else None],
                             conditions=[bool(c.conditions_hold)])  # fmt: skip
    return records


CONSTRUCTION_BUILDERS: dict[str, Callable] = {
    "min-norm-linear": constructions.min_norm_linear,
    "caps": constructions.caps_network,
}
"""Constructions built once per unit from ``(X, y)`` (the grouped one is built per ``k``)."""

UNIT_KINDS: dict[str, Callable[[_Unit], list[LorScalingRecord]]] = {
    "dense": _dense,
    "sparse": _sparse,
    "constructions": _constructions,
}
"""How each kind of work unit is measured."""


def measure(
    settings: Any, unit: WorkUnit, *, device: str, progress: bool = False
) -> list[LorScalingRecord]:
    """Measure one ``lor-scaling`` unit: one record per network.

    See :class:`~robustlaw.experiments.lor_scaling.record.LorScalingRecord` for the fields.
    ``progress`` is accepted for the framework's signature; units are short.
    """
    return UNIT_KINDS[unit.params["kind"]](_Unit(settings, unit, device))
