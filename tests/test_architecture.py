"""The package's layers stay visible: theory <- llm <- workbook, and functions fit on a screen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "llm_auction_utils"
MAX_FUNCTION_LINES = 80

# what each layer may import from the package (besides itself and the shared ``files`` module)
ALLOWED = {
    "theory": set(),
    "llm": {"theory"},
    "workbook": {"theory", "llm"},
}


def _modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


def _package_imports(path: Path) -> set[str]:
    """The layers of ``llm_auction_utils`` that ``path`` imports (absolute or relative imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    layer = path.parent.name
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.startswith("llm_auction_utils"):
                parts = node.module.split(".")
                found.add(parts[1] if len(parts) > 1 else "<top>")
            elif node.level == 1:
                found.add(layer)
            elif node.level == 2:
                found.add(node.module.split(".")[0] if node.module else "<top>")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("llm_auction_utils"):
                    parts = alias.name.split(".")
                    found.add(parts[1] if len(parts) > 1 else "<top>")
    return found - {layer, "files"}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_the_layers_below(layer):
    for path in _modules(layer):
        imported = _package_imports(path)
        assert imported <= ALLOWED[layer], f"{path.relative_to(PACKAGE)} imports {sorted(imported - ALLOWED[layer])}"


def test_theory_touches_no_model_and_no_files():
    for path in _modules("theory"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
        assert not names & {"transformers", "pathlib", "os", "shutil", "yaml", "json", "papermill"}, path.name


def test_every_function_fits_on_a_screen():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions longer than 80 lines: " + "; ".join(long)


def test_no_assert_for_control_flow():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        asserts = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert)]
        assert not asserts, f"{path.relative_to(PACKAGE)} uses assert at lines {asserts}"


def test_top_level_reexports_resolve():
    import llm_auction_utils

    for name in llm_auction_utils.__all__:
        assert getattr(llm_auction_utils, name) is not None, name
