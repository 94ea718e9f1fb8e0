"""The figures of notebook 06 (``workbook/plotting/creatives.py``): what they draw, and clear errors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import llm_auction_utils  # noqa: E402
from llm_auction_utils.workbook.plotting import creatives  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_exported_by_name_from_the_package() -> None:
    assert creatives.__all__
    for name in creatives.__all__:
        assert getattr(llm_auction_utils, name) is getattr(creatives, name)


def test_sig3_rounds_to_three_significant_digits() -> None:
    x = creatives._sig3([0.123456, 3.61419e-06, 0.0, -12345.6, 0.87422])
    assert x.tolist() == [0.123, 3.61e-06, 0.0, -12300.0, 0.874]


def test_runs_are_the_contiguous_stretches_of_the_mask() -> None:
    lam = np.linspace(0, 1, 11)
    mask = np.array([0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1], bool)
    assert creatives._runs(lam, mask) == [(0.1, 0.2), (0.5, 0.5), (0.8, 1.0)]
    assert creatives._runs(lam, np.zeros(11, bool)) == []


def _creatives() -> pd.DataFrame:
    texts = {0.0: "Stay at Beta Resort.", 0.5: "Fly Alpha Airlines, stay at Beta Resort.", 1.0: "Fly Alpha Airlines."}
    rows = [{"rule": rule, "lambda": lam, "creative": text if rule == "linear" else "Enjoy Hawaii."}
            for rule in ["linear", "log_linear"] for lam, text in texts.items()]
    return pd.DataFrame(rows)


def test_creatives_table_colours_each_creative_by_the_brands_it_names() -> None:
    fig = creatives.plot_creatives_table(_creatives(), ["Alpha", "Beta"], title="t")
    colours = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert colours["Stay at Beta Resort."] == "C1"
    assert colours["Fly Alpha Airlines, stay at Beta Resort."] == "C4"
    assert colours["Fly Alpha Airlines."] == "C0"
    assert colours["Enjoy Hawaii."] == "dimgray"
    assert {"linear rule", "log-linear rule", "λ = 0.5"} <= set(colours)


def test_creatives_table_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="columns"):
        creatives.plot_creatives_table(_creatives().drop(columns="creative"), ["Alpha", "Beta"])
    with pytest.raises(ValueError, match="two advertisers"):
        creatives.plot_creatives_table(_creatives(), ["Alpha"])


def _slots() -> pd.DataFrame:
    lam = np.linspace(0, 1, 11)
    rows = []
    for slot, token, lo, hi in [("Alpha's slot", " Alpha", 0.3, 1.0), ("Beta's slot", " Beta", 0.0, 0.7)]:
        for rule in ["linear", "log_linear"]:
            shift = 0.0 if rule == "linear" else 0.2
            wins = (lam >= lo + shift - 1e-9) & (lam <= hi - shift + 1e-9)
            rows += [{"slot": slot, "token": token, "rule": rule, "lambda": x, "q": 0.5, "wins": bool(w)}
                     for x, w in zip(lam, wins)]
    return pd.DataFrame(rows)


def test_slot_contest_draws_one_panel_per_slot_and_the_winning_intervals() -> None:
    fig = creatives.plot_slot_contest(_slots(), title="t")
    assert len(fig.axes) == 3
    bars = [line for line in fig.axes[2].get_lines() if line.get_linewidth() == 8]
    spans = sorted((round(min(b.get_xdata()), 2), round(max(b.get_xdata()), 2)) for b in bars)
    assert spans == [(0.0, 0.7), (0.2, 0.5), (0.3, 1.0), (0.5, 0.8)]
    assert [t.get_text() for t in fig.axes[2].get_yticklabels()] == ["linear", "log-linear"]


def test_slot_contest_needs_its_columns() -> None:
    with pytest.raises(ValueError, match="wins"):
        creatives.plot_slot_contest(_slots().drop(columns="wins"))


def test_fixed_prefix_divergences_draws_every_rule_and_agent_per_prefix() -> None:
    lam = np.linspace(0, 1, 5)
    fine = pd.DataFrame([{"prefix": p, "rule": r, "lambda": x, "D_A": 1 - x, "D_B": x}
                         for p in ["first token", "a slot"] for r in ["linear", "log_linear"] for x in lam])
    fig = creatives.plot_fixed_prefix_divergences(fine, ["A", "B"], title="t")
    assert len(fig.axes) == 2
    assert all(len(ax.get_lines()) == 4 for ax in fig.axes)
    assert [ax.get_title() for ax in fig.axes] == ["first token", "a slot"]
    with pytest.raises(ValueError, match="D_C"):
        creatives.plot_fixed_prefix_divergences(fine, ["A", "C"])
