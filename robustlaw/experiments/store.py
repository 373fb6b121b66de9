"""The SQLite result store: versioned schema, WAL mode, one transaction per work unit.

Each finished work unit is written in one ``BEGIN IMMEDIATE ... COMMIT`` transaction: its row in
``units`` (the completion marker) and one row per member in ``results``. A process killed at any
moment leaves either the whole unit or nothing, so a later run completes exactly the missing
units. Floats are stored as SQLite REAL or as JSON written with ``repr`` precision; both
round-trip bitwise.

Every key includes the experiment, the settings hash and the package version, so results of
different settings or versions never overwrite or mix with each other.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robustlaw.errors import ValidationError
from robustlaw.experiments.registry import MemberResult, WorkUnit

__all__ = ["SCHEMA_VERSION", "Store"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (
    experiment TEXT NOT NULL, settings_hash TEXT NOT NULL, package_version TEXT NOT NULL,
    unit_key TEXT NOT NULL, unit_index INTEGER NOT NULL, unit_json TEXT NOT NULL,
    settings_json TEXT NOT NULL, finished_at TEXT NOT NULL,
    PRIMARY KEY (experiment, settings_hash, package_version, unit_key)
);
CREATE TABLE IF NOT EXISTS results (
    experiment TEXT NOT NULL, settings_hash TEXT NOT NULL, package_version TEXT NOT NULL,
    unit_key TEXT NOT NULL, unit_index INTEGER NOT NULL, member INTEGER NOT NULL,
    method TEXT NOT NULL, density REAL NOT NULL, seed INTEGER NOT NULL, metrics TEXT NOT NULL,
    git_revision TEXT, torch_version TEXT, device TEXT NOT NULL, dtype TEXT NOT NULL,
    wall_time_s REAL NOT NULL,
    PRIMARY KEY (experiment, settings_hash, package_version, unit_key, member)
);
"""

COLUMNS = (
    "experiment",
    "settings_hash",
    "package_version",
    "unit_key",
    "unit_index",
    "member",
    "method",
    "density",
    "seed",
    "git_revision",
    "torch_version",
    "device",
    "dtype",
    "wall_time_s",
)
"""The fixed columns of a loaded result row; metrics follow as further columns."""


class Store:
    """A results database on disk, used as a context manager.

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file. Its folder must exist.
    readonly : bool
        Open an existing file for reading only.

    Raises
    ------
    ValidationError
        If the file cannot be opened or created, or has another schema version.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with Store(pathlib.Path(tmp) / "r.sqlite") as store:
    ...         store.experiments()
    ()
    """

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise ValidationError(f"store {str(self.path)!r} does not exist")
        if not readonly:
            _check_writable(self.path)
        # A reader opens read-write when it may (it never writes): the last connection to close
        # then removes the WAL files, which a read-only connection cannot do.
        mode = ("rw" if os.access(self.path, os.W_OK) else "ro") if readonly else "rwc"
        uri = f"file:{self.path.resolve()}?mode={mode}"
        try:
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
            if not readonly:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
                self._conn.executescript(_SCHEMA)
                self._conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError as err:
            raise ValidationError(f"cannot use store {str(self.path)!r}: {err}") from None
        if row is None or int(row[0]) != SCHEMA_VERSION:
            found = None if row is None else row[0]
            self._conn.close()
            raise ValidationError(
                f"store {str(self.path)!r} has schema version {found}; this robustlaw reads "
                f"version {SCHEMA_VERSION}"
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()

    def experiments(self) -> tuple[str, ...]:
        """The experiments with at least one finished unit, sorted."""
        rows = self._conn.execute("SELECT DISTINCT experiment FROM units ORDER BY experiment")
        return tuple(r[0] for r in rows)

    def groups(self, experiment: str) -> list[dict[str, Any]]:
        """One entry per (settings hash, package version) of ``experiment``, with unit counts."""
        rows = self._conn.execute(
            "SELECT settings_hash, package_version, COUNT(*), MIN(settings_json) FROM units "
            "WHERE experiment = ? GROUP BY settings_hash, package_version "
            "ORDER BY settings_hash, package_version",
            (experiment,),
        )
        return [
            {"settings_hash": h, "package_version": v, "n_units": n, "settings": json.loads(s)}
            for h, v, n, s in rows
        ]

    def done_units(self, experiment: str, settings_hash: str, package_version: str) -> set[str]:
        """The keys of the finished units of one settings hash and package version."""
        rows = self._conn.execute(
            "SELECT unit_key FROM units WHERE experiment = ? AND settings_hash = ? "
            "AND package_version = ?",
            (experiment, settings_hash, package_version),
        )
        return {r[0] for r in rows}

    def write_unit(
        self,
        *,
        experiment: str,
        settings_hash: str,
        settings_json: str,
        unit: WorkUnit,
        members: Iterable[MemberResult],
        provenance: Mapping[str, Any],
    ) -> bool:
        """Store one finished unit and its members in a single transaction.

        ``provenance`` holds ``package_version``, ``git_revision``, ``torch_version``,
        ``device``, ``dtype`` and ``wall_time_s``. Returns False (and writes nothing) when the
        unit is already stored, e.g. by a concurrent run.
        """
        head = (experiment, settings_hash, provenance["package_version"], unit.key, unit.index)
        rows = [
            (
                *head,
                i,
                m.method,
                float(m.density),
                int(m.seed),
                json.dumps(dict(m.metrics), sort_keys=True, allow_nan=True),
                provenance["git_revision"],
                provenance["torch_version"],
                provenance["device"],
                provenance["dtype"],
                float(provenance["wall_time_s"]),
            )
            for i, m in enumerate(members)
        ]
        for m_row in rows:
            clash = set(json.loads(m_row[9])) & set(COLUMNS)
            if clash:
                raise ValidationError(f"metric names {sorted(clash)} clash with store columns")
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(
                "INSERT OR IGNORE INTO units VALUES (?, ?, ?, ?, ?, ?, ?, datetime('now'))",
                (*head, json.dumps(dict(unit.params), sort_keys=True), settings_json),
            )
            if cur.rowcount == 0:
                conn.execute("ROLLBACK")
                return False
            conn.executemany(f"INSERT INTO results VALUES ({', '.join('?' * 15)})", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return True

    def records(
        self,
        experiment: str,
        *,
        settings_hash: str | None = None,
        package_version: str | None = None,
    ) -> list[dict[str, Any]]:
        """Result rows as dicts (fixed columns, then metrics), in unit and member order."""
        where, args = ["experiment = ?"], [experiment]
        for column, value in (
            ("settings_hash", settings_hash),
            ("package_version", package_version),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        cols = list(COLUMNS)
        query = (
            f"SELECT {', '.join(cols)}, metrics FROM results WHERE {' AND '.join(where)} "
            "ORDER BY settings_hash, package_version, unit_index, member"
        )
        out = []
        for row in self._conn.execute(query, args):
            record = dict(zip(cols, row[:-1], strict=True))
            record.update(json.loads(row[-1]))
            out.append(record)
        return out


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise ValidationError(f"store {str(path)!r} is a folder, expected a file")
    folder = path.resolve().parent
    if not folder.is_dir():
        raise ValidationError(f"store {str(path)!r}: folder {str(folder)!r} does not exist")
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise ValidationError(f"store {str(path)!r} is not writable")
