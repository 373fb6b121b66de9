"""``robustlaw experiments``: list the registered experiments with their presets.

One block per experiment: its name and description, then each preset (the values --preset
takes in run, figure, export and demo) with the number of work units it expands into.
"""

from __future__ import annotations

import argparse

from robustlaw.cli import plain_text


def register(subparsers) -> None:
    """Add the ``experiments`` subcommand."""
    p = subparsers.add_parser(
        "experiments",
        help="list the experiments and their presets",
        description=plain_text(__doc__),
    )
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Print one block per experiment: name, description, presets with their unit counts."""
    from robustlaw.experiments import list_experiments

    for exp in list_experiments():
        print(f"{exp.name}: {exp.description}")
        for preset, settings in exp.presets.items():
            print(f"  --preset {preset:<8} {len(exp.expand(settings))} work units")
    return 0
