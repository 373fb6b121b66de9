"""``robustlaw demo``: the main job. For now it prints the bounds at the named settings."""

from __future__ import annotations

import argparse

from robustlaw.bounds.examples import examples, format_bounds_table

_HEADER = """robustlaw demo: Lipschitz lower bounds at named settings
(Bubeck-Sellke Theorem 3: L_BS; No Free Prune Theorem 4: L_NFP with p_eff in bits;
evaluated even where the k-condition fails, which the last two columns report.
The empirical part, trained networks measured against these floors, arrives later.)
"""


def print_bounds_table() -> None:
    """Print the bounds table of :func:`robustlaw.bounds.examples.bounds_table` with a legend."""
    print(_HEADER)
    print(format_bounds_table())
    print()
    for setting in examples().values():
        print(f"  {setting.name:<12} {setting.description}")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo", help="run the main job (for now: the bounds table)", description=__doc__
    )
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Print the bounds table."""
    print_bounds_table()
    return 0
