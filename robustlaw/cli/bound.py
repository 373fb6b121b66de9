"""``robustlaw bound``: evaluate a Lipschitz lower bound, or invert it, with its assumption checks.

``--p`` selects Bubeck-Sellke Theorem 3, ``--p-eff`` No Free Prune Theorem 4. ``--solve p``
(``p-eff``, ``n``) with ``--lipschitz L`` prints the inverse instead: the quantity solved for is
not given. ``--solve p`` prints the smallest integer p at which the bound allows Lipschitz
constant L.
"""

from __future__ import annotations

import argparse
import inspect
import json

from robustlaw.bounds import BOUNDS, THEOREMS, assumptions
from robustlaw.cli import plain_text
from robustlaw.errors import AssumptionViolated, ValidationError

# Command-line flag of each keyword argument of the bound functions.
_FLAGS = {
    "n": "--n",
    "d": "--d",
    "p": "--p",
    "p_eff": "--p-eff",
    "eps": "--eps",
    "delta": "--delta",
    "W": "--W",
    "J": "--J",
    "c": "--c",
    "k": "--k",
    "L": "--lipschitz",
    "k_condition_const": "--k-condition-const",
    "a1_squared": "--a1-squared",
}
_HELP = {
    "n": "sample size",
    "d": "input dimension",
    "p": "number of parameters (Bubeck-Sellke Theorem 3)",
    "p_eff": "effective parameter count in bits (selects No Free Prune Theorem 4)",
    "eps": "fit margin below the noise level, in (0, 1)",
    "delta": "failure probability, in (0, 1)",
    "W": "Euclidean diameter of the weight set",
    "J": "parameter-Lipschitz constant",
    "c": "isoperimetry constant (default: 1)",
    "k": "number of mixture components (default: 1)",
    "L": "target Lipschitz constant for --solve",
    "k_condition_const": "k-condition constant (default: 8^4 for BS, 8^3 for NFP)",
    "a1_squared": "a_1^2 of NFP Lemma 1 (default: 72)",
}
_SOLVE = {"L": "L", "p": "p", "p-eff": "p_eff", "n": "n"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bound`` subcommand."""
    parser = subparsers.add_parser(
        "bound",
        help="evaluate or invert a Lipschitz lower bound",
        description=plain_text(__doc__),
    )
    for name, flag in _FLAGS.items():
        parser.add_argument(
            flag, dest=name, type=int if name == "k" else float, default=None, help=_HELP[name]
        )
    parser.add_argument("--solve", choices=tuple(_SOLVE), default="L", help="quantity to compute")
    parser.add_argument(
        "--no-check-assumptions", action="store_true", help="evaluate even if the k-condition fails"
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=handler)


def _inputs(args: argparse.Namespace, function, theorem: str) -> dict[str, float]:
    """Collect the function's keyword arguments from the flags; reject missing and unused ones."""
    params = {
        name: par
        for name, par in inspect.signature(function).parameters.items()
        if name != "check_assumptions"
    }
    for name in _FLAGS:
        if getattr(args, name) is not None and name == _SOLVE[args.solve]:
            raise ValidationError(
                f"{_FLAGS[name]} is what --solve {args.solve} computes; leave {_FLAGS[name]} out"
            )
        if getattr(args, name) is not None and name not in params:
            raise ValidationError(
                f"{_FLAGS[name]} is not used by {THEOREMS[theorem].title} with --solve {args.solve}"
            )
    missing = [
        _FLAGS[n]
        for n, par in params.items()
        if par.default is par.empty and getattr(args, n) is None
    ]
    if missing:
        raise ValidationError(
            f"{', '.join(missing)} required for {THEOREMS[theorem].title} with --solve {args.solve}"
        )
    return {n: getattr(args, n) for n in params if getattr(args, n) is not None}


def _format_text(result: dict) -> str:
    lines = [f"{result['theorem']}: {result['description']}"]
    lines += [f"  {_FLAGS[k]:<20} {v:g}" for k, v in result["inputs"].items()]
    value = result["value"]
    lines.append(f"{result['quantity']} = {value if isinstance(value, int) else f'{value:.6g}'}")
    lines.append("assumptions:")
    for check in result["assumptions"]:
        mark = "ok  " if check["holds"] else "FAIL"
        lines.append(f"  [{mark}] {check['name']}: {check['formula']} (value {check['value']:.6g})")
    return "\n".join(lines)


def handler(args: argparse.Namespace) -> int:
    """Compute the requested quantity and print it with its inputs and assumption checks."""
    quantity = _SOLVE[args.solve]
    theorem = "nfp-theorem4" if args.p_eff is not None or quantity == "p_eff" else "bs-theorem3"
    entry = BOUNDS.get((quantity, theorem))
    if entry is None:
        flags = {q: flag for flag, q in _SOLVE.items()}
        valid = ", ".join(flags[q] for q, t in BOUNDS if t == theorem)
        raise ValidationError(
            f"--solve {args.solve} is not available with --p-eff; choose one of: {valid}"
        )
    inputs = _inputs(args, entry.function, theorem)
    try:
        value = entry.function(**inputs, check_assumptions=not args.no_check_assumptions)
    except AssumptionViolated as err:  # name the command-line opt-out, not the keyword
        hint = str(err).replace("check_assumptions=False", "--no-check-assumptions")
        raise AssumptionViolated(hint) from None
    spec = THEOREMS[theorem]
    at = {k: v for k, v in (inputs | {quantity: value}).items() if k in spec.arguments}
    result = {
        "theorem": spec.title,
        "quantity": quantity,
        "description": entry.description,
        "value": int(value) if quantity == "p" else value,  # a whole number of parameters
        "inputs": inputs,
        "assumptions": [
            {"name": c.name, "formula": c.formula, "holds": bool(c.holds), "value": float(c.value)}
            for c in assumptions(theorem, **at)
        ],
    }
    print(json.dumps(result, indent=2) if args.json else _format_text(result))
    return 0
