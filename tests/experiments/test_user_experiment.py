"""The user-defined experiment of the docs ("Writing your own experiment"), run as a user would.

The file ``docs/examples/spectral_growth.py`` is loaded from outside the package, registered,
run in a subprocess that is killed after its first stored unit, resumed, and compared with an
uninterrupted run; then loaded, exported and drawn. Its values are checked against an
independent computation and against the Bai–Yin limit.
"""

import csv
import dataclasses
import importlib.util
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from robustlaw.errors import ValidationError
from robustlaw.experiments import (
    EXPERIMENTS,
    KEY_COLUMNS,
    Store,
    draw_figures,
    export,
    load,
    run,
    settings_hash,
)

EXAMPLE = pathlib.Path(__file__).parents[2] / "docs" / "examples" / "spectral_growth.py"
SLOW_SIZES = tuple(range(100, 400, 10))  # 30 units of about 0.1 s each (one draw per seed)


@pytest.fixture
def growth(monkeypatch):
    """The docs' example, imported from its file (it registers itself); unregistered after."""
    monkeypatch.delitem(EXPERIMENTS, "spectral-growth", raising=False)
    spec = importlib.util.spec_from_file_location("spectral_growth", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "spectral_growth", module)
    spec.loader.exec_module(module)
    yield module
    EXPERIMENTS.pop("spectral-growth", None)


def _stored_units(path, key):
    try:
        with Store(path, readonly=True) as db:
            return len(db.done_units("spectral-growth", key, __import__("robustlaw").__version__))
    except ValueError:  # not created yet
        return 0


def _stable(rows):
    """Rows without the one volatile column, the unit's wall time."""
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]


def _run_and_kill_after_first_unit(path, key):
    code = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("spectral_growth", {str(EXAMPLE)!r})
        module = sys.modules["spectral_growth"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        from robustlaw.experiments import run
        run("spectral-growth", settings=module.Settings(sizes={SLOW_SIZES!r}, draws=1),
            store={str(path)!r}, device="cpu", progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _stored_units(path, key) < 1:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the run stored nothing"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    return _stored_units(path, key)


@pytest.mark.timeout(300)
def test_user_experiment_runs_resumes_after_kill_and_exports(growth, tmp_path):
    settings = growth.Settings(sizes=SLOW_SIZES, draws=1)
    key = settings_hash("spectral-growth", settings)
    killed = tmp_path / "killed.sqlite"
    stored = _run_and_kill_after_first_unit(killed, key)
    assert 1 <= stored < len(SLOW_SIZES)  # killed part-way
    resumed = run("spectral-growth", settings=settings, store=killed, device="cpu")
    assert (resumed.n_skipped, resumed.n_run) == (stored, len(SLOW_SIZES) - stored)

    clean = tmp_path / "clean.sqlite"
    run("spectral-growth", settings=settings, store=clean, device="cpu")
    got, want = (_stable(load(p, "spectral-growth", as_frame=False)) for p in (killed, clean))
    assert got == want
    assert len(got) == len(SLOW_SIZES) * len(settings.seeds)  # nothing lost or duplicated
    assert len({(r["unit_key"], r["row"]) for r in got}) == len(got)


def test_user_experiment_values_columns_export_and_figure(growth, tmp_path):
    path = tmp_path / "growth.sqlite"
    summary = run("spectral-growth", preset="tiny", store=path, device="cpu")
    assert summary.n_run == 3
    rows = load(path, "spectral-growth", as_frame=False)
    assert list(rows[0]) == [*KEY_COLUMNS, "size", "seed", "sigma_max", "prediction"]
    for r in rows:  # an independent computation of the same seeded draws
        rng = np.random.default_rng([r["seed"], r["size"]])
        mats = [rng.standard_normal((r["size"],) * 2) for _ in range(4)]
        expected = np.mean([np.linalg.svd(a, compute_uv=False)[0] for a in mats])
        assert r["sigma_max"] == pytest.approx(expected, rel=1e-12)
        assert type(r["size"]) is int
        assert type(r["sigma_max"]) is float
    big = [r["sigma_max"] / r["prediction"] for r in rows if r["size"] == 256]
    assert all(0.9 < ratio < 1.02 for ratio in big)  # Bai-Yin: sigma_max -> 2 sqrt(m)

    (csv_path, *_) = export(path, "spectral-growth", tmp_path / "out")
    with open(csv_path, newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert [float(e["sigma_max"]) for e in exported] == [r["sigma_max"] for r in rows]

    figures = draw_figures(path, "spectral-growth", tmp_path / "figures")
    names = sorted(p.name for p in figures)
    assert names == ["spectral-growth-growth.pdf", "spectral-growth-growth.png"]
    assert figures[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_records_are_refused_before_anything_is_written(growth, tmp_path):
    def measure_nan(settings, unit, *, device, progress):
        size = unit.params["size"]
        return [growth.Record(size=size, seed=0, sigma_max=float("nan"), prediction=1.0)]

    def measure_wrong_type(settings, unit, *, device, progress):
        return [growth.Record(size="16", seed=0, sigma_max=1.0, prediction=1.0)]

    path = tmp_path / "bad.sqlite"
    cases = ((measure_nan, "'sigma_max' is NaN"), (measure_wrong_type, "'size' must be int"))
    for measure, message in cases:
        broken = dataclasses.replace(growth.EXPERIMENT, measure=measure)
        EXPERIMENTS["spectral-growth"] = broken  # the fixture unregisters it
        with pytest.raises(ValidationError, match=message):
            run("spectral-growth", preset="tiny", store=path, device="cpu")
        with Store(path, readonly=True) as db:
            assert db.experiments() == ()  # the unit was not written, not even in part
