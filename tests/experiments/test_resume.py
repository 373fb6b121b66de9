"""A run killed with SIGKILL at several points resumes to the uninterrupted run's table.

A real subprocess runs the synthetic experiment (slow units); the test kills it once right
after the first stored unit and once in the middle of the third unit's computation, then
finishes the run and compares every row with an uninterrupted run, bitwise.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from robustlaw.experiments import Store, load, run, settings_hash

N_UNITS = 4
SLEEP_S = 0.3
SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    import synthetic_experiment as s
    from robustlaw.experiments import register, run
    register(s.EXPERIMENT)
    run("synthetic", settings=s.SyntheticSettings(n_units={n}, sleep_s={sleep}),
        store={store!r}, device="cpu", progress=False)
    """
)
VOLATILE = ("wall_time_s",)


def _stored(path, key):
    if not path.exists():
        return 0
    try:
        with Store(path, readonly=True) as db:
            return len(db.done_units("synthetic", key, __import__("robustlaw").__version__))
    except ValueError:  # the schema is not written yet
        return 0


def _kill_when(path, key, n_done, extra_s=0.0):
    """Start a run, SIGKILL it once ``n_done`` units are stored (plus ``extra_s``)."""
    here = os.path.dirname(__file__)
    code = SCRIPT.format(here=here, n=N_UNITS, sleep=SLEEP_S, store=str(path))
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _stored(path, key) < n_done:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)
    time.sleep(extra_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return _stored(path, key)


def _table(rows):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


@pytest.mark.timeout(120)
def test_sigkill_then_resume_equals_uninterrupted_run(synthetic, tmp_path):
    settings = synthetic.SyntheticSettings(n_units=N_UNITS, sleep_s=SLEEP_S)
    key = settings_hash("synthetic", settings)
    path = tmp_path / "killed.sqlite"
    assert _kill_when(path, key, 1) == 1
    # Killed after the second unit, in the middle of the third (half-way through its sleep).
    assert _kill_when(path, key, 2, extra_s=SLEEP_S / 2) == 2
    resumed = run("synthetic", settings=settings, store=path, device="cpu", progress=False)
    assert (resumed.n_skipped, resumed.n_run) == (2, N_UNITS - 2)

    clean = tmp_path / "clean.sqlite"
    run("synthetic", settings=settings, store=clean, device="cpu", progress=False)
    got = load(path, "synthetic", as_frame=False)
    want = load(clean, "synthetic", as_frame=False)
    assert len(got) == 2 * N_UNITS
    assert _table(got) == _table(want)
    assert len({(r["unit_key"], r["row"]) for r in got}) == len(got)
