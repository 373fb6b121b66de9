"""Wall time of ``lor-scaling`` per preset and executor (issue 4, "Speed").

Each configuration runs the preset into a fresh temporary store, in this one process, and
prints its wall time, the number of units and members, and the ratio to the naive way: the
local executor with torch's default intra-op threads (one per core; on a 2-core machine that is
shared with other work, their spin-waits dominate the tiny networks' operations). The other
rows are one thread per unit and ``auto``: what ``run`` uses when ``threads`` is not given (the
cores other work leaves idle when the run starts, ``executors.idle_cores``).

The first configuration also pays one-time costs (imports, compiling the bound formulas); the
``warm-up`` row runs the tiny preset once beforehand so the timed rows exclude them.

Usage::

    python benchmarks/bench_experiments.py                      # tiny preset
    python benchmarks/bench_experiments.py --presets tiny default
    python benchmarks/bench_experiments.py --ray                 # also time the Ray executor
    python benchmarks/bench_experiments.py --device cuda         # GPU (threads irrelevant)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from robustlaw.experiments import get_experiment, run
from robustlaw.experiments.lor_scaling.measure import members_of


def _time(preset: str, device: str, executor: str, threads: int | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run(
            "lor-scaling",
            preset,
            store=Path(tmp) / "r.sqlite",
            device=device,
            executor=executor,
            threads=threads,
            progress=False,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny"], help="presets to time")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--ray", action="store_true", help="also time the Ray executor")
    args = parser.parse_args()

    exp = get_experiment("lor-scaling")
    _time("tiny", args.device, "local", 1)  # warm-up: imports and compiled formulas
    torch_default = torch.get_num_threads()
    configs = [("local", torch_default), ("local", 1), ("local", None)]
    configs += [("ray", 1)] if args.ray else []
    if args.ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    print(f"device={args.device} torch={torch.__version__} torch default threads={torch_default}")
    print(f"{'preset':<8} {'units':>5} {'members':>7} {'executor':<8} {'threads':>7} "
          f"{'wall [s]':>9} {'vs naive':>9}")  # fmt: skip
    for preset in args.presets:
        units = exp.expand(exp.preset(preset))
        members = sum(len(members_of(exp.preset(preset), u)) for u in units)
        naive = None
        for executor, threads in configs:
            seconds = _time(preset, args.device, executor, threads)
            naive = naive or seconds
            print(
                f"{preset:<8} {len(units):>5} {members:>7} {executor:<8} "
                f"{threads or 'auto':>7} {seconds:>9.1f} {naive / seconds:>8.1f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
