"""The ``robustlaw bound`` and ``robustlaw demo`` commands: output and exit codes."""

import json

import pytest

from robustlaw import bounds as rb
from robustlaw.cli import main

BASE = ["bound", "--n", "60000", "--d", "784", "--eps", "0.8", "--delta", "0.1"]
DENSE = [*BASE, "--p", "1e6", "--W", "10", "--J", "10"]


def _json(capsys, argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_bound_text_prints_value_inputs_and_checks(capsys):
    assert main(DENSE) == 0
    out = capsys.readouterr().out
    value = rb.lipschitz_lower_bound(n=6e4, d=784, p=1e6, eps=0.8, delta=0.1, W=10, J=10)
    assert f"L = {value:.6g}" in out
    assert "Bubeck-Sellke Theorem 3" in out
    assert "--p                  1e+06" in out
    assert "[ok  ] k-condition" in out


def test_bound_json(capsys):
    result = _json(capsys, DENSE)
    assert result["value"] == rb.lipschitz_lower_bound(
        n=6e4, d=784, p=1e6, eps=0.8, delta=0.1, W=10, J=10
    )
    assert result["inputs"]["p"] == 1e6
    assert all(c["holds"] for c in result["assumptions"])


def test_p_eff_selects_the_sparse_theorem(capsys):
    result = _json(capsys, [*BASE, "--p-eff", "1e5"])
    assert result["theorem"] == "No Free Prune Theorem 4"
    assert result["value"] == rb.sparse_lipschitz_lower_bound(
        n=6e4, d=784, p_eff=1e5, eps=0.8, delta=0.1
    )


@pytest.mark.parametrize(
    ("extra", "quantity", "function", "kwargs"),
    [
        (
            ["--solve", "p", "--W", "10", "--J", "10"],
            "p",
            rb.required_parameter_count,
            dict(n=6e4, W=10, J=10),
        ),
        (["--solve", "p-eff"], "p_eff", rb.required_effective_parameter_count, dict(n=6e4)),
    ],
)
def test_solve(capsys, extra, quantity, function, kwargs):
    result = _json(capsys, [*BASE, "--lipschitz", "0.01", *extra])
    assert result["quantity"] == quantity
    assert result["value"] == function(L=0.01, d=784, eps=0.8, delta=0.1, **kwargs)


def test_solve_n(capsys):
    argv = ["bound", "--d", "784", "--eps", "0.8", "--delta", "0.1", "--p", "1e6"]
    result = _json(capsys, [*argv, "--W", "10", "--J", "10", "--solve", "n", "--lipschitz", "1"])
    expected = rb.max_robust_samples(L=1, d=784, p=1e6, eps=0.8, delta=0.1, W=10, J=10)
    assert result["value"] == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*DENSE[:-2]], "--J"),  # missing
        ([*DENSE, "--eps", "1.5"], "eps must"),
        ([*DENSE, "--n", "nan"], "n must"),
        ([*DENSE, "--n", "1000"], "k-condition fails"),
        ([*DENSE, "--n", "1000"], "pass --no-check-assumptions"),
        ([*DENSE, "--p-eff", "10"], "is not used by No Free Prune"),
        ([*BASE, "--p-eff", "1e5", "--solve", "p", "--lipschitz", "1"], "--solve p"),
        ([*BASE, "--p", "10", "--W", "10", "--J", "10", "--solve", "p", "--lipschitz", "1"], "--p"),
    ],
)
def test_invalid_input_one_line_exit_2(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]
    assert "Traceback" not in captured.err


def test_no_check_assumptions_reports_the_failure(capsys):
    assert main([*DENSE, "--n", "1000", "--no-check-assumptions"]) == 0
    assert "[FAIL] k-condition" in capsys.readouterr().out


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main([*DENSE, "--solve", "q"])
    assert info.value.code == 2


def test_demo_prints_the_bounds_table(capsys, tmp_path):
    pytest.importorskip("torch", reason="the demo's empirical part trains networks")
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "empirical part" in out
    rows = {r["setting"]: r for r in rb.examples.bounds_table()}
    assert set(rows) >= {"A", "B-mnist", "B-mnist-c=d", "C-J_bs", "C-J_tight"}
    for name, row in rows.items():
        assert f"{row['L_BS']:.3e}" in out
        assert name in out
