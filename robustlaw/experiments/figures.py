"""Draw an experiment's registered figures from a store (the one place figures meet a store)."""

from __future__ import annotations

import os
from pathlib import Path

from robustlaw.experiments.api import AmbiguousResultsError, load
from robustlaw.experiments.registry import get_experiment
from robustlaw.io import ensure_folder, save_figure

__all__ = ["draw_figures"]


def draw_figures(
    store: str | os.PathLike,
    name: str,
    out_dir: str | os.PathLike,
    *,
    preset: str | None = None,
    settings_hash: str | None = None,
    package_version: str | None = None,
) -> list[Path]:
    """Draw every figure experiment ``name`` registers from ``store`` into ``out_dir``.

    The rows are those :func:`robustlaw.experiments.load` returns with the same selection
    (``preset``, ``settings_hash``, ``package_version``: one result set, never a mix); each
    figure function receives them as a list of dicts. ``out_dir`` is created when missing.

    Returns
    -------
    list of pathlib.Path
        The written ``<name>-<figure>.png`` and ``.pdf`` files.
    """
    experiment = get_experiment(name)
    selection = {
        "preset": preset,
        "settings_hash": settings_hash,
        "package_version": package_version,
    }
    try:
        rows = load(store, name, **selection, as_frame=False)
    except AmbiguousResultsError as err:  # the same advice, less include_all (never a mix)
        raise AmbiguousResultsError(
            err.store,
            err.experiment,
            err.groups,
            err.matching,
            selection=err.selection,
            include_all=False,
        ) from None
    out_dir = ensure_folder(out_dir)
    paths = []
    for figure_name, draw in experiment.figures.items():
        paths += save_figure(draw(rows), out_dir / f"{name}-{figure_name}")
    return paths
