"""Plotting helpers shared by the notebooks: the 3-token simplex in barycentric coordinates.

A distribution ``q`` over three tokens is drawn at ``q(1) E_1 + q(2) E_2 + q(3) E_3`` with the
corners ``E_1`` (left), ``E_2`` (top), ``E_3`` (right) of an equilateral triangle, the point
masses on the three tokens (notebooks/theory.md §2 pictures).

- :func:`draw_simplex`, :func:`simplex_xy` -- the triangle and the map to the plane;
- :func:`plot_preference_box` -- the coordinatewise order of one agent: each token's interval
  between ``q(t)`` and ``p_i(t)`` (the box) and the box cut by the simplex (notebook 02, section 1;
  the theory chapter's §2 figure);
- :func:`plot_simplex_bid_paths` -- one agent's bid path under several rules, with its
  preferred region at bid 0 (notebook 02, section 2);
- :func:`plot_share_sweep` -- two agents, the first agent's share from 0 to 1: the paths on the
  simplex and the token probabilities against the share (notebook 02, section 4).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from llm_auction_utils.theory.preferences import preferred_region_vertices, violation_amount

__all__ = ["SIMPLEX_CORNERS", "draw_simplex", "plot_preference_box", "plot_share_sweep", "plot_simplex_bid_paths",
           "simplex_xy"]

SIMPLEX_CORNERS = np.array([[0.0, 0.0], [0.5, np.sqrt(3) / 2], [1.0, 0.0]])
"""Plane coordinates of the point masses on the first (left), second (top) and third (right) token."""

_RULE_COLORS = {"linear": "C0", "log_linear": "crimson", "log-linear": "crimson"}


def simplex_xy(points: Any) -> np.ndarray:
    """Map distributions over 3 tokens, shape ``(..., 3)``, to plane coordinates ``(..., 2)``."""
    array = np.asarray(points, dtype=float)
    if array.shape[-1:] != (3,):
        raise ValueError(f"simplex_xy needs distributions over 3 tokens (last axis 3), got shape {array.shape}")
    return array @ SIMPLEX_CORNERS


def draw_simplex(ax: Any, title: str | None = None, labels: Sequence[str] = ("token a", "token b", "token c")) -> Any:
    """Draw the triangle with its corner labels on ``ax`` (equal aspect, no axes); return ``ax``."""
    from matplotlib.patches import Polygon

    if len(labels) != 3:
        raise ValueError(f"draw_simplex needs 3 corner labels, got {len(labels)}")
    ax.add_patch(Polygon(SIMPLEX_CORNERS, closed=True, fill=False, edgecolor="black", lw=1.2))
    offsets = [(-4, -12), (0, 7), (4, -12)]
    aligns = ["right", "center", "left"]
    for (x, y), name, offset, align in zip(SIMPLEX_CORNERS, labels, offsets, aligns):
        ax.annotate(name, (x, y), xytext=offset, textcoords="offset points", fontsize=10, ha=align)
    ax.set(xlim=(-0.2, 1.2), ylim=(-0.1, 0.98), aspect="equal")
    if title is not None:
        ax.set_title(title)
    ax.axis("off")
    return ax


def _mark_bids(ax: Any, xy: np.ndarray, bid_grid: np.ndarray, marks: Sequence[float], side: int) -> None:
    """Dots and labels ``b₁=...`` at the grid points nearest to ``marks``, on the left or right of the path."""
    for b in marks:
        k = int(np.abs(bid_grid - b).argmin())
        ax.plot(*xy[k], "o", color="C0", ms=4)
        ax.annotate(f"b₁={b:g}", xy[k], xytext=(7 * side, -3), textcoords="offset points", fontsize=8, color="C0",
                    ha="left" if side > 0 else "right")


def plot_preference_box(
    p_i: np.ndarray, q: np.ndarray, candidates: Mapping[str, Sequence[float]], *,
    labels: Sequence[str] = ("token a", "token b", "token c"),
) -> Any:
    """Agent ``i``'s order at outcome ``q`` on 3 tokens (notebooks/theory.md §2).  Left: per token the
    interval between ``q(t)`` and ``p_i(t)`` (the box), with ``q``, ``p_i`` and each candidate ``q'``
    (filled marker inside its interval, open marker outside).  Right: the box cut by the simplex (the
    outcomes agent ``i`` weakly prefers to ``q``), the segment from ``q`` to ``p_i`` and the candidates.
    Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    p, q0 = np.asarray(p_i, dtype=float), np.asarray(q, dtype=float)
    cand = {k: np.asarray(v, dtype=float) for k, v in candidates.items()}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12.5, 5.2), gridspec_kw={"width_ratios": [1, 1.1]})
    lo, hi = np.minimum(q0, p), np.maximum(q0, p)
    ax.bar(np.arange(3), hi - lo, bottom=lo, width=0.5, color="C2", alpha=0.3, label="interval [q(t), p_i(t)]")
    ax.plot(np.arange(3), q0, "X", color="black", ms=10, label="q (current outcome)")
    ax.plot(np.arange(3), p, "*", color="C3", ms=14, label="p_i (agent i)")
    markers = "osD^v"
    for k, (name, c) in enumerate(cand.items()):
        x = np.arange(3) + 0.12 * (k - (len(cand) - 1) / 2)
        inside = (c >= lo - 1e-12) & (c <= hi + 1e-12)
        ax.scatter([], [], marker=markers[k], color=f"C{k + 4}", s=45, label=f"q' = {name}")
        ax.scatter(x[inside], c[inside], marker=markers[k], color=f"C{k + 4}", s=45, zorder=4)
        ax.scatter(x[~inside], c[~inside], marker=markers[k], facecolors="none", edgecolors=f"C{k + 4}", s=45,
                   linewidths=1.5, zorder=4)
    ax.set(xticks=range(3), xticklabels=list(labels), ylabel="probability", ylim=(0, 1), xlim=(-0.5, 2.5),
           title="The box: every token moves toward p_i(t), never past it")
    ax.scatter([], [], marker="o", facecolors="none", edgecolors="0.3", s=45, label="open marker: outside the interval")
    ax.legend(loc="upper right", fontsize=8.5)
    draw_simplex(ax2, "The box cut by the simplex: what agent i weakly prefers to q", labels)
    ax2.add_patch(Polygon(simplex_xy(preferred_region_vertices(q0, p)), closed=True, facecolor="C2", alpha=0.3,
                          edgecolor="C2", lw=1.5, label=r"$q'$ with $q' \succeq_i q$"))
    ax2.plot(*simplex_xy(np.stack([q0, p])).T, "--", color="0.3", lw=1.2, label="segment from q to p_i")
    ax2.plot(*simplex_xy(q0), "X", color="black", ms=10)
    ax2.plot(*simplex_xy(p), "*", color="C3", ms=14)
    for k, (name, c) in enumerate(cand.items()):
        ax2.plot(*simplex_xy(c), markers[k], color=f"C{k + 4}", ms=8)
    ax2.legend(loc="upper right", fontsize=8.5)
    fig.tight_layout()
    return fig


def plot_simplex_bid_paths(
    paths: Mapping[str, np.ndarray],
    dists: np.ndarray,
    bid_grid: np.ndarray,
    *,
    titles: Mapping[str, str],
    labels: Sequence[str] = ("token a", "token b", "token c"),
    marks: Sequence[float] = (0.1, 0.5, 2, 10),
    atol: float = 1e-9,
    suptitle: str | None = None,
) -> Any:
    """One panel per rule: agent 1's bid path ``q(b₁)`` (``paths[rule]``, shape ``(G, 3)`` along
    ``bid_grid``) on the simplex, agent 1's preferred region at ``q(0)`` (shaded), the points that
    leave it (more than ``atol``; red), the agents' distributions ``dists (n, 3)`` and ``q(0)``.
    Agents are numbered from 1.  Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    fig, axes = plt.subplots(1, len(paths), figsize=(6 * len(paths), 5.6), squeeze=False)
    for k, (ax, (rule, qs)) in enumerate(zip(axes[0], paths.items())):
        draw_simplex(ax, titles[rule], labels)
        ax.add_patch(Polygon(simplex_xy(preferred_region_vertices(qs[0], dists[0])), closed=True, facecolor="C2",
                             alpha=0.25, edgecolor="C2", lw=1.5, label="agent 1 prefers to q(0)"))
        xy, exits = simplex_xy(qs), np.asarray(violation_amount(qs, qs[0], dists[0]))
        ax.plot(*xy.T, color="C0", lw=2.2, label=f"q(b₁), b₁ = 0 → {bid_grid[-1]:g}")
        out = exits > atol
        if out.any():
            ax.scatter(*xy[out].T, color="crimson", s=7, zorder=4,
                       label=f"outside the region (up to {exits.max():.3f})")
        _mark_bids(ax, xy, bid_grid, marks, 1 if k == 0 else -1)
        for i, (pxy, m) in enumerate(zip(simplex_xy(dists), "s^v")):
            ax.plot(*pxy, m, color=f"C{i + 3}", ms=9, label=f"p{i + 1} (agent {i + 1})")
        ax.plot(*xy[0], "X", color="black", ms=8, label="q(0): the others only")
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    if suptitle is not None:
        fig.suptitle(suptitle, fontsize=13, y=1.0)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def plot_share_sweep(
    dists: np.ndarray,
    shares: np.ndarray,
    curves: Mapping[str, np.ndarray],
    *,
    labels: Sequence[str] = ("token a", "token b", "token c"),
    region_from: np.ndarray | None = None,
    mark: float | None = 0.5,
) -> Any:
    """Two agents on 3 tokens, agent 1's share ``λ₁`` running over ``shares``; ``curves[rule]`` is the
    aggregate along it, shape ``(len(shares), 3)``.  Left: the paths on the simplex with agent 1's
    preferred region at ``region_from`` (default ``dists[1]``, the aggregate at ``λ₁ = 0``); right: each
    token's probability against ``λ₁``, the agents' common value of a token they agree on as a wide
    grey band under the curves (so that a curve lying on it stays visible); the log-linear aggregate
    at the share nearest ``mark`` as a dot on both panels, its value in the legend.  Returns the figure."""
    import matplotlib.pyplot as plt

    start = dists[1] if region_from is None else region_from
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.5, 5.6), gridspec_kw={"width_ratios": [1.1, 1]})
    draw_simplex(ax1, "Agent 1's preferred region at λ₁ = 0", labels)
    ax1.plot(*simplex_xy(preferred_region_vertices(start, dists[0])).T, color="C2", lw=7, alpha=0.35,
             solid_capstyle="round", label="agent 1 prefers to q(λ₁ = 0)")
    styles = {rule: ("-" if rule == "linear" else "--") for rule in curves}
    for rule, qs in curves.items():
        ax1.plot(*simplex_xy(qs).T, color=_RULE_COLORS.get(rule, "C1"), lw=2, ls=styles[rule],
                 label=f"{rule.replace('_', '-')}, λ₁ = 0 → 1")
        for t, name in enumerate(labels):
            ax2.plot(shares, qs[:, t], color=f"C{t}", lw=2 if styles[rule] == "--" else 1.5, ls=styles[rule],
                     label=f"q({name}), {rule.replace('_', '-')}")
    for i, (m, c) in enumerate(zip("s^", ("C3", "C4"))):
        ax1.plot(*simplex_xy(dists[i]), m, color=c, ms=9, label=f"p{i + 1} = {np.round(dists[i], 3).tolist()}")
    if mark is not None and "log_linear" in curves:
        k, qs = int(np.abs(shares - mark).argmin()), curves["log_linear"]
        label = f"log-linear at λ₁ = {shares[k]:g}: q = {np.round(qs[k], 3).tolist()}"
        ax1.plot(*simplex_xy(qs[k]), "o", color="crimson", ms=8, label=label)
        ax2.plot(np.full(3, shares[k]), qs[k], "o", color="crimson", ms=6, label=label)
    agree = [t for t in range(3) if np.isclose(dists[0, t], dists[1, t])]
    for t in agree:
        ax2.axhline(dists[0, t], color="0.6", lw=7, alpha=0.35, zorder=1, solid_capstyle="butt",
                    label=f"p1({labels[t]}) = p2({labels[t]}) = {dists[0, t]:g}")
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8.5, frameon=False)
    ax2.set(xlabel="agent 1's bid share λ₁ = b₁ / (b₁ + b₂)", ylabel="probability", ylim=(0, 1), xlim=(0, 1),
            title="Token probabilities as agent 1's share rises")
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8.5, ncol=2, frameon=False)
    fig.tight_layout()
    return fig
