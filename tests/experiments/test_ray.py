"""The Ray executor on a local Ray runtime gives the local executor's table."""

import pytest

from robustlaw.experiments import load, run

ray = pytest.importorskip("ray")
VOLATILE = ("wall_time_s",)


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray runtime for the module (it takes seconds to start)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _table(rows):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


@pytest.mark.timeout(300)
def test_tiny_preset_on_ray_equals_local(ray_runtime, tmp_path):
    kw = {"store": None, "device": "cpu", "progress": False}
    local = run("lor-scaling", "tiny", **{**kw, "store": tmp_path / "local.sqlite"})
    remote = run(
        "lor-scaling", "tiny", **{**kw, "store": tmp_path / "ray.sqlite"}, executor="ray"
    )
    assert remote.executor == "ray" and remote.n_run == local.n_run == local.n_units
    got = load(tmp_path / "ray.sqlite", "lor-scaling", as_frame=False)
    want = load(tmp_path / "local.sqlite", "lor-scaling", as_frame=False)
    assert _table(got) == _table(want)
    assert ray.is_initialized()  # the executor leaves a runtime it did not start alone
