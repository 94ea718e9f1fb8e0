"""Notebook plumbing: repo-root lookup, seeding, byte-stable atomic figure saving."""

from __future__ import annotations

import random
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from llm_auction_utils.workbook import notebook  # noqa: E402
from llm_auction_utils.workbook.notebook import (  # noqa: E402
    FIGURES_DIR_ENV,
    REPO_ROOT_ENV,
    data_path,
    repo_root,
    save_figure,
    seed_everything,
    setup_notebook,
)

ROOT = Path(__file__).resolve().parent.parent


def test_repo_root_from_any_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(REPO_ROOT_ENV, raising=False)
    monkeypatch.chdir(ROOT / "notebooks")
    assert repo_root() == ROOT
    monkeypatch.chdir(tmp_path)  # outside the tree: falls back to the package's location
    assert repo_root() == ROOT
    assert data_path("scenarios") == ROOT / "data" / "scenarios"


def test_repo_root_override_is_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(REPO_ROOT_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not point to the workbook root"):
        repo_root()


def test_seed_everything_reproduces_all_generators() -> None:
    seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            seed_everything(bad)  # type: ignore[arg-type]


def test_setup_notebook_rejects_bad_stem() -> None:
    with pytest.raises(ValueError, match="stem like"):
        setup_notebook("Tour")


def _figure() -> plt.Figure:
    fig, ax = plt.subplots()
    ax.plot(np.arange(5), np.arange(5) ** 2, label="squares")
    ax.legend()
    ax.set_title("byte-stable")
    return fig


def test_save_figure_is_byte_stable_and_atomic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(FIGURES_DIR_ENV, str(tmp_path))
    setup_notebook("99-plumbing-test", seed=0)
    paths = save_figure(_figure(), "curve")
    assert [p.name for p in paths] == ["curve.png", "curve.svg"]
    first = [p.read_bytes() for p in paths]
    plt.close("all")
    setup_notebook("99-plumbing-test", seed=0)
    second = [p.read_bytes() for p in save_figure(_figure(), "curve")]
    assert first == second
    assert b"<dc:date>" not in first[1]
    assert sorted(p.name for p in (tmp_path / "99-plumbing-test").iterdir()) == ["curve.png", "curve.svg"]
    pdf = save_figure(_figure(), "curve", formats=("pdf",))[0]
    assert b"CreationDate" not in pdf.read_bytes()


def test_save_figure_rejects_bad_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(FIGURES_DIR_ENV, str(tmp_path))
    setup_notebook("99-plumbing-test")
    with pytest.raises(ValueError, match="figure name"):
        save_figure(_figure(), "../escape")
    with pytest.raises(ValueError, match="unsupported figure format"):
        save_figure(_figure(), "ok", formats=("bmp",))
    monkeypatch.setattr(notebook, "_current_notebook", None)
    with pytest.raises(RuntimeError, match="call setup_notebook"):
        save_figure(_figure(), "ok")


def test_format_estimate_prints_no_digit_finer_than_the_standard_error():
    from llm_auction_utils.workbook.notebook import format_estimate

    assert format_estimate(0.21234, 0.0006) == "0.212"           # resolution 0.001 >= SE
    assert format_estimate(0.0112, 0.0001) == "0.0112"
    assert format_estimate(0.2693, 0.0012) == "0.27"
    assert format_estimate(-0.00004, 0.0003) == "0.000"          # no "-0.000"
    assert format_estimate(0.0, 0.0) == "0"                      # no spread: the value as it is
    assert format_estimate([0.5, 0.1234], [0.01, 0.001]).tolist() == ["0.50", "0.123"]
    with pytest.raises(ValueError, match="standard_error"):
        format_estimate(0.5, -1.0)


def test_interval_table_prints_fixed_decimals_and_marks_indistinguishable():
    import pandas as pd

    from llm_auction_utils.workbook.notebook import interval_table

    frame = pd.DataFrame({"m": ["a", "a", "b"], "w": [0, 1, 0], "estimate": [0.1234, -1.85e-18, 0.5],
                          "ci_low": [0.01, -0.03, 0.4], "ci_high": [0.2, 0.0, 0.6],
                          "verdict": ["higher", "indistinguishable", "higher"]})
    table = interval_table(frame, "m", "w")
    assert table.loc["a", 0] == "+0.12 [+0.01, +0.20]"
    assert table.loc["a", 1] == "+0.00 [-0.03, +0.00] ~0"  # round-off is not printed as a number
    assert table.loc["b", 1] == "not ranked"
