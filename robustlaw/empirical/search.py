"""The smallest certified upper bound over the fits an ensemble found (THEORY.md §7.1-7.2).

The law bounds :math:`L^\\star(n, d, p)`, the *smallest* Lipschitz constant over the fits below
the noise, from below. An experiment brackets :math:`L^\\star` from above by the smallest
certified upper bound of any fit it finds. Penalty strengths, budgets and restarts are
ensemble members, so one ensemble searches a grid; :func:`smallest_certified_fit` returns, per
group of members that share ``(n, d, p)`` (or any other label), the member with the smallest
certified upper bound among those that fit below the noise, with its lower estimate beside it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from robustlaw._validation import check_interval, get_registered
from robustlaw.empirical.ensemble import Ensemble
from robustlaw.empirical.lipschitz.registry import LIPSCHITZ_METHODS, estimate_lipschitz
from robustlaw.empirical.lipschitz.weights import Network, as_network
from robustlaw.empirical.pruning.members import select_members
from robustlaw.empirical.training.stopping import BelowNoise, CheckPass
from robustlaw.errors import ValidationError

__all__ = ["SmallestFit", "smallest_certified_fit"]


@dataclass(frozen=True, kw_only=True)
class SmallestFit:
    """The member of one group with the smallest certified upper bound among its fits.

    Attributes
    ----------
    group : hashable
        The group's label (as passed in ``groups``).
    member : int or None
        Index of the chosen member in the ensemble; None when no member of the group both fits
        below the noise and has a certified, finite upper bound.
    upper : float or None
        The chosen member's certified upper bound on its own Lipschitz constant. Since the
        member fits below the noise, this is also an upper bound on :math:`L^\\star` of the
        group's ``(n, d, p)``.
    lower : float or None
        The lower estimate (an attained Jacobian norm) of the chosen member. It bounds *that
        member's* Lipschitz constant from below, **not** :math:`L^\\star`: another fit may be
        smoother. None when no member was chosen or the lower method failed for it.
    n_members : int
        How many members carry this group's label.
    n_fitted : int
        How many of them fit below the noise (whether or not their bound is certified).
    upper_method, lower_method : str
        The registry names of the methods used.
    train_mse : float or None
        The chosen member's training MSE of its outputs clipped to ``[-1, 1]``.
    """

    group: Hashable
    member: int | None
    upper: float | None
    lower: float | None
    n_members: int
    n_fitted: int
    upper_method: str
    lower_method: str
    train_mse: float | None


def _check_method(name: str, kind: str, argument: str) -> None:
    entry = get_registered(LIPSCHITZ_METHODS, name, "Lipschitz method")
    if entry.kind != kind:
        raise ValidationError(
            f"{argument} must name a method of kind {kind!r}, got {name!r} (kind {entry.kind!r})"
        )


def _member_network(net: Network, k: int) -> Network:
    """Member ``k`` of a batched network, as one unbatched network (biases and activation kept)."""
    return Network(
        weights=tuple(w[k : k + 1] for w in net.weights),
        biases=None if net.biases is None else tuple(b[k : k + 1] for b in net.biases),
        activation=net.activation,
        batched=False,
    )


def _clipped_fit(ens: Ensemble, X: torch.Tensor, y: torch.Tensor, rule: BelowNoise):
    """Clipped train MSE per member, and which members fit below the noise (``rule``)."""
    with torch.no_grad():
        out = ens(X)
    targets = y.reshape(-1, 1)
    err = (out.clamp(-1.0, 1.0) - targets).square()
    mse = err.flatten(1).mean(dim=1)
    check = CheckPass(
        outputs=out,
        targets=targets,
        per_example=err[..., 0],
        fitted=torch.zeros_like(err[..., 0], dtype=torch.bool),
        history=mse[None],
    )
    return mse.to(torch.float64).cpu().numpy(), rule(check).cpu().numpy()


def _certified_uppers(
    method: str, ens: Ensemble, options, candidates: Sequence[int]
) -> dict[int, float]:
    """Certified, finite upper bounds of the candidate members (others are left out).

    The ensemble is bounded in one batched call first. :class:`LipschitzEstimate` reports
    ``certified`` for the whole ensemble only, so when that call is not certified every
    candidate is bounded again on its own, and only the members certified there are kept.
    """
    if not candidates:
        return {}
    est = estimate_lipschitz(method, ens, options)
    values = est.values
    if est.certified:
        return {k: float(values[k]) for k in candidates if math.isfinite(values[k])}
    net = as_network(ens)
    out = {}
    for k in candidates:
        one = estimate_lipschitz(method, _member_network(net, k), options)
        v = float(one.values[0])
        if one.certified and math.isfinite(v):
            out[k] = v
    return out


def smallest_certified_fit(
    ens: Ensemble,
    X,
    y,
    *,
    groups: Sequence[Hashable],
    noise_level: float,
    eps: float,
    upper_method: str = "spectral",
    upper_options=None,
    lower_method: str = "gradient",
    lower_options=None,
    generator: torch.Generator | None = None,
) -> tuple[SmallestFit, ...]:
    """Per group, the fit below the noise with the smallest certified upper bound.

    Falsification logic (THEORY.md §7.1): Theorems 2-4 bound *every* fit below the noise
    from below, so the quantity they predict is :math:`L^\\star`, the smallest Lipschitz
    constant over such fits. A certified upper bound ``U`` of any fit below the noise gives
    :math:`L^\\star \\le U`; the smallest such ``U`` over a search is the tightest bracket from
    above. Only such a bound lying *under* the theorem's floor contradicts the theorem. A large
    ``U``, an uncertified value, or a member that does not fit below the noise says nothing
    about the law. The ``lower`` field is the lower estimate of the *chosen member*: it bounds
    that member's constant from below, not :math:`L^\\star` (another fit may be smoother), so
    it cannot confirm or refute the law; it only shows how loose the member's upper bound is.

    Parameters
    ----------
    ens : Ensemble
        A trained ensemble of K members with one output.
    X : array_like
        Training inputs, shape ``(n, d)``.
    y : array_like
        Training targets, shape ``(n,)``.
    groups : sequence of hashable
        K labels, one per member (e.g. ``(n, d, p)`` tuples); members sharing a label compete.
    noise_level : float
        sigma^2, the label-noise variance (>= 0).
    eps : float
        How far below the noise the clipped training MSE must go (>= 0). A member fits below
        the noise when the MSE of its outputs clipped to ``[-1, 1]`` is at most
        ``noise_level - eps``, the rule of
        :class:`~robustlaw.empirical.training.stopping.BelowNoise` (which decides it here).
    upper_method : str
        A registered method of kind ``"upper"`` (``"spectral"``, ``"eclipse-fast"``, ...).
    upper_options : dataclass, optional
        Options of ``upper_method``.
    lower_method : str
        A registered method of kind ``"lower"`` (``"gradient"``, ``"gradient-sphere"``).
    lower_options : dataclass, optional
        Options of ``lower_method``.
    generator : torch.Generator, optional
        Passed to the lower method.

    Returns
    -------
    tuple of SmallestFit
        One per distinct label, in order of first appearance in ``groups``.

    Notes
    -----
    Per-member certification: :class:`~robustlaw.empirical.lipschitz.result.LipschitzEstimate`
    reports ``certified`` for the whole ensemble. When the batched call is certified, every
    member's value is taken as certified; otherwise each fitted member is bounded again on its
    own and kept only if that single-member estimate is certified. Members whose upper bound is
    not certified or not finite are never chosen. Ties go to the lowest member index. Lower
    estimates are computed (batched, with ``X``) for the chosen members only.

    Raises
    ------
    ValidationError
        ``groups`` of the wrong length or with unhashable labels, ``noise_level`` or ``eps``
        negative or not finite, an ensemble with more than one output, ``X`` or ``y`` of the
        wrong shape, or a method of the wrong kind.
    UnknownNameError
        For an unregistered method name.
    """
    if not isinstance(ens, Ensemble):
        raise ValidationError(f"ens must be an Ensemble, got {type(ens).__name__}")
    if ens.spec.layer_sizes[-1] != 1:
        raise ValidationError(f"ens must have one output, got layer_sizes {ens.spec.layer_sizes}")
    k_members = ens.n_members
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence):
        raise ValidationError(f"groups must be a sequence of labels, got {type(groups).__name__}")
    if len(groups) != k_members:
        raise ValidationError(
            f"groups must have one label per member ({k_members}), got {len(groups)}"
        )
    for i, g in enumerate(groups):
        if not isinstance(g, Hashable):
            raise ValidationError(f"groups[{i}] must be hashable, got {type(g).__name__}")
    noise_level = float(
        check_interval(noise_level, "noise_level", 0, math.inf, closed="left", scalar=True)
    )
    eps = float(check_interval(eps, "eps", 0, math.inf, closed="left", scalar=True))
    _check_method(upper_method, "upper", "upper_method")
    _check_method(lower_method, "lower", "lower_method")
    X = torch.as_tensor(X, dtype=ens.dtype, device=ens.device)
    if X.ndim != 2 or X.shape[1] != ens.spec.layer_sizes[0]:
        raise ValidationError(
            f"X must have shape (n, {ens.spec.layer_sizes[0]}), got {tuple(X.shape)}"
        )
    y = torch.as_tensor(y, dtype=ens.dtype, device=ens.device)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValidationError(f"y must have shape ({X.shape[0]},), got {tuple(y.shape)}")

    rule = BelowNoise(noise_level=noise_level, eps=eps)
    mse, fits = _clipped_fit(ens, X, y, rule)
    fitted = [k for k in range(k_members) if fits[k]]
    uppers = _certified_uppers(upper_method, ens, upper_options, fitted)

    members: dict[Hashable, list[int]] = {}
    for k, g in enumerate(groups):
        members.setdefault(g, []).append(k)
    chosen: dict[Hashable, int | None] = {}
    for g, ks in members.items():
        cands = [k for k in ks if k in uppers]
        chosen[g] = min(cands, key=lambda k: (uppers[k], k)) if cands else None

    picked = sorted({k for k in chosen.values() if k is not None})
    lowers = np.full(k_members, np.nan)
    if picked:
        lowers[picked] = estimate_lipschitz(
            lower_method, select_members(ens, picked), lower_options, X=X, generator=generator
        ).values

    results = []
    for g, ks in members.items():
        k = chosen[g]
        low = None if k is None or not math.isfinite(lowers[k]) else float(lowers[k])
        results.append(
            SmallestFit(
                group=g,
                member=k,
                upper=None if k is None else uppers[k],
                lower=low,
                n_members=len(ks),
                n_fitted=sum(1 for j in ks if fits[j]),
                upper_method=upper_method,
                lower_method=lower_method,
                train_mse=None if k is None else float(mse[k]),
            )
        )
    return tuple(results)
