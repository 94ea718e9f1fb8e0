"""The figures of notebooks 00 and 01 (``workbook/plotting/auction.py``): what they draw, and clear errors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import llm_auction_utils  # noqa: E402
from llm_auction_utils import linear, log_linear  # noqa: E402
from llm_auction_utils.workbook.plotting import auction  # noqa: E402

BLOG = np.array([[0.8, 0.2], [1.0, 0.0], [0.0, 1.0]])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_exported_by_name_from_the_package() -> None:
    for name in auction.__all__:
        assert getattr(llm_auction_utils, name) is getattr(auction, name)


def test_stacked_distributions_draws_one_bar_per_agent_and_token() -> None:
    q = linear(BLOG, [1.0, 2.0, 2.0])
    fig = auction.plot_stacked_distributions(BLOG, q, ["Large", "Generative"], [1.0, 2.0, 2.0])
    ax = fig.axes[0]
    assert len(ax.patches) == 4 * 2                      # (3 agents + aggregate) x 2 tokens
    widths = [p.get_width() for p in ax.patches]
    assert widths[3] == pytest.approx(0.56) and widths[7] == pytest.approx(0.44)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["agent 1", "agent 2", "agent 3", "aggregate q"]
    assert {t.get_text() for t in ax.texts} == {"bid 1", "bid 2"}


def test_stacked_distributions_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError, match="one bid per agent"):
        auction.plot_stacked_distributions(BLOG, [0.5, 0.5], ["Large", "Generative"], [1.0, 2.0])
    with pytest.raises(ValueError, match="dists must be a non-empty 2-d array"):
        auction.plot_stacked_distributions([0.5, 0.5], [0.5, 0.5], ["a", "b"], [1.0])


def test_step_aggregates_boxes_the_chosen_words() -> None:
    step_q = np.array([[0.6, 0.4, 0.0], [0.0, 0.3, 0.7]])
    fig = auction.plot_step_aggregates(step_q, ["a", "b", "c"], ["1", "2"], [0, 2], title="t")
    boxes = [p for p in fig.axes[0].patches if not p.get_fill()]
    assert [(b.get_x(), b.get_y()) for b in boxes] == [(0, 0), (2, 1)]
    with pytest.raises(ValueError, match="step labels and chosen words"):
        auction.plot_step_aggregates(step_q, ["a", "b", "c"], ["1"], [0, 2], title="t")


def test_rules_along_share_draws_both_rules_and_their_difference() -> None:
    p = np.array([[0.7, 0.25, 0.05], [0.05, 0.2, 0.75]])
    lam = np.linspace(0, 1, 11)
    bids = np.stack([lam, 1 - lam], axis=1)
    dists = np.broadcast_to(p, (11, 2, 3))
    q = {"linear": linear(dists, bids), "log-linear": log_linear(dists, bids)}
    fig = auction.plot_rules_along_share(lam, q, {"x": 0, "y": 1}, marks={"here": 0.5})
    top, bottom = fig.axes[:2]
    assert len(top.get_lines()) == 2 * 2 + 1             # two rules per word, one mark
    difference = bottom.get_lines()[1].get_ydata()
    assert np.allclose(difference, q["log-linear"][:, 1] - q["linear"][:, 1])
    with pytest.raises(ValueError, match="exactly two rule names"):
        auction.plot_rules_along_share(lam, {"linear": q["linear"]}, {"x": 0})
    with pytest.raises(ValueError, match="need shape"):
        auction.plot_rules_along_share(lam[:5], q, {"x": 0})


def test_creatives_by_share_tiles_the_interval() -> None:
    intervals = [(0.0, 0.4, "one"), (0.5, 0.9, "two"), (1.0, 1.0, "three")]
    fig = auction.plot_creatives_by_share(intervals, 0.1, marks={"m": 0.45, "n": 0.6})
    ax = fig.axes[0]
    segments = [seg for coll in ax.collections for seg in coll.get_segments()]
    assert [(s[0][0], s[1][0]) for s in segments] == [(0.0, pytest.approx(0.5)), (0.5, 1.0), (1.0, 1.0)]
    assert [t.get_text() for t in ax.texts] == ['"one"', '"two"', '"three"', "m", "n"]
    with pytest.raises(ValueError, match="at least one interval"):
        auction.plot_creatives_by_share([], 0.1)
