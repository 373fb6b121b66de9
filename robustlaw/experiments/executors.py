"""Executors: how work units run. Each yields ``(unit, records, wall_time_s)`` as units finish.

The driver (:func:`robustlaw.experiments.api.run`) alone writes the store, so executors never
touch it. ``local`` runs the units one after another in this process; ``ray`` runs them as Ray
tasks on an existing cluster (``address``) or a local Ray runtime, streaming results back as
they finish. Tasks request one GPU when the device is CUDA.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tqdm import tqdm

from robustlaw.errors import ValidationError
from robustlaw.experiments.registry import Experiment, WorkUnit

__all__ = [
    "EXECUTORS",
    "ExecutionOptions",
    "run_local",
    "run_ray",
    "idle_cores",
    "torch_threads",
]

logger = logging.getLogger(__name__)

Finished = tuple[WorkUnit, tuple[Any, ...], float]


def idle_cores(*, interval_s: float = 0.1) -> int:
    """How many cores other work leaves idle now: at least 1, at most ``os.cpu_count()``.

    Measured from the kernel's CPU counters (``/proc/stat``) over ``interval_s`` seconds; where
    they are not available (not Linux) the answer is 1, the choice that is never much slower.
    :func:`~robustlaw.experiments.run` calls it once, before its first unit, when ``threads``
    is not given: on idle cores the units then use every core (torch's own default), on busy
    ones one thread, so that intra-op threads never spin-wait against other processes
    (``docs/benchmarks/experiments.md`` has the measurements).

    Parameters
    ----------
    interval_s : float
        Length of the measurement, in seconds.

    Returns
    -------
    int
        ``round(cores * idle fraction)``, clipped to ``[1, cores]``.
    """
    cores = os.cpu_count() or 1

    def counters() -> tuple[float, float]:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [float(v) for v in fh.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all

    try:
        idle_before, total_before = counters()
        time.sleep(interval_s)
        idle_after, total_after = counters()
    except (OSError, ValueError, IndexError):
        return 1
    elapsed = total_after - total_before
    idle = (idle_after - idle_before) / elapsed if elapsed > 0 else 1.0
    return max(1, min(cores, round(cores * idle)))


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` intra-op torch threads inside the block (None: leave them alone).

    Small networks gain nothing from intra-op threads, and on a busy machine their spin-waits
    can make each operation many times slower; the setting is restored afterwards.
    """
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True, kw_only=True)
class ExecutionOptions:
    """How and where units run.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda"`` (already resolved).
    progress : bool
        Show a tqdm bar over units.
    address : str, optional
        Ray cluster address (``"ray://head:10001"``, ``"auto"``); None starts a local runtime.
        The local executor ignores it.
    threads : int, optional
        Torch intra-op threads while a unit runs (CPUs per Ray task); None leaves torch's own
        setting (``run`` passes :func:`idle_cores` when not told).
    """

    device: str = "cpu"
    progress: bool = False
    address: str | None = None
    threads: int | None = None


def _timed(experiment: Experiment, settings: Any, unit: WorkUnit, options) -> tuple:
    """Measure one unit with the requested threads; return its records and wall time (s)."""
    with torch_threads(options.threads):
        start = time.perf_counter()
        records = experiment.measure(
            settings, unit, device=options.device, progress=options.progress
        )
        return tuple(records), time.perf_counter() - start


def _bar(experiment: Experiment, units: Sequence[WorkUnit], options: ExecutionOptions):
    return tqdm(total=len(units), desc=experiment.name, unit="unit", disable=not options.progress)


def run_local(
    experiment: Experiment, settings: Any, units: Sequence[WorkUnit], options: ExecutionOptions
) -> Iterator[Finished]:
    """Run ``units`` one after another in this process, with a tqdm bar over units."""
    with _bar(experiment, units, options) as bar:
        for unit in units:
            yield (unit, *_timed(experiment, settings, unit, options))
            bar.update(1)


def run_ray(
    experiment: Experiment, settings: Any, units: Sequence[WorkUnit], options: ExecutionOptions
) -> Iterator[Finished]:
    """Run ``units`` as Ray tasks and yield each as soon as it finishes.

    Each task requests ``options.threads`` CPUs (1 by default) and one GPU when the device is
    CUDA. Connects to the cluster at ``options.address``, or starts a local Ray runtime when it
    is None and Ray is not yet initialized. A runtime started here is shut down at the end; one
    that was already running is left alone. Only the caller (the driver) writes the store.
    """
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the environment
        raise ValidationError("executor 'ray' needs Ray: pip install 'robustlaw[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, include_dashboard=False, logging_level=logging.WARNING)
    pending: dict = {}
    try:
        gpus = 1 if options.device.startswith("cuda") else 0
        task = ray.remote(num_cpus=options.threads or 1, num_gpus=gpus, max_retries=0)(_timed)
        task_options = replace(options, progress=False)
        pending.update({task.remote(experiment, settings, u, task_options): u for u in units})
        with _bar(experiment, units, options) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                unit = pending.pop(ready[0])
                yield (unit, *ray.get(ready[0]))
                bar.update(1)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


EXECUTORS: dict[str, Callable[..., Iterator[Finished]]] = {"local": run_local, "ray": run_ray}
"""Executors by name."""
