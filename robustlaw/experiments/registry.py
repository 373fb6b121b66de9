"""The registry of named experiments and the records an experiment is made of.

An experiment is data (open_lth's "what to run"): a frozen settings dataclass, named presets
(``tiny``: seconds, used in tests; ``default``: minutes on a laptop CPU; ``paper``: the
published scale, for a GPU), a function that expands settings into :class:`WorkUnit` s, and a
function that runs one unit. How units run (:mod:`robustlaw.experiments.executors`) and where
results go (:mod:`robustlaw.experiments.store`) live elsewhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from robustlaw._validation import get_registered
from robustlaw.errors import ValidationError

__all__ = [
    "EXPERIMENTS",
    "PRESET_NAMES",
    "Experiment",
    "MemberResult",
    "UnitResult",
    "WorkUnit",
    "get_experiment",
    "list_experiments",
    "register",
]

PRESET_NAMES = ("tiny", "default", "paper")
"""Every experiment defines these presets."""

_BUILTIN_MODULES = ("robustlaw.experiments.lor_scaling",)

EXPERIMENTS: dict[str, Experiment] = {}
"""Registered experiments by name (filled on first use by :func:`get_experiment`)."""


@dataclass(frozen=True, kw_only=True)
class WorkUnit:
    """One ensemble to train and measure: the unit of work, storage and resumption.

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
class MemberResult:
    """The measurements of one ensemble member.

    Attributes
    ----------
    method : str
        The member's pruning method (``"dense"`` for unpruned networks).
    density : float
        Fraction of prunable weights kept, in (0, 1].
    seed : int
        The member's seed.
    metrics : dict of str to (float, int, bool, str or None)
        Named measurements; units belong in the experiment's documentation.
    """

    method: str
    density: float
    seed: int
    metrics: Mapping[str, float | int | bool | str | None]


@dataclass(frozen=True, kw_only=True)
class UnitResult:
    """What running one work unit returns: its members' results and the dtype it used."""

    members: tuple[MemberResult, ...]
    dtype: str


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """A named experiment.

    Attributes
    ----------
    name : str
        The registry key, e.g. ``"lor-scaling"``.
    description : str
        One line for ``robustlaw experiments``.
    settings_cls : type
        The frozen settings dataclass.
    presets : dict of str to settings
        At least ``tiny``, ``default`` and ``paper``.
    expand : callable
        ``expand(settings) -> tuple[WorkUnit, ...]``.
    run_unit : callable
        ``run_unit(settings, unit, *, device, progress) -> UnitResult``; must be importable
        (module level) so that Ray workers can run it.
    figures : dict of str to callable
        ``name -> function(results) -> matplotlib Figure``; what ``robustlaw figure`` draws.
    """

    name: str
    description: str
    settings_cls: type
    presets: Mapping[str, Any]
    expand: Callable[[Any], tuple[WorkUnit, ...]]
    run_unit: Callable[..., UnitResult]
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
