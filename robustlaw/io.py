"""Neutral I/O helpers shared by ``compare``, ``experiments`` and the CLI.

Row lists to DataFrames and back, atomic file writes, and saving figures. Nothing here knows
about experiments, stores or Lipschitz constants, so every layer may import it.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from robustlaw.errors import ValidationError

__all__ = ["FIGURE_DPI", "atomic_write", "ensure_folder", "rows_of", "save_figure", "to_frame"]

FIGURE_DPI = 110
"""Resolution of saved PNG figures, in dots per inch."""


def to_frame(rows: list[dict[str, Any]], *, as_frame: bool | None = None):
    """Return ``rows`` as a pandas DataFrame when pandas is installed (or ``as_frame``).

    Parameters
    ----------
    rows : list of dict
        One dict per row.
    as_frame : bool, optional
        True: a DataFrame (pandas required); False: ``rows`` unchanged; None: a DataFrame
        when pandas is installed.

    Examples
    --------
    >>> to_frame([{"a": 1}], as_frame=False)
    [{'a': 1}]
    """
    if as_frame is False:
        return rows
    try:
        import pandas as pd
    except ImportError:
        if as_frame:
            raise ValidationError("as_frame=True needs pandas: pip install pandas") from None
        return rows
    return pd.DataFrame.from_records(rows)


def rows_of(table: Any) -> list[dict[str, Any]]:
    """Return ``table`` (DataFrame or iterable of dicts) as a list of dicts, NaN as None.

    Examples
    --------
    >>> rows_of([{"a": float("nan"), "b": 2}])
    [{'a': None, 'b': 2}]
    """
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in rows
    ]


def ensure_folder(path: str | os.PathLike) -> Path:
    """Return ``path`` as a folder that exists, creating it (and its parents) when missing.

    Raises
    ------
    ValidationError
        If the folder cannot be created (e.g. a file is in the way, or no permission).
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValidationError(f"cannot create output folder {str(folder)!r}: {err}") from None
    return folder


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    An interruption leaves either the old file or the new one, never half of one.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_figure(fig: Any, stem: Path) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.pdf``, each written atomically."""
    paths = []
    for ext in ("png", "pdf"):
        save = partial(fig.savefig, format=ext, bbox_inches="tight", dpi=FIGURE_DPI)
        paths.append(atomic_write(Path(stem).with_suffix(f".{ext}"), save))
    return paths
