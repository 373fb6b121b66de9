"""``robustlaw export NAME``: write an experiment's stored results as CSV (and Parquet).

Writes NAME.csv (and NAME.parquet when pyarrow is installed) into --out, creating the folder.
A store holding several result sets (settings or package versions) needs a selection, or
--all to write every row.
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
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export", help="write stored results as CSV (and Parquet)", description=plain_text(__doc__)
    )
    p.add_argument("name", help="experiment name (see `robustlaw experiments`)")
    add_store_option(p, "SQLite file to read")
    p.add_argument("--out", default=".", help="folder for NAME.csv (and NAME.parquet)")
    add_selection_options(p)
    p.add_argument("--all", action="store_true", help="export every settings hash and version")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Export and print the written paths."""
    from robustlaw.experiments.export import export

    with advice_as_options():
        paths = export(
            existing_store(args.store),
            args.name,
            Path(args.out),
            **selection(args),
            include_all=args.all,
        )
    for path in paths:
        print(path)
    return 0
