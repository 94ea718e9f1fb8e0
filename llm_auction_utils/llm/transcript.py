"""What an auction produced: the creative and its token-by-token accounting.

The decoding loop (:mod:`.engine`) appends one :class:`StepRecord` per auctioned token
to a :class:`TranscriptBuilder`; :meth:`TranscriptBuilder.build` turns them into a
:class:`Transcript`: the text, a per-token DataFrame and totals per agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

__all__ = ["StepInfo", "StepRecord", "Transcript", "TranscriptBuilder", "token_texts"]


@dataclass(frozen=True)
class StepInfo:
    """What an ``on_step`` callback sees after each decoding step (tensors on the model's device).

    ``auction``: index of the auction in the sweep (0 for :func:`~.engine.run_auction`);
    ``step``: the token's position in the creative; ``dists (n, V)`` and ``logprobs (n, V)``:
    the agents' next-token distributions (after temperature); ``aggregate (V,)``: ``q``
    before any top-k/top-p truncation; ``token_id``: the chosen token; ``payments (n,)`` /
    ``monotone (n,)``: expected critical-bid payments and flags (``None`` when off);
    ``log_aggregate (V,)``: ``log q``, exact where ``q`` underflows, when the rule computes it in
    log space (the log-linear rule), else ``None``.
    The tensors are not reused by the engine; clone them only to modify them.
    """

    step: int
    dists: torch.Tensor
    aggregate: torch.Tensor
    token_id: int
    payments: torch.Tensor | None
    monotone: torch.Tensor | None
    auction: int = 0
    logprobs: torch.Tensor | None = None
    log_aggregate: torch.Tensor | None = None


@dataclass
class StepRecord:
    """One auctioned token, as the loop records it (small tensors on the device, Python numbers)."""

    token_id: int
    q: torch.Tensor  # 0-d: aggregate probability of the token
    p: torch.Tensor  # (n,): each agent's probability of the token
    critical: torch.Tensor | None = None  # (n,) expected critical-bid payments
    monotone: torch.Tensor | None = None  # (n,)
    kl_payment: torch.Tensor | None = None  # (n,)
    kl_allocation: torch.Tensor | None = None  # (n,)
    realized: np.ndarray | None = None  # (n,) realized payments of the sampler
    switched: np.ndarray | None = None  # (n,) whose bid switched the token


@dataclass(frozen=True)
class Transcript:
    """Result of one auction: the creative and its token-by-token accounting.

    Attributes:
        text: the creative (decoded continuation, cut before the first stop string).
        table: one row per auctioned token -- ``step``, ``token_id``, ``token`` (its text),
            ``q`` (aggregate probability of the token, before any truncation), per agent
            ``p_<name>``, ``share_<name>``, ``expected_payment_<name>`` (expected critical-bid
            payment; 0 where flagged), ``pay_your_bid_<name>``, ``monotone_<name>``; with KL
            payments ``kl_payment_<name>`` and ``kl_allocation_<name>`` (nats); then
            ``monotone`` (all agents), ``realized_payment`` and ``switched`` (the stable
            sampler's agent), or ``realized_payment_<name>`` / ``switched_<name>`` for every
            agent with the joint sampler.
        totals: per agent ``bid``, ``share``, ``expected_payment``, ``realized_payment``,
            ``pay_your_bid`` summed over the tokens, ``non_monotone_steps`` (flagged, not
            charged) and, with KL payments, ``kl_payment``.
        agents, bids, prompts: the auction's input; ``rule`` its rule's name.
        token_ids: the auctioned tokens (the stop token included).
        stop_reason: ``"eos"``, ``"stop_string"`` or ``"max_new_tokens"``.
        sampler, stable_agent, seed, greedy, temperature, top_k, top_p, payments: decoding options.
        timings: per-step seconds (``forward``, ``aggregation_payments``, ``auction``) when
            run with ``profile=True``, else ``None``.
    """

    text: str
    table: pd.DataFrame
    totals: pd.DataFrame
    agents: tuple[str, ...]
    bids: tuple[float, ...]
    prompts: tuple[str, ...]
    rule: str
    token_ids: tuple[int, ...]
    stop_reason: str
    sampler: str = "standard"
    stable_agent: str | None = None
    seed: int | None = None
    greedy: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    payments: str = "critical"
    timings: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_tokens(self) -> int:
        """Number of auctioned tokens."""
        return len(self.token_ids)

    def payment_table(self) -> pd.DataFrame:
        """The per-token payment columns (for printing): step, token, q, payments, flags."""
        cols = ["step", "token", "q"]
        for prefix in ("expected_payment_", "kl_payment_", "realized_payment_"):
            cols += [f"{prefix}{a}" for a in self.agents if f"{prefix}{a}" in self.table]
        if self.sampler == "stable":
            cols += ["realized_payment", "switched"]
        if "monotone" in self.table:
            cols.append("monotone")
        return self.table[cols]


def token_texts(tokenizer: Any, ids: list[int]) -> list[str]:
    """Each token's text as it appears in the decoded creative (incremental decoding)."""
    out, prev = [], ""
    for k in range(1, len(ids) + 1):
        cur = tokenizer.decode(ids[:k], skip_special_tokens=False)
        out.append(cur[len(prev):] if cur.startswith(prev) else tokenizer.decode([ids[k - 1]]))
        prev = cur
    return out


def _stack(values: list[torch.Tensor]) -> np.ndarray:
    return torch.stack(values).double().cpu().numpy()


@dataclass
class TranscriptBuilder:
    """Collects the :class:`StepRecord` of one auction; :meth:`build` makes its :class:`Transcript`."""

    spec: Any  # the auction's AuctionSpec (names, bids, prompts, options)
    rule_label: str
    seed: int
    records: list[StepRecord] = field(default_factory=list)
    timings: dict[str, list[float]] = field(default_factory=lambda: {"forward": [], "aggregation_payments": [],
                                                                     "auction": []})

    def build(self, tokenizer: Any, stop_reason: str, *, profile: bool = False) -> Transcript:
        spec, opts = self.spec, self.spec.options
        names, n = list(spec.names), len(spec.names)
        generated = [r.token_id for r in self.records]
        full = tokenizer.decode(generated, skip_special_tokens=True)
        cut = min([full.find(s) for s in opts.stop_strings if s in full], default=-1)
        T = len(generated)
        bids = np.asarray(spec.bids, dtype=np.float64)
        bid_scale = bids.max()  # the loop works with bids / max(bids); payments scale back (degree 1)
        scaled = bids / bids.max()  # no overflow for huge bids
        shares = scaled / scaled.sum()
        cols: dict[str, Any] = {
            "step": np.arange(T),
            "token_id": np.asarray(generated, dtype=np.int64),
            "token": token_texts(tokenizer, generated),
            "q": _stack([r.q for r in self.records]),
        }
        p = _stack([r.p for r in self.records]).reshape(T, n)
        cols |= {f"p_{a}": p[:, i] for i, a in enumerate(names)}
        cols |= {f"share_{a}": np.full(T, shares[i]) for i, a in enumerate(names)}
        critical = opts.payments in ("critical", "all")
        with_kl = opts.payments in ("kl", "all")
        if critical:
            pay = _stack([r.critical for r in self.records]).reshape(T, n) * bid_scale
            mono = torch.stack([r.monotone for r in self.records]).cpu().numpy().astype(bool).reshape(T, n)
            cols |= {f"expected_payment_{a}": pay[:, i] for i, a in enumerate(names)}
        if with_kl:
            klp = _stack([r.kl_payment for r in self.records]).reshape(T, n) * bid_scale
            kla = _stack([r.kl_allocation for r in self.records]).reshape(T, n)
            cols |= {f"kl_payment_{a}": klp[:, i] for i, a in enumerate(names)}
            cols |= {f"kl_allocation_{a}": kla[:, i] for i, a in enumerate(names)}
        cols |= {f"pay_your_bid_{a}": np.full(T, bids[i]) for i, a in enumerate(names)}
        if critical:
            cols |= {f"monotone_{a}": mono[:, i] for i, a in enumerate(names)}
            cols["monotone"] = mono.all(axis=1)
        realized = np.stack([r.realized for r in self.records]).reshape(T, n) * bid_scale
        switched = np.stack([r.switched for r in self.records]).reshape(T, n)
        if opts.sampler == "joint":
            cols |= {f"realized_payment_{a}": realized[:, i] for i, a in enumerate(names)}
            cols |= {f"switched_{a}": switched[:, i] for i, a in enumerate(names)}
        else:
            k = opts.stable_agent if opts.stable_agent is not None else 0
            cols["realized_payment"] = realized[:, k]
            cols["switched"] = switched[:, k]
        table = pd.DataFrame(cols)
        numeric = table.select_dtypes(include=[np.number])
        if numeric.isna().to_numpy().any():
            bad = numeric.columns[numeric.isna().any()].tolist()
            raise FloatingPointError(f"NaN in the transcript (columns {bad}); the model produced invalid logits")
        totals = pd.DataFrame(
            {
                "bid": bids,
                "share": shares,
                "expected_payment": pay.sum(axis=0) if critical else np.zeros(n),
                "realized_payment": realized.sum(axis=0),
                "pay_your_bid": bids * T,
                "non_monotone_steps": (~mono).sum(axis=0) if critical else np.zeros(n, dtype=int),
            },
            index=pd.Index(names, name="agent"),
        )
        if with_kl:
            totals["kl_payment"] = klp.sum(axis=0)
        return Transcript(
            text=full if cut < 0 else full[:cut], table=table, totals=totals, agents=tuple(names),
            bids=tuple(float(b) for b in spec.bids), prompts=tuple(spec.prompts), rule=self.rule_label,
            token_ids=tuple(generated), stop_reason=stop_reason, sampler=opts.sampler,
            stable_agent=names[opts.stable_agent] if opts.stable_agent is not None else None, seed=self.seed,
            greedy=opts.greedy, temperature=opts.temperature, top_k=opts.top_k, top_p=opts.top_p,
            payments=opts.payments,
            timings={k: np.asarray(v) for k, v in self.timings.items()} if profile else None,
        )
