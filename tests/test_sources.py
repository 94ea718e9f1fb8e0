"""The repository's text sources: no control characters, no TeX broken by a string escape, and every
``python -m`` command that the documentation tells a reader to run names a module that exists.

A Python string that is not raw turns ``\\ne`` into a newline followed by ``e`` and ``\\theta`` into a tab
followed by ``heta``; MathJax still typesets what is left, so the browser test does not see it
(notebooks/theory.md §4.8 once read ``\\sum_{j`` / ``e i}``).  These checks read the sources instead.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".yml", ".yaml", ".toml", ".cfg", ".bib", ".txt", ".css", ".lock", ".svg"}
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
"""Control characters other than newline (tab included: ``"\\t"`` is how ``\\tau`` breaks)."""

# TeX control words that begin with "n": a string escape turns "\n..." into a line break followed by the rest
N_COMMANDS = {"ne", "neq", "neg", "nu", "nabla", "not", "notin", "ni", "nmid", "nleq", "ngeq", "newline", "nexists",
              "nparallel", "natural", "nearrow", "nwarrow", "nolimits", "normalsize", "nsubseteq", "nsupseteq"}


def _tracked(*suffixes: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in out if Path(f).suffix in (set(suffixes) or TEXT_SUFFIXES) and (ROOT / f).is_file()]


def _notebook_texts(path: Path) -> list[tuple[str, str, str]]:
    """``(where, kind, text)`` for every cell source and text output of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    out = []
    for k, cell in enumerate(cells):
        out.append((f"{path.name} cell {k}", cell["cell_type"], "".join(cell["source"])))
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            text = "".join(o.get("text", "")) + "".join(data.get("text/plain", "")) + "".join(data.get("text/html", ""))
            out.append((f"{path.name} cell {k} output", "output", text))
    return out


def _markdown_sources() -> list[tuple[str, str]]:
    """Every markdown text a reader sees: the .md files and the notebooks' markdown cells."""
    texts = [(p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8")) for p in _tracked(".md")]
    for nb in _tracked(".ipynb"):
        texts += [(where, text) for where, kind, text in _notebook_texts(nb) if kind == "markdown"]
    return texts


def _math_spans(text: str) -> list[str]:
    """The ``$$...$$`` and ``$...$`` spans of a markdown text (code blocks and inline code left out; an
    inline span ends at its paragraph)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    spans = re.findall(r"\$\$(.+?)\$\$", text, flags=re.S)
    rest = re.sub(r"\$\$(.+?)\$\$", " ", text, flags=re.S)
    return spans + [s for s in re.findall(r"(?<!\\)\$(.+?)(?<!\\)\$", rest, flags=re.S) if "\n\n" not in s]


def broken_math(text: str) -> list[str]:
    """Line breaks inside a math span that read as a swallowed ``\\n``: the next line starts with the rest of
    a TeX control word beginning with ``n`` (``\\ne`` -> line break + ``e``)."""
    found = []
    for span in _math_spans(text):
        for m in re.finditer(r"\n[ \t]*([A-Za-z]+)", span):
            if "n" + m.group(1) in N_COMMANDS:
                found.append(span.strip()[:80])
    return found


def test_the_checks_catch_the_damage_they_are_for():
    damaged = "agent $i$ pays $\\sum_{j \ne i} b_j$ and $\\Pr[t_i \ne t_j]$; with a tab: $\tau$"
    assert len(broken_math(damaged)) == 2 and CONTROL.search(damaged)
    intact = r"agent $i$ pays $\sum_{j \ne i} b_j$ and $\Pr[t_i \ne t_j]$, $\tau$" + "\n$$a +\nb$$"
    assert broken_math(intact) == [] and not CONTROL.search(intact)


@pytest.mark.parametrize("path", _tracked(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_control_characters(path: Path) -> None:
    if path.suffix == ".ipynb":
        texts = [(where, text) for where, _, text in _notebook_texts(path)]
    else:
        texts = [(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))]
    bad = [f"{where}: {m.group()!r} at {m.start()}" for where, text in texts for m in [CONTROL.search(text)] if m]
    assert not bad, "control characters (a string escape such as \\t, \\a, \\f or \\b?): " + "; ".join(bad)


def test_no_math_span_broken_by_an_escape() -> None:
    bad = [f"{where}: {span!r}" for where, text in _markdown_sources() for span in broken_math(text)]
    assert not bad, "math spans with a line break where a \\n... command was (a non-raw string?): " + "; ".join(bad)


# --------------------------------------------------------------------------- python -m commands in the docs

PYTHON_M = re.compile(r"\bpython3?\s+-m\s+([A-Za-z_][\w.]*)")
LIST_M = re.compile(r"""["']-m["']\s*,\s*["']([A-Za-z_][\w.]*)["']""")


def _documented_modules() -> dict[str, list[str]]:
    """Module -> where a ``python -m module`` command (or a ``[..., "-m", "module", ...]`` list) is given."""
    found: dict[str, list[str]] = {}
    for path in _tracked(".md", ".yml", ".yaml", ".toml", ".py", ".ipynb", ".cfg"):
        if path == Path(__file__).resolve():  # this file's own examples are not documentation
            continue
        texts = ([(w, t) for w, _, t in _notebook_texts(path)] if path.suffix == ".ipynb"
                 else [(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))])
        for where, text in texts:
            for module in PYTHON_M.findall(text) + LIST_M.findall(text):
                found.setdefault(module.rstrip("."), []).append(where)
    return found


def test_the_docs_give_python_m_commands() -> None:
    modules = _documented_modules()
    assert "llm_auction_utils.llm.models" in modules and "llm_auction_utils.workbook.runner" in modules


@pytest.mark.parametrize("module", sorted(_documented_modules()))
def test_every_python_m_command_in_the_docs_exists(module: str) -> None:
    where = _documented_modules()[module]
    spec = importlib.util.find_spec(module.split(".")[0])
    assert spec is not None, f"`python -m {module}` ({', '.join(where)}): no such package"
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"`python -m {module}` ({', '.join(where)}): no such module"
    if module.startswith("llm_auction_utils"):
        source = Path(spec.origin)
        if source.name == "__init__.py":
            source = source.with_name("__main__.py")
        assert source.is_file() and 'if __name__ == "__main__"' in source.read_text(encoding="utf-8"), (
            f"`python -m {module}` ({', '.join(where)}): the module has no command-line entry point")
