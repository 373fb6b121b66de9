"""The command dispatcher: bad input is one line on stderr and exit code 2; help is plain text
with every default; a closed pipe ends quietly; unreadable weight files are one clear line."""

import argparse
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from robustlaw.cli import main


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("robustlaw: error:")
    assert len(err.strip().splitlines()) == 1


def test_version_prints_package_version(capsys):
    from robustlaw import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def _parsers():
    """The top parser and each subcommand's parser, by name."""
    from robustlaw.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"robustlaw": parser, **sub.choices}


@pytest.mark.parametrize("name", list(_parsers()))
def test_help_is_plain_text_with_a_description(name):
    """No reStructuredText markup leaks into --help, and every command says what it does."""
    parser = _parsers()[name]
    text = parser.format_help()
    assert "``" not in text
    assert not re.search(r":(func|class|mod|data|doc):", text)
    assert len(parser.description or "") > 20


@pytest.mark.parametrize("name", list(_parsers()))
def test_every_option_help_ends_with_its_default(name):
    parser = _parsers()[name]
    for action in parser._actions:
        if action.default == argparse.SUPPRESS or not action.option_strings:
            continue  # --help, --version, positionals
        shown = parser._get_formatter()._expand_help(action)
        assert re.search(r"\(default: [^()]*(\([^()]*\))?[^()]*\)$", shown), (name, shown)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "robustlaw.cli", *args]


BOUND = ("bound", "--n", "6e4", "--d", "784", "--p", "1e6", "--eps", ".8", "--delta", ".1")
BOUND_JSON = (*BOUND, "--W", "10", "--J", "10", "--json")


def test_closed_stdout_ends_quietly():
    """The reader closes the pipe before anything is written: no traceback, exit code 1."""
    with subprocess.Popen(
        _cli(*BOUND_JSON), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 1
    assert err == ""


def test_piping_into_head_is_quiet():
    command = " ".join(shlex.quote(a) for a in _cli(*BOUND_JSON)) + " | head -c 10"
    proc = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.stdout == '{\n  "theor'
    assert proc.stderr == ""


@pytest.fixture
def bad_files(tmp_path):
    torch = pytest.importorskip("torch")
    np.savez(tmp_path / "strings.npz", np.array(["a", "b"]), np.array(["c"]))
    np.savez(tmp_path / "objects.npz", np.array([{"a": 1}], dtype=object))
    np.save(tmp_path / "single.npy", np.ones((3, 3)))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    for name in ("garbage.npz", "garbage.pt", "garbage.mat"):
        (tmp_path / name).write_bytes(b"not a weights file\n" * 8)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    torch.save(model, tmp_path / "model.pt")
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pt")
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("strings.npz", "array 'arr_0' has dtype <U1; expected numeric weight matrices"),
        ("objects.npz", "array 'arr_0' holds Python objects"),
        ("single.npz", "holds a single .npy array; expected a .npz archive"),
        ("garbage.npz", "not a .npz archive; expected a .npz archive of numeric weight"),
        ("garbage.mat", "not a MATLAB .mat file; expected one with a cell array 'weights'"),
        ("garbage.pt", "not a torch file; expected a torch state dict"),
        ("model.pt", "holds pickled Python objects (a whole model?)"),
        ("checkpoint.pt", "state dict has no '<i>.weight' keys"),
        ("tensor.pt", "holds a Tensor; expected a torch state dict"),
    ],
)
def test_unreadable_weight_files_are_one_clear_line(bad_files, name, expected, capsys):
    assert main(["lipschitz", str(bad_files / name)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"robustlaw lipschitz: error: {bad_files / name}: ")
    assert expected in err
    assert "\x1b[" not in err  # no terminal colour codes
    assert "allow_pickle" not in err
    assert "weights_only" not in err
