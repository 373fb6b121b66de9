"""``robustlaw figure NAME``: draw every figure an experiment defines, as PNG and PDF.

Reads the experiment's results from --store and writes each figure into --out (created if
missing). A store holding several result sets needs a selection (--preset, --settings-hash).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robustlaw.cli import plain_text
from robustlaw.cli._store import (
    add_selection_options,
    add_store_option,
    advice_as_options,
    existing_store,
    selection,
)


def register(subparsers) -> None:
    """Add the ``figure`` subcommand."""
    p = subparsers.add_parser(
        "figure",
        help="draw an experiment's figures as PNG and PDF",
        description=plain_text(__doc__),
    )
    p.add_argument("name", help="experiment name (see `robustlaw experiments`)")
    add_store_option(p, "SQLite file to read")
    p.add_argument("--out", default="figures", help="folder to write the figures into")
    add_selection_options(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Draw the figures and print their paths."""
    from robustlaw.experiments import draw_figures

    with advice_as_options():
        paths = draw_figures(
            existing_store(args.store),
            args.name,
            Path(args.out),
            **selection(args),
        )
    for path in paths:
        print(path)
    return 0
