"""Sphinx configuration of the workbook's website.

Build (what ``python3 scripts/workbook.py book`` runs):

    .venv/bin/python -m sphinx -b html -W --keep-going -n -c docs -d _build/doctrees notebooks _build/html

The source directory is ``notebooks/`` (the executed notebooks, ``theory.md``, ``index.md``,
``references.md``, ``references.bib``); this file lives in ``docs/`` so that nothing but content
sits next to the notebooks.  Notebooks are rendered from their stored outputs: nothing is executed.
Everything the pages need (MathJax, fonts, theme) is served from ``_build/html`` itself, so the
site works offline.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the API reference documents this checkout's package (autodoc imports it)

# -- Project -----------------------------------------------------------------------------------
project = "Token auctions for LLM-generated content"
author = "the workbook's authors"
copyright = "the workbook's authors; Apache-2.0"
html_title = "Token auctions for LLM-generated content"

# -- Extensions --------------------------------------------------------------------------------
extensions = [
    "myst_nb",  # .md (MyST) and .ipynb sources; brings myst_parser
    "sphinx_togglebutton",  # collapsed "Solution" admonitions (markdown solution cells)
    "sphinxcontrib.bibtex",  # references.md
    "sphinx-mathjax-offline",  # MathJax 3.2.2 copied into _build/html/_static/mathjax (no CDN)
    "sphinx.ext.autodoc",  # api.md: the public names of the package's three layers, from their docstrings
    "sphinx.ext.napoleon",  # the docstrings' Google-style "Args:" / "Returns:" sections
]

# -- API reference (api.md) ---------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the docstrings state shapes and types; string annotations stay out of the signatures
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields of the class, not as entries that duplicate its members

root_doc = "index"
exclude_patterns = ["**.ipynb_checkpoints", "**/.*", "_build", "jupyter_execute"]
# Only the executed, numbered notebooks and the MyST pages are sources.
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

# -- MyST --------------------------------------------------------------------------------------
myst_enable_extensions = [
    "dollarmath",  # $...$ and $$...$$ as in JupyterLab
    "amsmath",  # \begin{align} ... blocks
    "colon_fence",  # ::: fences (used for the solution admonitions)
]
myst_heading_anchors = 3  # theory.md#4-payments  ->  the "## 4. Payments" heading
myst_dmath_double_inline = True  # $$...$$ inside a paragraph is display math (JupyterLab does so too)

# -- MyST-NB: render the stored outputs, never execute -----------------------------------------
nb_execution_mode = "off"
nb_merge_streams = True
nb_output_stderr = "show"
nb_code_prompt_show = "Show code cell {type}"
nb_code_prompt_hide = "Hide code cell {type}"

# -- Bibliography ------------------------------------------------------------------------------
bibtex_bibfiles = ["../notebooks/references.bib"]  # relative to this folder (docs/)
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

# -- HTML --------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": True,  # the .ipynb / .md source of each page
    "use_fullscreen_button": False,
    # no repository_url / launch_buttons: Binder/Colab cannot run this workbook (see REPORT.md)
}
html_last_updated_fmt = None
# pydata-sphinx-theme reads the colour mode from html_context; unset, it logs a console error
# ("Got invalid theme mode") on every page, which the browser test counts as a failure.
html_context = {"default_mode": "auto"}
html_copy_source = True
html_static_path = ["_static"]  # docs/_static
html_css_files = ["workbook.css"]
html_show_sourcelink = False

# -- Warnings: -W turns every warning into an error; the allowlist is below and stays short -----
nitpicky = False
suppress_warnings = [
    # (empty on purpose: every notebook and page builds without warnings.  Add an entry only with a
    # comment saying which page needs it and why.)
]

# -- Solution cells ----------------------------------------------------------------------------
# Convention (one tag, works in JupyterLab and on the site): a cell tagged ``solution``.
# * In the notebook file the cell also carries ``"jupyter": {"source_hidden": true}`` (and, for
#   code cells, ``"collapsed": true`` and ``"jupyter": {"outputs_hidden": true}``), which JupyterLab 4
#   honours: the solution shows as a collapsed "..." bar until clicked.  The runner sets these
#   from the tag (``mark_solution_cells``), so authors only add the tag.
# * JupyterLab's collapsed placeholder still shows the cell's FIRST LINE, so a solution cell starts
#   with a neutral line: ``**Solution to exercise 1**`` (markdown; it becomes the toggle's title
#   here) or ``# Solution to exercise 1`` (code).
# * On the site, the hook below turns a code cell into a myst-nb ``hide-cell`` toggle labelled
#   "Show solution", and a markdown cell into a collapsed "Solution" admonition (sphinx-togglebutton).
SOLUTION_TAG = "solution"


def _prepare_notebook(app, docname: str, source: list[str]) -> None:
    """``source-read`` hook: solution cells, before myst-nb parses the notebook."""
    if not str(app.env.doc2path(docname)).endswith(".ipynb"):
        return
    nb = json.loads(source[0])
    changed = False
    for cell in nb.get("cells", []):
        meta = cell.setdefault("metadata", {})
        tags = meta.get("tags", [])
        if SOLUTION_TAG not in tags:
            continue
        changed = True
        if cell.get("cell_type") == "code":
            meta["tags"] = [*tags, "hide-cell"]
            meta.setdefault("mystnb", {}).update(
                {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}
            )
        elif cell.get("cell_type") == "markdown":
            text = "".join(cell.get("source", ""))
            title, body = "Solution", text
            first, _, rest = text.partition("\n")
            if first.startswith("**") and first.rstrip().endswith("**") and len(first.strip()) > 4:
                title, body = first.strip()[2:-2], rest  # "**Solution to exercise 1**" -> the title
            fence = ":" * max(4, 1 + max((len(r) for r in text.split() if set(r) == {":"}), default=0))
            cell["source"] = f"{fence}{{admonition}} {title}\n:class: dropdown tip\n\n{body.strip()}\n{fence}\n"
    if changed:
        source[0] = json.dumps(nb)


API_MARKER = re.compile(r"^<!-- api: ([\w.]+) -->$", re.M)
ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj):`~?([^`]+)`")
DIRECTIVE = re.compile(r"^(\s*)\.\. [\w:-]+::", re.M)


def _defining_module(module, name: str) -> str:
    """The module whose source documents ``name`` (its attribute docstring): the data's own module, not
    the package that re-exports it (autodoc would otherwise show the docstring of the value's type)."""
    from sphinx.pycode import ModuleAnalyzer

    candidates = [module.__name__]
    if hasattr(module, "__path__"):
        candidates += [f"{module.__name__}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
    for modname in candidates:
        try:
            if ("", name) in ModuleAnalyzer.for_module(modname).find_attr_docs():
                return modname
        except Exception:  # noqa: BLE001 - a module without source: try the next one
            continue
    return module.__name__


def api_directives(module_name: str) -> str:
    """An ``eval-rst`` block that documents every name of ``module_name.__all__`` with autodoc (classes
    with their documented members, functions, and data without their values), in alphabetical order."""
    module = importlib.import_module(module_name)
    lines = ["```{eval-rst}", f".. currentmodule:: {module_name}", ""]
    for name in sorted(module.__all__, key=str.lower):
        obj = getattr(module, name)
        if inspect.isclass(obj):
            lines += [f".. autoclass:: {name}", ""]
        elif callable(obj):
            lines += [f".. autofunction:: {name}", ""]
        else:
            lines += [f".. autodata:: {_defining_module(module, name)}.{name}", "   :no-value:", ""]
    return "\n".join(lines + ["```", ""])


def _api_page(app, docname: str, source: list[str]) -> None:
    """``source-read`` hook: expand the ``<!-- api: module -->`` markers of api.md."""
    if docname == "api":
        source[0] = API_MARKER.sub(lambda m: api_directives(m.group(1)), source[0])


def _valid_rst(lines: list[str]) -> bool:
    """Whether docutils parses a docstring without warnings (Sphinx roles read as plain literals)."""
    import io

    from docutils import nodes
    from docutils.core import publish_doctree

    text = ROLE.sub(lambda m: f"``{m.group(1)}``", "\n".join(lines))
    text = DIRECTIVE.sub(r"\1.. comment", text)  # Sphinx's own directives (napoleon's) need Sphinx to parse
    try:
        tree = publish_doctree(text, settings_overrides={"report_level": 5, "halt_level": 5,
                                                         "warning_stream": io.StringIO()})
    except Exception:  # noqa: BLE001 - anything docutils cannot parse is shown as written
        return False
    return not any(msg["level"] >= 2 for msg in tree.findall(nodes.system_message))


def _docstring(app, what, name, obj, options, lines: list[str]) -> None:
    """``autodoc-process-docstring`` hook: a docstring that is not valid reStructuredText (written as plain
    text) is shown as it is written, in a literal block, instead of failing the warning-free build."""
    if lines and not _valid_rst(lines):
        from sphinx.util import logging

        logging.getLogger(__name__).info(f"api.md: the docstring of {name} is shown as written (not reStructuredText)")
        lines[:] = ["::", ""] + [f"    {line}" if line.strip() else "" for line in lines] + [""]


def setup(app):
    app.connect("source-read", _prepare_notebook)
    app.connect("source-read", _api_page)
    app.connect("autodoc-process-docstring", _docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
