"""``robustlaw lipschitz FILE``: estimate the l2 Lipschitz constant of a saved network.

FILE may be

- a ``.npz`` of weight matrices in ``(out, in)`` order; keys are ordered by their trailing
  integer (``arr_0, arr_1, ...`` as ``numpy.savez`` writes them, or ``W0, W1, ...``), or are
  state-dict keys ``"<i>.weight"`` / ``"<i>.bias"``;
- a ``.mat`` file with a cell array ``weights`` (the LipSDP reference format);
- a robustlaw ensemble saved by :func:`robustlaw.empirical.ensemble_io.save_ensemble` (one value
  per member);
- a torch state dict (``.pt``) of an ``nn.Sequential`` MLP.

``--method`` is a name of ``LIPSCHITZ_METHODS`` (``lipsdp-neuron`` by default).
``--method gradient`` on a file without data evaluates random points ``N(0, I/d)`` at several
scales, drawn from ``--seed`` (0 by default), so the output is reproducible.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from robustlaw.errors import ValidationError

__all__ = ["handler", "load_network", "register"]


def _trailing_int(key: str) -> int | None:
    match = re.search(r"(\d+)$", key)
    return None if match is None else int(match.group(1))


def _load_npz(path: Path):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    if any(k.endswith(".weight") for k in arrays):
        return arrays
    order = {k: _trailing_int(k) for k in arrays}
    if not arrays or None in order.values():
        raise ValidationError(
            f"{path}: npz keys must end in a layer index (arr_0, W0, ...) or be state-dict "
            f"keys '<i>.weight'; got {sorted(arrays)}"
        )
    return [arrays[k] for k in sorted(arrays, key=order.__getitem__)]


def _load_pt(path: Path):
    import torch

    from robustlaw.empirical.ensemble_io import load_ensemble

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for bad files
        raise ValidationError(
            f"{path}: not a torch file readable with weights_only ({err})"
        ) from None
    if isinstance(payload, dict) and payload.get("format") == "robustlaw.ensemble":
        return load_ensemble(path)
    if isinstance(payload, dict):
        return payload
    raise ValidationError(f"{path}: expected a state dict or a robustlaw ensemble")


def load_network(path: str | Path):
    """Read FILE (see the module docstring) into something ``as_network`` accepts."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"FILE {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".mat":
        data = scipy.io.loadmat(path)
        if "weights" not in data:
            raise ValidationError(f"{path}: a .mat file needs a cell array named 'weights'")
        return [np.asarray(w, dtype=np.float64) for w in data["weights"].ravel()]
    if suffix in (".pt", ".pth"):
        return _load_pt(path)
    raise ValidationError(f"FILE must end in .npz, .mat, .pt or .pth, got {path.name!r}")


def _options(args, name: str):
    """The method's options, with ``--activation`` and ``--solver`` where it has such fields."""
    import dataclasses

    from robustlaw._validation import get_registered
    from robustlaw.empirical.lipschitz import LIPSCHITZ_METHODS

    entry = get_registered(LIPSCHITZ_METHODS, name, "Lipschitz method")
    fields = {f.name for f in dataclasses.fields(entry.options)}
    given = {"activation": args.activation, "solver": args.solver}
    for flag, value in given.items():
        if value is not None and flag not in fields:
            raise ValidationError(f"--{flag} does not apply to --method {name}")
    return entry.options(**{k: v for k, v in given.items() if v is not None})


def handler(args: argparse.Namespace) -> int:
    """Estimate, print one line (or JSON), return 0."""
    import torch

    from robustlaw.empirical.lipschitz import estimate_lipschitz

    options = _options(args, args.method)
    est = estimate_lipschitz(
        args.method,
        load_network(args.file),
        options,
        generator=torch.Generator().manual_seed(args.seed),
        raise_on_failure=True,
    )
    if args.json:
        print(json.dumps(est.to_dict()))
        return 0
    value = np.array2string(est.value, precision=8) if est.batched else f"{est.value:.8g}"
    claim = "certified" if est.certified else "not certified"
    print(
        f"{value} ({est.kind} bound, {claim}) method={est.method} "
        f"status={est.status.value} seconds={est.seconds:.3g}"
    )
    return 0


def register(subparsers) -> None:
    """Add the ``lipschitz`` subcommand."""
    p = subparsers.add_parser(
        "lipschitz",
        help="estimate the l2 Lipschitz constant of a saved MLP",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("file", metavar="FILE", help="a .npz, .mat, saved ensemble or state dict")
    p.add_argument(
        "--method",
        default="lipsdp-neuron",
        help="gradient, spectral, eclipse-fast, eclipse, lipsdp-layer or lipsdp-neuron (default)",
    )
    p.add_argument(
        "--activation", default=None, help="activation name (default: the model's; not spectral)"
    )
    p.add_argument(
        "--solver",
        default=None,
        help="lipsdp-*: 'ipm' (default) or a cvxpy solver; eclipse: 'torch' (default) or a cvxpy "
        "solver",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of random points (gradient)")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.set_defaults(func=handler)
