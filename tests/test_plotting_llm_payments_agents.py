"""The figure helpers of notebooks 07 (payments on real distributions) and 08 (more than two agents)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import llm_auction_utils as lau
from llm_auction_utils.theory.incentives import utility_curves
from llm_auction_utils.theory.payments import linear_myerson_payment
from llm_auction_utils.workbook.plotting import agents, llm_payments
from llm_auction_utils.workbook.plotting.llm_payments import round_sig

NAMES = ["Alpha Airlines", "Beta Resort"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", sorted(set(llm_payments.__all__) | set(agents.__all__)))
def test_helpers_are_exported_by_name(name: str) -> None:
    assert callable(getattr(lau, name))


def test_round_sig_keeps_three_significant_digits_and_pandas_types() -> None:
    out = round_sig([0.0123456, 123456.0, 0.0, np.inf, -0.98765, 1e-300])
    np.testing.assert_array_equal(out[[0, 1, 2, 4]], [0.0123, 123000.0, 0.0, -0.988])
    assert np.isinf(out[3]) and out[5] == 1e-300
    frame = pd.DataFrame({"x": [0.123456, 2.34567], "token": ["a", "b"], "n": [1, 2], "flag": [True, False]}, index=[5, 6])
    rounded = round_sig(frame)
    assert rounded["x"].tolist() == [0.123, 2.35] and rounded["token"].tolist() == ["a", "b"]
    assert rounded["n"].dtype == frame["n"].dtype and rounded["flag"].tolist() == [True, False]
    assert list(round_sig(frame["x"]).index) == [5, 6]


def test_round_sig_removes_round_off_below_the_fourth_digit() -> None:
    x = np.array([0.123456789, 4.56789e-5])
    assert np.array_equal(round_sig(x), round_sig(x * (1 + 1e-7)))


def test_payments_vs_bid_draws_one_curve_per_series() -> None:
    bids = [0.25, 1.0, 4.0]
    expected = {"Alpha Airlines": [0.01, 0.05, 0.3], "Beta Resort": [0.08, 0.06, 0.03]}
    fig = llm_payments.plot_payments_vs_bid(bids, expected, [0.0, 0.1, 0.5], "Alpha Airlines", {"Beta Resort": 1.0})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    realized = [line for line in ax.get_lines() if line.get_label().startswith("critical bid, realized")][0]
    assert len(realized.get_xdata()) == 2                       # a realized payment of 0 is left off the log axis


def test_tv_factor_lines_have_the_myerson_slopes() -> None:
    tv = np.array([0.1, 0.5, 0.9, 0.2])
    bid = np.array([1.0, 1.0, 2.0, 2.0])
    pay = tv * linear_myerson_payment(bid, 1.0)
    fig = llm_payments.plot_tv_factor(tv, pay, bid, 1.0, "Alpha Airlines", ["Travel", " to", " Alpha"], [0.0, 0.3, 0.9],
                                      {"Alpha Airlines": 0.193, "Beta Resort": 0.193})
    left, right, twin = fig.axes
    slopes = sorted(float(line.get_ydata()[1]) for line in left.get_lines())
    np.testing.assert_allclose(slopes, linear_myerson_payment(np.array([1.0, 2.0]), 1.0))
    assert len(right.patches) == 3 and twin.get_ylim()[1] == pytest.approx(1.05 * 0.193)


def test_utility_vs_bid_marks_the_truthful_bid() -> None:
    rng = np.random.default_rng(0)
    crit = np.where(rng.random((5, 200)) < 0.4, rng.random((5, 200)) * 3, np.inf)
    grid = np.linspace(0.0, 4.0, 41)
    curves = {v: utility_curves(crit, np.full(5, 0.4), np.ones(5), v, grid) for v in (0.5, 2.0)}
    fig = llm_payments.plot_utility_vs_bid(grid, curves, "Alpha Airlines")
    assert len(fig.axes) == 2 and fig.axes[0].get_title().startswith("Critical bid")


def test_joint_payments_and_loglinear_steps() -> None:
    expected = np.array([[0.1, 0.05], [0.0, 0.0], [0.2, 0.1]])
    fig = llm_payments.plot_joint_payments(expected, expected * 1.1, np.full((3, 2), 0.01), NAMES, 4.0)
    assert len(fig.axes[0].patches) == 6
    worst = np.array([[0.0, 1e-3], [2e-2, 1e-9]])
    fig = llm_payments.plot_loglinear_steps(["a", "b"], worst, np.array([[0.1, 0.2], [0.3, 0.0]]), NAMES, 1e-7)
    top = fig.axes[0]
    assert top.get_yscale() == "log" and min(min(line.get_ydata()) for line in top.get_lines()[:2]) >= top.get_ylim()[0]
    # violations under the floor (0 included) are open triangles on the floor, labelled as a bound, not dots
    dots = [y for line in top.get_lines() if line.get_marker() == "o" for y in line.get_ydata()]
    floors = [y for line in top.get_lines() if line.get_marker() == "v" for y in line.get_ydata()]
    assert sorted(dots) == [1e-3, 2e-2] and floors == [1e-8, 1e-8]
    assert any(t.get_text().startswith("below 1e-08") for t in top.get_legend().get_texts())


def test_agents_figures() -> None:
    paid = pd.DataFrame({"scenario": ["s"] * 6, "bids": ["1 / 1 / 1"] * 3 + ["0 / 0 / 1"] * 3,
                         "agent": ["A", "B", "P"] * 2, "role": ["advertiser", "advertiser", "platform"] * 2,
                         "paid": [0.5, 0.4, 0.3, 0.0, 0.0, 0.0], "tokens": [10] * 3 + [12] * 3})
    colors = {"A": "C0", "B": "C1", "P": "C2"}
    fig = agents.plot_payments_per_profile(paid, colors)
    assert len(fig.axes[0].patches) == 6
    infl = pd.DataFrame({"A": [0.2, 0.9], "B": [0.8, 0.1]}, index=pd.Index(["x", "y"], name="token"))
    fig = agents.plot_influence_per_token([("t", infl, [0.5, 0.5])])
    assert fig.axes[0].get_title() == "t"
    pts = pd.DataFrame({"scenario": ["s", "s"], "agent": ["A", "B"], "share": [0.5, 0.5], "mean influence": [0.6, 0.4]})
    assert len(agents.plot_influence_vs_share(pts, colors).axes) == 1


def test_myerson_vs_competition_marks_the_maximum() -> None:
    grid = np.geomspace(0.05, 20.0, 50)
    fig = agents.plot_myerson_vs_competition([1.0, 3.0], grid, 2.1626, marks={"x": (2.0, 1.0)})
    peaks = [line for line in fig.axes[0].get_lines() if line.get_marker() == "v"]
    for bid, peak in zip([1.0, 3.0], peaks):
        B = float(peak.get_xdata()[0])
        assert B == pytest.approx(bid / 2.1626)
        assert float(linear_myerson_payment(bid, B)) >= linear_myerson_payment(bid, grid).max() - 1e-12
