"""The Python blocks of README.md run, in order, in one namespace, and give what they say."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.timeout(600)
def test_readme_python_blocks_run_and_say_what_they_claim(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    best = namespace["best"]
    assert best.member is not None
    assert best.train_mse <= 0.5  # a fit below the noise (sigma^2 - eps)
    assert best.lower <= best.upper * (1 + 1e-6)  # the bracket of that net
    table = namespace["table"]
    assert len(table) > 0
    assert set(table["role"]) == {"search", "first-fit", "interpolation", "construction"}
    assert (tmp_path / "results.sqlite").exists()
