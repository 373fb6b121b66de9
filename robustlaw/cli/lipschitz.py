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

from robustlaw.cli import plain_text
from robustlaw.errors import ValidationError

__all__ = ["handler", "load_network", "register"]


def _trailing_int(key: str) -> int | None:
    match = re.search(r"(\d+)$", key)
    return None if match is None else int(match.group(1))


_EXPECTED_NPZ = "a .npz archive of numeric weight matrices (numpy.savez(FILE, W0, W1, ...))"
_EXPECTED_PT = (
    "a torch state dict (torch.save(model.state_dict(), FILE)) or a robustlaw ensemble "
    "(save_ensemble)"
)


def _check_numeric(path: Path, name: str, array: np.ndarray) -> None:
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValidationError(
            f"{path}: array {name!r} has dtype {array.dtype}; expected numeric weight matrices"
        )


def _load_npz(path: Path):
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # not a zip or .npy; numpy then suggests pickle
        raise ValidationError(f"{path}: not a .npz archive; expected {_EXPECTED_NPZ}") from None
    if isinstance(data, np.ndarray):
        raise ValidationError(f"{path}: holds a single .npy array; expected {_EXPECTED_NPZ}")
    with data:
        arrays = {}
        for key in data.files:
            try:
                arrays[key] = data[key]
            except (OSError, ValueError):  # object arrays need pickle; damaged members
                raise ValidationError(
                    f"{path}: array {key!r} holds Python objects or is damaged; "
                    f"expected {_EXPECTED_NPZ}"
                ) from None
            _check_numeric(path, key, arrays[key])
    if any(k.endswith(".weight") for k in arrays):
        return arrays
    order = {k: _trailing_int(k) for k in arrays}
    if not arrays or None in order.values():
        raise ValidationError(
            f"{path}: npz keys must end in a layer index (arr_0, W0, ...) or be state-dict "
            f"keys '<i>.weight'; got {sorted(arrays)}"
        )
    return [arrays[k] for k in sorted(arrays, key=order.__getitem__)]


def _load_mat(path: Path):
    import scipy.io

    try:
        data = scipy.io.loadmat(path)
    except Exception:  # scipy raises several unrelated types for files that are not .mat
        raise ValidationError(
            f"{path}: not a MATLAB .mat file; expected one with a cell array 'weights'"
        ) from None
    if "weights" not in data:
        raise ValidationError(f"{path}: a .mat file needs a cell array named 'weights'")
    try:
        return [np.asarray(w, dtype=np.float64) for w in data["weights"].ravel()]
    except (TypeError, ValueError):
        raise ValidationError(
            f"{path}: 'weights' must be a cell array of numeric matrices"
        ) from None


def _load_pt(path: Path):
    import pickle

    import torch

    from robustlaw.empirical.ensemble_io import load_ensemble

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):  # a pickled object such as a whole nn.Module
            raise ValidationError(
                f"{path}: holds pickled Python objects (a whole model?), which are not loaded; "
                f"expected {_EXPECTED_PT}"
            ) from None
        raise ValidationError(f"{path}: not a torch file; expected {_EXPECTED_PT}") from None
    except Exception:  # torch raises several unrelated types for files that are not its own
        raise ValidationError(f"{path}: not a torch file; expected {_EXPECTED_PT}") from None
    if isinstance(payload, dict) and payload.get("format") == "robustlaw.ensemble":
        return load_ensemble(path)
    if isinstance(payload, dict):
        return payload
    raise ValidationError(f"{path}: holds a {type(payload).__name__}; expected {_EXPECTED_PT}")


def load_network(path: str | Path):
    """Read FILE (see the module docstring) into something ``as_network`` accepts.

    Raises
    ------
    ValidationError
        One line naming the file and what was expected, when it cannot be read as a network.
    """
    from robustlaw.empirical.lipschitz import as_network

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"FILE {str(path)!r} does not exist")
    loaders = {".npz": _load_npz, ".mat": _load_mat, ".pt": _load_pt, ".pth": _load_pt}
    load = loaders.get(path.suffix.lower())
    if load is None:
        raise ValidationError(f"FILE must end in .npz, .mat, .pt or .pth, got {path.name!r}")
    network = load(path)
    try:
        as_network(network)  # checked here so that the message names the file
    except ValidationError as err:
        raise ValidationError(f"{path}: {err}") from None
    return network


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
        description=plain_text(__doc__),
    )
    p.add_argument("file", metavar="FILE", help="a .npz, .mat, saved ensemble or state dict")
    p.add_argument(
        "--method",
        default="lipsdp-neuron",
        help="gradient, spectral, eclipse-fast, eclipse, lipsdp-layer or lipsdp-neuron",
    )
    p.add_argument(
        "--activation",
        default=None,
        help="activation name, not for spectral (default: the model's)",
    )
    p.add_argument(
        "--solver",
        default=None,
        help="lipsdp-*: 'ipm' or a cvxpy solver; eclipse: 'torch' or a cvxpy solver "
        "(default: ipm for lipsdp-*, torch for eclipse)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of random points (gradient)")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.set_defaults(func=handler)
