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
from robustlaw.experiments.executors import EXECUTORS, ExecutionOptions, idle_cores
from robustlaw.experiments.keys import canonical_json
from robustlaw.experiments.keys import settings_hash as hash_settings
from robustlaw.experiments.registry import get_experiment
from robustlaw.experiments.store import Store
from robustlaw.io import to_frame

__all__ = ["AmbiguousResultsError", "RunSummary", "completeness", "load", "run"]

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
        Torch intra-op threads per unit (CPUs per Ray task). None: for the local executor, the
        cores that other work leaves idle when the run starts
        (:func:`~robustlaw.experiments.executors.idle_cores`: all of them on an idle machine,
        one on a busy one, where intra-op threads would spin-wait against other processes);
        for Ray, one CPU per task (``docs/benchmarks/experiments.md``).
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
    if threads is None:  # Ray runs units side by side: one CPU each
        threads = idle_cores() if executor == "local" else 1
    else:
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


class AmbiguousResultsError(ValidationError):
    """The store does not hold exactly one result set that matches the selection.

    The message lists the result sets found, each with the arguments that select it (the
    suggestions are checked against the same rule :func:`load` applies, so each one works).

    Attributes
    ----------
    store, experiment : str
        Where and what was looked up.
    groups : list of dict
        Every result set of ``experiment`` in the store: ``settings_hash``,
        ``package_version``, ``n_units``.
    matching : list of dict
        Those that matched the selection (none, or several).
    choices : list of dict
        One entry per result set offered: its ``settings_hash``, ``package_version`` and
        ``n_units``, and ``select``, the arguments that pick it alone (argument name to value).
    include_all : bool
        Whether the caller accepts ``include_all`` (``export`` and ``load`` do, figures do not).
    """

    def __init__(
        self, store, experiment, groups, matching, *, selection=None, include_all=True
    ) -> None:
        self.store, self.experiment, self.include_all = str(store), experiment, include_all
        self.selection = {k: v for k, v in (selection or {}).items() if v is not None}
        self.groups = [{k: g[k] for k in _GROUP_KEYS} for g in groups]
        self.matching = [{k: g[k] for k in _GROUP_KEYS} for g in matching]
        offered = self.matching or self.groups
        self.choices = [{**g, "select": _selector(g, self.groups)} for g in offered]
        super().__init__(self.message())

    def message(self, *, cli: bool = False) -> str:
        """The error as one line, with advice as Python arguments or (``cli``) as options."""

        def spell(select):
            if cli:
                return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in select.items())
            return ", ".join(f"{k}={v!r}" for k, v in select.items())

        asked = spell(self.selection) or f"robustlaw {robustlaw.__version__} (this version)"
        if self.matching:
            found = f"holds {len(self.matching)} matching result sets of {self.experiment!r}"
        else:
            found = f"has no results of {self.experiment!r} for {asked}"
        offers = [
            f"{spell(c['select'])} (robustlaw {c['package_version']}, "
            f"{c['n_units']} unit{'' if c['n_units'] == 1 else 's'})"
            for c in self.choices[:_MAX_LISTED]
        ]
        if len(self.choices) > _MAX_LISTED:
            offers.append(f"{len(self.choices) - _MAX_LISTED} more")
        text = f"store {self.store!r} {found}; choose one: {' or '.join(offers)}"
        if self.include_all:
            text += f"; or load every row with {'--all' if cli else 'include_all=True'}"
        return text


_GROUP_KEYS = ("settings_hash", "package_version", "n_units")
_MAX_LISTED = 6


def _matching(groups, *, settings_hash=None, package_version=None, explicit_hash=False):
    """The result sets a selection picks (the rule :func:`load` documents)."""
    found = [
        g
        for g in groups
        if settings_hash in (None, g["settings_hash"])
        and package_version in (None, g["package_version"])
    ]
    if package_version is None:
        current = [g for g in found if g["package_version"] == robustlaw.__version__]
        if current or not explicit_hash:
            found = current
    return found


def _selector(group, groups) -> dict[str, str]:
    """The fewest arguments that select ``group`` alone from ``groups``."""
    hash_, version = group["settings_hash"], group["package_version"]
    by_version = [{"package_version": version}] if version != robustlaw.__version__ else []
    for select in (
        *by_version,
        {"settings_hash": hash_},
        {"settings_hash": hash_, "package_version": version},
    ):
        picked = _matching(groups, **select, explicit_hash="settings_hash" in select)
        if [(g["settings_hash"], g["package_version"]) for g in picked] == [(hash_, version)]:
            return select
    return {"settings_hash": hash_, "package_version": version}


def _select(db, store, name, selection, *, include_all=False, offer_all=False):
    """The result set (a ``groups`` entry) a selection picks (None for ``include_all``).

    ``selection`` holds :func:`load`'s ``preset``, ``settings_hash`` and ``package_version``.
    Returns the settings hash selected too (``preset``'s, when given). ``offer_all``: whether
    the caller accepts ``include_all``, for the advice.
    """
    preset, settings_hash, package_version = (
        selection[k] for k in ("preset", "settings_hash", "package_version")
    )
    groups = db.groups(name)
    if not groups:
        present = ", ".join(db.experiments()) or "none"
        raise ValidationError(
            f"store {str(store)!r} has no results of {name!r} (experiments present: {present})"
        )
    if preset is not None and settings_hash is not None:
        raise ValidationError(
            f"pass preset or settings_hash, not both (got preset={preset!r} and "
            f"settings_hash={settings_hash!r})"
        )
    explicit_hash = settings_hash is not None
    if preset is not None:
        settings_hash = hash_settings(name, get_experiment(name).preset(preset))
    if include_all:
        return None, settings_hash
    chosen = _matching(
        groups,
        settings_hash=settings_hash,
        package_version=package_version,
        explicit_hash=explicit_hash,
    )
    if len(chosen) != 1:
        raise AmbiguousResultsError(
            store,
            name,
            groups,
            chosen,
            selection=selection,
            include_all=offer_all,
        )
    return chosen[0], settings_hash


def _expected_units(name: str, group: dict[str, Any]) -> int | None:
    """How many units the stored settings expand into, or None when they cannot be rebuilt."""
    try:
        experiment = get_experiment(name)
        settings = experiment.settings_cls(**group["settings"])
        if hash_settings(name, settings) != group["settings_hash"]:
            return None
        return len(experiment.expand(settings))
    except Exception as err:  # best effort: settings that do not rebuild are not checked
        logger.debug("cannot rebuild the settings of %s: %s", name, err)
        return None


def completeness(
    store: str | os.PathLike,
    name: str,
    *,
    preset: str | None = None,
    settings_hash: str | None = None,
    package_version: str | None = None,
) -> tuple[int, int | None]:
    """How many units of one result set are stored, and how many its settings expand into.

    The result set is selected as :func:`load` selects it. The expected count comes from the
    experiment's ``expand`` of the settings stored with the units; it is None when the
    experiment is not registered or its settings class cannot rebuild them.

    Parameters
    ----------
    store : path
        The SQLite file.
    name : str
        The experiment.
    preset, settings_hash, package_version : str, optional
        The selection, as in :func:`load`.

    Returns
    -------
    (int, int or None)
        Stored units and expected units.

    Raises
    ------
    AmbiguousResultsError
        When the selection does not pick exactly one result set.
    """
    selection = {
        "preset": preset,
        "settings_hash": settings_hash,
        "package_version": package_version,
    }
    with Store(store, readonly=True) as db:
        group, _ = _select(db, store, name, selection)
    return group["n_units"], _expected_units(name, group)


def load(
    store: str | os.PathLike,
    name: str,
    *,
    preset: str | None = None,
    settings_hash: str | None = None,
    package_version: str | None = None,
    include_all: bool = False,
    as_frame: bool | None = None,
):
    """Load the results of experiment ``name`` from ``store``.

    A result set is the rows of one settings hash under one package version; results are
    never mixed silently. By default the one result set of this package version is loaded.
    ``preset`` or ``settings_hash`` picks one of several; rows of another package version are
    loaded when asked, by ``package_version`` or by a ``settings_hash`` stored only under
    other versions. ``include_all=True`` returns every row (narrowed by the other arguments);
    the ``settings_hash`` and ``package_version`` columns tell them apart.

    When the store holds fewer units than the settings expand into (an unfinished run), a
    warning is logged; :func:`completeness` gives the counts.

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
    package_version : str, optional
        Select the results stored by this robustlaw version (default: this one).
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
    AmbiguousResultsError
        When the store holds several result sets, or none of this version, and the selection
        does not pick exactly one; the message lists the arguments that pick each.
    ValidationError
        When the store has no results of ``name``, or cannot be read
        (:class:`~robustlaw.errors.DamagedStoreError` when it is damaged).
    """
    selection = {
        "preset": preset,
        "settings_hash": settings_hash,
        "package_version": package_version,
    }
    with Store(store, readonly=True) as db:
        group, settings_hash = _select(
            db, store, name, selection, include_all=include_all, offer_all=True
        )
        if group is not None:
            settings_hash, package_version = group["settings_hash"], group["package_version"]
        rows = db.records(name, settings_hash=settings_hash, package_version=package_version)
    if group is not None:
        expected = _expected_units(name, group)
        if expected is not None and group["n_units"] < expected:
            logger.warning(
                "store %r holds %d of the %d units of %r (settings_hash %s, robustlaw %s): "
                "the results are partial; run the same settings again to complete them",
                str(store),
                group["n_units"],
                expected,
                name,
                group["settings_hash"],
                group["package_version"],
            )
    return to_frame(rows, as_frame=as_frame)
