"""The robustlaw command: Law of Robustness bounds, Lipschitz estimates and experiments.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (a callable taking the parsed arguments and returning
an exit code). Bad input prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys

from robustlaw import __version__
from robustlaw.errors import RobustlawError, StoreWriteError

# Subcommand modules, in the order ``robustlaw --help`` lists them.
COMMAND_MODULES = ("bound", "lipschitz", "run", "experiments", "figure", "export", "demo")

_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]+\.)?([^`.]+)`")


def plain_text(doc: str) -> str:
    """Return a docstring as terminal text: reStructuredText roles and literals unmarked.

    Examples
    --------
    >>> plain_text("The ``robustlaw`` command; see :func:`~robustlaw.experiments.run`.")
    'The robustlaw command; see run.'
    """
    return _ROLE.sub(r"\1", doc).replace("``", "").strip()


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (paragraphs and lists kept); every option's help ends with its
    default, unless the help already states it (``(default: ...)``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2.

    Every option's help ends with its default.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:
        self.exit(2, f"robustlaw: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every installed subcommand."""
    parser = _Parser(prog="robustlaw", description=plain_text(__doc__.split("\n\n")[0]))
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


def _silence_stdout() -> None:
    """Point file descriptor 1 at os.devnull, so the interpreter's last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the ``robustlaw`` command; return its exit code.

    A closed pipe on stdout (``robustlaw bound ... --json | head``) ends the command quietly
    with exit code 1, as the Python documentation recommends for SIGPIPE.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except StoreWriteError as err:  # the environment failed (disk full), not the input
        print(f"robustlaw {args.command}: error: {err}", file=sys.stderr)
        return 1
    except (ValueError, RobustlawError) as err:
        print(f"robustlaw {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"robustlaw {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
