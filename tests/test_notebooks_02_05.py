"""Notebooks 02 and 05 check their parameters in one declarative call: a bad value stops the run with
the parameter named, before anything is computed."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_auction_utils.workbook import runner


@pytest.mark.parametrize(
    ("notebook", "name", "value", "message"),
    [
        ("02", "ATOL", "0", "ATOL must be a finite number in (0, 0.001], got 0"),
        ("05", "VALUES", "[0, 1]", "VALUES must be a list of at least 1 finite numbers in (0, 10]"),
    ],
)
def test_bad_parameter_is_named(
    notebook: str, name: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.main([notebook, "-p", name, value, "-o", str(tmp_path), "--no-progress"]) == 1
    assert f"ValueError: {message}" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.ipynb"))
