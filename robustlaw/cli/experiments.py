"""``robustlaw experiments``: list the registered experiments with their presets."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the ``experiments`` subcommand."""
    p = subparsers.add_parser("experiments", help="list the experiments and their presets")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Print one block per experiment: name, description, presets with their unit counts."""
    from robustlaw.experiments import list_experiments

    for exp in list_experiments():
        print(f"{exp.name}: {exp.description}")
        for preset, settings in exp.presets.items():
            print(f"  --preset {preset:<8} {len(exp.expand(settings))} work units")
    return 0
