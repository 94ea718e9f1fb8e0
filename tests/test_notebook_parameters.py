"""Bad papermill parameters stop the real notebooks at their checks, with the parameter named."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_auction_utils.workbook import runner


@pytest.mark.parametrize(
    ("notebook", "name", "value", "message"),
    [
        ("01", "MAX_STEPS", "0", "MAX_STEPS must be an integer >= 1, got 0"),
        ("04", "SE_MULTIPLE", "1", "SE_MULTIPLE must be a finite number in [2, 10], got 1"),
        ("06", "LAMBDA_GRID", "[0, 2]", "LAMBDA_GRID must be a list of at least 2 strictly increasing finite numbers in [0, 1]"),
        ("07", "TEMPERATURE", "-1", "TEMPERATURE must be a finite number > 0, got -1"),
        ("08", "THREE_PROFILES", "[[1, 2]]", "THREE_PROFILES: [1, 2] must list 3 bids >= 0, not all 0"),
        ("09", "SHARES", "[0.8, 0.2]", "SHARES must be a list of at least 2 strictly increasing finite numbers in (0, 1]"),
        ("09", "N_QUERIES", "100", "N_QUERIES must be at most 79 (the usable queries), got 100"),
        ("09", "DTYPE", "int8", "DTYPE must be one of 'auto', 'float32', 'bfloat16', 'float16', got 'int8'"),
    ],
)
def test_bad_parameter_is_named(
    notebook: str, name: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.main([notebook, "-p", name, value, "-o", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"ValueError: {message}" in err
    assert not list(tmp_path.glob("*.ipynb"))        # nothing half-written where results go


def test_notebook_09_exposes_its_parameters_to_papermill() -> None:
    notebook = Path(__file__).resolve().parent.parent / "notebooks" / "09-mechanisms-on-real-queries.ipynb"
    assert set(runner.notebook_parameters(notebook)) == {
        "MODEL", "DEVICE", "DTYPE", "SEED", "N_QUERIES", "SHARES", "PLATFORM_BIDS", "GREEDY", "SEEDS", "TEMPERATURE",
        "MAX_NEW_TOKENS", "N_BOOT", "MAX_ROWS"}
