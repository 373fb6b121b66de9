"""``robustlaw figure NAME``: draw every figure an experiment defines, as PNG and PDF."""

from __future__ import annotations

import argparse
from pathlib import Path

from robustlaw.cli.export import add_selection_options


def register(subparsers) -> None:
    """Add the ``figure`` subcommand."""
    p = subparsers.add_parser("figure", help="draw an experiment's figures as PNG and PDF")
    p.add_argument("name", help="experiment name")
    p.add_argument("--store", required=True, help="SQLite file to read")
    p.add_argument("--out", required=True, help="folder to write the figures into")
    add_selection_options(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Draw the figures and print their paths."""
    from robustlaw.experiments import draw_figures

    paths = draw_figures(
        args.store,
        args.name,
        Path(args.out),
        preset=args.preset,
        settings_hash=args.settings_hash,
    )
    for path in paths:
        print(path)
    return 0
