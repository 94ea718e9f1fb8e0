"""The main job's runner: byte-stable re-runs, clear failures, bad invocations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from llm_auction_utils.workbook import batch, runner
from llm_auction_utils.workbook.notebook import REPO_ROOT_ENV


def _text(outputs: list[dict]) -> str:
    return "".join("".join(o["text"]) if isinstance(o.get("text"), list) else o.get("text", "") for o in outputs)


def _write_notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> None:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    for index, (kind, source, tags) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell.id = f"cell-{index}"
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, path)


@pytest.fixture
def workbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away workbook root with one good notebook that saves a figure."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _write_notebook(
        notebooks / "01-smoke.ipynb",
        [
            ("md", "# Smoke", []),
            ("code", "SCALE = 2.0", ["parameters"]),
            ("code", "import os\nfrom llm_auction_utils.workbook.notebook import setup_notebook, save_figure\n"
                     "setup_notebook('01-smoke', seed=1)\nimport matplotlib.pyplot as plt\n"
                     "from tqdm.auto import tqdm\n_ = [i for i in tqdm(range(3))]", []),
            ("code", "fig, ax = plt.subplots()\n_ = ax.plot([0, 1], [0, SCALE])\n"
                     "paths = save_figure(fig, 'line')\nprint(os.path.basename(os.getcwd()), SCALE)", []),
            ("code", "from llm_auction_utils.workbook.notebook import record\n"
                     "record('creatives', [{'text': f'ad {SCALE}', 'twice': 2 * SCALE}])", []),
        ],
    )
    monkeypatch.setenv(REPO_ROOT_ENV, str(tmp_path))
    return tmp_path


def test_rerun_is_byte_stable_and_writes_figures(workbook: Path) -> None:
    assert runner.main(["--no-progress"]) == 0
    nb_path = workbook / "notebooks" / "01-smoke.ipynb"
    figures = sorted((workbook / "figures" / "01-smoke").iterdir())
    assert [p.name for p in figures] == ["line.png", "line.svg"]
    first = nb_path.read_bytes(), [p.read_bytes() for p in figures]
    assert runner.main(["--no-progress"]) == 0
    second = nb_path.read_bytes(), [p.read_bytes() for p in figures]
    assert first == second
    nb = json.loads(first[0])
    assert "papermill" not in nb["metadata"] and "widgets" not in nb["metadata"]
    for cell in nb["cells"]:
        assert "papermill" not in cell["metadata"] and "execution" not in cell["metadata"]
    # the kernel ran in the notebook's folder, as nbval does
    printed = _text(nb["cells"][3]["outputs"])
    assert printed.strip() == "notebooks 2.0"


def test_parameters_and_output_dir(workbook: Path, tmp_path: Path) -> None:
    params = workbook / "params.yaml"
    params.write_text("SCALE: 3.5\n")
    out = tmp_path / "out"
    original = (workbook / "notebooks" / "01-smoke.ipynb").read_bytes()
    assert runner.main(["01", "-f", str(params), "-o", str(out), "--no-progress"]) == 0
    executed = json.loads((out / "01-smoke.ipynb").read_text())
    printed = "".join(_text(c.get("outputs", [])) for c in executed["cells"])
    assert "3.5" in printed
    assert (workbook / "notebooks" / "01-smoke.ipynb").read_bytes() == original
    assert not (workbook / "figures").exists()
    assert (out / "figures" / "01-smoke" / "line.svg").is_file()


def test_stale_figures_are_removed(workbook: Path) -> None:
    stale = workbook / "figures" / "01-smoke" / "old.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    assert runner.main(["--no-progress"]) == 0
    assert not stale.exists()


def test_failing_notebook_is_named_and_left_untouched(workbook: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = workbook / "notebooks" / "02-broken.ipynb"
    _write_notebook(bad, [("code", "X = 1", ["parameters"]), ("code", "raise ValueError('boom here')", [])])
    before = bad.read_bytes()
    assert runner.main(["--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "02-broken" in err and "cell 1" in err and "ValueError: boom here" in err
    assert bad.read_bytes() == before
    assert (workbook / "runs" / "failed" / "02-broken.ipynb").is_file()
    leftovers = [p for p in (workbook / "notebooks").iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["07"], "unknown notebook '07'"),
        (["01", "-f", "missing.yaml"], "parameter file 'missing.yaml' does not exist"),
        (["01", "-p", "NOT_A_PARAM", "1"], "unknown parameter(s) NOT_A_PARAM"),
        (["01", "-p", "bad-name", "1"], "is not a valid identifier"),
    ],
)
def test_bad_invocation_gives_one_line_error(
    workbook: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert runner.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err


def test_bad_yaml_parameter_file(workbook: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = workbook / "bad.yaml"
    params.write_text("SCALE: [1, 2\n")
    assert runner.main(["01", "-f", str(params)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
    params.write_text("- 1\n- 2\n")
    assert runner.main(["01", "-f", str(params)]) == 2
    assert "must hold a mapping" in capsys.readouterr().err


def test_clean_notebook_renumbers_widget_ids() -> None:
    nb = {
        "metadata": {"papermill": {"duration": 1.0}, "widgets": {"state": {}}},
        "cells": [
            {"cell_type": "code", "metadata": {"papermill": {}, "execution": {"t": 1}, "tags": ["x"]},
             "outputs": [{"output_type": "display_data",
                          "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2}}}]},
        ],
    }
    cleaned = runner.clean_notebook(nb)
    assert cleaned["metadata"] == {}
    assert cleaned["cells"][0]["metadata"] == {"tags": ["x"]}
    view = cleaned["cells"][0]["outputs"][0]["data"]["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == f"{1:032x}"


def test_find_notebooks_orders_by_number(tmp_path: Path) -> None:
    for name in ("03-c.ipynb", "01-a.ipynb", "02-b.ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in runner.find_notebooks((), tmp_path)] == ["01-a.ipynb", "02-b.ipynb", "03-c.ipynb"]
    assert [p.name for p in runner.find_notebooks(("02",), tmp_path)] == ["02-b.ipynb"]
    with pytest.raises(runner.RunnerError, match="unknown notebook"):
        runner.find_notebooks(("9",), tmp_path)


_ENV_AT_IMPORT = {name: os.environ.get(name) for name in ("LLM_AUCTION_FIGURE_LOG", "LLM_AUCTION_FIGURES_DIR")}


def test_no_env_leak() -> None:
    """The runner restores the variables it sets (the test command itself sets LLM_AUCTION_FIGURES_DIR)."""
    assert {name: os.environ.get(name) for name in _ENV_AT_IMPORT} == _ENV_AT_IMPORT


def test_batch_runs_grid_and_collects_csv(workbook: Path, tmp_path: Path) -> None:
    import pandas as pd

    grid = workbook / "grid.yaml"
    grid.write_text("notebook: '01'\nrecord: creatives\ngrid:\n  SCALE: [1.0, 4.0]\n")
    out = tmp_path / "batch"
    assert batch.main([str(grid), "-o", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "creatives.csv")
    assert table.to_dict(orient="list") == {
        "run": [0, 1], "SCALE": [1.0, 4.0], "text": ["ad 1.0", "ad 4.0"], "twice": [2.0, 8.0]
    }
    assert (out / "params-1.yaml").read_text() == "SCALE: 4.0\n"
    assert (out / "run-1" / "figures" / "01-smoke" / "line.png").is_file()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("notebook: '01'\ngrid: {}\n", "field 'grid' must map"),
        ("notebook: '01'\ngrid:\n  NOPE: [1]\n", "unknown parameter(s) NOPE"),
        ("grid:\n  SCALE: [1]\n", "field 'notebook'"),
        ("notebook: '01'\ngrid:\n  SCALE: 3\n", "grid.SCALE must be a non-empty list"),
    ],
)
def test_batch_bad_grid_file(workbook: Path, capsys: pytest.CaptureFixture[str], content: str, message: str) -> None:
    grid = workbook / "grid.yaml"
    grid.write_text(content)
    assert batch.main([str(grid), "-o", str(workbook / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_clean_notebook_merges_split_streams() -> None:
    nb = {"metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, "outputs": [
        {"output_type": "stream", "name": "stdout", "text": ["a line"]},
        {"output_type": "stream", "name": "stdout", "text": "\n"},
        {"output_type": "stream", "name": "stderr", "text": "warn\n"},
        {"output_type": "stream", "name": "stdout", "text": "x\ny\n"},
    ]}]}
    outputs = runner.clean_notebook(nb)["cells"][0]["outputs"]
    assert [(o["name"], o["text"]) for o in outputs] == [
        ("stdout", ["a line\n"]), ("stderr", ["warn\n"]), ("stdout", ["x\n", "y\n"])
    ]
