"""Figures of ad creatives over the bidders' balance (notebook 06; theory chapter §5 and §6).

Each function draws one figure from tables the notebook computed and returns the matplotlib
``Figure``; the notebook saves it with ``save_figure``.  ``lambda`` is the first advertiser's
(Alpha Airlines') bid share.  Probabilities and divergences from the model's float32 forward
pass are rounded to 3 significant digits before they are drawn, so that round-off of another
CPU does not move a pixel.
"""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["plot_creatives_table", "plot_fixed_prefix_divergences", "plot_slot_contest"]

_RULE_STYLE = {"linear": "-", "log_linear": "--"}


def _columns(frame: "pd.DataFrame", needed: Sequence[str], name: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing or len(frame) == 0:
        raise ValueError(f"{name} must be a non-empty table with columns {list(needed)}; missing {missing}")


def _sig3(x: Any) -> np.ndarray:
    """Round to 3 significant digits (the precision of a float32 forward pass, with a margin)."""
    a = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        digits = np.where(a != 0, 2 - np.floor(np.log10(np.abs(a))), 0).astype(int)
    return np.array([round(v, int(d)) for v, d in zip(a.ravel(), digits.ravel())]).reshape(a.shape)


def _runs(lam: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    """The contiguous runs of grid points where ``mask`` holds, as ``(first, last)`` pairs."""
    idx = np.flatnonzero(mask)
    return [(float(lam[g[0]]), float(lam[g[-1]])) for g in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if len(g)]


def plot_creatives_table(creatives: "pd.DataFrame", brands: Sequence[str], *, title: str = "") -> "Figure":
    """The paper's table drawn: one row per bid share, one column per rule, each creative coloured
    by the advertisers it names (``brands``: the two words that name them, first advertiser first).

    ``creatives`` has columns ``rule``, ``lambda`` and ``creative``; rules appear in table order.
    """
    import matplotlib.pyplot as plt

    _columns(creatives, ["rule", "lambda", "creative"], "creatives")
    if len(brands) != 2:
        raise ValueError(f"brands must name the two advertisers, got {list(brands)}")
    rules = list(dict.fromkeys(creatives["rule"]))
    lams = sorted(set(creatives["lambda"]))
    palette = {(False, False): "dimgray", (True, False): "C0", (False, True): "C1", (True, True): "C4"}
    fig, ax = plt.subplots(figsize=(7.0 * len(rules), 0.6 * len(lams) + 1.5))
    ax.set(xlim=(0, len(rules)), ylim=(len(lams) - 0.5, -0.9))
    ax.axis("off")
    for j, rule in enumerate(rules):
        ax.text(j + 0.5, -0.75, f"{rule.replace('_', '-')} rule", ha="center", va="center", fontsize=13, weight="bold")
        rows = creatives[creatives["rule"] == rule].set_index("lambda")["creative"]
        for i, lam in enumerate(lams):
            text = str(rows.get(lam, ""))
            key = tuple(re.search(rf"\b{re.escape(b)}\b", text) is not None for b in brands)
            wrapped = "\n".join(textwrap.wrap(text, 60, max_lines=2, placeholder=" …"))
            ax.text(j + 0.03, i, wrapped, va="center", fontsize=9, color=palette[key])
    for i, lam in enumerate(lams):
        ax.text(-0.02, i, f"λ = {lam:g}", ha="right", va="center", fontsize=10)
        ax.axhline(i + 0.5, color="0.9", lw=0.8)
    handles = [plt.Line2D([], [], color=c, lw=4) for c in palette.values()]
    ax.legend(handles, ["names neither", f"names {brands[0]} only", f"names {brands[1]} only", "names both (joint)"],
              loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, frameon=False)
    ax.set_title(title, fontsize=12)
    return fig


def plot_slot_contest(curves: "pd.DataFrame", *, title: str = "") -> "Figure":
    """Who wins each advertiser's slot at a fixed prefix, as ``lambda`` moves, under each rule.

    ``curves`` has columns ``slot`` (a panel label, e.g. the prefix), ``token`` (the brand token
    contested there), ``rule``, ``lambda``, ``q`` (the rule's aggregate probability of the token)
    and ``wins`` (the token is the aggregate's argmax).  One panel per slot draws ``q`` against
    ``lambda`` (linear solid, log-linear dashed, thick where the token wins); the last panel
    draws, per rule, the ``lambda`` intervals where each slot's token wins: a joint creative
    along these prefixes needs both at once.
    """
    import matplotlib.pyplot as plt

    _columns(curves, ["slot", "token", "rule", "lambda", "q", "wins"], "curves")
    slots, rules = list(dict.fromkeys(curves["slot"])), list(dict.fromkeys(curves["rule"]))
    fig, axes = plt.subplots(1, len(slots) + 1, figsize=(5.2 * (len(slots) + 1), 4.6))
    for k, slot in enumerate(slots):
        ax, part = axes[k], curves[curves["slot"] == slot]
        for rule in rules:
            g = part[part["rule"] == rule].sort_values("lambda")
            lam, q, wins = g["lambda"].to_numpy(float), _sig3(g["q"]), g["wins"].to_numpy(bool)
            ax.plot(lam, q, ls=_RULE_STYLE.get(rule, ":"), color=f"C{k}", lw=1.4, label=rule.replace("_", "-"))
            ax.plot(lam, np.where(wins, q, np.nan), ls=_RULE_STYLE.get(rule, ":"), color=f"C{k}", lw=4)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Alpha Airlines' bid share λ",
               ylabel=f"q({part['token'].iloc[0]!r}) at this prefix")
        ax.set_title(textwrap.fill(slot, 44), fontsize=10)
        ax.legend(fontsize=9, title="thick: the token wins", title_fontsize=8)
    ax = axes[-1]
    for r, rule in enumerate(rules):
        for k, slot in enumerate(slots):
            g = curves[(curves["slot"] == slot) & (curves["rule"] == rule)].sort_values("lambda")
            for a, b in _runs(g["lambda"].to_numpy(float), g["wins"].to_numpy(bool)):
                ax.plot([a, b], [r + 0.15 * (k - 0.5)] * 2, color=f"C{k}", lw=8, solid_capstyle="butt",
                        label=repr(g["token"].iloc[0]) if r == 0 else None)
    ax.set(xlim=(0, 1), ylim=(len(rules) - 0.5, -0.5), xlabel="Alpha Airlines' bid share λ",
           yticks=range(len(rules)), yticklabels=[r.replace("_", "-") for r in rules])
    ax.set_title("where each brand token wins its slot", fontsize=10)
    ax.legend(fontsize=9, loc="lower center", bbox_to_anchor=(0.5, -0.42), ncol=2, frameon=False)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def plot_fixed_prefix_divergences(fine: "pd.DataFrame", agents: Sequence[str], *, title: str = "") -> "Figure":
    """Each rule's own divergence to each agent along ``lambda``, at fixed prefixes.

    ``fine`` has columns ``prefix`` (a panel label; one panel each, in table order), ``rule``,
    ``lambda`` and one column ``D_<agent>`` per name in ``agents``: ``KL(p_i || q)`` for linear,
    ``KL(q || p_i)`` for log-linear, in nats.  Agents are coloured C0, C1, ...; linear solid,
    log-linear dashed.  Each panel has its own scale.
    """
    import matplotlib.pyplot as plt

    _columns(fine, ["prefix", "rule", "lambda"] + [f"D_{a}" for a in agents], "fine")
    prefixes = list(dict.fromkeys(fine["prefix"]))
    fig, axes = plt.subplots(1, len(prefixes), figsize=(4.9 * len(prefixes), 4.3), squeeze=False)
    for ax, prefix in zip(axes[0], prefixes):
        part = fine[fine["prefix"] == prefix]
        for rule, g in part.groupby("rule", sort=False):
            g = g.sort_values("lambda")
            name = "KL(p_i ‖ q)" if rule == "linear" else "KL(q ‖ p_i)"
            for k, a in enumerate(agents):
                ax.plot(g["lambda"], _sig3(g[f"D_{a}"]), ls=_RULE_STYLE.get(rule, ":"), color=f"C{k}", lw=2,
                        label=f"{a}: {name}, {rule.replace('_', '-')}")
        ax.set(xlim=(0, 1), xlabel="Alpha Airlines' bid share λ")
        ax.set_title(textwrap.fill(str(prefix), 44), fontsize=10)
    axes[0, 0].set_ylabel("the rule's divergence to agent i (nats)")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, names, loc="lower center", ncol=min(4, len(names)), fontsize=8, frameon=False)
    return fig
