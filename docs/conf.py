"""Sphinx configuration of the skrob docs: ``pip install -e ".[docs]" && make -C docs html``.

Offline by construction: no intersphinx, no remote images, no CDN scripts (sphinx-gallery's
page of computation times loads DataTables from a CDN, so it is not written; each
example's page states its own time). The gallery runs every ``examples/plot_*.py`` (the
paper reproductions in their ``--quick`` mode) and every ``examples/howto/plot_*.py``;
the build prints each how-to's time, and with ``SKROB_DOCS_TIME_BUDGET=1`` one over
:data:`HOWTO_SECONDS` is a build warning (an error under ``-W``; CI leaves it off, so that
a slow machine cannot fail the build). ``SKROB_DOCS_GALLERY=0`` skips running them (the
pages are still built, without outputs).
"""

import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))  # the examples import _common

import skrob  # noqa: E402

# Without torch (``[docs]`` does not pull it: a plain ``pip install torch`` fetches a CUDA
# build), the API pages of skrob.torch are built from mocked imports and the examples that
# train networks are shown without being run. ``pip install torch==2.13.0 -e ".[docs,torch]"``
# runs them too.
try:
    import skorch  # noqa: F401
    import torch  # noqa: F401

    HAS_TORCH = True
except ImportError:
    HAS_TORCH = False
    autodoc_mock_imports = ["torch", "skorch"]
TORCH_EXAMPLES = (  # plot_<name>.py
    "rpr",
    "laplacian",
    "robustness_vs_training_size",
    "skorch_pipeline",
)
HOWTO_SECONDS = 30.0  # the most a how-to example may take in the build

project = "skrob"
author = "the skrob developers"
copyright = "2026, the skrob developers"
release = version = skrob.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "generated/*.examples",
    "auto_examples/*.ipynb",
    "sg_execution_times.rst",
]
templates_path = ["_templates"]

# API pages from the docstrings.
autosummary_generate = True
autodoc_default_options = {"members": False, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# Markdown pages (user guide, benchmarks) keep their headings' anchors.
myst_heading_anchors = 3
myst_enable_extensions = []
suppress_warnings = ["myst.xref_missing", "myst.header", "config.cache"]

html_theme = "pydata_sphinx_theme"
html_title = f"skrob {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "icon_links": [],
}
html_show_sourcelink = False

_gallery_out = Path(tempfile.mkdtemp(prefix="skrob-gallery-"))


def _example_argv(gallery_conf, script_vars):
    """Every example in its quick mode, its own figures in a scratch folder."""
    name = Path(script_vars["src_file"]).stem
    return ["--quick", "--output", str(_gallery_out / name)]


sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_" if HAS_TORCH else rf"/plot_(?!{'|'.join(TORCH_EXAMPLES)})",
    "ignore_pattern": r"_common\.py",
    "plot_gallery": os.environ.get("SKROB_DOCS_GALLERY", "1") != "0",
    "reset_argv": _example_argv,
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "write_computation_times": False,  # its page loads DataTables from a CDN
    "thumbnail_size": (400, 280),
}


def _check_howto_times(app, exception):
    """A how-to example is a task a user copies: the build prints each one's time, and
    one over HOWTO_SECONDS is a warning (an error under ``-W``) when
    ``SKROB_DOCS_TIME_BUDGET=1``. CI leaves it off: a slow machine must not fail it."""
    if exception is not None or not sphinx_gallery_conf["plot_gallery"]:
        return
    from sphinx.util import logging

    logger = logging.getLogger("skrob.docs")
    pattern = re.compile(r"Total running time of the script:\*\* \((\d+) minutes ([\d.]+) seconds")
    for page in sorted((HERE / "auto_examples" / "howto").glob("plot_*.rst")):
        found = pattern.search(page.read_text(encoding="utf-8"))
        if found is None:
            continue  # shown without being run (torch missing)
        seconds = 60 * int(found.group(1)) + float(found.group(2))
        logger.info("how-to example %s: %.1f s", page.stem, seconds)
        if seconds > HOWTO_SECONDS and os.environ.get("SKROB_DOCS_TIME_BUDGET") == "1":
            logger.warning(
                "how-to example %s took %.1f s in the build (at most %.0f s)",
                page.stem,
                seconds,
                HOWTO_SECONDS,
            )


def setup(app):
    app.connect("build-finished", _check_howto_times)
