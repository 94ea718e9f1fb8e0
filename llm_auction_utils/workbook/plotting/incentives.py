"""Figures of incentive properties (notebook 03): one agent's bid path, its payments, and the
pairs of bids that constrain any payment rule (theory chapter §3; agents numbered from 1)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ...theory.preferences import token_excess

__all__ = ["pair_relations", "plot_bid_paths", "plot_pair_constraints", "plot_payments_and_improvements"]

STEP_KINDS = ("unchanged", "strict improvement", "not preferred")
"""Codes 0, 1, 2 of :func:`pair_relations`."""

_KIND_COLORS = ("0.85", "#2a9d8f", "#d62828")


def pair_relations(qs: np.ndarray, p_i: np.ndarray, atol: float) -> np.ndarray:
    """``R[k, l]`` for every pair of path points: 0 unchanged (``q_l = q_k``), 1 strict improvement
    (``q_l >_i q_k``), 2 not preferred (``q_l`` outside the intervals between ``q_k`` and ``p_i``)."""
    excess = token_excess(qs[None, :, :], qs[:, None, :], p_i[None, None, :]).max(-1)
    moved = np.abs(qs[None, :, :] - qs[:, None, :]).max(-1) > atol
    return np.where(excess > atol, 2, np.where(moved, 1, 0))


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
    ``b_k -> b_{k+1}``: strict improvement, unchanged, or not preferred (bottom).
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
        strip.pcolormesh(grid, [0, 1], steps[None, :], cmap=cmap, vmin=-0.5, vmax=2.5, shading="flat",
                           rasterized=True)
        strip.set(yticks=[], xlabel="agent 1's bid b")
        strip.grid(False)
    axes[0, 0].set_ylabel("critical-bid payment z(b)")
    axes[1, 0].set_ylabel("step", rotation=0, ha="right", va="center")
    legend = [Patch(color=c, label=f"step b_k -> b_k+1: {k}") for c, k in zip(_KIND_COLORS, STEP_KINDS)]
    fig.legend(handles=legend, loc="lower center", ncol=3, fontsize=9, frameon=False, bbox_to_anchor=(0.5, -0.1))
    fig.suptitle("Critical-bid payment along agent 1's bid, over the kind of each grid step", y=1.0)
    return fig


def plot_pair_constraints(
    grid: np.ndarray, paths: Mapping[str, np.ndarray], p_i: np.ndarray, atol: float,
    chains: Mapping[str, Sequence[tuple[int, int, str]]] | None = None,
) -> Any:
    """Per rule, every pair of bids ``b < b'`` of agent 1 coloured by what payment monotonicity demands:
    ``z(b') > z(b)`` on strict improvements, ``z(b') = z(b)`` on the others (unchanged, or not preferred:
    there consistent aggregation fails).  ``chains`` marks the pairs of a contradiction (circles)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(1, len(paths), figsize=(5.4 * len(paths), 5), squeeze=False)
    step = grid[1] - grid[0]
    edges = np.r_[grid - step / 2, grid[-1] + step / 2]
    for ax, (name, qs) in zip(axes[0], paths.items()):
        rel = pair_relations(qs, p_i, atol).astype(float)
        upper = np.triu(np.ones_like(rel, dtype=bool), 1)
        ax.pcolormesh(edges, edges, np.where(upper, rel, np.nan).T, cmap=ListedColormap(_KIND_COLORS),
                      vmin=-0.5, vmax=2.5, shading="flat", rasterized=True)
        for k, l, _ in (chains or {}).get(name, ()):
            ax.plot(grid[k], grid[l], "o", ms=11, mfc="none", mec="black", mew=2, clip_on=False, zorder=5)
        n_strict, n_bad = int((rel[upper] == 1).sum()), int((rel[upper] == 2).sum())
        ax.set_title(f"{name}: {n_strict} strict, {n_bad} not preferred\nof {int(upper.sum())} pairs", fontsize=11)
        ax.set(xlabel="lower bid b", ylabel="higher bid b'", aspect="equal")
        ax.grid(False)
    legend = [Patch(color=_KIND_COLORS[1], label="q(b') strictly preferred: z(b') > z(b)"),
              Patch(color=_KIND_COLORS[2], label="q(b') not preferred: z(b') = z(b)"),
              Patch(color=_KIND_COLORS[0], label="q(b') = q(b): z(b') = z(b)")]
    fig.legend(handles=legend, loc="lower center", ncol=3, fontsize=9, frameon=False, bbox_to_anchor=(0.5, -0.04))
    fig.suptitle("What payment monotonicity demands of every pair of agent 1's bids", y=1.0)
    return fig
