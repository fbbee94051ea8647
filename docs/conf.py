"""Sphinx configuration of the airflow-provider-smsnexus documentation (``make docs``)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Importing the package imports Airflow, which reads its configuration at import time: give it a private,
# throw-away home so that building the docs never touches (or needs) a real Airflow installation.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="smsnexus-docs-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_smsnexus import __version__  # noqa: E402

project = "airflow-provider-smsnexus"
author = "The airflow-provider-smsnexus authors"
copyright = "the airflow-provider-smsnexus authors; Apache License 2.0"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "README-front.md", "Thumbs.db", ".DS_Store"]

# MyST: `{#label}` heading anchors, ```{directive} fences, and `#heading` links checked at build time.
myst_enable_extensions = ["colon_fence", "deflist", "attrs_block"]
myst_heading_anchors = 4

# The API reference: autosummary walks airflow_provider_smsnexus recursively (docs/api/index.rst), so a new
# module appears without editing the docs. Private modules (`_name`) are skipped by autosummary itself.
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
    # Document each object where it is defined: a name listed in a module's `__all__` that it imports would
    # otherwise be described twice.
    "ignore-module-all": True,
}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autoclass_content = "both"

html_theme = "furo"
html_title = f"airflow-provider-smsnexus {release}"
# Tables and code blocks fit the text column or scroll visibly (tests/test_docs_pages.py checks it at 1280 px).
html_static_path = ["_static"]
html_css_files = ["smsnexus.css"]

nitpicky = False
