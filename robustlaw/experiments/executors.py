"""Executors: how work units run. Each yields ``(unit, result, wall_time_s)`` as units finish.

The driver (:func:`robustlaw.experiments.api.run`) alone writes the store, so executors never
touch it. ``local`` runs the units one after another in this process; ``ray`` runs them as Ray
tasks on an existing cluster (``address``) or a local Ray runtime, streaming results back as
they finish. Tasks request one GPU when the device is CUDA.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tqdm import tqdm

from robustlaw.errors import ValidationError
from robustlaw.experiments.registry import Experiment, UnitResult, WorkUnit

__all__ = ["EXECUTORS", "run_local", "run_ray", "torch_threads"]

logger = logging.getLogger(__name__)

Finished = tuple[WorkUnit, UnitResult, float]


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


def _timed(experiment: Experiment, settings: Any, unit: WorkUnit, device: str, threads) -> tuple:
    with torch_threads(threads):
        start = time.perf_counter()
        result = experiment.run_unit(settings, unit, device=device, progress=False)
        return result, time.perf_counter() - start


def run_local(
    experiment: Experiment,
    settings: Any,
    units: Sequence[WorkUnit],
    *,
    device: str,
    progress: bool,
    address: str | None = None,
    threads: int | None = None,
) -> Iterator[Finished]:
    """Run ``units`` one after another in this process, with a tqdm bar over units.

    ``address`` must be None (it is accepted so that every executor has one signature);
    ``threads`` sets the torch intra-op threads while a unit runs.
    """
    del address
    with tqdm(total=len(units), desc=experiment.name, unit="unit", disable=not progress) as bar:
        for unit in units:
            with torch_threads(threads):
                start = time.perf_counter()
                result = experiment.run_unit(settings, unit, device=device, progress=progress)
                seconds = time.perf_counter() - start
            yield unit, result, seconds
            bar.update(1)


def run_ray(
    experiment: Experiment,
    settings: Any,
    units: Sequence[WorkUnit],
    *,
    device: str,
    progress: bool,
    address: str | None = None,
    threads: int | None = None,
) -> Iterator[Finished]:
    """Run ``units`` as Ray tasks and yield each as soon as it finishes.

    Each task requests ``threads`` CPUs (1 by default) and one GPU when ``device`` is CUDA.

    Connects to the cluster at ``address`` (e.g. ``"ray://head:10001"`` or ``"auto"``), or
    starts a local Ray runtime when ``address`` is None and Ray is not yet initialized. A runtime
    started here is shut down at the end; one that was already running is left alone.
    """
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the environment
        raise ValidationError("executor 'ray' needs Ray: pip install 'robustlaw[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    pending: dict = {}
    try:
        gpus = 1 if device.startswith("cuda") else 0
        task = ray.remote(num_cpus=threads or 1, num_gpus=gpus, max_retries=0)(_timed)
        pending.update({task.remote(experiment, settings, u, device, threads): u for u in units})
        with tqdm(total=len(units), desc=experiment.name, unit="unit", disable=not progress) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                unit = pending.pop(ready[0])
                result, seconds = ray.get(ready[0])
                yield unit, result, seconds
                bar.update(1)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


EXECUTORS: dict[str, Callable[..., Iterator[Finished]]] = {"local": run_local, "ray": run_ray}
"""Executors by name."""
