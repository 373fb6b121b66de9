"""One ``lor-scaling`` work unit: search for the smoothest fit, run the controls, measure.

A unit is one ``(n, d, dataset)`` and one of three kinds (:data:`UNIT_KINDS`): the dense nets
(every width in one ensemble, zero-padded to the largest), the pruned nets, or the explicit
constructions. Trained units hold two kinds of ensembles:

- the **search**: every penalty strength times every restart (times every mask) is a member,
  trained with the settings' Lipschitz proxy and hinge fit constraint (THEORY §7.2); per group
  (method, density, width) :func:`~robustlaw.empirical.search.smallest_certified_fit` picks
  the member with the smallest certified upper bound among the fits below the noise;
- the **controls**: Adam stopped at the first fit below the noise, and Adam run to full
  interpolation (every squared error at most ``interpolation_margin``).

The cheap certified bound runs on every member; the lower estimates (on ``R^d`` and on the
sphere) and the SDP bound run on the chosen members, the controls and the constructions.
Failed estimates are recorded statuses (value None), never crashes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from robustlaw.empirical import constructions
from robustlaw.empirical.ensemble import Ensemble, MLPSpec, init_mlp_ensemble
from robustlaw.empirical.pruning import PrunePlan, concat_members, prune
from robustlaw.empirical.search import smallest_certified_fit
from robustlaw.experiments.lor_scaling.ensembles import clipped_mse, padded, repeat_members
from robustlaw.experiments.lor_scaling.record import LorScalingRecord
from robustlaw.experiments.lor_scaling.unit import SKIPPED, Member, UnitContext
from robustlaw.experiments.registry import WorkUnit

__all__ = ["CONSTRUCTION_BUILDERS", "UNIT_KINDS", "grouped_ks", "measure"]


def _search_and_controls(
    u: UnitContext, base: Ensemble, recipes: Sequence[Member], weights: Sequence[float]
):
    """Search every base member (penalty ``weights`` x restarts), then run both controls.

    ``base`` holds one member per mask recipe, width and restart, in the order of ``recipes``.
    """
    s = u.s
    members = [replace(r, weight=w) for r in recipes for w in weights]
    search, steps = u.train(repeat_members(base, len(weights)),
                            u.search_options([m.weight for m in members]))  # fmt: skip
    fits = smallest_certified_fit(
        search, u.data.X, u.data.y, groups=[(m.method, m.density, m.width) for m in members],
        noise_level=u.noise_level, eps=s.eps, upper_method=s.upper_method,
        upper_options=s.upper_options, lower_method=s.lower_method,
        lower_options=s.lower_options,
    )  # fmt: skip
    chosen = np.zeros(len(members), dtype=bool)
    chosen[[f.member for f in fits if f.member is not None]] = True
    records = u.ensemble_records(search, members, steps=steps, chosen=chosen, full=chosen)
    controls = (("first-fit", u.first_fit_options()),
                ("interpolation", u.interpolation_options()))  # fmt: skip
    for role, options in controls:
        trained, steps = u.train(base, options)
        k = len(recipes)
        records += u.ensemble_records(trained, [replace(r, role=role) for r in recipes],
                                      steps=steps, chosen=[False] * k, full=[True] * k)  # fmt: skip
    return records


def _spec(u: UnitContext, width: int) -> MLPSpec:
    return MLPSpec(layer_sizes=(u.d, *([width] * u.s.depth), 1))


def _dense(u: UnitContext) -> list[LorScalingRecord]:
    """Every dense width, zero-padded to the largest, searched as one ensemble."""
    widths, seeds = u.unit.params["widths"], list(range(u.s.search_restarts))
    device = u.data.X.device
    parts = [init_mlp_ensemble(_spec(u, k), seeds, dtype=u.dtype, device=device) for k in widths]
    base = concat_members([padded(e, max(widths)) for e in parts])
    recipes = [Member("search", "dense", 1.0, r, k) for k in widths for r in seeds]
    return _search_and_controls(u, base, recipes, u.s.search_weights)


def _sparse(u: UnitContext) -> list[LorScalingRecord]:
    """Every pruning method and density at one width; masks scored before training."""
    s, width = u.s, u.unit.params["width"]
    recipes = [Member("search", m, rho, r, width) for m in s.methods for rho in s.densities
               for r in range(s.sparse_restarts)]  # fmt: skip
    base = init_mlp_ensemble(_spec(u, width), [r.seed for r in recipes], dtype=u.dtype,
                             device=u.data.X.device)  # fmt: skip
    plans = [PrunePlan(method=r.method, density=r.density, seed=r.seed) for r in recipes]
    base = prune(base, plans, data=(u.data.X, u.data.y),
                 train_options=u.first_fit_options()).ensemble  # fmt: skip
    return _search_and_controls(u, base, recipes, s.sparse_search_weights or s.search_weights)


def grouped_ks(n: int, d: int, count: int) -> list[int]:
    """``count`` group counts log-spaced over [BLN] Theorem 3's range ``[n log n / d, n]``
    (with C = 1): both ends when ``count >= 2``, the smallest alone when ``count == 1``.

    Examples
    --------
    >>> grouped_ks(64, 16, 4)
    [17, 26, 41, 64]
    """
    low = min(n, max(1, math.ceil(n * math.log(n) / d)))
    return sorted({round(float(k)) for k in np.geomspace(low, n, count)})


def _two_layer_records(u: UnitContext, built) -> list[LorScalingRecord]:
    """Records of constructions that are ReLU ensembles (measured like trained nets)."""
    member = Member("construction", built.name, 1.0, -1, built.n_hidden)
    stated = built.stated_lipschitz if built.conditions_hold else None
    return u.ensemble_records(built.ensemble, [member], steps=[0], chosen=[False], full=[True],
                              stated=[stated], conditions=[built.conditions_hold])  # fmt: skip


def _tensor_records(u: UnitContext, built) -> list[LorScalingRecord]:
    """The tensor construction (polynomial activation): its own certified bound on the sphere.

    The global methods do not apply to ``t^q`` (not Lipschitz on ``R^d``); its certified value
    bounds the constant on the sphere, the one the law is about for sphere data.
    """
    X = u.data.X.double()
    mse = float(clipped_mse(built, X, u.data.y.double())[0])
    w_inf = max(float(built.hidden_weights.abs().max()), float(built.output_weights.abs().max()))
    lip = u.lipschitz_fields(
        upper=(built.certified_upper.value, built.certified_upper.status.value), sdp=SKIPPED,
        lower=SKIPPED, support=(built.sphere_lower.value, built.sphere_lower.status.value),
        methods=(built.certified_upper.method, "none", "none", built.sphere_lower.method),
    )  # fmt: skip
    member = Member("construction", built.name, 1.0, -1, built.n_hidden)
    record = u.record(member, kept_weights=built.n_hidden * (u.d + 1), w_inf=w_inf, mse=mse,
                      steps=0, chosen=False, lipschitz=lip, dtype="float64",
                      stated=built.stated_lipschitz if built.conditions_hold else None,
                      conditions=built.conditions_hold)  # fmt: skip
    return [record]


def _constructions(u: UnitContext) -> list[LorScalingRecord]:
    """Every construction the settings name, built from the unit's data (float64)."""
    X, y = u.data.X.double(), u.data.y.double()
    records = []
    for name in u.s.constructions:
        build, to_records = CONSTRUCTION_BUILDERS[name]
        if name == "grouped-min-norm":
            for k in grouped_ks(u.n, u.d, u.s.grouped_ks):
                records += to_records(u, build(X, y, k=k))
        elif name == "tensor":
            gen = torch.Generator().manual_seed(u.unit.params["dataset"])
            records += to_records(u, build(X, y, sphere_options=u.s.support_lower_options,
                                           generator=gen))  # fmt: skip
        else:
            records += to_records(u, build(X, y))
    return records


CONSTRUCTION_BUILDERS: dict[str, tuple[Callable, Callable]] = {
    "min-norm-linear": (constructions.min_norm_linear, _two_layer_records),
    "caps": (constructions.caps_network, _two_layer_records),
    "grouped-min-norm": (constructions.grouped_min_norm_network, _two_layer_records),
    "tensor": (constructions.tensor_network, _tensor_records),
}
"""Each construction's builder and how its result becomes records."""

UNIT_KINDS: dict[str, Callable[[UnitContext], list[LorScalingRecord]]] = {
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
    return UNIT_KINDS[unit.params["kind"]](UnitContext(settings, unit, device))
