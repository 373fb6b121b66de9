"""A user-defined experiment in one file: the top singular value of Gaussian matrices.

For an m x m matrix with i.i.d. N(0, 1) entries, the largest singular value grows like
2 sqrt(m) (Bai and Yin, *Ann. Probab.* 16, 1988; the same sqrt scaling that makes the spectral
product of a trained network grow with its width). The experiment measures it over sizes and
seeds and draws it against 2 sqrt(m).

Register it with ``register(EXPERIMENT)`` (the import does it here), then use it like any
built-in experiment: ``robustlaw.experiments.run("spectral-growth", preset="tiny")``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robustlaw.experiments import Experiment, WorkUnit, register


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Matrix sizes (m), seeds, and how many matrices each seed draws."""

    sizes: tuple[int, ...] = (16, 64, 256)
    seeds: tuple[int, ...] = (0, 1, 2)
    draws: int = 4


@dataclass(frozen=True, kw_only=True)
class Record:
    """One seed at one size: the mean top singular value and the Bai–Yin prediction."""

    size: int
    seed: int
    sigma_max: float
    prediction: float


def expand(settings: Settings) -> tuple[WorkUnit, ...]:
    """One unit per size; the unit's key must be unique and stable."""
    return tuple(
        WorkUnit(key=f"m{m}", index=i, params={"size": m}) for i, m in enumerate(settings.sizes)
    )


def measure(settings: Settings, unit: WorkUnit, *, device: str, progress: bool) -> list[Record]:
    """Draw ``draws`` matrices per seed and record the mean top singular value."""
    m = unit.params["size"]
    records = []
    for seed in settings.seeds:
        rng = np.random.default_rng([seed, m])
        sigmas = [np.linalg.norm(rng.standard_normal((m, m)), 2) for _ in range(settings.draws)]
        records.append(
            Record(size=m, seed=seed, sigma_max=float(np.mean(sigmas)), prediction=2 * m**0.5)
        )
    return records


def growth_figure(rows):
    """Top singular value against m on log-log axes, with the prediction 2 sqrt(m)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    sizes = np.array([r["size"] for r in rows])
    ax.plot(sizes, [r["sigma_max"] for r in rows], "o", label="measured (mean over draws)")
    grid = np.unique(sizes)
    ax.plot(grid, 2 * np.sqrt(grid), "--", label="2 sqrt(m) (Bai-Yin)")
    ax.set(xscale="log", yscale="log", xlabel="matrix size m", ylabel="top singular value")
    ax.set_xticks(grid, [str(m) for m in grid])  # label the sizes measured, nothing else
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.legend()
    return fig


EXPERIMENT = register(
    Experiment(
        name="spectral-growth",
        description="Top singular value of m x m Gaussian matrices against 2 sqrt(m)",
        settings_cls=Settings,
        presets={
            "tiny": Settings(),
            "default": Settings(sizes=(16, 32, 64, 128, 256, 512), seeds=tuple(range(10))),
            "paper": Settings(sizes=tuple(2**k for k in range(4, 13)), seeds=tuple(range(50))),
        },
        expand=expand,
        measure=measure,
        record_type=Record,
        figures={"growth": growth_figure},
    )
)
