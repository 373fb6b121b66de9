"""Faults of the store: damaged, foreign and read-only files, a full disk, two writers, and
result sets that need choosing. Each fault gives one clear error and loses no finished unit."""

import dataclasses
import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import robustlaw
from robustlaw.errors import RobustlawError, ValidationError
from robustlaw.experiments import (
    AmbiguousResultsError,
    DamagedStoreError,
    NotAStoreError,
    Store,
    StoreWriteError,
    completeness,
    draw_figures,
    export,
    load,
    run,
    settings_hash,
)
from robustlaw.experiments import store as store_module


def _run(synthetic, path, **settings):
    options = {"store": path, "device": "cpu", "progress": False}
    return run("synthetic", settings=synthetic.SyntheticSettings(**settings), **options)


def _expected_rows(synthetic, settings, keys=None):
    """Fresh measurements of the units (all, or those in ``keys``), as dicts."""
    return [
        dataclasses.asdict(record)
        for unit in synthetic.expand(settings)
        if keys is None or unit.key in keys
        for record in synthetic.measure(settings, unit, device="cpu", progress=False)
    ]


def _fields(rows, synthetic):
    names = [f.name for f in dataclasses.fields(synthetic.SyntheticRecord)]
    return [{k: r[k] for k in names} for r in rows]


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record_table_page(path):
    """The first page of the records table, and the page size."""
    with sqlite3.connect(path) as conn:
        page = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name LIKE 'records_%'"
        ).fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    return page, size


# --- damaged files --------------------------------------------------------------------------


def _assert_refused_as_damaged(synthetic, path, tmp_path):
    for call in (
        lambda: _run(synthetic, path, n_units=3),
        lambda: load(path, "synthetic"),
        lambda: export(path, "synthetic", tmp_path / "csv"),
        lambda: draw_figures(path, "synthetic", tmp_path / "figs"),
    ):
        with pytest.raises(DamagedStoreError, match=r"is damaged \(.*\.recover") as info:
            call()
        assert "\n" not in str(info.value)
    assert not (tmp_path / "csv").exists()


def test_truncated_store_is_refused_and_recovers(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    _run(synthetic, path, n_units=3)
    _, page_size = _record_table_page(path)
    os.truncate(path, path.stat().st_size - page_size // 2)  # the last page half written
    _assert_refused_as_damaged(synthetic, path, tmp_path)
    # The advice in the message works: the recovered file is a store, and a run into it
    # recomputes whatever the damage lost.
    recovered = tmp_path / "recovered.sqlite"
    if shutil.which("sqlite3") is None:
        pytest.skip("no sqlite3 command")
    subprocess.run(f'sqlite3 "{path}" ".recover" | sqlite3 "{recovered}"', shell=True, check=True)
    _run(synthetic, recovered, n_units=3)
    settings = synthetic.SyntheticSettings(n_units=3)
    assert completeness(recovered, "synthetic")[1] == 3
    rows = load(recovered, "synthetic", as_frame=False)
    # Units whose rows the damage cut off lost rows; every row that is there is exact.
    assert all(row in _expected_rows(synthetic, settings) for row in _fields(rows, synthetic))


def test_garbage_in_a_page_is_refused(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    _run(synthetic, path, n_units=3)
    page, size = _record_table_page(path)
    with open(path, "r+b") as fh:
        fh.seek(page * size - 400)
        fh.write(bytes((7 * i + 13) % 256 for i in range(300)))
    _assert_refused_as_damaged(synthetic, path, tmp_path)


def test_a_value_of_the_wrong_type_is_refused_on_reading(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    _run(synthetic, path, n_units=2)
    page, _ = _record_table_page(path)
    with sqlite3.connect(path) as conn:
        table = conn.execute("SELECT name FROM sqlite_master WHERE rootpage = ?", (page,))
        conn.execute(f"UPDATE \"{table.fetchone()[0]}\" SET spectral = 'x' WHERE row = 1")
    conn.close()
    with pytest.raises(DamagedStoreError, match="field 'spectral' holds str 'x'"):
        load(path, "synthetic")


def test_missing_table_or_column_is_refused(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    _run(synthetic, path, n_units=1)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE units DROP COLUMN wall_time_s")
    conn.close()
    with pytest.raises(DamagedStoreError, match="table 'units' lacks the columns wall_time_s"):
        load(path, "synthetic")


# --- files that are not stores --------------------------------------------------------------


def test_foreign_sqlite_file_is_refused_untouched(synthetic, tmp_path, monkeypatch):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE units (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO units VALUES (1, 'mine')")
    conn.close()
    before = _digest(path)
    measured = []
    counting = dataclasses.replace(
        synthetic.EXPERIMENT, measure=lambda *a, **k: measured.append(a) or []
    )
    monkeypatch.setitem(robustlaw.experiments.EXPERIMENTS, "synthetic", counting)
    with pytest.raises(NotAStoreError, match="not a robustlaw store.*tables: units"):
        _run(synthetic, path, n_units=2)
    with pytest.raises(NotAStoreError):
        load(path, "synthetic")
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]
    assert measured == []


def test_non_sqlite_file_is_refused_untouched(synthetic, tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("a,b\n1,2\n" * 100)
    before = _digest(path)
    with pytest.raises(NotAStoreError, match="not a SQLite database"):
        _run(synthetic, path, n_units=1)
    with pytest.raises(NotAStoreError, match="not a SQLite database"):
        load(path, "synthetic")
    assert _digest(path) == before


def test_empty_file_becomes_a_store(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    path.touch()
    with pytest.raises(ValidationError, match="is empty"):
        load(path, "synthetic")
    assert _run(synthetic, path, n_units=2).n_run == 2
    assert len(load(path, "synthetic", as_frame=False)) == 4


# --- disk full ------------------------------------------------------------------------------


def test_full_disk_is_one_error_and_keeps_every_stored_unit(synthetic, tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite"
    connect = sqlite3.connect

    def small_disk(*args, **kwargs):  # SQLite reports SQLITE_FULL past this many pages
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA max_page_count = 10")
        return conn

    with monkeypatch.context() as m:
        m.setattr(store_module.sqlite3, "connect", small_disk)
        with pytest.raises(StoreWriteError, match="is full.*run again") as info:
            _run(synthetic, path, n_units=40)
    err = info.value
    assert isinstance(err, RobustlawError)
    assert not isinstance(err, ValueError)
    assert err.__cause__ is None  # no chained traceback
    assert err.__suppress_context__
    settings = synthetic.SyntheticSettings(n_units=40)
    key = settings_hash("synthetic", settings)
    with Store(path, readonly=True) as db:
        stored = db.done_units("synthetic", key, robustlaw.__version__)
    assert 0 < len(stored) < 40
    rows = load(path, "synthetic", as_frame=False)
    assert _fields(rows, synthetic) == _expected_rows(synthetic, settings, stored)
    assert completeness(path, "synthetic") == (len(stored), 40)
    again = _run(synthetic, path, n_units=40)
    assert (again.n_skipped, again.n_run) == (len(stored), 40 - len(stored))
    assert _fields(load(path, "synthetic", as_frame=False), synthetic) == _expected_rows(
        synthetic, settings
    )


def test_full_disk_from_the_cli_is_one_line_and_exit_1(synthetic, tmp_path, monkeypatch, capsys):
    from robustlaw.cli import main

    connect = sqlite3.connect

    def small_disk(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA max_page_count = 10")
        return conn

    monkeypatch.setitem(
        synthetic.EXPERIMENT.presets, "tiny", synthetic.SyntheticSettings(n_units=40)
    )  # a preset big enough to fill ten pages
    monkeypatch.setattr(store_module.sqlite3, "connect", small_disk)
    assert main(["run", "synthetic", "--preset", "tiny", "--store", str(tmp_path / "r.db")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "is full" in err[0]


# --- read-only archives ---------------------------------------------------------------------


def _assert_readable_without_writing(synthetic, path, out):
    folder = sorted(p.name for p in path.parent.iterdir())
    assert len(load(path, "synthetic", as_frame=False)) == 4
    assert [p.name for p in export(path, "synthetic", out)][0] == "synthetic.csv"
    assert draw_figures(path, "synthetic", out) == []  # the synthetic experiment draws none
    assert completeness(path, "synthetic") == (2, 2)
    assert sorted(p.name for p in path.parent.iterdir()) == folder


def test_unwritable_store_is_read_immutable(synthetic, tmp_path, monkeypatch):
    path = tmp_path / "archive" / "r.sqlite"
    path.parent.mkdir()
    _run(synthetic, path, n_units=2)
    monkeypatch.setattr(store_module.os, "access", lambda p, mode: mode != os.W_OK)
    assert store_module._read_uri(path).endswith("?mode=ro&immutable=1")
    _assert_readable_without_writing(synthetic, path, tmp_path / "out")
    with pytest.raises(ValidationError, match="is not writable"):
        _run(synthetic, path, n_units=2)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_folder_can_be_exported_and_drawn(synthetic, tmp_path):
    path = tmp_path / "archive" / "r.sqlite"
    path.parent.mkdir()
    _run(synthetic, path, n_units=2)
    path.chmod(0o444)
    path.parent.chmod(0o555)
    try:
        _assert_readable_without_writing(synthetic, path, tmp_path / "out")
    finally:
        path.parent.chmod(0o755)


# --- choosing a result set ------------------------------------------------------------------


def test_old_version_is_loaded_when_asked(synthetic, tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite"
    with monkeypatch.context() as m:
        m.setattr(robustlaw, "__version__", "0.0.0-old")
        _run(synthetic, path, n_units=2)
    key = settings_hash("synthetic", synthetic.SyntheticSettings(n_units=2))
    with pytest.raises(AmbiguousResultsError, match="package_version='0.0.0-old'") as info:
        load(path, "synthetic")
    err = info.value
    assert err.choices[0]["select"] == {"package_version": "0.0.0-old"}
    assert f"for robustlaw {robustlaw.__version__} (this version)" in str(err)
    assert (
        "choose one: --package-version 0.0.0-old (robustlaw 0.0.0-old, 2 units); or load "
        "every row with --all" in err.message(cli=True)
    )
    for rows in (
        load(path, "synthetic", package_version="0.0.0-old", as_frame=False),
        load(path, "synthetic", settings_hash=key, as_frame=False),
    ):
        assert {r["package_version"] for r in rows} == {"0.0.0-old"}
        assert len(rows) == 4
    with pytest.raises(AmbiguousResultsError) as info:
        draw_figures(path, "synthetic", tmp_path / "figs")
    assert "--all" not in info.value.message(cli=True)
    assert "include_all" not in str(info.value)
    assert draw_figures(path, "synthetic", tmp_path / "figs", package_version="0.0.0-old") == []
    export(path, "synthetic", tmp_path / "csv", package_version="0.0.0-old")
    assert (tmp_path / "csv" / "synthetic.csv").is_file()


def test_every_suggested_selection_picks_its_result_set(synthetic, tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite"
    with monkeypatch.context() as m:
        m.setattr(robustlaw, "__version__", "0.0.0-old")
        _run(synthetic, path, n_units=2)
        _run(synthetic, path, n_units=1)
    _run(synthetic, path, n_units=2)
    _run(synthetic, path, n_units=3)
    with pytest.raises(AmbiguousResultsError, match="2 matching result sets") as info:
        load(path, "synthetic")
    assert len(info.value.groups) == 4
    with pytest.raises(
        AmbiguousResultsError,
        match="has no results of .synthetic. for settings_hash=.0000000000000000.; choose one",
    ) as info:
        load(path, "synthetic", settings_hash="0" * 16)
    choices = info.value.choices
    assert len(choices) == 4
    for choice in choices:
        rows = load(path, "synthetic", **choice["select"], as_frame=False)
        assert {(r["settings_hash"], r["package_version"]) for r in rows} == {
            (choice["settings_hash"], choice["package_version"])
        }
    with pytest.raises(ValidationError, match="preset or settings_hash, not both"):
        load(path, "synthetic", preset="tiny", settings_hash="0" * 16)


# --- partial stores -------------------------------------------------------------------------


def test_partial_store_is_reported(synthetic, tmp_path, caplog, monkeypatch):
    path = tmp_path / "r.sqlite"
    _run(synthetic, path, n_units=5)
    with sqlite3.connect(path) as conn:  # as if the run had stopped after three units
        conn.execute("DELETE FROM units WHERE unit_index >= 3")
    conn.close()
    assert completeness(path, "synthetic") == (3, 5)
    with caplog.at_level(logging.WARNING, logger="robustlaw.experiments.api"):
        assert len(load(path, "synthetic", as_frame=False)) == 6
        export(path, "synthetic", tmp_path / "csv")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "holds 3 of the 5 units of 'synthetic'" in warnings[0]
    # Settings that cannot be rebuilt (the experiment is not registered) are not checked.
    monkeypatch.delitem(robustlaw.experiments.EXPERIMENTS, "synthetic")
    assert completeness(path, "synthetic") == (3, None)


# --- two writers ----------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    import synthetic_experiment as s
    from robustlaw.experiments import register, run
    register(s.EXPERIMENT)
    run("synthetic", settings=s.SyntheticSettings(n_units=6, sleep_s=0.05),
        store={store!r}, device="cpu", progress=False, threads=1)
    """
)


def test_two_writers_store_every_unit_once(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    code = WRITER.format(here=os.path.dirname(__file__), store=str(path))
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    settings = synthetic.SyntheticSettings(n_units=6, sleep_s=0.05)
    with sqlite3.connect(path) as conn:
        counts = conn.execute("SELECT COUNT(*), COUNT(DISTINCT unit_key) FROM units").fetchone()
    conn.close()
    assert counts == (6, 6)
    rows = load(path, "synthetic", as_frame=False)
    assert _fields(rows, synthetic) == _expected_rows(synthetic, settings)
