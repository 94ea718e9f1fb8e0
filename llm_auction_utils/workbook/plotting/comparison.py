"""Figures of the study of notebook 09: mechanisms on real user queries (theory chapter §4, §6).

Both read long tables of estimates with 95% bootstrap intervals over queries
(:func:`~llm_auction_utils.llm.study.bid_response`, :func:`~llm_auction_utils.llm.study.summarize`;
columns ``estimate``, ``ci_low``, ``ci_high``).  Model-derived numbers are rounded to three
significant digits before they are drawn (:func:`~.llm_payments.round_sig`), so a rerun on another
CPU draws the same pixels unless a number moves in its third digit.

- :func:`plot_bid_response` -- what each mechanism gives an advertiser as its own bid share rises:
  own-brand mention rate and gain, one panel per platform bid;
- :func:`plot_gain_loss_frontier` -- the advertisers' gain against the user's loss, one point per
  mechanism and platform bid, with intervals paired against the no-ads reference.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .llm_payments import round_sig

__all__ = ["plot_bid_response", "plot_gain_loss_frontier"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "*")
_NEEDED = {"estimate", "ci_low", "ci_high", "metric"}


def _rounded(frame: pd.DataFrame, needed: set[str], what: str) -> pd.DataFrame:
    missing = needed - set(frame.columns)
    if missing:
        raise ValueError(f"{what} lacks the column(s) {sorted(missing)}")
    out = frame.copy()
    for col in ("estimate", "ci_low", "ci_high"):
        out[col] = round_sig(out[col].to_numpy(dtype=np.float64))
    return out


def plot_bid_response(response: pd.DataFrame, mechanisms: Sequence[str], *, advertiser: int = 0,
                      labels: Mapping[str, str] | None = None) -> Any:
    """Own-brand mention rate (top row) and own gain (bottom row) against the advertiser's own bid
    share, one line per mechanism with 95% intervals, one column per platform bid.

    ``response``: :func:`~llm_auction_utils.llm.study.bid_response`'s first table; ``advertiser``
    0 pools both advertisers (each at its own share).  Lines are shifted a little sideways so that
    their intervals do not hide each other.  Returns the figure."""
    import matplotlib.pyplot as plt

    data = _rounded(response, _NEEDED | {"mechanism", "platform_bid", "advertiser", "own_share"}, "response")
    data = data[data["advertiser"] == advertiser]
    if data.empty:
        raise ValueError(f"response has no rows for advertiser {advertiser}")
    weights = sorted(data["platform_bid"].unique())
    metrics = [m for m in ("mention", "gain") if m in set(data["metric"])]
    names = {"mention": "own-brand mention rate", "gain": "own gain (nats per token)", **(labels or {})}
    fig, axes = plt.subplots(len(metrics), len(weights), figsize=(4.6 * len(weights), 3.4 * len(metrics)),
                             sharex=True, sharey="row", squeeze=False)
    offsets = np.linspace(-0.02, 0.02, len(mechanisms))
    for r, metric in enumerate(metrics):
        for c, w in enumerate(weights):
            ax = axes[r, c]
            for k, mech in enumerate(mechanisms):
                g = data[(data["metric"] == metric) & (data["platform_bid"] == w) & (data["mechanism"] == mech)]
                g = g.sort_values("own_share")
                ax.errorbar(g["own_share"] + offsets[k], g["estimate"],
                            yerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]],
                            marker=_MARKERS[k % len(_MARKERS)], ms=5, capsize=2, lw=1.2, label=mech)
            ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
            ax.set(title=f"platform bid $\\beta$ = {w:g}" if r == 0 else None, ylabel=names[metric] if c == 0 else None,
                   xlabel="the advertiser's share of the advertisers' bids" if r == len(metrics) - 1 else None)
    axes[0, -1].legend(fontsize=8, title="mechanism", title_fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_gain_loss_frontier(summary: pd.DataFrame, mechanisms: Sequence[str], *,
                            labels: Mapping[str, str] | None = None) -> Any:
    """The advertisers' gain (x) against the user's loss (y), one point per mechanism and platform
    bid (filled: bid 0; open: positive bids), each with its 95% intervals in both
    directions; the no-ads reference sits at (0, 0) by definition.  Mechanisms are told apart by
    marker and colour in the legend (no text is drawn next to a point, so nothing overprints).

    ``summary``: :func:`~llm_auction_utils.llm.study.summarize` of the metrics ``gain`` and
    ``user_loss`` by ``mechanism`` and ``platform_bid``.  Returns the figure."""
    import matplotlib.pyplot as plt

    data = _rounded(summary, _NEEDED | {"mechanism", "platform_bid"}, "summary")
    wide = data.pivot_table(index=["mechanism", "platform_bid"], columns="metric",
                            values=["estimate", "ci_low", "ci_high"])
    fig, ax = plt.subplots(figsize=(9.0, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    weights = sorted(data["platform_bid"].unique())
    for k, mech in enumerate(mechanisms):
        for w in weights:
            if (mech, w) not in wide.index:
                continue
            row = wide.loc[(mech, w)]
            x, y = row[("estimate", "gain")], row[("estimate", "user_loss")]
            ax.errorbar(x, y, xerr=[[x - row[("ci_low", "gain")]], [row[("ci_high", "gain")] - x]],
                        yerr=[[y - row[("ci_low", "user_loss")]], [row[("ci_high", "user_loss")] - y]],
                        marker=_MARKERS[k % len(_MARKERS)], ms=8, capsize=3, lw=1.1, color=colors[k % len(colors)],
                        mfc=colors[k % len(colors)] if w == weights[0] else "white",
                        label=f"{mech}, $\\beta$ = {w:g}")
    ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
    ax.axvline(0.0, color="0.6", lw=0.8, zorder=0)
    names = {"gain": "advertisers' gain (nats per token, vs no ads)",
             "user_loss": "user's loss, by the judge (nats per token, vs no ads)", **(labels or {})}
    ax.set(xlabel=names["gain"], ylabel=names["user_loss"])
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    for line in ax.lines:
        line.set_alpha(0.85)  # a point that lies under another stays visible
    fig.tight_layout()
    return fig
