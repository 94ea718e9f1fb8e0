"""Figures of mechanisms compared on real user queries (notebook 09; theory chapter §4, §6).

Both figures read the long table of :func:`~llm_auction_utils.llm.mechanisms.bootstrap_summary`
(columns ``mechanism``, ``profile``, ``metric``, ``mean``, ``lo``, ``hi``): one point per
(mechanism, bid profile), the mean over queries with its bootstrap confidence interval as error
bars, the points of one mechanism joined in the order of the bid profiles.  Model-derived numbers
are rounded to three significant digits before they are drawn (:func:`~.llm_payments.round_sig`),
so a rerun on another CPU draws the same pixels.

- :func:`plot_mechanism_frontier` -- any metric against user relevance: the advertisers' value
  (the value-relevance frontier as the bids vary) or the revenue.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .llm_payments import round_sig

__all__ = ["plot_mechanism_frontier"]

_MARKERS = ("o", "s", "^", "D", "*", "v", "P")


def _metric_frame(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``mechanism``, ``profile`` and the metric's ``mean``, ``lo``, ``hi`` (rounded), one row each."""
    missing = {"mechanism", "profile", "metric", "mean", "lo", "hi"} - set(summary.columns)
    if missing:
        raise ValueError(f"summary lacks the column(s) {sorted(missing)} (use bootstrap_summary)")
    sub = summary[summary["metric"] == metric]
    if sub.empty:
        raise ValueError(f"summary has no rows for the metric {metric!r}; it has {sorted(set(summary['metric']))}")
    sub = sub[["mechanism", "profile", "mean", "lo", "hi"]].copy()
    for col in ("mean", "lo", "hi"):
        sub[col] = round_sig(sub[col].to_numpy(dtype=np.float64))
    return sub


def plot_mechanism_frontier(summary: pd.DataFrame, y: str = "adv_value", *, x: str = "relevance",
                            profile_labels: Sequence[str] | None = None, labels: Mapping[str, str] | None = None,
                            ax: Any = None) -> Any:
    """Each mechanism's mean ``y`` against its mean ``x`` (default: user relevance), one point per bid
    profile with bootstrap-CI error bars in both directions, the profiles of one mechanism joined in
    order (the frontier as the bids vary) and the first profile's point labelled with its bids
    (``profile_labels``).  ``labels``: axis labels by metric name.  Returns the figure."""
    import matplotlib.pyplot as plt

    xs, ys = _metric_frame(summary, x), _metric_frame(summary, y)
    both = xs.merge(ys, on=["mechanism", "profile"], suffixes=("_x", "_y"))
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 5.2))
    else:
        fig = ax.figure
    names = labels or {}
    for k, (mech, grp) in enumerate(both.groupby("mechanism", sort=False)):
        grp = grp.sort_values("profile")
        ax.errorbar(grp["mean_x"], grp["mean_y"],
                    xerr=[grp["mean_x"] - grp["lo_x"], grp["hi_x"] - grp["mean_x"]],
                    yerr=[grp["mean_y"] - grp["lo_y"], grp["hi_y"] - grp["mean_y"]],
                    marker=_MARKERS[k % len(_MARKERS)], ms=7, capsize=3, lw=1.2, label=str(mech), alpha=0.9)
        if profile_labels is not None and len(grp) > 1:
            for _, row in grp.iloc[[0, -1]].iterrows():
                ax.annotate(profile_labels[int(row["profile"])], (row["mean_x"], row["mean_y"]), xytext=(5, 4),
                            textcoords="offset points", fontsize=7, color="0.35")
    ax.set(xlabel=names.get(x, x), ylabel=names.get(y, y))
    ax.legend(fontsize=9, title="mechanism", title_fontsize=9)
    fig.tight_layout()
    return fig
