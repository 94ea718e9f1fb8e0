"""Figures of incentive properties (notebook 03): one agent's bid path, its payments, and the
pairs of bids that constrain any payment rule (notebooks/theory.md §3; agents numbered from 1)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ...theory.incentives import RELATIONS, pair_relations
from ...theory.preferences import token_excess

__all__ = ["plot_bid_paths", "plot_pair_constraints", "plot_payments_and_improvements"]

_KIND_COLORS = ("0.85", "#2a9d8f", "#f4a261", "#d62828")
"""Colours of the codes 0-3 of :func:`~llm_auction_utils.theory.incentives.pair_relations`: unchanged,
strictly better, incomparable, strictly worse."""


def plot_bid_paths(
    grid: np.ndarray, paths: Mapping[str, np.ndarray], p_i: np.ndarray, tokens: Sequence[str], atol: float,
    marks: Mapping[str, Sequence[float]] | None = None,
) -> Any:
    """One panel per rule: ``q(b)(t)`` along agent 1's bid ``b`` (solid) and ``p_1(t)`` (dashed); grid
    steps where the outcome moves away from ``p_1`` are shaded; ``marks`` draws vertical lines at bids."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(paths), figsize=(5.6 * len(paths), 4), sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (name, qs) in zip(axes[0], paths.items()):
        for t, token in enumerate(tokens):
            ax.plot(grid, qs[:, t], color=colors[t], lw=2, label=f"q(b)({token})")
            ax.axhline(p_i[t], color=colors[t], ls="--", lw=1.2, label=f"p_1({token}) = {p_i[t]:.2f}")
        away = token_excess(qs[1:], qs[:-1], p_i[None, :]).max(-1) > atol
        for k in np.flatnonzero(away):
            ax.axvspan(grid[k], grid[k + 1], color="red", alpha=0.12, lw=0)
        for b in (marks or {}).get(name, ()):
            ax.axvline(b, color="black", ls=":", lw=1.2)
        verdict = f"{int(away.sum())} of {len(away)} steps move away (shaded)" if away.any() else "monotone"
        ax.set_title(f"{name}: {verdict}", fontsize=11)
        ax.set_xlabel("agent 1's bid b (agent 2 bids 1)")
    axes[0, 0].set_ylabel("aggregate probability q(b)(t)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2 * len(tokens), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("Outcome path along agent 1's bid; dashed: agent 1's own distribution p_1", y=1.01)
    return fig


def plot_payments_and_improvements(
    grid: np.ndarray, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], p_i: np.ndarray, atol: float
) -> Any:
    """Per rule, the critical-bid payment ``z(b)`` (top) over a strip that classifies every grid step
    ``b_k -> b_{k+1}`` by :func:`~llm_auction_utils.theory.incentives.pair_relations`: unchanged, strictly
    better, incomparable or strictly worse (bottom).
    ``curves[name] = (z (G,), qs (G, V))``."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    n = len(curves)
    fig, axes = plt.subplots(2, n, figsize=(4.4 * n, 4.2), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [5, 1], "hspace": 0.08})
    cmap = ListedColormap(_KIND_COLORS)
    for j, (name, (z, qs)) in enumerate(curves.items()):
        steps = np.diagonal(pair_relations(qs, p_i, atol), offset=1)
        ax, strip = axes[0, j], axes[1, j]
        ax.plot(grid, z, color="C0", lw=2)
        ax.set_title(name, fontsize=11)
        strip.pcolormesh(grid, [0, 1], steps[None, :], cmap=cmap, vmin=-0.5, vmax=3.5, shading="flat",
                           rasterized=True)
        strip.set(yticks=[], xlabel="agent 1's bid b")
        strip.grid(False)
    axes[0, 0].set_ylabel("critical-bid payment z(b)")
    axes[1, 0].set_ylabel("step", rotation=0, ha="right", va="center")
    legend = [Patch(color=c, label=f"q(b_k+1) {k}") for c, k in zip(_KIND_COLORS, RELATIONS)]
    fig.legend(handles=legend, loc="lower center", ncol=4, fontsize=9, frameon=False, bbox_to_anchor=(0.5, -0.1))
    fig.suptitle("Critical-bid payment along agent 1's bid, over the kind of each grid step", y=1.0)
    return fig


def plot_pair_constraints(
    grid: np.ndarray, paths: Mapping[str, np.ndarray], p_i: np.ndarray, atol: float,
    chains: Mapping[str, Sequence[tuple[int, int, str]]] | None = None,
) -> Any:
    """Per rule, every pair of bids ``b < b'`` of agent 1 coloured by how agent 1 ranks ``q(b')`` against
    ``q(b)``, which is what payment monotonicity demands of the payments: ``z(b') > z(b)`` where strictly
    better, ``z(b') = z(b)`` where unchanged or incomparable (and there consistent aggregation fails),
    ``z(b) > z(b')`` where strictly worse (impossible for a non-decreasing ``z``).  ``chains`` marks the
    pairs of a certificate (circles); the axes leave room around the grid so that no circle is cut."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(1, len(paths), figsize=(5.4 * len(paths), 5.2), squeeze=False)
    step = grid[1] - grid[0]
    edges = np.r_[grid - step / 2, grid[-1] + step / 2]
    pad = 0.04 * (grid[-1] - grid[0])
    for ax, (name, qs) in zip(axes[0], paths.items()):
        rel = pair_relations(qs, p_i, atol).astype(float)
        upper = np.triu(np.ones_like(rel, dtype=bool), 1)
        ax.pcolormesh(edges, edges, np.where(upper, rel, np.nan).T, cmap=ListedColormap(_KIND_COLORS),
                      vmin=-0.5, vmax=3.5, shading="flat", rasterized=True)
        for k, l, _ in (chains or {}).get(name, ()):
            ax.plot(grid[k], grid[l], "o", ms=11, mfc="none", mec="black", mew=2, zorder=5)
        counts = [int((rel[upper] == code).sum()) for code in (1, 2, 3)]
        ax.set_title(f"{name}: of {int(upper.sum())} pairs, {counts[0]} better,\n"
                     f"{counts[1]} incomparable, {counts[2]} worse", fontsize=11)
        ax.set(xlabel="lower bid b", ylabel="higher bid b'", aspect="equal",
               xlim=(edges[0] - pad, edges[-1] + pad), ylim=(edges[0] - pad, edges[-1] + pad))
        ax.grid(False)
    labels = ["q(b') = q(b): z(b') = z(b)", "q(b') strictly better: z(b') > z(b)",
              "incomparable: z(b') = z(b)", "q(b') strictly worse: z(b) > z(b'), impossible"]
    legend = [Patch(color=c, label=t) for c, t in zip(_KIND_COLORS, labels)]
    fig.legend(handles=legend, loc="lower center", ncol=2, fontsize=9, frameon=False, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("What payment monotonicity demands of every pair of agent 1's bids", y=1.0)
    return fig
