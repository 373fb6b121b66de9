"""The ``robustlaw`` command.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (a callable taking the parsed arguments and returning
an exit code). Bad input prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from robustlaw import __version__
from robustlaw.errors import RobustlawError

# Subcommand modules, in the order ``robustlaw --help`` lists them.
COMMAND_MODULES = ("bound", "lipschitz", "run", "experiments", "figure", "export", "demo")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2.

    Every option's help ends with its default.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:
        self.exit(2, f"robustlaw: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every installed subcommand."""
    parser = _Parser(prog="robustlaw", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"robustlaw {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"robustlaw.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"robustlaw.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``robustlaw`` command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, RobustlawError) as err:
        print(f"robustlaw {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"robustlaw {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
