"""Figures of payments on a real model's distributions (notebook 07), in the theory chapter's
notation (§4, §4.7, §4.8).

Model outputs are float32 forward passes, accurate to about four significant digits (theory
chapter §7), so every function rounds the model-derived numbers it draws to three significant
digits (:func:`round_sig`): a rerun on another CPU then draws the same pixels.

- :func:`plot_payments_vs_bid` -- per token: the expected and realized critical-bid payments of
  one agent over its bids, against pay-your-bid and the Myerson bound;
- :func:`plot_tv_factor` -- each token's expected payment against ``TV(p_i, r_{-i})``, and one
  creative's ``TV(p_1, p_2)`` token by token with its payment scale;
- :func:`plot_utility_vs_bid` -- expected utility per token against the bid under critical-bid
  payments and under first price on switch;
- :func:`plot_joint_payments` -- the joint sampler's mean realized payments per step against the
  expected payments;
- :func:`plot_loglinear_steps` -- the log-linear rule step by step: the worst violation of the
  coordinatewise order and the KL-preference payments.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from llm_auction_utils.theory.payments import linear_myerson_payment

__all__ = [
    "plot_joint_payments",
    "plot_loglinear_steps",
    "plot_payments_vs_bid",
    "plot_tv_factor",
    "plot_utility_vs_bid",
    "round_sig",
]


def round_sig(x: Any, digits: int = 3) -> Any:
    """``x`` rounded to ``digits`` significant digits (0, inf and NaN stay as they are).

    Arrays and numbers give a float64 array; a pandas Series keeps its index; a DataFrame has its
    float columns rounded and the others (tokens, counts, flags) left as they are.
    """
    if hasattr(x, "select_dtypes"):  # a DataFrame
        out = x.copy()
        for column in x.select_dtypes(include="floating").columns:
            out[column] = round_sig(x[column], digits)
        return out
    if hasattr(x, "index") and hasattr(x, "to_numpy"):  # a Series
        return type(x)(round_sig(x.to_numpy(dtype=np.float64), digits), index=x.index, name=x.name)
    a = np.asarray(x, dtype=np.float64)
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    # through the decimal string: the nearest float to the rounded decimal, at any magnitude
    flat = [float(f"{v:.{digits - 1}e}") if np.isfinite(v) else v for v in a.ravel().tolist()]
    return np.asarray(flat, dtype=np.float64).reshape(a.shape)


def _labels(tokens: Sequence[str]) -> list[str]:
    return [repr(str(t))[1:-1] for t in tokens]


def plot_payments_vs_bid(
    bids: Sequence[float],
    expected: Mapping[str, Sequence[float]],
    realized: Sequence[float],
    agent: str,
    other_bids: Mapping[str, float],
) -> Any:
    """Payments per token (log-log) as ``agent`` bids each of ``bids``: its expected critical-bid
    payment (``expected[agent]``), its realized payment (``realized``, one point per creative), the
    other agents' expected payments (``expected[a]``) and every agent's pay-your-bid; the dashed
    Myerson payment is the expected payment's bound ``TV = 1``.  ``other_bids``: the others' fixed
    bids (their total is ``B_{-i}``).  Returns the figure."""
    import matplotlib.pyplot as plt

    b = np.asarray(bids, dtype=float)
    fine = np.geomspace(b.min(), b.max(), 200)
    B = float(sum(other_bids.values()))
    fig, ax = plt.subplots(figsize=(8.5, 5.0))
    ax.plot(fine, fine, ":", color="C0", lw=2, label=f"pay-your-bid: {agent}")
    ax.plot(fine, linear_myerson_payment(fine, B), "--", color="0.45", lw=1.5, label="Myerson payment (the bound TV = 1)")
    ax.plot(b, round_sig(expected[agent]), "o-", color="C0", lw=2, label=f"critical bid, expected: {agent}")
    real = round_sig(realized)
    shown = real > 0
    ax.plot(b[shown], real[shown], "D", color="C0", mfc="white", ms=7, mew=1.5,
            label=f"critical bid, realized: {agent} (one creative per bid)")
    for k, (a, bid) in enumerate(other_bids.items()):
        ax.plot(b, round_sig(expected[a]), "s-", color=f"C{k + 1}", lw=2, label=f"critical bid, expected: {a}")
        ax.axhline(bid, color=f"C{k + 1}", ls=":", lw=2, label=f"pay-your-bid: {a}")
    ax.set(xscale="log", yscale="log", xlabel=f"bid of {agent}", ylabel="payment per token (mean over the creative)",
           title="Critical-bid payments per token vs pay-your-bid")
    ax.set_xticks(b, [f"{v:g}" for v in b])
    ax.set_xticks([], minor=True)
    ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.tight_layout()
    return fig


def plot_tv_factor(
    tv: Sequence[float],
    payment: Sequence[float],
    bid: Sequence[float],
    others_bid_total: float,
    agent: str,
    tokens: Sequence[str],
    token_tv: Sequence[float],
    factors: Mapping[str, float],
) -> Any:
    """Left: every token's expected payment of ``agent`` against its ``TV(p_i, r_{-i})``, coloured by the
    agent's ``bid`` (its ``B_{-i}`` is ``others_bid_total``), with the lines ``TV x Myerson(b_i, B_{-i})``.
    Right: one two-agent creative token by token: ``TV(p_1, p_2)`` (bars); agent ``a`` pays
    ``TV x factors[a]`` for the token (its Myerson payment), and the right axis reads the bars in the
    first agent's payment.  Returns the figure."""
    import matplotlib.pyplot as plt

    tv_a, pay, bid_a = round_sig(tv), round_sig(payment), np.asarray(bid, dtype=float)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 1.35]})
    cmap = plt.get_cmap("viridis")
    levels = np.unique(bid_a)
    for k, level in enumerate(levels):
        color = cmap(k / max(len(levels) - 1, 1))
        sel = bid_a == level
        ax.scatter(tv_a[sel], pay[sel], s=22, color=color, alpha=0.8, label=f"bid {level:g}")
        ax.plot([0, 1], [0, float(linear_myerson_payment(level, others_bid_total))], color=color, lw=1, alpha=0.7)
    ax.set(xlim=(0, 1), ylim=(0, None), xlabel=f"TV(p_i, r_-i) at the step ({agent})", ylabel="expected payment of the token",
           title="Each token: payment = TV x Myerson(b_i, B_-i)")
    ax.legend(title=f"bid of {agent}", fontsize=9)
    xs = np.arange(len(tokens))
    ax2.bar(xs, round_sig(token_tv), 0.6, color="C7")
    pays = ", ".join(f"{a}: TV x {f:.3f}" for a, f in factors.items())
    ax2.set(ylim=(0, 1.05), xticks=xs, ylabel="TV(p_1, p_2)", title=f"One creative, token by token ({pays})")
    ax2.title.set_fontsize(10)
    ax2.set_xticklabels(_labels(tokens), rotation=60, ha="right", fontsize=9)
    first, factor = next(iter(factors.items()))
    right = ax2.twinx()
    right.set_ylim(0, 1.05 * factor)
    right.grid(False)
    right.set_ylabel(f"expected payment of {first}")
    fig.tight_layout()
    return fig


def plot_utility_vs_bid(bid_grid: np.ndarray, curves: Mapping[float, Mapping[str, np.ndarray]], agent: str) -> Any:
    """Expected utility per token against the bid, one colour per value ``v`` (the keys of ``curves``,
    each a point of ``bid_grid``), from :func:`~llm_auction_utils.theory.incentives.utility_curves`.
    Left: critical-bid payments (Monte Carlo line, exact dots); right: first price on switch.  A star
    marks the best bid on the grid, a square the truthful bid ``b = v``.  Returns the figure."""
    import matplotlib.pyplot as plt

    panels = {"critical bid": "Critical bid: best at b = v", "first price on switch": "Pay your bid when switched: shade"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharex=True)
    for k, (v, cur) in enumerate(curves.items()):
        iv = int(np.flatnonzero(np.isclose(bid_grid, v))[0])
        for ax, rule in zip(axes, panels):
            u = round_sig(cur[rule])
            ax.plot(bid_grid, u, color=f"C{k}", lw=2, label=f"v = {v:g}")
            if rule == "critical bid":
                ax.plot(bid_grid[::4], round_sig(cur["critical bid (exact)"])[::4], "o", color=f"C{k}", ms=3)
            best = int(np.argmax(u))
            ax.plot(bid_grid[best], u[best], "*", color=f"C{k}", ms=14, mec="black")
            ax.plot(v, u[iv], "s", color=f"C{k}", ms=7, mfc="white", mew=2)
    for ax, title in zip(axes, panels.values()):
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set(title=title, xlabel="bid b", xlim=(0, float(bid_grid[-1])))
    axes[0].set_ylabel("expected utility per token")
    axes[0].plot([], [], "o", color="0.4", ms=3, label="exact: TV x (v x(b) - Myerson)")
    axes[0].plot([], [], "*", color="0.4", ms=12, mec="black", label="best bid on the grid")
    axes[0].plot([], [], "s", color="0.4", ms=7, mfc="white", mew=2, label="truthful bid b = v")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=7, fontsize=9.5, bbox_to_anchor=(0.5, -0.09))
    fig.suptitle(f"Utility vs bid of {agent} on the recorded steps (lines: Monte Carlo over stable-sampling draws)", y=1.02)
    fig.tight_layout()
    return fig


def plot_joint_payments(
    expected: np.ndarray, realized_mean: np.ndarray, standard_error: np.ndarray, names: Sequence[str], se_multiple: float
) -> Any:
    """The joint sampler on recorded steps: per step (x axis) and agent, the expected critical-bid payment
    (bar) and the mean realized payment over many draws (point, error bar ``se_multiple`` standard errors).
    Arrays ``(steps, 2)``.  Returns the figure."""
    import matplotlib.pyplot as plt

    steps = np.arange(1, expected.shape[0] + 1)
    fig, ax = plt.subplots(figsize=(11, 4.2))
    for i, name in enumerate(names):
        off = (i - 0.5) * 0.38
        ax.bar(steps + off, round_sig(expected[:, i]), 0.36, color=f"C{i}", alpha=0.45, label=f"expected: {name}")
        ax.errorbar(steps + off, round_sig(realized_mean[:, i]), yerr=se_multiple * round_sig(standard_error[:, i]),
                    fmt="o", color=f"C{i}", ms=4, capsize=2, label=f"mean realized, ± {se_multiple:g} SE: {name}")
    ax.set(xticks=steps, xlabel="recorded step (token of the joint-sampler creatives)", ylabel="payment for the token",
           title="Joint sampler: both agents' realized payments from the same draws")
    ax.legend(fontsize=9, ncol=2)
    fig.tight_layout()
    return fig


def plot_loglinear_steps(
    tokens: Sequence[str], worst: np.ndarray, kl_payment: np.ndarray, names: Sequence[str], tolerance: float
) -> Any:
    """One log-linear creative step by step, arrays ``(steps, n)``.  Top: the worst violation of the
    coordinatewise order along each agent's bid path (log scale; the dashed line is the tolerance).
    Violations below a tenth of the tolerance (0 included) are not drawn as values: an open triangle
    on the axis floor marks them, labelled as a bound.  Bottom: each agent's KL-preference payment for
    the token.  Returns the figure."""
    import matplotlib.pyplot as plt

    xs = np.arange(len(tokens))
    width = 0.8 / len(names)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.4), sharex=True)
    floor = tolerance / 10
    for i, name in enumerate(names):
        off = (i - (len(names) - 1) / 2) * width
        w = round_sig(worst[:, i])
        low = w < floor
        top.plot((xs + off)[~low], w[~low], "o", color=f"C{i}", ms=7, label=name)
        top.plot((xs + off)[low], np.full(int(low.sum()), floor), "v", mfc="none", mec=f"C{i}", mew=1.5, ms=7)
        bottom.bar(xs + off, round_sig(kl_payment[:, i]), width, color=f"C{i}", label=name)
    top.plot([], [], "v", mfc="none", mec="0.3", mew=1.5, ms=7, label=f"below {floor:g} (not drawn to scale)")
    top.axhline(tolerance, color="C3", ls="--", lw=1.5, label=f"tolerance {tolerance:g}")
    top.set(yscale="log", ylim=(floor / 2, 30 * max(float(np.max(worst)), tolerance)), ylabel="worst violation\nof the order",
            title="Raising a bid moves q the wrong way (coordinatewise order of §2)")
    top.legend(fontsize=9, ncol=len(names) + 2, loc="upper right")
    bottom.set(ylabel="KL-preference payment", title="Yet the KL-preference payment is defined at every step (§4.7)")
    bottom.set_xticks(xs, _labels(tokens), rotation=60, ha="right", fontsize=9)
    fig.tight_layout()
    return fig
