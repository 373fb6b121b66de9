"""The Python entry points: :func:`run` an experiment into a store, :func:`load` its results."""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import robustlaw
from robustlaw._validation import check_integer, get_registered
from robustlaw.errors import ValidationError
from robustlaw.experiments.executors import EXECUTORS, ExecutionOptions
from robustlaw.experiments.keys import canonical_json
from robustlaw.experiments.keys import settings_hash as hash_settings
from robustlaw.experiments.registry import get_experiment
from robustlaw.experiments.store import Store
from robustlaw.io import to_frame

__all__ = ["RunSummary", "load", "run"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """What :func:`run` did.

    Attributes
    ----------
    experiment, preset, settings_hash, store, device, executor : str
        What ran, under which key, into which file, where and how.
    n_units : int
        Units the settings expand into.
    n_skipped : int
        Units already in the store (a resumed run skips them).
    n_run : int
        Units run and stored now.
    wall_time_s : float
        Seconds this call took.
    """

    experiment: str
    preset: str | None
    settings_hash: str
    store: str
    device: str
    executor: str
    n_units: int
    n_skipped: int
    n_run: int
    wall_time_s: float


@functools.cache
def _git_revision() -> str | None:
    root = Path(robustlaw.__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run(
    name: str,
    preset: str = "default",
    *,
    settings: Any = None,
    store: str | os.PathLike = "results.sqlite",
    device: str = "auto",
    executor: str = "local",
    address: str | None = None,
    threads: int | None = None,
    progress: bool | None = None,
) -> RunSummary:
    """Run experiment ``name`` and store every finished work unit; resume what is stored.

    Units already in ``store`` under the same settings hash and package version are skipped,
    so calling ``run`` again after an interruption (even SIGKILL) completes only the missing
    units.

    Parameters
    ----------
    name : str
        A registered experiment (see :func:`robustlaw.experiments.list_experiments`).
    preset : {"tiny", "default", "paper"}
        The settings preset; ignored when ``settings`` is given.
    settings : dataclass, optional
        Explicit settings of the experiment's settings class.
    store : path
        The SQLite file (created if missing; its folder must exist).
    device : {"auto", "cpu", "cuda"}
        Where units run; ``"auto"`` takes the GPU when there is one.
    executor : {"local", "ray"}
        How units run.
    address : str, optional
        Ray cluster address (executor ``"ray"`` only); None starts a local Ray runtime.
    threads : int, optional
        Torch intra-op threads per unit (CPUs per Ray task); None leaves torch's default.
        Results do not depend on it in the tests' presets, but small networks run much faster
        with 1 thread on a busy machine.
    progress : bool, optional
        Show a progress bar; default: when stderr is a terminal.

    Returns
    -------
    RunSummary
    """
    experiment = get_experiment(name)
    if settings is None:
        settings = experiment.preset(preset)
    else:
        preset = None
        if not isinstance(settings, experiment.settings_cls):
            raise ValidationError(
                f"settings must be a {experiment.settings_cls.__name__}, "
                f"got {type(settings).__name__}"
            )
    execute = get_registered(EXECUTORS, executor, "executor")
    if address is not None and executor != "ray":
        raise ValidationError(f"address is only used by executor 'ray', got executor {executor!r}")
    if threads is not None:
        check_integer(threads, "threads", minimum=1)
    device = _resolve_device(device)
    progress = sys.stderr.isatty() if progress is None else progress
    key = hash_settings(name, settings)
    units = experiment.expand(settings)
    if len({u.key for u in units}) != len(units):
        raise ValidationError(f"experiment {name!r} expands into units with duplicate keys")
    provenance = {
        "package_version": robustlaw.__version__,
        "git_revision": _git_revision(),
        "torch_version": _torch_version(),
        "device": device,
    }
    start = time.perf_counter()
    with Store(store) as db:
        done = db.done_units(name, key, robustlaw.__version__)
        todo = [u for u in units if u.key not in done]
        logger.info("%s: %d units, %d stored, %d to run", name, len(units), len(done), len(todo))
        ran = 0
        options = ExecutionOptions(
            device=device, progress=progress, address=address, threads=threads
        )
        for unit, records, seconds in execute(experiment, settings, todo, options):
            ran += db.write_unit(
                experiment=experiment,
                settings_hash=key,
                settings_json=canonical_json(settings),
                unit=unit,
                records=records,
                provenance={**provenance, "wall_time_s": seconds},
            )
    return RunSummary(
        experiment=name,
        preset=preset,
        settings_hash=key,
        store=str(store),
        device=device,
        executor=executor,
        n_units=len(units),
        n_skipped=len(units) - len(todo),
        n_run=ran,
        wall_time_s=time.perf_counter() - start,
    )


def _resolve_device(device: str) -> str:
    from robustlaw.empirical.ensemble import resolve_device

    return str(resolve_device(device))


def _torch_version() -> str:
    import torch

    return torch.__version__


def load(
    store: str | os.PathLike,
    name: str,
    *,
    preset: str | None = None,
    settings_hash: str | None = None,
    include_all: bool = False,
    as_frame: bool | None = None,
):
    """Load the results of experiment ``name`` from ``store``.

    By default the results must come from one settings hash and from this package version;
    when the store holds several, pass ``preset`` or ``settings_hash`` to pick one, or
    ``include_all=True`` to get every row (the ``settings_hash`` and ``package_version``
    columns tell them apart). Results are never mixed silently.

    Parameters
    ----------
    store : path
        The SQLite file.
    name : str
        The experiment.
    preset : str, optional
        Select the results of this preset's settings.
    settings_hash : str, optional
        Select the results of these settings.
    include_all : bool
        Return every settings hash and package version.
    as_frame : bool, optional
        Return a pandas DataFrame (default when pandas is installed) or a list of dicts.

    Returns
    -------
    pandas.DataFrame or list of dict
        One row per stored record: the key and provenance columns
        (:data:`~robustlaw.experiments.registry.KEY_COLUMNS`), then the record's fields.

    Raises
    ------
    ValidationError
        When the store has no such results, or holds several settings or versions and none
        was chosen.
    """
    with Store(store, readonly=True) as db:
        groups = db.groups(name)
        if not groups:
            present = ", ".join(db.experiments()) or "none"
            raise ValidationError(
                f"store {str(store)!r} has no results of {name!r} (experiments present: {present})"
            )
        if preset is not None:
            settings_hash = hash_settings(name, get_experiment(name).preset(preset))
        if not include_all:
            chosen = [
                g
                for g in groups
                if g["package_version"] == robustlaw.__version__
                and settings_hash in (None, g["settings_hash"])
            ]
            if len(chosen) != 1:
                listing = "; ".join(
                    f"settings_hash={g['settings_hash']} version={g['package_version']} "
                    f"units={g['n_units']}"
                    for g in groups
                )
                raise ValidationError(
                    f"store {str(store)!r} holds {len(chosen)} matching result sets of {name!r} "
                    f"for robustlaw {robustlaw.__version__} (found: {listing}); pass preset= or "
                    "settings_hash= to choose one, or include_all=True to load all"
                )
            settings_hash = chosen[0]["settings_hash"]
        version = None if include_all else robustlaw.__version__
        rows = db.records(name, settings_hash=settings_hash, package_version=version)
    return to_frame(rows, as_frame=as_frame)
