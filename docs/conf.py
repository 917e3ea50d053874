"""Sphinx configuration of the ipfscluster documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors).
The reference pages are generated from the code by ``docs/_ext/ipfscluster_docs.py``;
the build needs no network and no tool beyond Sphinx.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))
sys.path.insert(0, os.path.dirname(HERE))

import ipfscluster  # noqa: E402

project = "ipfscluster"
author = "ipfscluster developers"
copyright = "2026, ipfscluster developers"
version = release = ipfscluster.__version__

extensions = ["ipfscluster_docs"]
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]
templates_path = []
highlight_language = "none"
pygments_style = "sphinx"
nitpicky = False

html_theme = "alabaster"
html_static_path = []
html_title = f"ipfscluster {release}"
html_theme_options = {"description": "pinset orchestration for IPFS", "fixed_sidebar": True}
