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


def test_demo_prints_the_bounds_table(capsys):
    """The bounds part of ``robustlaw demo`` (the whole demo runs in test_documented_commands)."""
    from robustlaw.cli.demo import print_bounds_table

    print_bounds_table()
    out = capsys.readouterr().out
    assert "Then the law tested" in out
    rows = {r["setting"]: r for r in rb.examples.bounds_table()}
    assert set(rows) >= {"A", "B-mnist", "B-mnist-c=d", "C-J_bs", "C-J_tight"}
    for name, row in rows.items():
        assert f"{row['L_BS']:.3e}" in out
        assert name in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--preset", "huge"],
            "unknown preset of 'lor-scaling' 'huge'; valid names: default, paper, tiny",
        ),
        (["--device", "tpu"], "device must be 'auto', 'cpu' or 'cuda[:i]', got 'tpu'"),
        (["--threads", "0"], "threads must be an integer >= 1, got 0"),
    ],
)
def test_demo_checks_every_argument_before_any_output(tmp_path, capsys, argv, message):
    pytest.importorskip("torch", reason="the demo's empirical part trains networks")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [f"robustlaw demo: error: {message}"]
    assert not out.exists()


def test_solve_p_is_a_whole_number_of_parameters(capsys):
    """The README's --solve p example: the smallest integer p, 13 (the real root is 12.46)."""
    argv = [*BASE, "--W", "10", "--J", "10", "--solve", "p", "--lipschitz", "1"]
    result = _json(capsys, argv)
    assert result["value"] == 13
    assert isinstance(result["value"], int)
    assert main(argv) == 0
    assert "\np = 13\n" in capsys.readouterr().out
    bound = rb.lipschitz_lower_bound(n=6e4, d=784, p=12, eps=0.8, delta=0.1, W=10, J=10)
    assert bound > 1 >= rb.lipschitz_lower_bound(n=6e4, d=784, p=13, eps=0.8, delta=0.1, W=10, J=10)


def test_the_solved_quantity_is_not_an_input(capsys):
    argv = [*DENSE, "--solve", "p", "--lipschitz", "1"]
    assert main(argv) == 2
    assert "--p is what --solve p computes; leave --p out" in capsys.readouterr().err
