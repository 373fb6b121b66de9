"""``robustlaw export``: write an experiment's stored results as CSV (and Parquet)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser("export", help="write stored results as CSV (and Parquet)")
    p.add_argument("name", help="experiment name")
    p.add_argument("--store", default="results.sqlite", help="SQLite file to read")
    p.add_argument("--out", default=".", help="folder for <name>.csv (and <name>.parquet)")
    add_selection_options(p)
    p.add_argument("--all", action="store_true", help="export every settings hash and version")
    p.set_defaults(func=handler)


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--preset`` and ``--settings-hash``, which pick one result set from a store."""
    parser.add_argument("--preset", default=None, help="select the results of this preset")
    parser.add_argument("--settings-hash", default=None, help="select results by settings hash")


def handler(args: argparse.Namespace) -> int:
    """Export and print the written paths."""
    from robustlaw.experiments.export import export

    paths = export(
        args.store,
        args.name,
        Path(args.out),
        preset=args.preset,
        settings_hash=args.settings_hash,
        include_all=args.all,
    )
    for path in paths:
        print(path)
    return 0
