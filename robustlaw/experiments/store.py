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

Faults give one clear error each: a file of another program is refused untouched
(:class:`NotAStoreError`), a damaged file is refused when opened, with the command that
recovers its intact units (:class:`DamagedStoreError`), and a unit that cannot be written (a
full disk) raises :class:`StoreWriteError`, leaving every unit stored before it intact. An
archived store in a read-only folder is read without writing anything beside it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shlex
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from robustlaw.errors import (
    DamagedStoreError,
    NotAStoreError,
    StoreWriteError,
    ValidationError,
)
from robustlaw.experiments.records import Column, from_stored, record_row
from robustlaw.experiments.registry import KEY_COLUMNS, Experiment, WorkUnit

__all__ = [
    "SCHEMA_VERSION",
    "Store",
]

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


class _Unreadable(Exception):
    """A description stored in the file does not parse (the file is damaged)."""


def _columns_from_json(text: str) -> tuple[Column, ...]:
    try:
        return tuple(
            Column(name=n, type=_TYPES[t], nullable=bool(z)) for n, t, z in json.loads(text)
        )
    except (ValueError, KeyError, TypeError) as err:
        raise _Unreadable(f"column description {text[:40]!r}: {err}") from None


@functools.cache
def _required_columns() -> dict[str, frozenset[str]]:
    """The framework's tables and their columns, read from :data:`_SCHEMA` itself."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMA)
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {name: _table_columns(conn, name) for name in names}
    finally:
        conn.close()


def _table_columns(conn: sqlite3.Connection, table: str) -> frozenset[str]:
    return frozenset(r[1] for r in conn.execute(f'PRAGMA table_info("{table}")'))


def _stored_ok(column: Column, value: Any) -> bool:
    """Whether a value read back has the type its column was written with."""
    if value is None:
        return column.nullable
    if column.type is bool:
        return type(value) is int and value in (0, 1)
    return type(value) is column.type


class Store:
    """A results database on disk, used as a context manager.

    Opening checks that the file is a robustlaw store of this schema version, intact (SQLite's
    integrity check) and with every table and column the framework needs; a file of another
    program is refused before anything is written to it. A missing or empty file is
    initialized (unless ``readonly``).

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file. Its folder must exist.
    readonly : bool
        Open an existing file for reading only. When the file or its folder is not writable
        (an archive), it is opened immutable, so nothing needs to be written next to it.

    Raises
    ------
    NotAStoreError
        If the file is not a SQLite database, or holds tables of another program.
    DamagedStoreError
        If the file is damaged; the message says how to recover its intact units.
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
        uri = _read_uri(self.path) if readonly else f"{self.path.resolve().as_uri()}?mode=rwc"
        try:
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
        except sqlite3.Error as err:
            raise ValidationError(f"cannot open store {str(self.path)!r}: {err}") from None
        try:
            with self._reading():
                self._open(readonly)
        except BaseException:
            self._conn.close()
            raise

    def _open(self, readonly: bool) -> None:
        tables = self._tables()
        if "meta" not in tables:
            if tables:
                raise self._foreign(tables)
            if readonly:
                raise ValidationError(
                    f"store {str(self.path)!r} is empty: it holds no robustlaw results"
                )
            self._initialize()
            tables = self._tables()
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise self._foreign(tables)
        if row[0] != str(SCHEMA_VERSION):
            raise ValidationError(
                f"store {str(self.path)!r} has schema version {row[0]}; this robustlaw reads "
                f"version {SCHEMA_VERSION}"
            )
        self._check_intact(tables)
        if not readonly:
            if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")

    def _tables(self) -> dict[str, frozenset[str]]:
        """Every table of the file with its columns."""
        names = [
            r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        return {name: _table_columns(self._conn, name) for name in names}

    def _foreign(self, tables: Mapping[str, Any]) -> NotAStoreError:
        listing = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        return NotAStoreError(
            f"{str(self.path)!r} is not a robustlaw store: it is a SQLite database of another "
            f"program (tables: {listing}); it was left untouched, choose a new or empty file"
        )

    def _initialize(self) -> None:
        """Write the schema into an empty file, in one transaction (concurrent runs may race)."""
        conn = self._conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = self._tables()  # another process may have initialized it meanwhile
            if tables and "meta" not in tables:
                raise self._foreign(tables)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _check_intact(self, tables: Mapping[str, frozenset[str]]) -> None:
        """Refuse a file that fails SQLite's integrity check or lacks a table or column."""
        problems = [r[0] for r in self._conn.execute("PRAGMA integrity_check(3)")]
        if problems != ["ok"]:
            text = " ".join(problems).replace("*** in database main ***", "")
            raise self._damaged(" ".join(text.split()))
        needed = dict(_required_columns())
        key = frozenset(("settings_hash", "package_version", "unit_key", "row"))
        for table, columns_json in self._conn.execute(
            "SELECT table_name, columns_json FROM record_tables"
        ):
            needed[table] = key | {c.name for c in _columns_from_json(columns_json)}
        for table, columns in needed.items():
            if table not in tables:
                raise self._damaged(f"table {table!r} is missing")
            if not columns <= tables[table]:
                missing = ", ".join(sorted(columns - tables[table]))
                raise self._damaged(f"table {table!r} lacks the columns {missing}")

    def _damaged(self, detail: str) -> DamagedStoreError:
        if len(detail) > 120:
            detail = detail[:117] + "..."
        path = shlex.quote(str(self.path))
        return DamagedStoreError(
            f"store {str(self.path)!r} is damaged ({detail}); recover its intact units with: "
            f'sqlite3 {path} ".recover" | sqlite3 recovered.sqlite, then use recovered.sqlite '
            "(a run into it recomputes the missing units)"
        )

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Turn SQLite's and JSON's complaints about the file into one clear error."""
        try:
            yield
        except sqlite3.DatabaseError as err:
            name = getattr(err, "sqlite_errorname", "")
            if name == "SQLITE_NOTADB":
                raise NotAStoreError(
                    f"{str(self.path)!r} is not a robustlaw store: it is not a SQLite database "
                    "(or its first page is damaged); it was left untouched, choose a new or "
                    "empty file"
                ) from None
            if name.startswith("SQLITE_CORRUPT") or "decode" in str(err):
                raise self._damaged(str(err)) from None
            raise ValidationError(f"cannot use store {str(self.path)!r}: {err}") from None
        except (_Unreadable, json.JSONDecodeError) as err:
            raise self._damaged(str(err)) from None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()

    def experiments(self) -> tuple[str, ...]:
        """The experiments with at least one finished unit, sorted."""
        with self._reading():
            rows = self._conn.execute(
                "SELECT DISTINCT experiment FROM units ORDER BY experiment"
            ).fetchall()
        return tuple(r[0] for r in rows)

    def groups(self, experiment: str) -> list[dict[str, Any]]:
        """One entry per (settings hash, package version) of ``experiment``, with unit counts."""
        with self._reading():
            rows = self._conn.execute(
                "SELECT settings_hash, package_version, COUNT(*), MIN(settings_json) FROM units "
                "WHERE experiment = ? GROUP BY settings_hash, package_version "
                "ORDER BY settings_hash, package_version",
                (experiment,),
            ).fetchall()
            return [
                {
                    "settings_hash": h,
                    "package_version": v,
                    "n_units": n,
                    "settings_json": s,
                    "settings": json.loads(s),
                }
                for h, v, n, s in rows
            ]

    def done_units(self, experiment: str, settings_hash: str, package_version: str) -> set[str]:
        """The keys of the finished units of one settings hash and package version."""
        with self._reading():
            rows = self._conn.execute(
                "SELECT unit_key FROM units WHERE experiment = ? AND settings_hash = ? "
                "AND package_version = ?",
                (experiment, settings_hash, package_version),
            ).fetchall()
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

        Raises
        ------
        StoreWriteError
            If SQLite cannot write the unit (disk full, I/O error); nothing of it is written
            and the units stored before are intact.
        """
        columns = experiment.columns
        rows = [record_row(r, experiment.record_type, columns) for r in records]
        table, columns_json = _record_table(experiment)
        version = provenance["package_version"]
        head = (settings_hash, version, unit.key)
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
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
        except sqlite3.Error as err:
            _rollback(conn)
            raise self._write_error(unit, err) from None
        except BaseException:
            _rollback(conn)
            raise
        return True

    def _write_error(self, unit: WorkUnit, err: sqlite3.Error) -> StoreWriteError:
        where = f"store {str(self.path)!r}"
        if getattr(err, "sqlite_errorname", "") == "SQLITE_FULL":
            return StoreWriteError(
                f"{where} is full (no space left on the disk) while storing unit {unit.key!r}; "
                "the units stored before it are intact: free some space and run again to "
                "store the rest"
            )
        return StoreWriteError(
            f"cannot write unit {unit.key!r} to {where}: {err}; the units stored before it are "
            "intact: run again to store the rest"
        )

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
        with self._reading():
            return self._records(where, args)

    def _records(self, where: list[str], args: list[Any]) -> list[dict[str, Any]]:
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
                values = row[len(KEY_COLUMNS) :]
                for column, value in zip(columns, values, strict=True):
                    if not _stored_ok(column, value):
                        raise self._damaged(
                            f"unit {record['unit_key']!r} row {record['row']}: field "
                            f"{column.name!r} holds {type(value).__name__} {value!r:.40}"
                        )
                record.update(from_stored(columns, values))
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


def _read_uri(path: Path) -> str:
    """The URI a reader opens ``path`` with, writing nothing where it may not write.

    A reader opens read-write when it may (it never writes): the last connection to close then
    removes the WAL files, which a read-only connection cannot do. An archived store (file or
    folder not writable) is opened immutable, since SQLite could not create its shared-memory
    file; only an unfinished write-ahead log beside it needs a plain read-only connection.
    """
    uri = path.resolve().as_uri()
    if os.access(path, os.W_OK) and os.access(path.resolve().parent, os.W_OK):
        return f"{uri}?mode=rw"
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        return f"{uri}?mode=ro"
    return f"{uri}?mode=ro&immutable=1"


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already done so (e.g. disk full)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
