"""Sphinx configuration for robustlaw's documentation."""

import importlib
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import robustlaw  # noqa: E402

project = "robustlaw"
author = "robustlaw developers"
release = robustlaw.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    # MathJax from the installed package (copied to _static/mathjax), not from a CDN: the
    # theory page renders offline. Its import name has hyphens.
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath", "amsmath"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
exclude_patterns = ["_build", "_generated/*.inc.md"]
html_theme = "alabaster"
# "ref.python": a field name such as ``method`` or ``X`` that several documented classes share
# is ambiguous as a cross-reference; napoleon's parameter types resolve it to a plain name.
suppress_warnings = ["myst.header", "ref.python"]


def _run_generators(app):
    """Run every ``docs/generators/*.py`` module's ``generate(out_dir)`` before reading."""
    out = pathlib.Path(app.srcdir) / "_generated"
    out.mkdir(exist_ok=True)
    gen_dir = pathlib.Path(app.srcdir) / "generators"
    sys.path.insert(0, str(gen_dir))
    for path in sorted(gen_dir.glob("*.py")):
        importlib.import_module(path.stem).generate(out)


def setup(app):
    app.connect("builder-inited", _run_generators)
