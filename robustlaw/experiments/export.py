"""Export stored results to CSV (standard library) and Parquet (when pyarrow is installed)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from robustlaw.experiments.api import load
from robustlaw.io import atomic_write, ensure_folder

__all__ = ["export"]


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=_columns(rows))
        writer.writeheader()
        writer.writerows(rows)


def export(
    store: str | os.PathLike,
    name: str,
    out_dir: str | os.PathLike,
    *,
    preset: str | None = None,
    settings_hash: str | None = None,
    package_version: str | None = None,
    include_all: bool = False,
) -> list[Path]:
    """Write ``<name>.csv`` (and ``<name>.parquet`` with pyarrow) into ``out_dir``.

    ``out_dir`` is created when missing, as :func:`~robustlaw.experiments.draw_figures` does.

    The rows are those :func:`robustlaw.experiments.load` returns with the same selection
    (``preset``, ``settings_hash``, ``package_version``, ``include_all``); a store that cannot
    be read, or a selection that does not pick one result set, raises before ``out_dir`` is
    created.
    Floats are written with ``repr`` precision, so they read back bitwise.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    rows = load(
        store,
        name,
        preset=preset,
        settings_hash=settings_hash,
        package_version=package_version,
        include_all=include_all,
        as_frame=False,
    )
    out_dir = ensure_folder(out_dir)
    paths = [atomic_write(out_dir / f"{name}.csv", lambda p: _write_csv(rows, p))]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return paths
    table = pa.Table.from_pylist(rows)
    paths.append(atomic_write(out_dir / f"{name}.parquet", lambda p: pq.write_table(table, p)))
    return paths
