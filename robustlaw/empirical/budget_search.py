r"""The smallest spectral budget that still fits below the noise (THEORY.md §7.2, constraint mode).

Every layer is kept in the spectral ball :math:`\|W_l\|_2 \le s` during training (a projection
after every step), so a network with 1-Lipschitz activations and ``L`` weight layers is
:math:`s^L`-Lipschitz; :func:`smallest_fitting_budget` bisects on ``s`` with the ensemble.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

import torch

from robustlaw._validation import check_integer, check_interval
from robustlaw.empirical.ensemble import Ensemble
from robustlaw.empirical.pruning.members import select_members
from robustlaw.empirical.search import _certified_uppers, _clipped_fit
from robustlaw.empirical.training import BelowNoise, SpectralBall, TrainOptions, train_ensemble
from robustlaw.errors import ValidationError

__all__ = ["BudgetRound", "BudgetSearch", "BudgetStatus", "smallest_fitting_budget"]


class BudgetStatus(enum.Enum):
    """How a budget search ended."""

    CONVERGED = "converged"  # hi / lo <= 1 + rtol
    MAX_ROUNDS = "max-rounds"  # ``rounds`` bisection rounds ran; the bracket is wider
    LO_FITS = "lo-fits"  # the starting ``lo`` already fits: pass a smaller one
    NONE_FIT = "none-fit"  # no budget tried fits: raise ``hi``, ``max_doublings`` or max_steps


@dataclass(frozen=True, kw_only=True)
class BudgetRound:
    """One round of the search: the budgets trained and which of them fit.

    Attributes
    ----------
    phase : {"expand", "bisect"}
        A doubling ladder ``lo * 2**j`` looking for a first fit, or a grid inside the bracket.
    budgets, fits, train_mse : tuple
        Per budget (ascending): the budget, whether some restart fit below the noise, and the
        smallest clipped training MSE over the restarts (squared output units).
    bracket : tuple of float
        ``(lo, hi)`` after the round (``hi`` is ``inf`` while nothing fit).
    """

    phase: str
    budgets: tuple[float, ...]
    fits: tuple[bool, ...]
    train_mse: tuple[float, ...]
    bracket: tuple[float, float]


@dataclass(frozen=True, kw_only=True, eq=False)
class BudgetSearch:
    r"""The outcome of :func:`smallest_fitting_budget`.

    Attributes
    ----------
    status : BudgetStatus
        How the search ended.
    budget : float or None
        The smallest per-layer budget ``s`` (output units per input unit) for which some restart
        fit below the noise; None when none fit.
    bracket : tuple of float
        ``(lo, hi)``: ``hi = budget`` fit, no restart fit at ``lo`` (which may only need more
        steps: ``hi`` bounds the true smallest budget from above, ``lo`` does not bound it from
        below). ``(0.0, lo)`` when the starting ``lo`` fit, ``(largest tried, inf)`` when none did.
    ensemble : Ensemble or None
        The best fit at ``budget`` as a one-member ensemble (the restart with the smallest
        certified upper bound), masks kept.
    member : int or None
        The index of that restart in the input ensemble.
    train_mse : float or None
        Its training MSE of outputs clipped to ``[-1, 1]`` (squared output units).
    upper : float or None
        Its certified upper bound on its Lipschitz constant, measured after training (the
        spectral product, ``estimate_lipschitz("spectral", ...)``); None if not certified. As
        the member fits below the noise, this also bounds :math:`L^\star` from above
        (THEORY §7.1).
    product_budget : float or None
        ``budget ** n_layers``, the bound the constraint aims at (not certified: the projection
        estimates norms by power iteration, so ``upper`` may exceed it slightly).
    n_layers, n_rounds, n_trainings : int
        ``L`` (weight layers); rounds run (expansion and bisection); networks trained (members
        over every round).
    history : tuple of BudgetRound
        Every round, in order.
    """

    status: BudgetStatus
    budget: float | None = None
    bracket: tuple[float, float]
    ensemble: Ensemble | None = None
    member: int | None = None
    train_mse: float | None = None
    upper: float | None = None
    product_budget: float | None = None
    n_layers: int
    n_rounds: int
    n_trainings: int
    history: tuple[BudgetRound, ...]


def _train_round(ens, X, y, options, rule, budgets, power_iterations):
    """Train every restart at every budget (budget-major); clipped MSE and fits, per budget.

    The starting weights are scaled exactly (SVD) by ``min(1, s / ||W_l||_2)``: the trainer
    checks the stopping rule before its first step, so a start that already fits would
    otherwise stop outside the ball.
    """
    restarts = ens.n_members
    start = select_members(ens, [r for _ in budgets for r in range(restarts)])
    per_member = tuple(b for b in budgets for _ in range(restarts))
    scale = torch.tensor(per_member, dtype=torch.float64, device=ens.device)
    for name in ens.spec.weight_names():
        sigma = torch.linalg.matrix_norm(start.params[name].to(torch.float64), ord=2)
        factor = (scale / sigma).clamp(max=1.0)  # sigma = 0: inf, clamped to 1
        start.params[name].mul_(factor.to(ens.dtype).reshape(-1, 1, 1))
    ball = SpectralBall(budget=per_member, power_iterations=power_iterations)
    trained = train_ensemble(start, X, y, replace(options, constraint=ball)).to_ensemble(start)
    mse, fits = _clipped_fit(trained, X, y, rule)
    return trained, mse.reshape(-1, restarts), fits.reshape(-1, restarts)


def _geometric(lo: float, hi: float, n: int) -> list[float]:
    """``n`` budgets geometrically spaced strictly inside ``(lo, hi)``."""
    return [lo * (hi / lo) ** (j / (n + 1)) for j in range(1, n + 1)]


def smallest_fitting_budget(
    ens: Ensemble,
    X,
    y,
    options: TrainOptions | None = None,
    *,
    noise_level: float,
    eps: float,
    lo: float = 1e-2,
    hi: float | None = None,
    n_grid: int = 4,
    rounds: int = 6,
    rtol: float = 0.05,
    max_doublings: int = 20,
    power_iterations: int = 2,
    upper_options=None,
) -> BudgetSearch:
    r"""The smallest per-layer spectral budget ``s`` at which constrained training fits.

    Constraint mode of THEORY.md §7.2: every weight matrix is projected to
    :math:`\|W_l\|_2 \le s` after every optimizer step (Lipschitz-bounded layers: Miyato et al.
    2018; Gouk et al. 2021), so a network with 1-Lipschitz activations and ``L`` layers is
    :math:`s^L`-Lipschitz; a bisection on ``s`` finds the smallest budget that still fits. Each
    round trains one ensemble of ``n_grid * K`` members: a geometric grid of budgets across the
    bracket ``[lo, hi]``, each with the ``K`` restarts of ``ens`` (their weights, masks and
    seeds, copied), then narrows the bracket to [largest budget no restart fit, smallest budget
    some restart fit]. It stops when ``hi / lo <= 1 + rtol`` or after ``rounds`` bisection
    rounds. The first round also trains ``lo`` (and ``hi`` when given); without ``hi`` the
    search first doubles, ``lo * 2**j`` for ``j <= max_doublings``, ``n_grid`` at a time.

    A member fits when the MSE of its outputs clipped to ``[-1, 1]`` is at most
    ``noise_level - eps`` (:class:`~robustlaw.empirical.training.BelowNoise`), judged after
    training whatever the stopping rule. Falsification (THEORY §7.1): the certified ``upper``
    of the fit bounds :math:`L^\star` from above; only such a bound under a theorem's floor
    contradicts it. A budget that fails may only need more steps: ``budget`` is the smallest
    budget this optimizer fit, an upper bound on the true smallest one.

    Parameters
    ----------
    ens : Ensemble
        ``K`` restarts (initial weights, masks, seeds; e.g. ``init_mlp_ensemble(spec,
        seeds=range(K))``) with one output. Each round starts from these weights scaled
        exactly into its ball; pruned entries stay exactly zero.
    X : array_like
        Training inputs, shape ``(n_samples, n_features)``.
    y : array_like
        Training targets, shape ``(n_samples,)``.
    options : TrainOptions, optional
        How to train; its ``constraint`` is replaced by the per-member
        :class:`~robustlaw.empirical.training.SpectralBall` and its stopping rule is kept.
        Defaults to ``TrainOptions(stopping=BelowNoise(noise_level=noise_level, eps=eps))``.
        The learning rate must be one number.
    noise_level, eps : float
        sigma^2, the label-noise variance, and how far below it the clipped MSE must go
        (squared output units, both >= 0).
    lo, hi : float
        The starting bracket of per-layer budgets (output units per input unit), ``0 < lo <
        hi``; ``hi=None`` finds it by doubling.
    n_grid, rounds : int
        Budgets per round, and the most bisection rounds (with ``hi`` given, the first round
        counts); both >= 1.
    rtol : float
        Relative width at which to stop, ``hi / lo <= 1 + rtol`` (> 0).
    max_doublings : int
        The most doublings of ``lo`` while looking for a first fit (>= 0).
    power_iterations : int
        Power-iteration steps of the projection per training step (>= 1).
    upper_options : SpectralOptions, optional
        Options of the ``"spectral"`` upper bound measured on the fits.

    Returns
    -------
    BudgetSearch

    Raises
    ------
    ValidationError
        For an ensemble without seeds or with more than one output, ``X`` or ``y`` of the wrong
        shape, a per-member learning rate, or any number out of its range.

    References
    ----------
    T. Miyato, T. Kataoka, M. Koyama, Y. Yoshida, "Spectral normalization for generative
    adversarial networks", ICLR 2018. H. Gouk, E. Frank, B. Pfahringer, M. J. Cree,
    "Regularisation of neural networks by enforcing Lipschitz continuity", Machine Learning
    110 (2021).

    Examples
    --------
    >>> import torch
    >>> from robustlaw.empirical import MLPSpec, init_mlp_ensemble
    >>> from robustlaw.empirical.training import SGD, BelowNoise, TrainOptions
    >>> X = torch.eye(3, dtype=torch.float64)
    >>> y = torch.tensor([0.3, 0.4, 0.0], dtype=torch.float64)  # w = (0.3, 0.4, 0)
    >>> ens = init_mlp_ensemble(MLPSpec(layer_sizes=(3, 1), bias=False), [0], dtype=X.dtype)
    >>> fit = {"noise_level": 1e-6, "eps": 0.0}  # MSE <= 1e-6: the budget must reach ~0.5
    >>> opts = TrainOptions(optimizer=SGD(lr=1.0), stopping=BelowNoise(**fit), max_steps=50)
    >>> res = smallest_fitting_budget(ens, X, y, opts, **fit, lo=0.1, hi=1.0, rtol=0.01)
    >>> res.status.value, round(res.budget, 2), res.upper <= res.budget * (1 + 1e-9)
    ('converged', 0.5, True)
    """
    if not isinstance(ens, Ensemble):
        raise ValidationError(f"ens must be an Ensemble, got {type(ens).__name__}")
    if ens.spec.layer_sizes[-1] != 1:
        raise ValidationError(f"ens must have one output, got layer_sizes {ens.spec.layer_sizes}")
    if not ens.seeds:
        raise ValidationError("ens must carry seeds (one per restart); use init_mlp_ensemble")
    check_interval(noise_level, "noise_level", 0, math.inf, closed="left", scalar=True)
    check_interval(eps, "eps", 0, math.inf, closed="left", scalar=True)
    lo = float(check_interval(lo, "lo", 0, math.inf, scalar=True))
    if hi is not None:
        hi = float(check_interval(hi, "hi", lo, math.inf, scalar=True))
    rtol = float(check_interval(rtol, "rtol", 0, math.inf, scalar=True))
    check_integer(n_grid, "n_grid", minimum=1)
    check_integer(rounds, "rounds", minimum=1)
    check_integer(max_doublings, "max_doublings", minimum=0)
    check_integer(power_iterations, "power_iterations", minimum=1)
    rule = BelowNoise(noise_level=float(noise_level), eps=float(eps))
    options = TrainOptions(stopping=rule) if options is None else options
    if not isinstance(options, TrainOptions):
        raise ValidationError(f"options must be a TrainOptions, got {type(options).__name__}")
    if isinstance(options.optimizer.lr, tuple):
        raise ValidationError("options.optimizer.lr must be one number: members are budgets here")
    X = torch.as_tensor(X, dtype=ens.dtype, device=ens.device)
    d = ens.spec.layer_sizes[0]
    if X.ndim != 2 or X.shape[1] != d:
        raise ValidationError(f"X must have shape (n_samples, {d}), got {tuple(X.shape)}")
    y = torch.as_tensor(y, dtype=ens.dtype, device=ens.device)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValidationError(f"y must have shape ({X.shape[0]},), got {tuple(y.shape)}")

    restarts, history, n_bisect = ens.n_members, [], int(hi is not None)
    known_lo, known_hi = None, math.inf  # largest budget no restart fit; smallest some did
    best = None  # (trained ensemble, fitting members, mse) of the round that set known_hi

    def run(phase: str, budgets: list[float]) -> None:
        nonlocal known_lo, known_hi, best
        trained, mse, fit = _train_round(ens, X, y, options, rule, budgets, power_iterations)
        fits = [bool(f.any()) for f in fit]
        for i, b in enumerate(budgets):
            if fits[i] and b < known_hi:
                known_hi = b
                best = (trained, [i * restarts + r for r in range(restarts) if fit[i, r]], mse)
        below = [b for b, f in zip(budgets, fits, strict=True) if not f and b < known_hi]
        known_lo = max(below + ([] if known_lo is None else [known_lo]), default=None)
        bracket = (0.0 if known_lo is None else known_lo, known_hi)
        mins = tuple(float(m.min()) for m in mse)
        rec = {"budgets": tuple(budgets), "fits": tuple(fits), "train_mse": mins}
        history.append(BudgetRound(phase=phase, bracket=bracket, **rec))

    if hi is not None:
        run("bisect", [lo, *_geometric(lo, hi, n_grid), hi])
    else:
        ladder = [lo * 2.0**j for j in range(max_doublings + 1)]
        for start in range(0, len(ladder), n_grid):
            run("expand", ladder[start : start + n_grid])
            if known_hi < math.inf:
                break
    for _ in range(rounds - n_bisect):
        if known_lo is None or not (1 + rtol) * known_lo < known_hi < math.inf:
            break
        run("bisect", _geometric(known_lo, known_hi, n_grid))

    n_trainings = sum(len(h.budgets) for h in history) * restarts
    common = {"n_layers": ens.spec.n_layers, "n_rounds": len(history), "history": tuple(history)}
    common["n_trainings"] = n_trainings
    if best is None:
        largest = max(b for h in history for b in h.budgets)
        return BudgetSearch(status=BudgetStatus.NONE_FIT, bracket=(largest, math.inf), **common)
    if known_lo is None:
        status = BudgetStatus.LO_FITS
    elif known_hi <= (1 + rtol) * known_lo:
        status = BudgetStatus.CONVERGED
    else:
        status = BudgetStatus.MAX_ROUNDS
    trained, candidates, mse = best
    uppers = _certified_uppers("spectral", trained, upper_options, candidates)
    k = min(uppers, key=lambda j: (uppers[j], j)) if uppers else candidates[0]
    return BudgetSearch(
        status=status,
        budget=known_hi,
        bracket=(0.0 if known_lo is None else known_lo, known_hi),
        ensemble=select_members(trained, [k]),
        member=k % restarts,
        train_mse=float(mse.reshape(-1)[k]),
        upper=uppers.get(k),
        product_budget=known_hi**ens.spec.n_layers,
        **common,
    )
