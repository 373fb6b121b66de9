"""``robustlaw demo``: the main job. The bounds at named settings, then the law tested.

It prints the bounds table, runs the ``tiny`` preset of ``lor-scaling`` on the CPU (about a
minute on a 2-core laptop), writes ``robustlaw-demo/results.sqlite`` and the figures, and prints
a short summary with the paths: per search group the smallest certified fit beside its floor,
its log-log slope against p below ``p = nd`` and the plateau beyond. Interrupted, it leaves
only whole results (one SQLite transaction per work unit; figures are written to a temporary
file, then renamed); running it again resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robustlaw.bounds.examples import examples, format_bounds_table
from robustlaw.cli import plain_text

_HEADER = """robustlaw demo: Lipschitz lower bounds at named settings
(Bubeck-Sellke Theorem 3: L_BS; No Free Prune Theorem 4: L_NFP with p_eff in bits;
evaluated even where the k-condition fails, which the last two columns report.
Then the law tested: the smoothest fits a search finds, their certified Lipschitz
upper bounds against these floors, and how the smallest one scales with p.)
"""

DEMO_EXPERIMENTS = ("lor-scaling",)
"""The experiments the demo runs (each at the chosen preset)."""

SUMMARY_COLUMNS = (
    "n",
    "d",
    "method",
    "density",
    "p",
    "fit_datasets",
    "lip_certified",
    "lip_lower",
    "first_fit_certified",
    "floor",
    "ratio",
    "contradicts",
)
"""Columns of :func:`robustlaw.compare.smallest_fit_table` the demo prints."""
SLOPE_COLUMNS = ("n", "d", "role", "slope", "ci_low", "ci_high", "points", "plateau", "status")
"""Columns of :func:`robustlaw.compare.scaling_slopes` the demo prints."""
CONSTRUCTION_COLUMNS = ("method", "n", "d", "p", "fit_share", "stated", "lip_certified", "ratio")
"""Columns of :func:`robustlaw.compare.construction_table` the demo prints."""

_SMALLEST = """Smallest certified Lipschitz upper bound over the search, beside the floor
(medians over datasets, fits below the noise only; lip_lower is a lower estimate of the chosen
net, which bounds that net only; floor: Bubeck-Sellke at p for dense nets, No Free Prune at
p_eff for pruned nets; only a certified value under its floor, ratio < 1, would contradict the
theorem):"""
_SLOPES = """Log-log slope of the smallest certified constant against p for p < nd, dense nets
(the law predicts about -0.5 for the smallest constant L*, which the search brackets from
above; the first-fit control is one arbitrary fit and may show 0), 95% bootstrap interval over
datasets, and the plateau at p >= nd:"""


def summary_text(results) -> str:
    """The measured-versus-bound summary of a ``lor-scaling`` result table, as printed.

    Examples
    --------
    >>> from robustlaw.compare import synthetic_results
    >>> print(summary_text(synthetic_results(sizes=((16, 4),))).splitlines()[0])
    Smallest certified Lipschitz upper bound over the search, beside the floor
    """
    from robustlaw.compare import (
        construction_table,
        format_table,
        scaling_slopes,
        smallest_fit_table,
    )

    parts = [_SMALLEST, format_table(smallest_fit_table(results, as_frame=False), SUMMARY_COLUMNS)]
    slopes = [
        row
        for role in ("search", "first-fit")
        for row in scaling_slopes(results, role=role, as_frame=False)
    ]
    parts += ["", _SLOPES, format_table(slopes, SLOPE_COLUMNS)]
    built = construction_table(results, as_frame=False)
    if built:
        head = "Explicit constructions ([BLN] section 3): certified upper bound, ratio to BS floor:"
        parts += ["", head, format_table(built, CONSTRUCTION_COLUMNS)]
    return "\n".join(parts)


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
        "demo",
        help="print the bounds, then test the law on small networks",
        description=plain_text(__doc__),
    )
    parser.add_argument("--out", default="robustlaw-demo", help="folder for results and figures")
    parser.add_argument("--preset", default="tiny", help="preset to run (tiny: about a minute)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per work unit")
    parser.set_defaults(func=handler)


def check_arguments(out: Path, *, preset: str, device: str, threads: int) -> None:
    """Refuse a bad preset (for any demo experiment), device, thread count or folder.

    Called before anything is printed or written, so a bad argument costs nothing.
    """
    from robustlaw._validation import check_integer
    from robustlaw.empirical.ensemble import resolve_device
    from robustlaw.errors import ValidationError
    from robustlaw.experiments import get_experiment

    for name in DEMO_EXPERIMENTS:
        get_experiment(name).preset(preset)
    resolve_device(device)
    check_integer(threads, "threads", minimum=1)
    if out.exists() and not out.is_dir():
        raise ValidationError(f"--out {str(out)!r} is a file; expected a folder")


def run_demo(out: Path, *, preset: str, device: str, threads: int | None) -> list[Path]:
    """Run each demo experiment into ``out/results.sqlite``, draw its figures, print summaries.

    Returns the written paths (store first, then figures). A folder this call creates is
    removed again if it fails before writing anything into it.
    """
    from robustlaw.errors import ValidationError

    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValidationError(f"cannot create {str(out)!r}: {err}") from None
    try:
        return _measure(out, preset=preset, device=device, threads=threads)
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()
        raise


def _measure(out: Path, *, preset: str, device: str, threads: int | None) -> list[Path]:
    from robustlaw.experiments import draw_figures, load, run

    store = out / "results.sqlite"
    paths = [store]
    for name in DEMO_EXPERIMENTS:
        print(f"\nRunning {name} (preset {preset!r}) into {store} ...", flush=True)
        summary = run(name, preset, store=store, device=device, threads=threads)
        print(
            f"{summary.n_run} work units run, {summary.n_skipped} already stored "
            f"({summary.wall_time_s:.1f} s on {summary.device})"
        )
        results = load(store, name, preset=preset, as_frame=False)
        print()
        print(summary_text(results))
        paths += draw_figures(store, name, out / "figures", preset=preset)
    return paths


def handler(args: argparse.Namespace) -> int:
    """Check the arguments, print the bounds table, run the demo experiments, print the paths."""
    check_arguments(Path(args.out), preset=args.preset, device=args.device, threads=args.threads)
    print_bounds_table()
    paths = run_demo(Path(args.out), preset=args.preset, device=args.device, threads=args.threads)
    print("\nWrote:")
    for path in paths:
        print(f"  {path}")
    return 0
