"""CLI: run, experiments, export, figure; every bad input is one line and exit code 2."""

import csv
import re

import pytest

from robustlaw.cli import main
from robustlaw.experiments import load


def _err_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_run_then_rerun_resumes(synthetic, tmp_path, capsys):
    store = str(tmp_path / "r.sqlite")
    assert main(["run", "synthetic", "--preset", "tiny", "--store", store, "--device", "cpu"]) == 0
    assert "3 units run, 0 already stored" in capsys.readouterr().out
    assert main(["run", "synthetic", "--preset", "tiny", "--store", store]) == 0
    assert "0 units run, 3 already stored" in capsys.readouterr().out


def test_experiments_lists_presets(synthetic, capsys):
    assert main(["experiments"]) == 0
    out = capsys.readouterr().out
    assert "lor-scaling:" in out
    assert "synthetic:" in out
    assert "--preset tiny" in out
    assert "--preset paper" in out
    assert "  --preset default  5 work units" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "nope"],
            "unknown experiment 'nope'; valid names: lor-scaling, mtm-ablations, "
            "nfp-mask-information, nfp-memorization, nfp-memorization-images, "
            "nfp-noise-correlation, random-pruning-generalization, synthetic",
        ),
        (["run", "synthetic", "--preset", "huge"], "valid names: default, paper, tiny"),
        (["run", "synthetic", "--executor", "dask"], "valid names: local, ray"),
        (
            ["run", "synthetic", "--device", "tpu"],
            "device must be 'auto', 'cpu' or 'cuda[:i]', got 'tpu'",
        ),
        (["run", "synthetic", "--address", "x:1"], "only used by executor 'ray'"),
        (["export", "synthetic", "--store", "/nonexistent/r.sqlite"], "does not exist"),
        (["export", "synthetic", "--store", "/"], "--store '/' is a folder; expected a SQLite"),
        (["figure", "synthetic", "--store", "/"], "--store '/' is a folder; expected a SQLite"),
        (
            ["export", "synthetic", "--preset", "tiny", "--settings-hash", "0"],
            "pass --preset or --settings-hash, not both",
        ),
        (["figure", "nope", "--store", "x", "--out", "y"], "unknown experiment"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(synthetic, argv, message, capsys):
    assert main(argv) == 2
    assert message in _err_line(capsys)


def test_unwritable_store_and_missing_gpu(synthetic, tmp_path, capsys, monkeypatch):
    assert main(["run", "synthetic", "--store", str(tmp_path / "no" / "r.sqlite")]) == 2
    assert "does not exist" in _err_line(capsys)
    assert main(["run", "synthetic", "--store", str(tmp_path)]) == 2
    assert "is a folder" in _err_line(capsys)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["run", "synthetic", "--device", "cuda", "--store", str(tmp_path / "r")]) == 2
    assert "no CUDA GPU is available" in _err_line(capsys)


def test_export_csv_round_trips(synthetic, tmp_path, capsys):
    store = str(tmp_path / "r.sqlite")
    main(["run", "synthetic", "--preset", "tiny", "--store", store])
    capsys.readouterr()
    assert main(["export", "synthetic", "--store", store, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[0].endswith("synthetic.csv")
    with open(printed[0], newline="") as fh:
        exported = list(csv.DictReader(fh))
    rows = load(store, "synthetic", as_frame=False)
    assert len(exported) == len(rows) == 6
    for got, want in zip(exported, rows, strict=True):
        assert float(got["spectral"]) == want["spectral"]  # repr precision: bitwise
        assert got["method"] == want["method"]
        assert int(got["seed"]) == want["seed"]
        assert got["note"] == ""
        assert got["positive"] == str(want["positive"])


def test_export_parquet_round_trips(synthetic, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    store = str(tmp_path / "r.sqlite")
    main(["run", "synthetic", "--preset", "tiny", "--store", store])
    capsys.readouterr()
    assert main(["export", "synthetic", "--store", store, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[-1].endswith("synthetic.parquet")
    exported = pq.read_table(printed[-1]).to_pylist()
    assert exported == load(store, "synthetic", as_frame=False)


def test_run_help_shows_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = {
        "--preset": "default",
        "--store": "results.sqlite",
        "--device": "auto",
        "--executor": "local",
        "--address": "local Ray",
        "--threads": "the idle cores when the run starts, locally; 1 per Ray task",
    }
    for option, default in defaults.items():
        assert re.search(rf"{option} \S+ [^-]*\(default: {re.escape(default)}\)", text), option


def test_figure_and_export_default_to_the_store_run_writes(synthetic, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "synthetic", "--preset", "tiny"]) == 0
    assert main(["figure", "synthetic"]) == 0
    assert main(["export", "synthetic", "--out", "new/folder"]) == 0
    assert (tmp_path / "new" / "folder" / "synthetic.csv").is_file()


def test_several_result_sets_get_advice_in_options(synthetic, tmp_path, capsys):
    import robustlaw

    store = str(tmp_path / "r.sqlite")
    for preset in ("tiny", "default"):
        assert main(["run", "synthetic", "--preset", preset, "--store", store]) == 0
    capsys.readouterr()
    assert main(["export", "synthetic", "--store", store, "--out", str(tmp_path)]) == 2
    line = _err_line(capsys)
    assert "holds 2 matching result sets" in line
    assert "--settings-hash " in line
    assert "--all" in line
    assert not re.search(r"settings_hash=|include_all|preset=", line), line
    assert main(["figure", "synthetic", "--store", store, "--out", str(tmp_path)]) == 2
    line = _err_line(capsys)
    assert "--settings-hash " in line
    assert "--all" not in line  # figures draw one result set
    version = ["--package-version", robustlaw.__version__]
    argv = ["export", "synthetic", "--store", store, "--preset", "tiny", *version]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert main([*argv[:-1], "0.0.0", "--out", str(tmp_path)]) == 2
    assert "--package-version 0.0.0" in _err_line(capsys)


def test_run_uses_the_idle_cores_unless_told(synthetic, tmp_path, monkeypatch):
    from robustlaw.experiments import api
    from robustlaw.experiments.executors import EXECUTORS, run_local

    monkeypatch.setattr(api, "idle_cores", lambda: 3)  # what the machine left idle

    seen = []

    def spy(experiment, settings, units, options):
        seen.append(options.threads)
        return run_local(experiment, settings, units, options)

    monkeypatch.setitem(EXECUTORS, "local", spy)
    store = str(tmp_path / "r.sqlite")
    assert main(["run", "synthetic", "--preset", "tiny", "--store", store]) == 0
    assert (
        main(["run", "synthetic", "--preset", "default", "--store", store, "--threads", "2"]) == 0
    )
    assert seen == [3, 2]


@pytest.mark.parametrize(
    ("cores", "idle_ticks", "expected"),
    [(2, 200, 2), (2, 0, 1), (4, 100, 2), (2, 50, 1), (8, 200, 8)],
)
def test_idle_cores_reads_the_kernel_counters(monkeypatch, cores, idle_ticks, expected):
    """Over the interval 200 ticks pass on all cores together, ``idle_ticks`` of them idle."""
    import io

    from robustlaw.experiments import executors

    lines = iter(
        [
            "cpu  100 0 100 800 0 0 0 0 0 0\n",
            f"cpu  {300 - idle_ticks} 0 100 {800 + idle_ticks} 0 0 0 0 0 0\n",
        ]
    )
    monkeypatch.setattr(executors, "open", lambda *a, **k: io.StringIO(next(lines)), raising=False)
    monkeypatch.setattr(executors.os, "cpu_count", lambda: cores)
    assert executors.idle_cores(interval_s=0.0) == expected


def test_idle_cores_is_one_where_the_counters_are_missing(monkeypatch):
    from robustlaw.experiments import executors

    def missing(*args, **kwargs):
        raise FileNotFoundError("/proc/stat")

    monkeypatch.setattr(executors, "open", missing, raising=False)
    assert executors.idle_cores(interval_s=0.0) == 1
