"""Figures of payments (notebook 04; notebooks/theory.md §4, agents numbered from 1)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    # notebook 04
    "plot_best_responses",
    "plot_myerson_area",
    "plot_stable_construction",
    "plot_stable_paths",
    "plot_switched_mass_payment",
]


# --------------------------------------------------------------------------- notebook 04
def plot_myerson_area(
    others_bid: float, bid: float, bid_max: float, curves: Mapping[float, tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> Any:
    """Left: the Myerson payment of the linear rule as an area (allocation ``x(s) = s / (s + B_{-i})`` with
    ``B_{-i} = others_bid``, at ``bid``).  Right: ``z(b)`` for several ``B_{-i}``; ``curves[B] = (bids,
    closed form, numeric)``, the closed form drawn as a line and the numeric values as dots."""
    import matplotlib.pyplot as plt

    x = lambda s: s / (s + others_bid)  # noqa: E731
    s, s_in = np.linspace(0.0, bid_max, 400), np.linspace(0.0, bid, 200)
    area = bid - others_bid * np.log1p(bid / others_bid)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax.plot(s, x(s), color="C0", lw=2, label=r"allocation $x(s) = s/(s+B_{-i})$")
    ax.fill_between(s_in, x(s_in), x(bid), color="C1", alpha=0.45,
                    label=rf"payment $z(b) = b\,x(b) - \int_0^b x = {bid * x(bid) - area:.3f}$")
    ax.fill_between(s_in, 0.0, x(s_in), color="C2", alpha=0.25,
                    label=rf"$\int_0^b x(s)\,ds = {area:.3f}$ (surplus if $v = b$)")
    ax.axvline(bid, color="0.3", ls=":", lw=1)
    ax.axhline(x(bid), color="0.3", ls=":", lw=1)
    ax.annotate(f"bid b = {bid:g}", (bid, 0.93), xytext=(6, 0), textcoords="offset points", fontsize=10)
    ax.set(xlabel="bid s", ylabel="allocation x(s)", ylim=(0, 1), xlim=(0, bid_max),
           title=f"Myerson payment as an area ($B_{{-i}}$ = {others_bid:g})")
    ax.legend(loc="lower right", fontsize=10)
    for k, (B, (bids, closed, numeric)) in enumerate(curves.items()):
        ax2.plot(bids, closed, color=f"C{k}", lw=2, label=f"closed form, $B_{{-i}}$ = {B:g}")
        ax2.plot(bids[::10], numeric[::10], "o", color=f"C{k}", ms=5)
    ax2.plot([], [], "o", color="0.4", label="adaptive quadrature")
    ax2.set(xlabel="bid b", ylabel="payment z(b)", title=r"Linear rule: $B_{-i}\ln(1+b/B_{-i}) - bB_{-i}/(b+B_{-i})$")
    ax2.legend(fontsize=10)
    fig.tight_layout()
    return fig


def plot_stable_construction(
    r: np.ndarray, q: np.ndarray, losing: np.ndarray, tokens: Sequence[str], share: float, bid: float,
    others_bid: float, u: np.ndarray, switch_level: np.ndarray, switched: np.ndarray,
) -> Any:
    """Top: the slots of width ``r_{-i}(t)`` on [0, 1), losing tokens first, the switched part of each losing
    slot hatched at the agent's ``share``.  Bottom: the switch level ``lambda*(u)`` (right axis: the critical bid
    ``b*``), and the ``u`` whose token has switched at that share."""
    import matplotlib.pyplot as plt

    order = np.r_[np.flatnonzero(losing), np.flatnonzero(~losing)]
    starts = np.r_[0.0, np.cumsum(r[order])[:-1]]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [1, 2.2]})
    for tok, st in zip(order, starts):
        ax.barh(0, r[tok], left=st, color=f"C{tok}", edgecolor="white", height=0.8)
        if losing[tok]:
            ax.barh(0, r[tok] - q[tok], left=st + q[tok], color="none", edgecolor="black", hatch="///", height=0.8, lw=0)
        ax.text(st + r[tok] / 2, 0, f"{tokens[tok]}\n{'D' if losing[tok] else 'I'}", ha="center", va="center",
                fontsize=10, color="white", fontweight="bold")
    ax.set(yticks=[], title=f"Slots of width $r_{{-1}}(t)$, losing tokens (D) first; hatched: switched at share $\\lambda$ = {share:.3f}")
    x_star = np.ma.masked_invalid(np.where(switch_level <= 1.0, switch_level, np.inf))
    ax2.plot(u, x_star, color="C0", lw=2, label="switch level $\\lambda^*(u)$ (in D slots, when $\\leq 1$)")
    ax2.axhline(share, color="0.15", ls="--", label=f"agent 1's share $\\lambda$ = {share:.3f} (bid {bid:g})")
    ax2.fill_between(u, 0, 1, where=switched, facecolor="0.85", edgecolor="0.3", hatch="///", lw=0,
                     label="token switched at this bid")
    for st in starts[1:]:
        ax2.axvline(st, color="0.7", lw=0.8)
    ax2.set(xlabel="u", ylabel="switch level $\\lambda^*$", ylim=(0, 1), xlim=(0, 1))
    secax = ax2.secondary_yaxis("right", functions=(lambda xx: others_bid * xx / np.clip(1 - xx, 1e-9, None),
                                                    lambda bb: bb / (bb + others_bid)))
    secax.set_ylabel("critical bid $b^*$")
    secax.set_yticks([0.5, 1, 2, 4, 10, 30])
    ax2.legend(loc="upper right", fontsize=10)
    fig.tight_layout()
    return fig


def plot_stable_paths(
    bid_grid: np.ndarray, tokens_along: np.ndarray, critical: np.ndarray, losing: np.ndarray, tokens: Sequence[str],
    bid: float, switched_mass: np.ndarray, ecdf: np.ndarray, tv: float, n_draws: int,
) -> Any:
    """Left: the token along agent 1's bid for fixed draws ``(u, u')`` (``tokens_along (G, draws)``, one row per
    draw, with its critical bid).  Right: the switched mass ``T(s) = x(s) TV(p_1, r_{-1})`` and the Monte-Carlo
    distribution function of the critical bids, ``ecdf`` on the same grid."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    n_rows = tokens_along.shape[1]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.3, 1]})
    step = bid_grid[-1] - bid_grid[-2]
    ax.pcolormesh(np.r_[bid_grid, bid_grid[-1] + step], np.arange(n_rows + 1) - 0.5, tokens_along.T,
                  cmap=ListedColormap([f"C{k}" for k in range(len(tokens))]), vmin=-0.5, vmax=len(tokens) - 0.5,
                  shading="flat", rasterized=True)
    finite = np.isfinite(critical)
    ax.plot(critical[finite], np.flatnonzero(finite), "k|", ms=9, mew=2)
    ax.axvline(bid, color="black", ls="--", lw=1.5)
    n_switch = int((critical <= bid_grid[-1]).sum())
    ax.set(xlabel="agent 1's bid", ylabel=f"draw ({n_switch} that switch, {n_rows - n_switch} that never do)",
           title="Token along the bid path, fixed (u, u')", xlim=(0, bid_grid[-1]))
    handles = [plt.Rectangle((0, 0), 1, 1, color=f"C{k}") for k in range(len(tokens))]
    handles += [plt.Line2D([], [], color="black", marker="|", ls="", ms=9, mew=2),
                plt.Line2D([], [], color="black", ls="--")]
    labels = [f"{t} ({'D' if losing[k] else 'I'})" for k, t in enumerate(tokens)]
    ax.legend(handles, labels + ["critical bid $b^*$", f"agent 1's bid {bid:g}"], loc="center left",
              bbox_to_anchor=(1.0, 0.5), fontsize=9)
    ax2.plot(bid_grid, switched_mass, color="C0", lw=2, label="$x(s)\\,\\mathrm{TV}(p_1, r_{-1})$")
    ax2.plot(bid_grid[::4], ecdf[::4], "o", color="C1", ms=4, label=f"Monte Carlo $P(b^* \\leq s)$, N = {n_draws:,}")
    ax2.axhline(tv, color="0.5", ls=":", label=f"TV$(p_1, r_{{-1}})$ = {tv:.3f} (limit as $s \\to \\infty$)")
    ax2.set(xlabel="bid s", ylabel="switched mass", title="Critical bids are distributed as the switched mass",
            ylim=(0, 1.25 * tv))
    ax2.legend(fontsize=10, loc="lower right")
    fig.tight_layout()
    return fig


def plot_switched_mass_payment(
    bid_grid: np.ndarray, switched_mass: np.ndarray, ecdf: np.ndarray, payment: np.ndarray,
    mc_bids: np.ndarray, mc_mean: np.ndarray, mc_halfwidth: np.ndarray, halfwidth_label: str,
) -> Any:
    """A general monotone rule (bisection sampler).  Left: ``T(s) = TV(q(s), q(0))`` and the Monte-Carlo
    ``P(b* <= s)``.  Right: the expected critical-bid payment ``s T(s) - int_0^s T`` and Monte-Carlo means
    with error bars."""
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.3))
    ax.plot(bid_grid, switched_mass, color="C0", lw=2, label="$T(s) = \\mathrm{TV}(q(s), q(0))$")
    ax.plot(bid_grid[::4], ecdf[::4], "o", color="C1", ms=4, label="Monte Carlo $P(b^* \\leq s)$")
    ax.set(xlabel="agent 1's bid s", ylabel="switched mass", title="Log-linear, two tokens: switched mass")
    ax.legend(fontsize=10)
    ax2.plot(bid_grid, payment, color="C0", lw=2, label="Myerson with $T$: $sT(s) - \\int_0^s T$")
    ax2.errorbar(mc_bids, mc_mean, yerr=mc_halfwidth, fmt="o", color="C1", capsize=4, label=halfwidth_label)
    ax2.set(xlabel="agent 1's bid b", ylabel="expected payment", title="Expected critical-bid payment")
    ax2.legend(fontsize=10)
    fig.tight_layout()
    return fig


def plot_best_responses(
    bid_grid: np.ndarray, values: Sequence[float], exact: Mapping[str, Sequence[np.ndarray]],
    monte_carlo: Sequence[np.ndarray], value_axis: np.ndarray, best: Mapping[str, np.ndarray], title: str,
    threshold: tuple[float, str] | None = None,
) -> Any:
    """Left and middle: expected utility per token against the bid for each value ``v`` under the critical-bid
    payment (exact lines, Monte-Carlo dots) and under pay-your-bid-when-switched (``exact[rule][k]`` over
    ``bid_grid``); stars mark the best bid on the grid, squares the truthful bid ``b = v``.  Right: the best
    response against the value for each payment rule (``best[rule]`` over ``value_axis``), with an optional
    dotted vertical line ``threshold = (value, label)``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (rule, curves) in zip(axes[:2], exact.items()):
        for k, (v, u_curve) in enumerate(zip(values, curves)):
            ax.plot(bid_grid, u_curve, color=f"C{k}", lw=2, label=f"v = {v:g}")
            if rule == next(iter(exact)):
                ax.plot(bid_grid[::6], monte_carlo[k][::6], "o", color=f"C{k}", ms=3)
            j, iv = int(np.argmax(u_curve)), int(np.flatnonzero(bid_grid == v)[0])
            ax.plot(bid_grid[j], u_curve[j], "*", color=f"C{k}", ms=14, mec="black")
            ax.plot(v, u_curve[iv], "s", color=f"C{k}", ms=7, mfc="white", mew=2)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set(title=rule, xlabel="bid b", xlim=(0, bid_grid[-1]))
    axes[0].set_ylabel("expected utility per token")
    axes[0].plot([], [], "o", color="0.4", ms=3, label="Monte Carlo")
    axes[0].plot([], [], "*", color="0.4", ms=12, mec="black", label="best bid on the grid")
    axes[0].plot([], [], "s", color="0.4", ms=7, mfc="white", mew=2, label="truthful bid b = v")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(values) + 3, fontsize=10,
               frameon=False, bbox_to_anchor=(0.36, -0.08))
    for (rule, b_star), color in zip(best.items(), ["black", "C3", "C2", "C4"]):
        axes[2].plot(value_axis, b_star, lw=2.5, color=color, label=rule)
    if threshold is not None:
        axes[2].axvline(threshold[0], color="0.4", ls=":", lw=1.5, label=threshold[1])
    axes[2].set(title="Best response to the value v", xlabel="value v per switched token", ylabel="best bid",
                xlim=(0, value_axis[-1]), ylim=(-0.4, value_axis[-1]))
    axes[2].legend(fontsize=9, loc="upper left")
    fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig
