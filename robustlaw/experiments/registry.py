"""The registry of named experiments: the plugin shape every experiment has.

An experiment is data (open_lth's "what to run"): a frozen settings dataclass, named presets
(``tiny``: seconds, used in tests; ``default``: minutes on a laptop CPU; ``paper``: the
published scale, for a GPU), a function that expands settings into :class:`WorkUnit` s, a
function that measures one unit into records of the experiment's own record type, and its
figures. How units run (:mod:`robustlaw.experiments.executors`) and where results go
(:mod:`robustlaw.experiments.store`) live elsewhere. A user registers an experiment of their
own with :func:`register`, without touching the framework.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from robustlaw._validation import get_registered
from robustlaw.errors import ValidationError
from robustlaw.experiments.records import Column, record_columns

__all__ = [
    "EXPERIMENTS",
    "PRESET_NAMES",
    "Experiment",
    "KEY_COLUMNS",
    "WorkUnit",
    "get_experiment",
    "list_experiments",
    "register",
]

PRESET_NAMES = ("tiny", "default", "paper")
"""Every experiment defines these presets."""

_BUILTIN_MODULES = (
    "robustlaw.experiments.lor_scaling",
    "robustlaw.experiments.nfp_noise_correlation",
    "robustlaw.experiments.nfp_memorization_images",
    "robustlaw.experiments.nfp_memorization",
    "robustlaw.experiments.nfp_mask_information",
    "robustlaw.experiments.mtm_ablations",
    "robustlaw.experiments.random_pruning_generalization",
)

KEY_COLUMNS = (
    "experiment",
    "settings_hash",
    "package_version",
    "unit_key",
    "unit_index",
    "row",
    "git_revision",
    "torch_version",
    "device",
    "wall_time_s",
)
"""The columns every loaded row starts with (where it came from); record fields follow."""

EXPERIMENTS: dict[str, Experiment] = {}
"""Registered experiments by name (filled on first use by :func:`get_experiment`)."""


@dataclass(frozen=True, kw_only=True)
class WorkUnit:
    """One independent job (e.g. one ensemble): the unit of work, storage and resumption.

    Attributes
    ----------
    key : str
        Unique among the units of one settings hash and stable across runs (the store's key).
    index : int
        Position in the expansion; results are ordered by it.
    params : dict
        JSON data that tells the experiment what this unit is (grid point, members, ...).
    """

    key: str
    index: int
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """A named experiment: what to run, split into units, and what each unit measures.

    The framework knows nothing about networks, pruning or Lipschitz constants: an experiment
    brings its settings, its work units, its record type and its figures.

    Attributes
    ----------
    name : str
        The registry key, e.g. ``"lor-scaling"`` (words joined by hyphens).
    description : str
        One line for ``robustlaw experiments``.
    settings_cls : type
        The frozen settings dataclass.
    presets : dict of str to settings
        At least ``tiny`` (seconds, run by the tests), ``default`` (minutes on a laptop CPU)
        and ``paper`` (the published scale, for a GPU).
    expand : callable
        ``expand(settings) -> tuple[WorkUnit, ...]``; unit keys must be unique.
    measure : callable
        ``measure(settings, unit, *, device, progress) -> sequence of records``, each an
        instance of ``record_type``. Module level, so that Ray workers can import it.
    record_type : type
        A frozen dataclass whose fields are ``int``, ``float``, ``bool`` or ``str`` (optionally
        ``| None``); the store derives its columns from it and checks every row.
    figures : dict of str to callable
        ``name -> function(rows) -> matplotlib Figure``; what ``robustlaw figure`` draws.
    """

    name: str
    description: str
    settings_cls: type
    presets: Mapping[str, Any]
    expand: Callable[[Any], tuple[WorkUnit, ...]]
    measure: Callable[..., Sequence[Any]]
    record_type: type
    figures: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [p for p in PRESET_NAMES if p not in self.presets]
        if missing:
            raise ValidationError(f"experiment {self.name!r} lacks the presets {missing}")
        for preset, settings in self.presets.items():
            if not isinstance(settings, self.settings_cls):
                raise ValidationError(
                    f"preset {preset!r} of {self.name!r} must be a {self.settings_cls.__name__}"
                )
        clash = {c.name for c in self.columns} & set(KEY_COLUMNS)
        if clash:
            raise ValidationError(
                f"record {self.record_type.__name__} of {self.name!r} has fields {sorted(clash)} "
                "that the store uses for its own columns"
            )

    @property
    def columns(self) -> tuple[Column, ...]:
        """The store columns derived from :attr:`record_type`."""
        return record_columns(self.record_type)

    def preset(self, name: str) -> Any:
        """Return the settings of a preset; an unknown name lists the valid ones."""
        return get_registered(dict(self.presets), name, f"preset of {self.name!r}")


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to :data:`EXPERIMENTS`; a name can be registered once."""
    if EXPERIMENTS.get(experiment.name, experiment) is not experiment:
        raise ValidationError(f"an experiment named {experiment.name!r} is already registered")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def list_experiments() -> tuple[Experiment, ...]:
    """Every registered experiment, sorted by name."""
    _load_builtins()
    return tuple(EXPERIMENTS[k] for k in sorted(EXPERIMENTS))


def get_experiment(name: str) -> Experiment:
    """Return the experiment called ``name``; an unknown name lists the valid ones.

    Examples
    --------
    >>> get_experiment("lor-scaling").name
    'lor-scaling'
    """
    _load_builtins()
    return get_registered(EXPERIMENTS, name, "experiment")
