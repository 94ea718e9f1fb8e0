"""Notebook 06's parameters: papermill sees every one of them, the batch grid uses only declared ones, and
a bad value stops the run with the parameter named, before the model is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_auction_utils.workbook import batch, runner

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "06-hawaii-ad-creatives.ipynb"
PARAMETERS = {"MODEL", "DEVICE", "DTYPE", "SEED", "SCENARIO", "LAMBDA_GRID", "GREEDY", "TEMPERATURE", "MAX_NEW_TOKENS",
              "PAYMENTS", "N_FINE", "ROBUSTNESS", "ROBUST_SEEDS", "ROBUST_TEMPERATURE"}


def test_papermill_reads_every_parameter() -> None:
    # a quote in a parameter's comment can hide the parameter from papermill (then "-p NAME" is refused)
    assert set(runner.notebook_parameters(NOTEBOOK)) == PARAMETERS


def test_the_batch_grid_sets_declared_parameters_only() -> None:
    spec = batch.load_batch_spec(ROOT / "data" / "batch" / "hawaii-grid.yaml")
    assert spec["notebook"] == "06" and spec["record"] == "creatives"
    assert (set(spec["grid"]) | set(spec["fixed"])) <= PARAMETERS
    assert spec["fixed"]["ROBUSTNESS"] is False


def test_bad_parameter_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["06", "-p", "ROBUST_SEEDS", "0", "-o", str(tmp_path), "--no-progress"]) == 1
    assert "ValueError: ROBUST_SEEDS must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.ipynb"))
