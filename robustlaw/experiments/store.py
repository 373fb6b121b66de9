"""The SQLite result store: versioned schema, WAL mode, one transaction per work unit.

Each experiment's rows live in a table whose columns come from its record type
(:mod:`robustlaw.experiments.records`): one typed SQLite column per record field, named
``records_<hash>`` after the experiment and its columns, and described in ``record_tables``.
Each finished work unit is written in one ``BEGIN IMMEDIATE ... COMMIT`` transaction: its row in
``units`` (the completion marker, with its provenance) and its records. A process killed at any
moment leaves either the whole unit or nothing, so a later run completes exactly the missing
units. Floats are stored as SQLite REAL and round-trip bitwise; every row is checked against
its record type before the transaction starts.

Every key includes the experiment, the settings hash and the package version, so results of
different settings or versions never overwrite or mix with each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robustlaw.errors import ValidationError
from robustlaw.experiments.records import Column, from_stored, record_row
from robustlaw.experiments.registry import KEY_COLUMNS, Experiment, WorkUnit

__all__ = ["SCHEMA_VERSION", "Store"]

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS record_tables (
    table_name TEXT PRIMARY KEY, experiment TEXT NOT NULL, record_type TEXT NOT NULL,
    columns_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS units (
    experiment TEXT NOT NULL, settings_hash TEXT NOT NULL, package_version TEXT NOT NULL,
    unit_key TEXT NOT NULL, unit_index INTEGER NOT NULL, unit_json TEXT NOT NULL,
    settings_json TEXT NOT NULL, record_table TEXT NOT NULL, git_revision TEXT,
    torch_version TEXT, device TEXT NOT NULL, wall_time_s REAL NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (experiment, settings_hash, package_version, unit_key)
);
"""

_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _record_table(experiment: Experiment) -> tuple[str, str]:
    """The name of an experiment's record table and its column description (JSON)."""
    columns = [[c.name, c.type.__name__, c.nullable] for c in experiment.columns]
    text = json.dumps({"experiment": experiment.name, "columns": columns}, sort_keys=True)
    return f"records_{hashlib.sha256(text.encode()).hexdigest()[:16]}", json.dumps(columns)


def _columns_from_json(text: str) -> tuple[Column, ...]:
    return tuple(Column(name=n, type=_TYPES[t], nullable=bool(z)) for n, t, z in json.loads(text))


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
        experiment: Experiment,
        settings_hash: str,
        settings_json: str,
        unit: WorkUnit,
        records: Iterable[Any],
        provenance: Mapping[str, Any],
    ) -> bool:
        """Store one finished unit and its records in a single transaction.

        ``provenance`` holds ``package_version``, ``git_revision``, ``torch_version``,
        ``device`` and ``wall_time_s``. Every record is checked against the experiment's record
        type first, so a bad row raises :class:`ValidationError` and writes nothing. Returns
        False (and writes nothing) when the unit is already stored, e.g. by a concurrent run.
        """
        columns = experiment.columns
        rows = [record_row(r, experiment.record_type, columns) for r in records]
        table, columns_json = _record_table(experiment)
        version = provenance["package_version"]
        head = (settings_hash, version, unit.key)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{table}" (settings_hash TEXT NOT NULL, '
                "package_version TEXT NOT NULL, unit_key TEXT NOT NULL, row INTEGER NOT NULL, "
                f"{', '.join(c.declaration for c in columns)}, "
                "PRIMARY KEY (settings_hash, package_version, unit_key, row))"
            )
            conn.execute(
                "INSERT OR IGNORE INTO record_tables VALUES (?, ?, ?, ?)",
                (table, experiment.name, experiment.record_type.__qualname__, columns_json),
            )
            cur = conn.execute(
                "INSERT OR IGNORE INTO units VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, datetime('now'))",
                (
                    experiment.name,
                    *head,
                    unit.index,
                    json.dumps(dict(unit.params), sort_keys=True),
                    settings_json,
                    table,
                    provenance["git_revision"],
                    provenance["torch_version"],
                    provenance["device"],
                    float(provenance["wall_time_s"]),
                ),
            )
            if cur.rowcount == 0:
                conn.execute("ROLLBACK")
                return False
            marks = ", ".join("?" * (4 + len(columns)))
            conn.executemany(
                f'INSERT INTO "{table}" VALUES ({marks})',
                [(*head, i, *row) for i, row in enumerate(rows)],
            )
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
        """Stored rows as dicts (:data:`KEY_COLUMNS`, then record fields), in unit order."""
        where, args = ["u.experiment = ?"], [experiment]
        for column, value in (
            ("settings_hash", settings_hash),
            ("package_version", package_version),
        ):
            if value is not None:
                where.append(f"u.{column} = ?")
                args.append(value)
        tables = self._conn.execute(
            "SELECT DISTINCT t.table_name, t.columns_json FROM units u JOIN record_tables t "
            f"ON t.table_name = u.record_table WHERE {' AND '.join(where)} ORDER BY t.table_name",
            args,
        ).fetchall()
        head = ", ".join("r.row" if k == "row" else f"u.{k}" for k in KEY_COLUMNS)
        out = []
        for table, columns_json in tables:
            columns = _columns_from_json(columns_json)
            fields = ", ".join(f'r."{c.name}"' for c in columns)
            query = (
                f'SELECT {head}, {fields} FROM units u JOIN "{table}" r '
                "ON r.settings_hash = u.settings_hash AND r.package_version = u.package_version "
                f"AND r.unit_key = u.unit_key WHERE {' AND '.join(where)} "
                "ORDER BY u.settings_hash, u.package_version, u.unit_index, r.row"
            )
            for row in self._conn.execute(query, args):
                record = dict(zip(KEY_COLUMNS, row[: len(KEY_COLUMNS)], strict=True))
                record.update(from_stored(columns, row[len(KEY_COLUMNS) :]))
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
