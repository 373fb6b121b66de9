"""One ``nfp-mask-information`` unit: masks of every method for one (variant, init), their bits.

The unit trains the datasets it needs as one ensemble (every member the same init), computes
each method's masks at every pruned count (:mod:`.masks`), and measures
``I(m; D | init) = H(m | init)``:

- ``exact``: :func:`~robustlaw.empirical.information.exact_mask_entropy` over every dataset of
  the space, with its probability;
- sampled: the masks of ``n_sampled`` i.i.d. datasets (:func:`.datasets.sample_datasets`;
  a dataset drawn twice has the same mask, so each distinct one is trained once), counted by
  :func:`sampled_counts` and estimated by each of the settings' estimators with a bootstrap
  interval
  (:func:`~robustlaw.empirical.entropy.entropy_from_counts`).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from robustlaw.bounds import mask_entropy_upper_bound
from robustlaw.empirical.ensemble import init_mlp_ensemble, resolve_device
from robustlaw.empirical.information import entropy_from_counts, exact_mask_entropy
from robustlaw.empirical.training import SGD, TrainOptions
from robustlaw.experiments.nfp_mask_information.datasets import (
    DatasetSpace,
    dataset_space,
    sample_datasets,
)
from robustlaw.experiments.nfp_mask_information.masks import Problem, method_masks
from robustlaw.experiments.nfp_mask_information.record import MaskInformationRecord
from robustlaw.experiments.nfp_mask_information.settings import MaskInformationSettings
from robustlaw.experiments.registry import WorkUnit

__all__ = ["build_problem", "measure", "sampled_counts"]


def build_problem(
    settings: MaskInformationSettings,
    variant: str,
    init_seed: int,
    space: DatasetSpace,
    rows: np.ndarray,
    *,
    device: str | torch.device = "cpu",
) -> Problem:
    """The init of ``init_seed`` replicated over the datasets ``rows`` of ``space``.

    Labels are ±1 for MSE and the logistic loss, and class ``(y + 1) / 2`` for cross-entropy.
    """
    model = settings.model(variant)
    dtype = getattr(torch, settings.dtype)
    dev = resolve_device(device)
    ens = init_mlp_ensemble(model.spec(settings), [init_seed] * len(rows), dtype=dtype, device=dev)
    full = {k: torch.ones_like(v, dtype=torch.bool) for k, v in ens.params.items()}
    scaled = {k: v * settings.init_scale for k, v in ens.params.items()}
    ens = ens.with_params(scaled).with_masks(full)
    x, labels = space.tensors(rows, dtype=dtype, device=dev)
    y = ((labels + 1) / 2).long() if model.loss == "cross-entropy" else labels
    options = TrainOptions(
        optimizer=SGD(lr=settings.lr),
        loss=model.loss,
        max_steps=settings.steps,
        check_every=settings.steps,
    )
    return Problem(
        ensemble=ens,
        x=x,
        y=y,
        loss=model.loss,
        train_options=options,
        imp_rate=settings.imp_rate,
        synflow_iterations=settings.synflow_iterations,
        prune_seed=settings.prune_seed,
    )


def sampled_counts(masks: np.ndarray, sampled: np.ndarray) -> np.ndarray:
    """How often each distinct mask occurs among the draws, in decreasing order.

    What :func:`~robustlaw.empirical.information.mask_counts` returns for the masks
    ``masks[sampled]``, computed from each trained dataset's mask id (one ``np.unique`` over the
    ``K`` masks instead of hashing every draw).

    Parameters
    ----------
    masks : numpy.ndarray
        Boolean masks of shape ``(K, n_params)``, one per trained dataset.
    sampled : numpy.ndarray
        The drawn datasets, as rows of ``masks``.

    Examples
    --------
    >>> m = np.array([[True, False], [False, True], [True, False]])
    >>> sampled_counts(m, np.array([0, 1, 2, 2])).tolist()
    [3, 1]
    """
    _, ids = np.unique(np.packbits(masks, axis=1), axis=0, return_inverse=True)
    counts = np.bincount(ids.reshape(-1)[sampled])
    return np.sort(counts[counts > 0])[::-1]


def _estimates(settings, masks: np.ndarray, space: DatasetSpace, rows, sampled):
    """``(estimator, EntropyEstimate, n_datasets)`` for the exact value and each estimator."""
    out = []
    if settings.exact:  # equally likely datasets unless drawn with replacement
        pairs = zip(range(len(rows)), space.probabilities[rows], strict=True)
        datasets = pairs if space.replace else range(len(rows))
        exact = exact_mask_entropy(lambda i: masks[i], datasets, weighted=space.replace)
        out.append(("exact", exact, space.n_datasets))
    if sampled is not None:
        counts = sampled_counts(masks, sampled)
        for name in settings.estimators:
            est = entropy_from_counts(counts, name, n_boot=settings.n_boot,
                                      level=settings.level, seed=settings.sample_seed)  # fmt: skip
            out.append((name, est, len(sampled)))
    return out


def measure(
    settings: MaskInformationSettings, unit: WorkUnit, *, device: str, progress: bool
) -> list[MaskInformationRecord]:
    """Measure every method's mask information at every count for one (variant, init)."""
    variant, init_seed = unit.params["variant"], unit.params["init"]
    space = dataset_space(settings.n_samples, settings.n_features, replace=settings.replace)
    draws = (
        sample_datasets(space, settings.n_sampled, seed=settings.sample_seed)
        if settings.n_sampled
        else None
    )
    rows = np.arange(space.n_datasets) if settings.exact else np.unique(draws)
    sampled = None if draws is None else np.searchsorted(rows, draws)
    problem = build_problem(settings, variant, init_seed, space, rows, device=device)
    p = problem.n_params
    weights = space.probabilities[rows] / space.probabilities[rows].sum()
    fitted = problem.dense.record.fit_fraction == 1.0
    common = {
        "variant": variant,
        "init_seed": init_seed,
        "n_params": p,
        "data_entropy_bits": space.entropy_bits,
        "dense_fit_fraction": float(weights[fitted].sum()),
    }
    counts = settings.pruned_counts(variant)
    records = []
    for method in tqdm(settings.methods, desc=unit.key, disable=not progress):
        by_kept = method_masks(problem, method, [p - k for k in counts])
        for k in counts:
            ceiling = float(mask_entropy_upper_bound(p, p - k))
            for name, est, n in _estimates(settings, by_kept[p - k], space, rows, sampled):
                records.append(
                    MaskInformationRecord(
                        **common,
                        method=method,
                        n_pruned=k,
                        n_kept=p - k,
                        estimator=name,
                        bits=est.bits,
                        ci_low=est.ci_low,
                        ci_high=est.ci_high,
                        ceiling_bits=ceiling,
                        n_datasets=n,
                        n_distinct=est.n_distinct,
                    )
                )
    return records
