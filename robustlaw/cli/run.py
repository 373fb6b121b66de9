"""``robustlaw run NAME``: run a named experiment into a SQLite store (resumable).

Units already in the store under the same settings and package version are skipped, so running
the command again after an interruption completes only the missing units. Unless --threads
says otherwise, each unit uses the cores that other work leaves idle when the run starts: all of
them on an idle machine, one on a busy one, where extra threads would make the small networks
many times slower (docs/benchmarks/experiments.md).
"""

from __future__ import annotations

import argparse

from robustlaw.cli import plain_text
from robustlaw.cli._store import add_store_option


def register(subparsers) -> None:
    """Add the ``run`` subcommand."""
    p = subparsers.add_parser(
        "run",
        help="run a named experiment into a SQLite store (resumes)",
        description=plain_text(__doc__),
    )
    p.add_argument("name", help="experiment name (see `robustlaw experiments`)")
    p.add_argument("--preset", default="default", help="settings preset: tiny, default or paper")
    add_store_option(p, "SQLite file to write (resumed)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (auto takes a GPU if any)")
    p.add_argument("--executor", default="local", help="local (this process) or ray")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local Ray)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help=(
            "torch threads per work unit on a CPU, CPUs per Ray task (default: the idle cores "
            "when the run starts, locally; 1 per Ray task)"
        ),
    )
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run the experiment and print what was done."""
    from robustlaw.experiments import run

    summary = run(
        args.name,
        args.preset,
        store=args.store,
        device=args.device,
        executor=args.executor,
        address=args.address,
        threads=args.threads,
    )
    print(
        f"{summary.experiment} [{summary.preset}] settings {summary.settings_hash}: "
        f"{summary.n_run} units run, {summary.n_skipped} already stored, "
        f"{summary.n_units} in all ({summary.wall_time_s:.1f} s on {summary.device}) "
        f"-> {summary.store}"
    )
    return 0
