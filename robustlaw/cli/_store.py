"""Options of the commands that write or read a store: ``--store`` and the result selection."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

from robustlaw.errors import ValidationError

DEFAULT_STORE = "results.sqlite"
"""The store every command uses when ``--store`` is not given."""


def add_store_option(parser: argparse.ArgumentParser, help: str) -> None:
    """Add ``--store``, defaulting to :data:`DEFAULT_STORE` in every command."""
    parser.add_argument("--store", default=DEFAULT_STORE, help=help)


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--preset``, ``--settings-hash`` and ``--package-version``, which pick one result
    set from a store (by default: the one stored by this version of robustlaw)."""
    parser.add_argument("--preset", default=None, help="select the results of this preset")
    parser.add_argument("--settings-hash", default=None, help="select results by settings hash")
    parser.add_argument(
        "--package-version",
        default=None,
        help="select results stored by this robustlaw version (default: this one's)",
    )


def selection(args: argparse.Namespace) -> dict[str, str | None]:
    """The selection options as keyword arguments of ``load``, ``export``, ``draw_figures``."""
    if args.preset is not None and args.settings_hash is not None:
        raise ValidationError("pass --preset or --settings-hash, not both")
    return {
        "preset": args.preset,
        "settings_hash": args.settings_hash,
        "package_version": args.package_version,
    }


@contextlib.contextmanager
def advice_as_options() -> Iterator[None]:
    """Reword a store's "several result sets" error with command-line options, not arguments."""
    from robustlaw.experiments import AmbiguousResultsError

    try:
        yield
    except AmbiguousResultsError as err:
        raise ValidationError(err.message(cli=True)) from None


def existing_store(path: str) -> str:
    """Return ``path`` if it may be a store to read; a folder is refused by name."""
    if Path(path).is_dir():
        raise ValidationError(
            f"--store {path!r} is a folder; expected a SQLite file (such as "
            f"{str(Path(path) / DEFAULT_STORE)!r})"
        )
    return path
