"""How much each agent shapes a creative: measures recorded while the auction runs.

The engine (:func:`~llm_auction_utils.llm.engine.run_auction`) calls ``on_step(info)``
after every token with the agents' next-token distributions ``p_i`` and the
aggregate ``q`` on the full vocabulary (a :class:`~llm_auction_utils.llm.transcript.StepInfo`).
The recorders below are such callbacks.  Each keeps a small summary per step on
the host (in float64), so nothing of the vocabulary's size outlives the step:

- :class:`DivergenceRecorder` -- ``KL(p_i || q)``, ``KL(q || p_i)`` and ``TV(p_i, q)``:
  the divergences that the linear and the log-linear rule trade off (notebooks/theory.md §5);
- :class:`OthersTVRecorder` -- ``TV(p_i, r_i)`` with ``r_i`` the others' linear aggregate,
  the factor of agent ``i``'s critical-bid payment (notebooks/theory.md §4), and optionally
  the pair ``(p_i, r_i)`` compressed to the top-K tokens plus two tail buckets that keep
  the TV exact (enough to redo stable sampling offline);
- :class:`BidPathRecorder` -- the worst violation of the robust order (notebooks/theory.md §2)
  along each agent's bid path, to see how far a rule is from monotone on real steps.

After a run, :func:`token_influence` splits each chosen token's aggregate probability
into the agents' contributions (linear rule).

Usage::

    rec = DivergenceRecorder(["alpha", "beta"])
    tr = run_auction(prompts, bids, model=lm, on_step=rec)
    rec.frame(rule="linear")       # one row per step
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ..theory.aggregation import RuleLike, others_linear_aggregate
from ..theory.arrays import ArrayLike
from ..theory.divergences import kl_divergence, tv_distance
from ..theory.monotonicity import check_bid_path
from ..theory.validation import as_bid_grid, as_bids

__all__ = [
    "BidPathRecorder",
    "DivergenceRecorder",
    "OthersTVRecorder",
    "top_k_buckets",
    "token_influence",
]


def _float64(x: torch.Tensor, renormalize: bool = True) -> torch.Tensor:
    """``x`` in float64, renormalized over the last axis (a float32 softmax sums to 1 only to ~1e-6)."""
    x = x.double()
    return x / x.sum(-1, keepdim=True) if renormalize else x


def _agent_keys(keys: Sequence[str]) -> list[str]:
    keys = [str(k) for k in keys]
    if not keys or len(set(keys)) != len(keys):
        raise ValueError(f"keys must be distinct names, one per agent, got {keys!r}")
    return keys


def _check_agents(dists: torch.Tensor, n: int, who: str) -> None:
    if dists.shape[0] != n:
        raise ValueError(f"{who} was made for {n} agents but the step has {dists.shape[0]}")


class DivergenceRecorder:
    """``on_step`` callback: per step and agent ``i``, ``KL(p_i || q)``, ``KL(q || p_i)`` and ``TV(p_i, q)``.

    The linear rule minimizes ``sum_i b_i KL(p_i || q)``, the log-linear rule
    ``sum_i b_i KL(q || p_i)`` (notebooks/theory.md §5); either divergence is 0 when the
    auction writes exactly as agent ``i`` would.  Computed on the full vocabulary in
    float64 (round-off below 0 is clipped).  The first step's distributions, which
    do not depend on the bids, are kept in :attr:`first_dists` ``(n, V)``.

    Args:
        keys: one short name per agent, used as column suffixes (``kl_p_q_<key>``, ...).
    """

    MEASURES = ("kl_p_q", "kl_q_p", "tv")

    def __init__(self, keys: Sequence[str]):
        self.keys = _agent_keys(keys)
        self.rows: list[dict[str, Any]] = []
        self.first_dists: np.ndarray | None = None

    def __call__(self, info: Any) -> None:
        _check_agents(info.dists, len(self.keys), "DivergenceRecorder")
        d, q = _float64(info.dists), _float64(info.aggregate)
        stats = torch.stack([kl_divergence(d, q), kl_divergence(q.expand_as(d), d), tv_distance(d, q)])
        stats = stats.clamp_min(0.0).cpu().numpy()
        row: dict[str, Any] = {"step": int(info.step), "token_id": int(info.token_id)}
        for k, m in enumerate(self.MEASURES):
            row |= {f"{m}_{key}": float(stats[k, i]) for i, key in enumerate(self.keys)}
        self.rows.append(row)
        if info.step == 0:
            self.first_dists = d.cpu().numpy()

    def frame(self, **labels: Any) -> pd.DataFrame:
        """The recorded steps as a DataFrame, with constant label columns (e.g. ``rule=..., lam=...``) first."""
        df = pd.DataFrame(self.rows, columns=["step", "token_id"] + [f"{m}_{k}" for m in self.MEASURES for k in self.keys])
        for pos, (name, value) in enumerate(labels.items()):
            df.insert(pos, name, value)
        return df


def top_k_buckets(p: ArrayLike, r: ArrayLike, keep: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Compress pairs of distributions to the kept tokens plus two tail buckets, keeping TV exact.

    ``p, r (n, V)``, ``keep (V,)`` boolean -> ``(n, K + 2)`` each: the kept tokens, then
    the mass of the tail tokens where ``p_i < r_i``, then the rest of the tail.  Tokens
    are merged only within a bucket where ``p_i - r_i`` has one sign, so
    ``TV(p_i, r_i)`` is unchanged, and so is the stable sampler's law of switching.
    """
    p_t, r_t = torch.as_tensor(p), torch.as_tensor(r)
    keep_t = torch.as_tensor(keep, device=p_t.device)
    if p_t.shape != r_t.shape or p_t.ndim != 2 or keep_t.shape != p_t.shape[-1:] or keep_t.dtype != torch.bool:
        raise ValueError(
            f"top_k_buckets takes p, r (n, V) and a boolean keep (V,), got {tuple(p_t.shape)}, "
            f"{tuple(r_t.shape)}, {tuple(keep_t.shape)} {keep_t.dtype}"
        )
    lose = (p_t < r_t) & ~keep_t
    rest = ~keep_t & ~lose

    def pack(x: torch.Tensor) -> np.ndarray:
        buckets = [x[:, keep_t], (x * lose).sum(-1, keepdim=True), (x * rest).sum(-1, keepdim=True)]
        return torch.cat(buckets, -1).cpu().numpy()

    return pack(p_t), pack(r_t)


class OthersTVRecorder:
    """``on_step`` callback: ``TV(p_i, r_i)`` per agent, ``r_i`` the others' linear aggregate (notebooks/theory.md §4).

    For the linear rule agent ``i``'s expected critical-bid payment of the token is
    ``TV(p_i, r_i)`` times the Myerson payment of its bid against ``B_i``: an agent
    whose distribution already agrees with the others' pays (almost) nothing.

    Args:
        bids: the auction's bids ``(n,)`` (``r_i`` depends on the others' bids).
        top_k: when given, also keep ``(p_i, r_i)`` compressed by :func:`top_k_buckets`
            to the ``top_k`` tokens most likely under any agent, plus two buckets.

    Attributes:
        steps: one dict per step: ``tv`` ``(n,)``, and ``p``, ``r`` ``(n, top_k + 2)`` when ``top_k``.
    """

    def __init__(self, bids: ArrayLike, top_k: int | None = None):
        b = np.asarray(as_bids(bids), dtype=np.float64)
        if b.ndim != 1:
            raise ValueError(f"bids must be one bid per agent (n,), got shape {b.shape}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        self.bids = b
        self.top_k = top_k
        self.steps: list[dict[str, np.ndarray]] = []

    def __call__(self, info: Any) -> None:
        _check_agents(info.dists, len(self.bids), "OthersTVRecorder")
        d = _float64(info.dists, renormalize=False)  # the distributions the engine's payments use
        b = torch.as_tensor(self.bids, dtype=torch.float64, device=d.device)
        r = others_linear_aggregate(d, b, validate=False)
        entry = {"tv": tv_distance(d, r).cpu().numpy()}
        if self.top_k is not None:
            if self.top_k >= d.shape[-1]:
                raise ValueError(f"top_k must be smaller than the vocabulary ({d.shape[-1]}), got {self.top_k}")
            keep = torch.zeros(d.shape[-1], dtype=torch.bool, device=d.device)
            keep[torch.topk(d.max(0).values, self.top_k).indices] = True
            entry["p"], entry["r"] = top_k_buckets(d, r, keep)
        self.steps.append(entry)

    @property
    def tv(self) -> np.ndarray:
        """``(steps, n)``: ``TV(p_i, r_i)`` of every recorded step."""
        return np.array([s["tv"] for s in self.steps]).reshape(len(self.steps), len(self.bids))


class BidPathRecorder:
    """``on_step`` callback: how far a rule is from monotone along each agent's bid path (notebooks/theory.md §2).

    At every step and for every agent ``i``, runs
    :func:`~llm_auction_utils.theory.monotonicity.check_bid_path` on the step's distributions
    over the bids ``b_i * t`` for ``t`` in ``t_grid`` (the others' bids fixed), on the
    full vocabulary, and keeps the worst violation of the order and whether the worst
    token ends *above* both the previous aggregate and ``p_i``.

    Args:
        rule: the aggregation rule (name or callable).
        bids: the auction's bids ``(n,)``.
        t_grid: increasing fractions of each bid, from 0 to 1 (default ``linspace(0, 1, 17) ** 3``,
            the engine's own grid).
        atol: tolerance of the order.
    """

    def __init__(self, rule: RuleLike, bids: ArrayLike, t_grid: ArrayLike | None = None, *, atol: float = 1e-7):
        self.rule = rule
        self.bids = np.asarray(as_bids(bids), dtype=np.float64)
        self.t_grid = as_bid_grid(np.linspace(0.0, 1.0, 17) ** 3 if t_grid is None else t_grid, name="t_grid")
        if self.t_grid[0] != 0 or self.t_grid[-1] != 1:
            raise ValueError(f"t_grid must run from 0 to 1, got {self.t_grid[0]:g} .. {self.t_grid[-1]:g}")
        self.atol = float(atol)
        self.rows: list[dict[str, Any]] = []

    def __call__(self, info: Any) -> None:
        _check_agents(info.dists, len(self.bids), "BidPathRecorder")
        d = info.dists
        for i in range(len(self.bids)):
            rep = check_bid_path(d, self.bids, i, self.rule, self.bids[i] * self.t_grid, atol=self.atol)
            k, t = rep.worst_index, rep.token
            above = t is not None and bool(rep.qs[k + 1, t] > max(rep.qs[k, t], float(d[i, t])))
            self.rows.append({"step": int(info.step), "agent": i, "worst": float(rep.worst_violation), "above both": above})

    def frame(self) -> pd.DataFrame:
        """One row per (step, agent): ``step``, ``agent``, ``worst``, ``above both``."""
        return pd.DataFrame(self.rows, columns=["step", "agent", "worst", "above both"])


def token_influence(transcript: Any) -> pd.DataFrame:
    """Each agent's share of every chosen token's aggregate probability (linear rule).

    With ``q(t) = sum_i lambda_i p_i(t)`` the contributions ``lambda_i p_i(t) / q(t)`` are
    non-negative and add up to 1 at every token.  ``transcript`` is an engine
    :class:`~llm_auction_utils.llm.transcript.Transcript`; returns one row per token (indexed
    by the token's text) and one column per agent.
    """
    tab = transcript.table
    names = list(transcript.agents)
    missing = [c for a in names for c in (f"share_{a}", f"p_{a}") if c not in tab.columns]
    if missing or "q" not in tab.columns:
        raise ValueError(f"transcript table lacks the columns {missing or ['q']}")
    q = tab["q"].to_numpy(dtype=np.float64)
    if (q <= 0).any():
        raise ValueError("a chosen token has aggregate probability 0; influence is undefined there")
    return pd.DataFrame({a: tab[f"share_{a}"].to_numpy() * tab[f"p_{a}"].to_numpy() / q for a in names},
                        index=pd.Index(tab["token"], name="token"))
