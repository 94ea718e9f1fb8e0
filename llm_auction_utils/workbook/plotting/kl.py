"""Figures of KL-derived rules (notebook 05), in the theory chapter's notation (§4.7, §5).

- :func:`plot_share_paths` -- each token's probability as agent 1's share runs from 0 to 1,
  one panel per rule;
- :func:`plot_kl_loss_along_bids` -- ``KL(q(b) || p_i)`` of the log-linear rule along agent
  ``i``'s bids for several instances, next to the token probabilities of the first one;
- :func:`plot_kl_payments` -- the KL allocation ``x_i(b)``, the payment ``z_i(b)`` and the
  utilities ``v x_i(b) - z_i(b)`` of bidders with values ``v`` per nat.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from llm_auction_utils.theory.aggregation import bid_path
from llm_auction_utils.theory.divergences import kl_divergence
from llm_auction_utils.theory.monotonicity import check_bid_path

__all__ = ["plot_kl_loss_along_bids", "plot_kl_payments", "plot_share_paths"]

_FORMULAS = {"linear": "q(λ) = Σ λ_i p_i", "log-linear": "q(λ) ∝ ∏ p_i^λ_i"}


def plot_share_paths(
    shares: np.ndarray,
    paths: Mapping[str, np.ndarray],
    dists: np.ndarray,
    tokens: Sequence[str],
    *,
    highlight: int | None = None,
) -> Any:
    """Two agents: one panel per rule, ``paths[rule]`` of shape ``(len(shares), V)`` against agent 1's
    share ``λ`` (agent 2 has ``1 - λ``); dots at ``p_2`` (``λ = 0``) and ``p_1`` (``λ = 1``).  With
    ``highlight``, that token's peak is marked wherever its curve is not constant, its value in the
    legend.  Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(paths), figsize=(5.5 * len(paths), 4.2), sharey=True, squeeze=False)
    for ax, (name, qs) in zip(axes[0], paths.items()):
        for t, token in enumerate(tokens):
            ax.plot(shares, qs[:, t], lw=2, color=f"C{t}", label=token)
            ax.plot([0, 1], [dists[1, t], dists[0, t]], "o", color=f"C{t}", ms=6, clip_on=False)
        if highlight is not None and np.ptp(qs[:, highlight]) > 1e-9:   # a constant curve has no peak to mark
            k = int(qs[:, highlight].argmax())
            ax.plot(shares[k], qs[k, highlight], "*", color="black", ms=11,
                    label=f"peak of q({tokens[highlight]}): {qs[k, highlight]:.3f}")
            ax.legend(loc="upper center", fontsize=8.5, frameon=True, framealpha=0.9, handles=ax.lines[-1:])
        ax.set_title(f"{name}: {_FORMULAS.get(name, name)}", fontsize=11)
        ax.set_xlabel("agent 1's bid share λ (agent 2: 1 - λ)")
    axes[0, 0].set_ylabel("aggregate probability q(t)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels) if lab in tokens]
    fig.legend(*zip(*keep), loc="lower center", ncol=len(tokens), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("From agent 2's distribution (λ = 0) to agent 1's (λ = 1); dots: p_2 and p_1", y=1.02)
    return fig


def plot_kl_loss_along_bids(
    bid_grid: np.ndarray,
    examples: Sequence[tuple[str, np.ndarray, np.ndarray, int]],
    tokens: Sequence[str],
) -> Any:
    """Left: ``KL(q(b) || p_i)`` of the log-linear rule along agent ``i``'s bids ``b`` in ``bid_grid``
    (log scale), one curve per example ``(label, dists, bids, agent)``, a cross at the first grid step
    where the path leaves agent ``i``'s preferred region (:func:`check_bid_path`).  Right: the token
    probabilities of the first example along the same bids, its ``p_i`` dashed.  Returns the figure."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.2))
    for k, (label, d, b, i) in enumerate(examples):
        kl = np.asarray(kl_divergence(bid_path(d, b, i, "log_linear", bid_grid), d[i]))
        ax1.plot(bid_grid, kl, lw=2, color=f"C{k}", label=label)
        report = check_bid_path(d, b, i, "log_linear", bid_grid)
        if report.first_violation is not None:
            j = report.first_violation + 1
            ax1.plot(bid_grid[j], kl[j], "x", color="red", ms=9, mew=2, zorder=5)
    ax1.plot([], [], "x", color="red", mew=2, label="first step that leaves the preferred region")
    ax1.set(yscale="log", xlabel="agent i's bid b (others fixed)", ylabel="KL(q(b) || p_i)  (log scale)")
    ax1.set_title("log-linear: agent i's KL loss along its bid", fontsize=11)
    ax1.legend(fontsize=8)
    label, d, b, i = examples[0]
    qs = np.asarray(bid_path(d, b, i, "log_linear", bid_grid))
    for t, token in enumerate(tokens):
        ax2.plot(bid_grid, qs[:, t], lw=2, color=f"C{t}", label=f"q(b)({token})")
        ax2.axhline(d[i, t], color=f"C{t}", ls="--", lw=1)
    ax2.set(xlabel=f"agent {i + 1}'s bid b", ylabel="aggregate probability")
    ax2.set_title(f"{label}: q(b)(t); dashed: p_{i + 1}(t)", fontsize=11)
    ax2.legend(fontsize=8, ncol=2, loc="lower right", bbox_to_anchor=(1.0, 0.2))
    fig.tight_layout()
    return fig


def plot_kl_payments(bid_grid: np.ndarray, allocation: np.ndarray, payment: np.ndarray, values: Sequence[float]) -> Any:
    """Left: the KL allocation ``x(b)`` (nats) and the payment ``z(b)`` along ``bid_grid``.  Right: the
    utility ``v x(b) - z(b)`` of a bidder with value ``v`` per nat, for each of ``values``, its maximum
    on the grid marked and ``b = v`` dotted.  Returns the figure."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.2))
    ax1.plot(bid_grid, allocation, lw=2, color="C0", label="allocation x(b) = KL(q(0)||p_i) - KL(q(b)||p_i)")
    ax1.plot(bid_grid, payment, lw=2, color="C1", label="payment z(b) = b x(b) - ∫₀ᵇ x(s) ds")
    ax1.set(xlabel="agent i's bid b (value per nat)", ylabel="nats / payment")
    ax1.set_title("KL allocation and its Myerson payment", fontsize=11)
    ax1.legend(fontsize=8, loc="lower right")
    for k, v in enumerate(values):
        u = v * allocation - payment
        j = int(u.argmax())
        ax2.plot(bid_grid, u, lw=2, color=f"C{k + 2}", label=f"v = {v:g}")
        ax2.plot(bid_grid[j], u[j], "o", color=f"C{k + 2}", ms=7)
        ax2.axvline(v, color=f"C{k + 2}", ls=":", lw=1)
    ax2.set(xlabel="agent i's bid b", ylabel="utility v x(b) - z(b)")
    ax2.set_title("Utility of a bidder with value v per nat; dots: maxima", fontsize=11)
    ax2.legend(fontsize=8, loc="center right", bbox_to_anchor=(1.0, 0.62))
    fig.tight_layout()
    return fig
