"""The store and the run/load API on the synthetic experiment."""

import dataclasses
import sqlite3

import pytest

import robustlaw
from robustlaw.errors import ValidationError
from robustlaw.experiments import SCHEMA_VERSION, Store, load, run, settings_hash


def _run(synthetic, path, **settings):
    return run(
        "synthetic",
        settings=synthetic.SyntheticSettings(**settings),
        store=path,
        device="cpu",
        progress=False,
    )


def test_run_stores_every_member_once_and_loads_back(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    summary = _run(synthetic, path, n_units=3)
    assert (summary.n_units, summary.n_run, summary.n_skipped) == (3, 3, 0)
    rows = load(path, "synthetic", as_frame=False)
    assert len(rows) == 6
    assert [(r["unit_index"], r["row"]) for r in rows] == [(i, j) for i in range(3) for j in (0, 1)]
    # Each stored value equals a fresh, independent computation of the same unit, with its type.
    settings = synthetic.SyntheticSettings(n_units=3)
    expected = [
        record
        for u in synthetic.expand(settings)
        for record in synthetic.measure(settings, u, device="cpu", progress=False)
    ]
    for row, record in zip(rows, expected, strict=True):
        for key, value in dataclasses.asdict(record).items():
            assert row[key] == value
            assert type(row[key]) is type(value)
        assert row["package_version"] == robustlaw.__version__
        assert row["device"] == "cpu"
        assert row["wall_time_s"] >= 0


def test_second_run_skips_everything(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    _run(synthetic, path, n_units=2)
    again = _run(synthetic, path, n_units=2)
    assert (again.n_run, again.n_skipped) == (0, 2)
    assert len(load(path, "synthetic", as_frame=False)) == 4


def test_store_is_wal_and_versioned(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    _run(synthetic, path, n_units=1)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
    conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(ValidationError, match="schema version 999"):
        Store(path)


def test_different_settings_are_never_mixed(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    _run(synthetic, path, n_units=2)
    _run(synthetic, path, n_units=2, size=4)
    with pytest.raises(ValidationError, match="2 matching result sets"):
        load(path, "synthetic")
    key = settings_hash("synthetic", synthetic.SyntheticSettings(n_units=2, size=4))
    picked = load(path, "synthetic", settings_hash=key, as_frame=False)
    assert {r["settings_hash"] for r in picked} == {key}
    assert len(picked) == 4
    assert len(load(path, "synthetic", include_all=True, as_frame=False)) == 8


def test_other_package_version_is_not_loaded_silently(synthetic, tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite"
    with monkeypatch.context() as m:
        m.setattr(robustlaw, "__version__", "0.0.0-old")
        _run(synthetic, path, n_units=1)
    with pytest.raises(ValidationError, match="package_version='0.0.0-old'"):
        load(path, "synthetic")
    rows = load(path, "synthetic", include_all=True, as_frame=False)
    assert {r["package_version"] for r in rows} == {"0.0.0-old"}
    # A run under the current version recomputes instead of reusing the old rows.
    assert _run(synthetic, path, n_units=1).n_run == 1


def test_load_errors_are_clear(synthetic, tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        load(tmp_path / "missing.sqlite", "synthetic")
    path = tmp_path / "r.sqlite"
    _run(synthetic, path, n_units=1)
    with pytest.raises(ValidationError, match="no results of 'other'.*synthetic"):
        load(path, "other")


def test_frame_round_trip(synthetic, tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "r.sqlite"
    _run(synthetic, path, n_units=2)
    rows = load(path, "synthetic", as_frame=False)
    frame = load(path, "synthetic")
    assert isinstance(frame, pd.DataFrame)
    assert frame["spectral"].tolist() == [r["spectral"] for r in rows]
    assert list(frame.columns)[: len(rows[0])] == list(rows[0])


def test_unwritable_store_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        Store(tmp_path / "no" / "such" / "r.sqlite")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="does not exist"):
        Store(tmp_path / "file" / "r.sqlite")
    with pytest.raises(ValidationError, match="is a folder"):
        Store(tmp_path)


def test_duplicate_unit_write_is_ignored(synthetic, tmp_path):
    path = tmp_path / "r.sqlite"
    settings = synthetic.SyntheticSettings(n_units=1)
    unit = synthetic.expand(settings)[0]
    records = synthetic.measure(settings, unit, device="cpu", progress=False)
    prov = {
        "package_version": "v",
        "git_revision": None,
        "torch_version": "t",
        "device": "cpu",
        "wall_time_s": 0.0,
    }
    with Store(path) as store:
        args = {
            "experiment": synthetic.EXPERIMENT,
            "settings_hash": "h",
            "settings_json": "{}",
            "unit": unit,
            "records": records,
            "provenance": prov,
        }
        assert store.write_unit(**args) is True
        assert store.write_unit(**args) is False
        assert len(store.records("synthetic")) == 2


def test_atomic_write_leaves_old_file_or_new_one(tmp_path):
    from robustlaw.io import atomic_write

    target = tmp_path / "fig.png"
    target.write_bytes(b"old")

    def crash(path):
        path.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]
    atomic_write(target, lambda p: p.write_bytes(b"new"))
    assert target.read_bytes() == b"new"
    assert len(list(tmp_path.iterdir())) == 1
