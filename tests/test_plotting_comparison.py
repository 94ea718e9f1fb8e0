"""The figures of notebook 09: response curves and the gain-loss frontier, from the study's
summaries; clear errors for bad input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from llm_auction_utils.llm.study import bid_response, summarize  # noqa: E402
from llm_auction_utils.workbook.plotting.comparison import plot_bid_response, plot_gain_loss_frontier  # noqa: E402

MECHS = ["linear", "reference"]


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for q in range(12):
        for w in (0.0, 1.0):
            for lam in (0.2, 0.5, 0.8):
                for mech in MECHS:
                    ads = mech == "linear"
                    rows.append({"query_id": q, "mechanism": mech, "lam": lam, "platform_bid": w, "seed": 0,
                                 "mention_1": float(ads and lam > 0.4), "mention_2": float(ads and lam < 0.6),
                                 "gain_1": ads * (lam + 0.1 * rng.normal()), "gain_2": ads * (1 - lam),
                                 "gain": ads * 0.5, "user_loss": ads * (0.8 - 0.3 * w + 0.1 * rng.normal())})
    return pd.DataFrame(rows)


def test_bid_response_draws_one_panel_per_metric_and_weight():
    import matplotlib.pyplot as plt

    response, _ = bid_response(_table(), n_boot=200)
    fig = plot_bid_response(response, MECHS)
    assert len(fig.axes) == 4
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == MECHS
    assert fig.axes[0].get_title() == r"platform bid $\beta$ = 0" and fig.axes[1].get_title() == r"platform bid $\beta$ = 1"
    plt.close(fig)
    with pytest.raises(ValueError, match="no rows for advertiser 7"):
        plot_bid_response(response, MECHS, advertiser=7)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['ci_high'\]"):
        plot_bid_response(response.drop(columns=["ci_high"]), MECHS)


def test_frontier_has_one_legend_entry_per_mechanism_and_weight():
    import matplotlib.pyplot as plt

    summary = summarize(_table(), ["gain", "user_loss"], n_boot=200)
    fig = plot_gain_loss_frontier(summary, MECHS)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"{m}, $\\beta$ = {w}" for m in MECHS for w in (0, 1)]
    assert not ax.texts  # nothing drawn next to the points: no overprinting
    plt.close(fig)
