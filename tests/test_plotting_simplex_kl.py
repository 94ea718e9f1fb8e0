"""The figure helpers of notebooks 02 (3-token simplex) and 05 (KL-derived rules)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import llm_auction_utils as lau
from llm_auction_utils.theory.aggregation import bid_path, linear, log_linear
from llm_auction_utils.theory.payments import kl_allocation, kl_preference_payments
from llm_auction_utils.workbook.plotting import kl, simplex

P3 = np.array([[0.32, 0.63, 0.05], [0.29, 0.08, 0.63], [0.62, 0.14, 0.24]])
P2 = np.array([[0.50, 0.49, 0.01], [0.01, 0.49, 0.50]])
P_ADS = np.array([[0.60, 0.05, 0.30, 0.05], [0.05, 0.60, 0.30, 0.05]])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", ["plot_simplex_bid_paths", "plot_share_sweep", "plot_share_paths",
                                  "plot_kl_loss_along_bids", "plot_kl_payments"])
def test_helpers_are_exported_by_name(name: str) -> None:
    assert callable(getattr(lau, name))
    assert name in simplex.__all__ or name in kl.__all__


def test_simplex_bid_paths_marks_only_the_points_outside_the_region() -> None:
    grid = np.concatenate([[0.0], np.logspace(-3, 3, 60)])
    paths = {rule: bid_path(P3, [0.0, 1.0, 1.0], 0, rule, grid) for rule in ("linear", "log_linear")}
    fig = simplex.plot_simplex_bid_paths(paths, P3, grid, titles={"linear": "lin", "log_linear": "log"}, suptitle="s")
    lin_ax, log_ax = fig.axes
    assert lin_ax.get_title() == "lin" and log_ax.get_title() == "log"
    assert not lin_ax.collections and len(log_ax.collections) == 1      # red dots only where the path leaves the region
    assert any("outside the region" in t.get_text() for t in log_ax.get_legend().get_texts())


def test_share_sweep_puts_the_common_value_in_the_legend_not_on_the_axes() -> None:
    lam = np.linspace(0, 1, 21)
    shares = np.stack([lam, 1 - lam], axis=1)
    stacked = np.broadcast_to(P2, (len(lam), 2, 3))
    fig = simplex.plot_share_sweep(P2, lam, {"linear": linear(stacked, shares), "log_linear": log_linear(stacked, shares)},
                                   labels=("left", "mid", "right"))
    right = fig.axes[1]
    assert not right.texts                                              # no label drawn over the lines
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert "p1(mid) = p2(mid) = 0.49" in legend
    assert any(text.startswith("log-linear at λ₁ = 0.5") for text in legend)


def test_share_paths_marks_a_peak_only_on_a_curve_that_moves() -> None:
    lam = np.linspace(0, 1, 21)
    bids = np.stack([lam, 1 - lam], axis=-1)
    stacked = np.broadcast_to(P_ADS, (len(lam), 2, 4))
    paths = {"linear": linear(stacked, bids), "log-linear": log_linear(stacked, bids)}
    fig = kl.plot_share_paths(lam, paths, P_ADS, ["Fly", "Enjoy", "Hawaii", "Book"], highlight=2)
    lin_ax, log_ax = fig.axes[:2]
    assert lin_ax.get_legend() is None                                  # Hawaii is constant under linear
    assert log_ax.get_legend().get_texts()[0].get_text() == "peak of q(Hawaii): 0.431"


def test_kl_loss_along_bids_crosses_the_first_violation() -> None:
    grid = np.linspace(0, 5, 51)
    fig = kl.plot_kl_loss_along_bids(grid, [("ads", P_ADS, [1.0, 1.0], 0)], ["Fly", "Enjoy", "Hawaii", "Book"])
    left = fig.axes[0]
    crosses = [line for line in left.lines if line.get_marker() == "x" and len(line.get_xdata())]
    assert len(crosses) == 1 and crosses[0].get_xdata()[0] == grid[1]   # the path leaves the region at the first step


def test_kl_payments_marks_each_utility_maximum_at_the_value() -> None:
    grid = np.round(np.linspace(0, 4, 81), 12)
    x = kl_allocation(P_ADS, [0.0, 1.0], 0, grid)
    z = kl_preference_payments(np.broadcast_to(P_ADS, (len(grid), 2, 4)),
                               np.stack([grid, np.ones_like(grid)], -1)).payments[:, 0]
    fig = kl.plot_kl_payments(grid, x, z, [0.5, 2.0])
    dots = [line for line in fig.axes[1].lines if line.get_marker() == "o"]
    assert [float(d.get_xdata()[0]) for d in dots] == [0.5, 2.0]        # truthful: the maximum sits at b = v
