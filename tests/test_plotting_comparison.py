"""The figure of notebook 09: one line per mechanism, points per bid profile, clear errors for bad input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from llm_auction_utils.workbook.plotting.comparison import plot_mechanism_frontier  # noqa: E402


def _summary() -> pd.DataFrame:
    rows = []
    for mech in ("linear", "reference"):
        for p in range(2):
            for metric, base in (("relevance", -1.5), ("adv_value", -1.2), ("revenue", 0.8)):
                m = base + 0.1 * p + (0.2 if mech == "reference" else 0)
                rows.append({"mechanism": mech, "profile": p, "metric": metric, "mean": m, "lo": m - 0.05, "hi": m + 0.05})
    return pd.DataFrame(rows)


def test_frontier_draws_one_line_per_mechanism():
    import matplotlib.pyplot as plt

    fig = plot_mechanism_frontier(_summary(), "revenue", profile_labels=["2 / 1 / 0", "2 / 1 / 3"],
                                  labels={"revenue": "revenue"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["linear", "reference"]
    assert ax.get_ylabel() == "revenue" and ax.get_xlabel() == "relevance"
    plt.close(fig)


def test_frontier_names_a_missing_metric():
    with pytest.raises(ValueError, match="no rows for the metric 'kl_ref'"):
        plot_mechanism_frontier(_summary(), "kl_ref")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['hi'\]"):
        plot_mechanism_frontier(_summary().drop(columns=["hi"]))
