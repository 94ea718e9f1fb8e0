"""Figures of auctions with more than two agents (notebook 08), in the theory chapter's notation
(§1, §4.1, §6).

Model-derived numbers (payments, influences) are rounded to three significant digits before they are
drawn (:func:`~.llm_payments.round_sig`), so a rerun on another CPU draws the same pixels.

- :func:`plot_payments_per_profile` -- each agent's expected critical-bid payment per creative, one
  group of bars per bid profile, one panel per scenario;
- :func:`plot_influence_per_token` -- the agents' influence ``lambda_i p_i(t) / q(t)`` on every token of
  a few creatives;
- :func:`plot_influence_vs_share` -- an agent's mean influence over a creative against its bid share;
- :func:`plot_myerson_vs_competition` -- the linear rule's Myerson payment ``z(b_i, B_{-i})`` against the
  others' total bid, with the turning point ``B_{-i} = b_i / y*``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llm_auction_utils.theory.payments import linear_myerson_payment

from .llm_payments import round_sig

__all__ = ["plot_influence_per_token", "plot_influence_vs_share", "plot_myerson_vs_competition", "plot_payments_per_profile"]


def plot_payments_per_profile(payments: pd.DataFrame, colors: Mapping[str, str]) -> Any:
    """One panel (row) per ``scenario`` of ``payments`` (columns ``scenario``, ``bids``, ``agent``, ``role``,
    ``paid``, ``tokens``): per bid profile, a bar per agent with its expected critical-bid payment for the
    whole creative (platform agents hatched), the creative's length under the group.  ``colors``: one
    colour per agent.  Returns the figure."""
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(payments["scenario"]))
    sizes = [payments.loc[payments["scenario"] == g, "bids"].nunique() for g in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(max(8.0, 1.7 * max(sizes) + 2.5), 4.3 * len(groups)), squeeze=False)
    for ax, group in zip(axes[:, 0], groups):
        sub = payments[payments["scenario"] == group]
        profiles, agents = list(dict.fromkeys(sub["bids"])), list(dict.fromkeys(sub["agent"]))
        width = 0.8 / len(agents)
        for i, agent in enumerate(agents):
            rows = sub[sub["agent"] == agent].set_index("bids").reindex(profiles)
            platform = rows["role"].eq("platform").any()
            xs, paid = np.arange(len(profiles)) + (i - (len(agents) - 1) / 2) * width, round_sig(rows["paid"])
            ax.bar(xs, paid, width, color=colors[agent], label=agent, hatch="//" if platform else None, edgecolor="white")
            for x, z in zip(xs, paid):  # a payment of 0 is a result, not a missing bar
                if z == 0:
                    ax.annotate("0", (x, 0), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7,
                                color=colors[agent])
        tokens = sub.groupby("bids", sort=False)["tokens"].first().reindex(profiles)
        for x, n in enumerate(tokens):
            ax.annotate(f"{n} tok.", (x, 0), xytext=(0, -30), textcoords="offset points", ha="center", fontsize=8, color="0.35")
        ax.set(xticks=np.arange(len(profiles)), xticklabels=profiles, title=group, ylabel="expected payment per creative")
        ax.set_xlabel("bids (" + " / ".join(agents) + ")", labelpad=20)
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle("Critical-bid payments per agent and bid profile (greedy creatives, linear rule)", y=1.0)
    fig.tight_layout()
    return fig


def plot_influence_per_token(creatives: Sequence[tuple[str, pd.DataFrame, Sequence[float]]]) -> Any:
    """One heat map per ``(title, influence, shares)``: ``influence`` has a row per token (indexed by its
    text) and a column per agent (from :func:`~llm_auction_utils.llm.influence.token_influence`),
    ``shares`` the agents' bid shares; values of at least 0.5 are written in the cells.  Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(creatives), 1, figsize=(14, 3.3 * len(creatives) + 0.6), squeeze=False,
                             gridspec_kw={"hspace": 0.8})
    image = None
    for ax, (title, infl, shares) in zip(axes[:, 0], creatives):
        values = round_sig(infl.to_numpy()).T
        image = ax.imshow(values, aspect="auto", cmap="magma_r", vmin=0, vmax=1)
        ax.set_yticks(range(values.shape[0]), [f"{a} (share {s:.2f})" for a, s in zip(infl.columns, shares)])
        ax.set_xticks(range(values.shape[1]), [repr(str(t))[1:-1] for t in infl.index], rotation=60, ha="right", fontsize=9)
        ax.grid(False)
        for (j, k), val in np.ndenumerate(values):
            if val >= 0.5:
                ax.text(k, j, f"{val:.2f}", ha="center", va="center", fontsize=7, color="white")
        ax.set_title(title, fontsize=11)
    fig.colorbar(image, ax=axes[:, 0].tolist(), label="influence λ_i p_i(t) / q(t)", fraction=0.025, pad=0.01)
    return fig


def plot_influence_vs_share(points: pd.DataFrame, colors: Mapping[str, str]) -> Any:
    """Each row of ``points`` (columns ``scenario``, ``agent``, ``share``, ``mean influence``) is one agent
    in one creative; one marker per scenario, one colour per agent; the dashed diagonal is influence =
    share.  Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5))
    ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="influence = share")
    for k, scenario in enumerate(dict.fromkeys(points["scenario"])):
        for agent in dict.fromkeys(points["agent"]):
            sel = points[(points["agent"] == agent) & (points["scenario"] == scenario)]
            if len(sel):
                ax.scatter(sel["share"], round_sig(sel["mean influence"]), color=colors[agent], marker="os^D"[k % 4], s=60,
                           alpha=0.85, edgecolor="black", lw=0.5, label=f"{agent} ({scenario})")
    ax.set(xlim=(0, 1.03), ylim=(0, 1.03), xlabel=r"bid share $\lambda_i$", ylabel="mean influence over the creative's tokens",
           title="Influence on the written tokens vs bid share")
    ax.legend(fontsize=8.5, loc="upper left")
    fig.tight_layout()
    return fig


def plot_myerson_vs_competition(bids: Sequence[float], others_grid: np.ndarray, ratio: float,
                                marks: Mapping[str, tuple[float, float]] | None = None) -> Any:
    """The Myerson payment ``z(b, B_{-i}) = B_{-i} ln(1 + b/B_{-i}) - b B_{-i}/(b + B_{-i})`` against
    ``B_{-i}`` in ``others_grid`` (log axis), one curve per bid ``b`` in ``bids``, with its maximum at
    ``B_{-i} = b / ratio`` (``ratio`` ~ 2.1626): to the left ``z`` rises with competition, to the right it
    falls.  ``marks``: labelled points ``(B_{-i}, b)``.  Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    for k, b in enumerate(bids):
        ax.plot(others_grid, linear_myerson_payment(b, others_grid), color=f"C{k}", lw=2, label=f"b_i = {b:g}")
        top = b / ratio
        ax.plot(top, float(linear_myerson_payment(b, top)), "v", color=f"C{k}", ms=9, mec="black",
                label=f"maximum at B_-i = b_i / {ratio:.4f} = {top:.3g}")
    for label, (B, b) in (marks or {}).items():
        ax.plot(B, float(linear_myerson_payment(b, B)), "o", color="black", ms=6)
        ax.annotate(label, (B, float(linear_myerson_payment(b, B))), xytext=(6, 6), textcoords="offset points", fontsize=9)
    ax.set(xscale="log", xlabel="the others' total bid B_-i", ylabel="Myerson payment z(b_i, B_-i)",
           title="More competition lowers the payment only while b_i / B_-i < 2.16")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig
