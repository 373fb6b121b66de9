"""Named, resumable experiments stored in SQLite, run locally or on Ray.

An experiment is a plugin (:class:`Experiment`): settings with presets, ``expand`` into work
units, ``measure`` into typed records, and figures. :func:`register` adds one, :func:`run`
runs it into a store and :func:`load` reads it back.

>>> from robustlaw.experiments import get_experiment
>>> sorted(get_experiment("lor-scaling").presets)
['default', 'paper', 'tiny']
"""

from robustlaw.errors import DamagedStoreError, NotAStoreError, StoreWriteError
from robustlaw.experiments.api import AmbiguousResultsError, RunSummary, completeness, load, run
from robustlaw.experiments.executors import EXECUTORS
from robustlaw.experiments.export import export
from robustlaw.experiments.figures import draw_figures
from robustlaw.experiments.keys import canonical_json, settings_hash
from robustlaw.experiments.records import Column, record_columns
from robustlaw.experiments.registry import (
    EXPERIMENTS,
    KEY_COLUMNS,
    PRESET_NAMES,
    Experiment,
    WorkUnit,
    get_experiment,
    list_experiments,
    register,
)
from robustlaw.experiments.store import SCHEMA_VERSION, Store

__all__ = [
    "EXECUTORS",
    "EXPERIMENTS",
    "KEY_COLUMNS",
    "PRESET_NAMES",
    "SCHEMA_VERSION",
    "AmbiguousResultsError",
    "Column",
    "DamagedStoreError",
    "Experiment",
    "NotAStoreError",
    "RunSummary",
    "Store",
    "StoreWriteError",
    "WorkUnit",
    "canonical_json",
    "completeness",
    "draw_figures",
    "export",
    "get_experiment",
    "list_experiments",
    "load",
    "record_columns",
    "register",
    "run",
    "settings_hash",
]
