"""Figures of the token auction model (notebooks 00 and 01; theory chapter §1 and §5).

Each function draws one figure from arrays the notebook computed and returns the
matplotlib ``Figure``; the notebook saves it with ``save_figure``.  Agents are labelled
from 1 (theory chapter notation), whatever their index in the arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = [
    "plot_creatives_by_share",
    "plot_rules_along_share",
    "plot_stacked_distributions",
    "plot_step_aggregates",
]


def _matrix(values: Any, name: str, ndim: int = 2) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != ndim or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty {ndim}-d array, got shape {array.shape}")
    return array


def plot_stacked_distributions(
    dists: Any, q: Any, tokens: Sequence[str], bids: Any, *, title: str | None = None
) -> "Figure":
    """Stacked horizontal bars: agent ``i``'s ``p_i`` (rows "agent 1", "agent 2", ...) and the aggregate ``q``.

    ``dists (n, V)``, ``q (V,)``, ``tokens`` (``V`` names), ``bids (n,)``; each agent's bid is
    written at the end of its bar.  Used for the blog example of the theory chapter §1.
    """
    import matplotlib.pyplot as plt

    d = _matrix(dists, "dists")
    rows = np.vstack([d, np.asarray(q, dtype=float).reshape(1, -1)])
    b = np.asarray(bids, dtype=float).reshape(-1)
    if rows.shape[1] != len(tokens) or b.shape != (d.shape[0],):
        raise ValueError(f"need q and tokens of length {d.shape[1]} and one bid per agent ({d.shape[0]}), "
                         f"got q {rows.shape[1]}, tokens {len(tokens)}, bids {b.shape[0]}")
    labels = [f"agent {i + 1}" for i in range(d.shape[0])] + ["aggregate q"]
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(labels) + 1.3))
    left = np.zeros(len(rows))
    for column, token in enumerate(tokens):
        ax.barh(labels, rows[:, column], left=left, label=token)
        left += rows[:, column]
    ax.invert_yaxis()
    for i, bid in enumerate(b):
        ax.annotate(f"bid {bid:g}", (1.01, i), va="center", fontsize=10, annotation_clip=False)
    ax.set(xlim=(0, 1), xlabel="probability of the next token")
    ax.set_title(title or "Linear aggregation of the agents' next-token distributions")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=len(tokens), frameon=False)
    return fig


def plot_step_aggregates(
    step_q: Any, vocab: Sequence[str], step_labels: Sequence[str], chosen: Sequence[int], *, title: str
) -> "Figure":
    """Heat map of the aggregate ``q`` at every step of one auction (rows: steps, columns: the vocabulary).

    ``step_q (steps, V)``; ``step_labels`` names the rows (e.g. the prefix's last word);
    ``chosen[s]`` is the index of the word written at step ``s``, boxed in red.  Cells
    below 0.005 are left blank.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    q = _matrix(step_q, "step_q")
    if q.shape[1] != len(vocab) or not len(step_labels) == len(chosen) == q.shape[0]:
        raise ValueError(f"step_q has shape {q.shape}: need {q.shape[1]} vocab words and {q.shape[0]} "
                         f"step labels and chosen words, got {len(vocab)}, {len(step_labels)}, {len(chosen)}")
    fig, ax = plt.subplots(figsize=(9.5, 0.5 * len(q) + 1.8))
    sns.heatmap(q, ax=ax, cmap="Blues", vmin=0, vmax=1, annot=True, fmt=".2f", annot_kws={"fontsize": 8},
                xticklabels=list(vocab), yticklabels=list(step_labels), linewidths=0.5, linecolor="white",
                cbar_kws={"label": "aggregate probability q(t)"}, mask=q < 0.005)
    for s, t in enumerate(chosen):
        ax.add_patch(plt.Rectangle((int(t), s), 1, 1, fill=False, edgecolor="crimson", lw=2.2))
    ax.set(xlabel="next word t", ylabel="step (last word of the prefix)")
    ax.set_title(title, fontsize=11)
    ax.tick_params(axis="x", rotation=35, labelsize=9)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    ax.tick_params(axis="y", labelsize=9)
    return fig


def plot_rules_along_share(
    shares: Any, q_by_rule: Mapping[str, Any], words: Mapping[str, int], *, marks: Mapping[str, float] | None = None,
    title: str = "",
) -> "Figure":
    """One step's aggregate along the bid share ``lambda`` under two rules, and their difference.

    ``shares (G,)`` is the grid of ``lambda``; ``q_by_rule`` maps two rule names to ``q (G, V)``
    (the first drawn solid, the second dashed with markers); ``words`` maps the words to draw
    to their column.  The lower panel shows ``q_second - q_first`` per word, so that two
    close curves can still be told apart.  ``marks`` draws labelled vertical lines.
    """
    import matplotlib.pyplot as plt

    lam = _matrix(shares, "shares", ndim=1)
    if len(q_by_rule) != 2:
        raise ValueError(f"q_by_rule must map exactly two rule names to arrays, got {list(q_by_rule)}")
    (first, q1), (second, q2) = [(name, _matrix(q, f"q_by_rule[{name!r}]")) for name, q in q_by_rule.items()]
    if q1.shape != q2.shape or q1.shape[0] != lam.shape[0]:
        raise ValueError(f"both arrays of q_by_rule need shape ({lam.shape[0]}, V), got {q1.shape} and {q2.shape}")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    every = max(1, lam.shape[0] // 20)
    for k, (word, column) in enumerate(words.items()):
        color = f"C{k}"
        top.plot(lam, q1[:, column], color=color, lw=2.2, label=f"q({word}), {first}")
        top.plot(lam, q2[:, column], color=color, lw=1.4, ls="--", marker="o", markevery=every, markersize=4,
                 label=f"q({word}), {second}")
        bottom.plot(lam, q2[:, column] - q1[:, column], color=color, lw=1.8, marker="o", markevery=every,
                    markersize=4, label=word)
    bottom.axhline(0.0, color="black", lw=0.8)
    for k, (label, x) in enumerate((marks or {}).items()):
        for ax in (top, bottom):
            ax.axvline(x, color="gray" if k == 0 else "crimson", lw=1.1, ls=":" if k == 0 else "-.")
        top.annotate(label, (x, 0.97 - 0.08 * k), xytext=(4, 0), textcoords="offset points", fontsize=9,
                     color="dimgray" if k == 0 else "crimson", va="top")
    top.set(ylim=(0, 1), ylabel="probability")
    top.set_title(title, fontsize=11)
    top.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    bottom.set(xlim=(0, 1), xlabel="Alpha Airlines' bid share λ (Beta Resort: 1 − λ)",
               ylabel=f"{second} − {first}")
    bottom.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    fig.tight_layout()
    return fig


def plot_creatives_by_share(
    intervals: Sequence[tuple[float, float, str]], step: float, *, marks: Mapping[str, float] | None = None,
    title: str = "",
) -> "Figure":
    """The text written for each bid share: one bar per interval ``(lambda_from, lambda_to, creative)``.

    ``lambda_from`` and ``lambda_to`` are the first and last grid points writing the creative;
    ``step`` is the grid spacing (each bar extends one step to the right, so the bars tile
    ``[0, 1]``).  ``marks`` draws labelled vertical lines.
    """
    import matplotlib.pyplot as plt

    if not intervals or step <= 0:
        raise ValueError(f"need at least one interval and a positive step, got {len(intervals)} and {step!r}")
    order = list(dict.fromkeys(text for _, _, text in intervals))
    fig, ax = plt.subplots(figsize=(8.5, 0.75 * len(order) + 1.6))
    for start, stop, text in intervals:
        y, right = order.index(text), min(1.0, stop + step)
        ax.hlines(y, start, right, lw=10, color=f"C{y + 2}")
        ax.text(float(np.clip((start + right) / 2, 0.22, 0.78)), y - 0.3, f'"{text}"', ha="center", fontsize=9.5)
    for k, (label, x) in enumerate((marks or {}).items()):  # first label left of its line, the others right
        ax.axvline(x, color="gray" if k == 0 else "crimson", lw=1.1, ls=":" if k == 0 else "-.")
        ax.annotate(label, (x, len(order) - 0.5), xytext=(-4 if k == 0 else 4, 0), textcoords="offset points",
                    fontsize=9, color="dimgray" if k == 0 else "crimson", ha="right" if k == 0 else "left", va="center")
    ax.set_yticks([])
    ax.set(xlim=(0, 1), ylim=(len(order) - 0.2, -0.9), xlabel="Alpha Airlines' bid share λ (Beta Resort: 1 − λ)")
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig
