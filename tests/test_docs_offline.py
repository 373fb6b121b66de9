"""The docs render math offline: MathJax comes from an installed package, not from a CDN.

Fast checks only (no site build): ``docs/conf.py`` enables the offline extension, the
extension points Sphinx at a local script, and that script ships with the package.
"""

import ast
import importlib.util
import pathlib

import pytest

pytest.importorskip("sphinx")

OFFLINE = "sphinx-mathjax-offline"  # the extension's import name has hyphens
CONF = pathlib.Path(__file__).resolve().parents[1] / "docs" / "conf.py"


def _extensions() -> list[str]:
    """The ``extensions`` list of docs/conf.py, read without executing the file."""
    for node in ast.parse(CONF.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "extensions" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("docs/conf.py defines no extensions list")


def test_conf_enables_offline_mathjax():
    extensions = _extensions()
    assert OFFLINE in extensions
    assert extensions.index("sphinx.ext.mathjax") < extensions.index(OFFLINE)


def test_offline_package_ships_a_local_mathjax_script():
    spec = importlib.util.find_spec(OFFLINE)
    assert spec is not None, f"{OFFLINE} is not installed: pip install -e '.[docs]'"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class App:  # the two things the extension's setup touches
        config = type("Config", (), {})()

        def connect(self, event, callback):
            self.event = event

    app = App()
    module.setup(app)
    path = app.config.mathjax_path
    assert not path.startswith(("http://", "https://", "//")), path
    static = pathlib.Path(spec.origin).parent / "static"
    assert (static / path).is_file(), f"{path} missing under {static}"
    assert app.event == "build-finished"  # copies static/mathjax into _static/ of the build
