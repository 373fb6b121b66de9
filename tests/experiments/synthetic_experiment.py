"""A fast synthetic experiment for the engine's tests (registered by the tests, not the package).

Each unit draws a seeded float64 matrix per member and records a few exact functions of it, so
every value is reproducible bitwise on the CPU. ``sleep_s`` makes units slow enough to kill a
run in the middle of one.
"""

import time
from dataclasses import dataclass

import torch

from robustlaw.experiments import Experiment, WorkUnit


@dataclass(frozen=True, kw_only=True)
class SyntheticRecord:
    method: str
    density: float
    seed: int
    spectral: float
    trace: float
    positive: bool
    note: str | None


@dataclass(frozen=True, kw_only=True)
class SyntheticSettings:
    n_units: int = 3
    size: int = 6
    sleep_s: float = 0.0


def expand(settings):
    return tuple(
        WorkUnit(key=f"unit-{i:03d}", index=i, params={"i": i}) for i in range(settings.n_units)
    )


def measure(settings, unit, *, device, progress):
    time.sleep(settings.sleep_s)
    records = []
    for j, (method, density) in enumerate((("random", 0.5), ("magnitude", 1.0))):
        seed = 100 * unit.params["i"] + j
        gen = torch.Generator().manual_seed(seed)
        a = torch.randn(settings.size, settings.size, generator=gen, dtype=torch.float64)
        records.append(
            SyntheticRecord(
                method=method,
                density=density,
                seed=seed,
                spectral=float(torch.linalg.matrix_norm(a, 2)),
                trace=float(a.trace()),
                positive=bool(a.sum() > 0),
                note=None,
            )
        )
    return records


EXPERIMENT = Experiment(
    name="synthetic",
    description="Seeded random matrices (engine tests only).",
    settings_cls=SyntheticSettings,
    presets={
        "tiny": SyntheticSettings(),
        "default": SyntheticSettings(n_units=5),
        "paper": SyntheticSettings(n_units=50, size=50),
    },
    expand=expand,
    measure=measure,
    record_type=SyntheticRecord,
)
