"""Named, resumable experiments stored in SQLite, run locally or on Ray.

>>> from robustlaw.experiments import get_experiment
>>> sorted(get_experiment("lor-scaling").presets)
['default', 'paper', 'tiny']
"""

from robustlaw.experiments.api import RunSummary, load, resolve_device, run, to_frame
from robustlaw.experiments.executors import EXECUTORS
from robustlaw.experiments.keys import canonical_json, settings_hash
from robustlaw.experiments.registry import (
    EXPERIMENTS,
    PRESET_NAMES,
    Experiment,
    MemberResult,
    UnitResult,
    WorkUnit,
    get_experiment,
    list_experiments,
    register,
)
from robustlaw.experiments.store import SCHEMA_VERSION, Store

__all__ = [
    "EXECUTORS",
    "EXPERIMENTS",
    "PRESET_NAMES",
    "SCHEMA_VERSION",
    "Experiment",
    "MemberResult",
    "RunSummary",
    "Store",
    "UnitResult",
    "WorkUnit",
    "canonical_json",
    "get_experiment",
    "list_experiments",
    "load",
    "register",
    "resolve_device",
    "run",
    "settings_hash",
    "to_frame",
]
