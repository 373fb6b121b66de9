"""Every ``robustlaw`` command that README.md and docs/**/*.md show runs and exits with 0.

A command is a line of a ```bash or ```console code block whose first word is ``robustlaw``
(in console blocks after the ``$`` prompt; in bash blocks also after ``&&``), with backslash
continuations joined. Syntax summaries with placeholders (``robustlaw lipschitz FILE
[--method NAME]``) live in ```text blocks and are not run; a placeholder that slips into a
bash or console block fails :func:`test_commands_have_no_placeholders`.

Each command runs in-process (``robustlaw.cli.main``) in a fresh folder holding the inputs the
documents assume: ``weights.npz`` (a small MLP), ``random_weights.mat`` (the LipSDP fixture,
when ``../shared/fixtures/lipsdp`` is beside the checkout; its commands are skipped
otherwise), ``results.sqlite`` with the ``tiny`` results of ``lor-scaling`` and of every
experiment a documented ``run`` or ``figure`` command names (run once per module), and the
same store as ``robustlaw-demo/results.sqlite``, so ``robustlaw demo`` resumes
instead of retraining. ``run`` and ``figure`` commands of every other preset (``default``,
``paper`` and named ones: minutes to hours) run with ``--preset tiny`` instead, which the store
holds already.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from robustlaw.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md"] + sorted(
    p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts
)
COMMAND_BLOCKS = ("bash", "console", "shell", "sh")
FENCE = re.compile(r"^\s*```+\s*\{?([\w-]*)\}?")


def _logical_lines(lines: list[str]) -> list[str]:
    """Join backslash continuations into one line each."""
    out, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].strip() + " "
        else:
            out.append(pending + line.strip())
            pending = ""
    if pending:
        out.append(pending.strip())
    return out


def extract_commands(text: str) -> list[str]:
    """The ``robustlaw`` commands of the bash and console code blocks of a Markdown text.

    Examples
    --------
    >>> doc = "```console\\n$ robustlaw bound --n 1 \\\\\\n  --d 2\\nL = 3\\n```\\n"
    >>> extract_commands(doc + "```text\\nrobustlaw lipschitz FILE\\n```\\n")
    ['robustlaw bound --n 1 --d 2']
    """
    commands, block, language = [], None, ""
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence and block is None:
            block, language = [], fence.group(1).lower()
            continue
        if fence:
            if language in COMMAND_BLOCKS:
                commands += _commands_of_block(_logical_lines(block), console=language == "console")
            block = None
            continue
        if block is not None:
            block.append(line)
    return commands


def _commands_of_block(lines: list[str], *, console: bool) -> list[str]:
    found = []
    for line in lines:
        if console:
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        if line.startswith("#"):
            continue
        found += [
            part.strip() for part in line.split("&&") if part.strip().startswith("robustlaw ")
        ]
    return found


def _documented() -> list[tuple[str, str]]:
    pairs = []
    for path in DOCUMENTS:
        for command in extract_commands(path.read_text(encoding="utf-8")):
            pair = (str(path.relative_to(ROOT)), command)
            if pair not in pairs:
                pairs.append(pair)
    return pairs


DOCUMENTED = _documented()


def test_the_documents_show_commands():
    """The extraction finds the README's command-line section and the tutorials' commands."""
    files = {path for path, _ in DOCUMENTED}
    assert {"README.md", "docs/tutorials/measure_the_law.md"} <= files
    subcommands = {shlex.split(command)[1] for _, command in DOCUMENTED}
    assert {"bound", "lipschitz", "demo", "experiments", "run", "figure"} <= subcommands


@pytest.mark.parametrize(("path", "command"), DOCUMENTED)
def test_commands_have_no_placeholders(path, command):
    """Syntax summaries (FILE, NAME, [--option]) belong in ```text blocks, not runnable ones."""
    assert not re.search(r"\[|\]|<|>|\b[A-Z]{3,}\b", command), f"{path}: {command}"


def _documented_experiments() -> list[str]:
    """lor-scaling (the demo's) and every experiment a documented ``run`` or ``figure`` names."""
    names = ["lor-scaling"]
    for _, command in DOCUMENTED:
        argv = shlex.split(command)[1:]
        if argv[0] in ("run", "figure") and argv[1] not in names:
            names.append(argv[1])
    return names


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, request):
    """A folder with every input a documented command reads."""
    from robustlaw.experiments import run

    folder = tmp_path_factory.mktemp("documented")
    rng = np.random.default_rng(0)
    np.savez(folder / "weights.npz", rng.standard_normal((16, 8)), rng.standard_normal((1, 16)))
    lipsdp = ROOT.parent / "shared" / "fixtures" / "lipsdp" / "random_weights.mat"
    if lipsdp.is_file():
        shutil.copy(lipsdp, folder / "random_weights.mat")
    store = folder / "results.sqlite"
    for name in _documented_experiments():
        run(name, "tiny", store=store, device="cpu", threads=1, progress=False)
    (folder / "robustlaw-demo").mkdir()
    shutil.copy(store, folder / "robustlaw-demo" / "results.sqlite")
    return folder


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)[1:]
    if argv[0] in ("run", "figure") and "--preset" in argv:
        argv[argv.index("--preset") + 1] = "tiny"
    return argv


@pytest.mark.parametrize(("path", "command"), DOCUMENTED)
def test_documented_command_exits_0(path, command, inputs, tmp_path, monkeypatch, capsys):
    argv = _argv(command)
    needed = [a for a in argv if a.endswith((".mat", ".npz"))]
    if any(not (inputs / name).is_file() for name in needed):
        pytest.skip(
            f"{needed} not available (../shared/fixtures/lipsdp is not beside the checkout)"
        )
    work = tmp_path / "work"
    shutil.copytree(inputs, work)
    monkeypatch.chdir(work)
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, f"{path}: `{command}` exited {code}: {captured.err.strip()}"
    assert captured.out.strip(), f"{path}: `{command}` printed nothing"
    if argv[0] == "demo":  # resumed from the copied store: nothing retrained, everything drawn
        from robustlaw.experiments import get_experiment

        exp = get_experiment("lor-scaling")
        n_units = len(exp.expand(exp.preset("tiny")))
        assert f"0 work units run, {n_units} already stored" in captured.out
        assert os.path.isdir(work / "robustlaw-demo" / "figures")
