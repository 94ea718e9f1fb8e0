"""The study of notebook 09: how each mechanism turns bids into content and money on real queries.

Question: on real user queries (:mod:`.gembench`), what does each mechanism give each advertiser
as its bid share rises, what does the user lose, and what does the platform earn?

**Design** (:class:`StudyDesign`).  Every query has two advertisers (the first two brands of its
category), the neutral **reference** agent (answers the query, no brand) and the **judge** (a
prompt of its own that no other agent reads; it never bids).  The advertisers' bids are
``(lam, 1 - lam)``, advertiser 1's share ``lam`` of the advertisers' bids taking every value of
``shares`` (0.2, 0.5 and 0.8 by default, so each brand is both the high and the low bidder), and
the reference agent bids the **platform bid** ``beta`` (0: pure advertising; 1: as much as both
advertisers together; notebooks/theory.md writes it beta, as notebook 08 does).  Each
(``lam``, ``beta``) is a **profile**.  The mechanisms, on the same queries and
profiles (notebooks/theory.md §4, §6):

* ``linear`` and ``log_linear``: token auctions, every agent in every auction;
* ``highest_bid``: per token the top bidder's distribution (ties: their average); with a unique
  top bidder it writes that bidder's solo text, token for token, so it is read off the solo run;
  a tied profile runs the rule itself;
* ``rag``: one segment (Hajiaghayi et al. 2024): a candidate text -- an advertiser's solo ad, or
  the reference answer when ``beta > 0`` -- is shown with probability proportional to relevance
  times bid;
* ``reference``: the reference agent's solo text, no ads.

All auctions go to one :func:`~.engine.run_auctions` call, which computes each distinct context
once.  Agents that do not bid in an auction still read its text, so every agent's distribution
is at hand at every token of every text (:class:`StudyRecorder`).

**Metrics** (per query, mechanism, profile and seed; :func:`study_table`), none of which decides
the winner by construction:

* ``mention_1``, ``mention_2``: the advertiser's brand named in full (case-insensitive);
* ``gain_1``, ``gain_2``: the advertiser's gain, the log-likelihood ratio per token of the text
  against the reference text under the advertiser's own agent,
  ``mean_t log p_i(text) - mean_t log p_i(reference text)`` (nats per token); ``gain``: the two
  weighted by their bids;
* ``user_loss``: the judge's log-likelihood ratio per token of the reference text against the
  text (a proxy: the same small model under another prompt);
* ``kl_ref_q`` = mean ``KL(p_ref || q)`` and ``kl_q_ref`` = mean ``KL(q || p_ref)`` per token
  along the text: the divergence of the aggregate from the reference agent in the direction the
  linear rule's objective uses (``KL(p_i || q)``) and in the log-linear rule's (``KL(q || p_i)``);
* ``revenue``: the advertisers' payments under the mechanism's own rule; ``pay_your_bid``: what
  pay-your-bid charges for the text shown, the advertisers' total bid (1 in every profile) times
  the text's length (its expected length under ``rag``); ``revenue_share`` = revenue /
  pay-your-bid, in [0, 1] for the rules paid in money (notebooks/theory.md §4.9).  The log-linear
  rule's KL-preference payments are in bid x nats: no share, not ranked.

**Analysis**: :func:`paired_contrasts` (differences per query, bootstrapped over queries with one
set of resamples), :func:`bid_response` (each advertiser's mention rate and gain at each of its
bid shares).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ..theory.aggregation import highest_bid, log_linear_logprobs
from ..theory.divergences import tv_distance
from .contexts import RowStats
from .engine import AuctionSpec, run_auctions
from .gembench import JUDGE_NAME, StudyItem, judge_prompt, study_scenario
from .mechanisms import highest_bid_payments, kl_preference_closed_form, mentions, rag_allocation, rag_closed_form, rag_payments
from .models import LoadedModel
from .transcript import StepInfo, Transcript

__all__ = [
    "MECHANISMS",
    "PAYMENT_RULES",
    "StudyDesign",
    "StudyRecorder",
    "StudyResult",
    "StudyRun",
    "bid_response",
    "equal_relevance_comparison",
    "highest_bid_check",
    "paired_contrasts",
    "per_query",
    "precision_check",
    "run_study",
    "study_auctions",
    "study_table",
    "summarize",
    "verdict",
]

MECHANISMS = ("linear", "log_linear", "highest_bid", "rag", "reference")
"""The mechanisms of the study, in the order of the tables and figures."""

PAYMENT_RULES = {"linear": "critical bid (expected)", "log_linear": "KL preference",
                 "highest_bid": "critical bid (expected)", "rag": "Myerson (segment)", "reference": "none"}
"""The payment rule behind each mechanism's ``revenue``."""

MONEY_UNITS = {"linear": "bid x tokens", "log_linear": "bid x nats", "highest_bid": "bid x tokens",
               "rag": "bid x tokens", "reference": "-"}
"""The unit of each mechanism's revenue: only revenues in one unit are compared."""

REFERENCE, JUDGE = 2, 3
"""Agent indices (0-based) of the reference agent and the judge; advertisers are 0 and 1."""


# --------------------------------------------------------------------------- design


def _check_values(name: str, values: Any, low: float, high: float | None) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"{name} must be a non-empty list of numbers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v < low or (high is not None and v > high):
            raise ValueError(f"{name}: {v!r} must be a finite number in [{low}, {high if high is not None else 'inf'}]")
        out.append(float(v))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a value, got {list(values)!r}")
    return tuple(out)


@dataclass(frozen=True)
class StudyDesign:
    """What the study runs: ``items`` (queries, two advertisers each), advertiser 1's bid
    ``shares`` (strictly between 0 and 1), the ``platform_bids`` (the reference agent's bid
    against the advertisers' total of 1), decoding (``greedy``, or sampling at ``temperature``
    once per seed of ``seeds``), ``max_new_tokens`` (texts stop at the end of their line), and
    ``check_queries``: on the first queries, the highest-bid rule also runs through the engine at
    every profile, to check that it writes its top bidder's solo text (:func:`highest_bid_check`)."""

    items: tuple[StudyItem, ...]
    shares: tuple[float, ...] = (0.2, 0.5, 0.8)
    platform_bids: tuple[float, ...] = (0.0, 1.0)
    seeds: tuple[int, ...] = (0,)
    greedy: bool = True
    temperature: float = 1.0
    max_new_tokens: int = 28
    check_queries: int = 1

    def __post_init__(self) -> None:
        items = tuple(self.items)
        if not items or not all(isinstance(it, StudyItem) for it in items):
            raise TypeError("items must be a non-empty sequence of StudyItem")
        if any(len(it.brands) != 2 for it in items):
            raise ValueError("the study has two advertisers per query (load_study(k=2))")
        object.__setattr__(self, "items", items)
        shares = _check_values("shares", self.shares, 0.0, 1.0)
        if min(shares) <= 0 or max(shares) >= 1:
            raise ValueError(f"shares must lie strictly between 0 and 1 (both advertisers bid), got {list(shares)}")
        object.__setattr__(self, "shares", shares)
        object.__setattr__(self, "platform_bids", _check_values("platform_bids", self.platform_bids, 0.0, None))
        seeds = tuple(self.seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) \
                or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct non-negative integers, got {self.seeds!r}")
        if self.greedy and len(seeds) > 1:
            raise ValueError("greedy decoding does not depend on the seed: give one seed (or greedy=False)")
        object.__setattr__(self, "seeds", seeds)
        for name in ("max_new_tokens", "check_queries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "max_new_tokens" else 0):
                raise ValueError(f"{name} must be a {'positive' if name == 'max_new_tokens' else 'non-negative'} "
                                 f"integer, got {value!r}")

    @property
    def profiles(self) -> list[tuple[float, float]]:
        """Every ``(lam, beta)``: advertiser 1's share of the advertisers' bids, the platform bid."""
        return [(lam, beta) for beta in self.platform_bids for lam in self.shares]


def profile_bids(lam: float, w: float) -> tuple[float, float, float, float]:
    """The four agents' bids of profile ``(lam, w)``: ``(lam, 1 - lam, w, 0)`` (the judge never bids)."""
    return (lam, 1.0 - lam, w, 0.0)


def _top_is_unique(bids: Sequence[float]) -> bool:
    return list(bids).count(max(bids)) == 1


@dataclass(frozen=True)
class StudyRun:
    """One auction of the study: query ``item`` (index into the design's items), ``kind`` (``"solo"``,
    ``"linear"``, ``"log_linear"`` or ``"highest_bid"`` for a tied profile), ``seed``, the
    ``profile`` ``(lam, w)`` (``None`` for a solo run) and the solo run's ``agent``."""

    item: int
    kind: str
    seed: int
    spec: AuctionSpec
    profile: tuple[float, float] | None = None
    agent: int | None = None


def study_auctions(design: StudyDesign) -> list[StudyRun]:
    """Every auction of the study, query by query: the three solo runs (advertiser 1, advertiser 2,
    reference), then per profile the linear and log-linear auctions, and the highest-bid rule
    itself where the profile's top bid is tied.  Every auction has the four agents."""
    runs: list[StudyRun] = []
    for q, item in enumerate(design.items):
        sc = study_scenario(item, max_new_tokens=design.max_new_tokens)
        prompts, names = list(sc.prompts) + [judge_prompt(item.query)], list(sc.names) + [JUDGE_NAME]
        for seed in design.seeds:
            common = dict(names=names, greedy=design.greedy, temperature=design.temperature, seed=seed,
                          max_new_tokens=design.max_new_tokens, stop_strings=list(sc.stop))
            for a in range(3):
                solo = [1.0 if j == a else 0.0 for j in range(4)]
                runs.append(StudyRun(q, "solo", seed, AuctionSpec.create(prompts, solo, payments=False, **common), agent=a))
            for lam, w in design.profiles:
                bids = profile_bids(lam, w)
                runs.append(StudyRun(q, "linear", seed, AuctionSpec.create(prompts, bids, rule="linear", **common),
                                     profile=(lam, w)))
                runs.append(StudyRun(q, "log_linear", seed, AuctionSpec.create(
                    prompts, bids, rule="log_linear", payments=False, **common), profile=(lam, w)))
                if not _top_is_unique(bids) or q < design.check_queries:
                    runs.append(StudyRun(q, "highest_bid", seed, AuctionSpec.create(
                        prompts, bids, rule="highest_bid", payments=False, **common), profile=(lam, w)))
    return runs


def highest_bid_check(result: "StudyResult") -> pd.DataFrame:
    """For every profile with a unique top bidder where the highest-bid rule ran through the engine:
    did it write the top bidder's solo text, token for token, with the top bidder's distribution
    as its aggregate (``max |q - p_top|``)?"""
    rows = []
    for run, tr in zip(result.runs, result.transcripts):
        bids = list(run.spec.bids)
        if run.kind != "highest_bid" or not _top_is_unique(bids):
            continue
        top = int(np.argmax(bids))
        _, solo, _ = result.find(run.item, "solo", run.seed, agent=top)
        rows.append({"query_id": result.design.items[run.item].query_id, "lam": run.profile[0],
                     "platform_bid": run.profile[1], "top bidder": tr.agents[top],
                     "same tokens": tr.token_ids == solo.token_ids,
                     "max |q - p_top|": float(np.max(np.abs(tr.table["q"] - tr.table[f"p_{tr.agents[top]}"])))})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- recording


def log_aggregate(logprobs: torch.Tensor, bids: torch.Tensor, rule: str) -> torch.Tensor:
    """``log q`` of a built-in rule from the agents' log-probabilities, exactly (no underflow):
    linear ``logsumexp_i(log lambda_i + log p_i)`` over the bidders, log-linear
    :func:`~llm_auction_utils.theory.aggregation.log_linear_logprobs`, highest bid the log of the
    tied top bidders' average (notebooks/theory.md §1, §4.4)."""
    if rule == "log_linear":
        return log_linear_logprobs(logprobs, bids.to(logprobs.dtype))
    if rule == "highest_bid":
        top = bids == bids.max()
        return torch.logsumexp(logprobs[top], dim=0) - math.log(int(top.sum()))
    pos = bids > 0
    lam = (bids[pos] / bids[pos].sum()).to(logprobs.dtype)
    return torch.logsumexp(logprobs[pos] + torch.log(lam)[:, None], dim=0)


def _kl_pair(log_q: torch.Tensor, log_r: torch.Tensor) -> tuple[float, float]:
    """``(KL(r || q), KL(q || r))`` from log-probabilities, summed in float64 (0 log 0 = 0)."""
    q, r = torch.exp(log_q), torch.exp(log_r)
    diff = log_r - log_q
    kl_rq = torch.where(r > 0, r * diff, torch.zeros_like(r)).sum(dtype=torch.float64)
    kl_qr = torch.where(q > 0, -q * diff, torch.zeros_like(q)).sum(dtype=torch.float64)
    return max(float(kl_rq), 0.0), max(float(kl_qr), 0.0)


class StudyRecorder:
    """``on_step`` callback of one study auction; keeps per step, in float64 on the host:

    ``logprob (T, 4)``: every agent's log-probability of the written token; ``kl_ref_q``,
    ``kl_q_ref (T,)``: ``KL(p_ref || q)`` and ``KL(q || p_ref)`` (``q`` in log space,
    :func:`log_aggregate`); for a solo run that is the top bidder of profiles ``q0_bids``,
    ``tv_q0 (T, m)``: ``TV(q, highest_bid(dists, b0))`` with the solo agent's bid set to 0 in
    each (the highest-bid mechanism's payments); for a log-linear auction ``kl_payment``,
    ``kl_allocation (T, 4)`` (:func:`~.mechanisms.kl_preference_closed_form`); for a tied
    highest-bid auction ``hb_payment (T, 4)`` (:func:`~.mechanisms.highest_bid_payments`).
    ``seconds``: time spent here.
    """

    def __init__(self, bids: Sequence[float], rule: str, *, q0_bids: Sequence[Sequence[float]] = ()):
        self.bids = torch.tensor([float(x) for x in bids], dtype=torch.float64)
        self.rule = rule
        self.q0_bids = [torch.tensor([float(x) for x in b0], dtype=torch.float64) for b0 in q0_bids]
        self.steps: list[dict[str, Any]] = []
        self.seconds = 0.0

    def __call__(self, info: StepInfo) -> None:
        if info.logprobs is None:
            raise ValueError("StudyRecorder needs the step's log-probabilities (StepInfo.logprobs)")
        t0 = time.perf_counter()
        lp, d = info.logprobs, info.dists
        bids = self.bids.to(lp.device)
        log_q = self._log_q(info, bids)
        kl_rq, kl_qr = _kl_pair(log_q, lp[REFERENCE])
        entry: dict[str, Any] = {"logprob": lp[:, info.token_id].double().cpu().numpy(), "kl_ref_q": kl_rq,
                                 "kl_q_ref": kl_qr}
        if self.q0_bids:
            q = torch.exp(log_q)
            entry["tv_q0"] = np.array([float(tv_distance(q, highest_bid(d, b0.to(d.device).float(), validate=False),
                                                         validate=False)) for b0 in self.q0_bids])
        if self.rule == "log_linear":
            z, x, _ = kl_preference_closed_form(lp, bids, flags=False)
            entry["kl_payment"], entry["kl_allocation"] = z.cpu().numpy(), x.cpu().numpy()
        elif self.rule == "highest_bid":
            entry["hb_payment"] = highest_bid_payments(d, bids, torch.exp(log_q)).cpu().numpy()
        self.seconds += time.perf_counter() - t0
        self.steps.append(entry)

    def _log_q(self, info: StepInfo, bids: torch.Tensor) -> torch.Tensor:
        """``log q``: the engine's where it has it (log-linear), the bidder's own for a solo run, else
        ``log(q)``, recomputed exactly (:func:`log_aggregate`) if ``q`` underflows where ``p_ref > 0``."""
        if info.log_aggregate is not None:
            return info.log_aggregate
        bidders = torch.nonzero(bids > 0).flatten()
        if len(bidders) == 1:
            return info.logprobs[int(bidders[0])]
        q = info.aggregate
        if bool(((q == 0) & (info.dists[REFERENCE] > 0)).any()):
            return log_aggregate(info.logprobs, bids.float(), self.rule)
        return torch.log(q)

    def stacked(self, key: str) -> np.ndarray:
        """One recorded quantity stacked over the steps (``(T, ...)``)."""
        return np.array([s[key] for s in self.steps])


def _recorder(run: StudyRun, design: StudyDesign) -> StudyRecorder:
    if run.kind != "solo":
        return StudyRecorder(run.spec.bids, run.kind)
    q0 = []
    for lam, w in design.profiles:
        bids = list(profile_bids(lam, w))
        if _top_is_unique(bids) and int(np.argmax(bids)) == run.agent:
            bids[run.agent] = 0.0
            q0.append(bids)
    return StudyRecorder(run.spec.bids, "linear", q0_bids=q0)


@dataclass
class StudyResult:
    """What :func:`run_study` returns: the design, every run with its transcript and recorder,
    the wall-clock ``seconds`` of the one batched call and its :class:`~.contexts.RowStats`."""

    design: StudyDesign
    runs: list[StudyRun]
    transcripts: list[Transcript]
    recorders: list[StudyRecorder]
    seconds: float = 0.0
    rows: RowStats = field(default_factory=RowStats)
    index: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for j, r in enumerate(self.runs):
            self.index[(r.item, r.kind, r.seed, r.profile, r.agent)] = j

    def find(self, item: int, kind: str, seed: int, *, profile: tuple[float, float] | None = None,
             agent: int | None = None) -> tuple[StudyRun, Transcript, StudyRecorder]:
        """The run of ``(item, kind, seed, profile, agent)`` with its transcript and recorder."""
        j = self.index[(item, kind, seed, profile, agent)]
        return self.runs[j], self.transcripts[j], self.recorders[j]


def run_study(design: StudyDesign, *, model: LoadedModel | str, max_rows: int | None = None,
              progress: bool = False) -> StudyResult:
    """Run every auction of the study in ONE :func:`~.engine.run_auctions` call, each with its
    :class:`StudyRecorder` (``on_step``); ``max_rows`` bounds the rows of one forward pass."""
    runs = study_auctions(design)
    recorders = [_recorder(r, design) for r in runs]
    stats = RowStats()
    t0 = time.perf_counter()
    transcripts = run_auctions([r.spec for r in runs], model=model, max_rows=max_rows, progress=progress,
                               stats=stats, on_step=lambda info: recorders[info.auction](info))
    return StudyResult(design, runs, transcripts, recorders, time.perf_counter() - t0, stats)


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class _Text:
    """What the metrics of one text need: its text, tokens, per-token log-probabilities under the
    four agents, the two KL means, and whether it stopped at the end of its line."""

    text: str
    logprob: np.ndarray
    kl_ref_q: float
    kl_q_ref: float
    complete: bool

    @classmethod
    def of(cls, tr: Transcript, rec: StudyRecorder) -> "_Text":
        return cls(tr.text, rec.stacked("logprob"), float(np.mean(rec.stacked("kl_ref_q"))),
                   float(np.mean(rec.stacked("kl_q_ref"))), tr.stop_reason != "max_new_tokens")


def _metrics(t: _Text, ref: _Text, brands: Sequence[str], lam: float) -> dict[str, float]:
    """The content metrics of text ``t`` against the reference text ``ref`` (module docstring)."""
    own = t.logprob.mean(axis=0)
    base = ref.logprob.mean(axis=0)
    gains = own[:2] - base[:2]
    return {"tokens": float(len(t.logprob)), "complete": float(t.complete),
            "mention_1": float(mentions(t.text, [brands[0]])), "mention_2": float(mentions(t.text, [brands[1]])),
            "gain_1": float(gains[0]), "gain_2": float(gains[1]), "gain": float(lam * gains[0] + (1 - lam) * gains[1]),
            "user_loss": float(base[JUDGE] - own[JUDGE]), "kl_ref_q": t.kl_ref_q, "kl_q_ref": t.kl_q_ref}


def _money(revenue: float, ad_bids: float, tokens: float, mechanism: str) -> dict[str, Any]:
    """Revenue, what pay-your-bid charges for the text shown (the advertisers' total bid times its
    expected length, notebooks/theory.md §4.9), and their ratio where both are money."""
    pay_your_bid = float(ad_bids * tokens) if mechanism != "reference" else 0.0
    comparable = MONEY_UNITS[mechanism] == "bid x tokens" and pay_your_bid > 0
    return {"revenue": float(revenue), "pay_your_bid": pay_your_bid,
            "revenue_share": float(revenue / pay_your_bid) if comparable else None,
            "payment_rule": PAYMENT_RULES[mechanism], "money_unit": MONEY_UNITS[mechanism]}


def _row_base(result: StudyResult, q: int, mechanism: str, profile: tuple[float, float], seed: int) -> dict[str, Any]:
    item = result.design.items[q]
    lam, w = profile
    return {"query_id": item.query_id, "query": item.query, "category": item.category, "mechanism": mechanism,
            "lam": lam, "platform_bid": w, "bids": " / ".join(f"{b:g}" for b in profile_bids(lam, w)[:3]),
            "seed": seed}


def _token_row(result: StudyResult, q: int, kind: str, profile: tuple[float, float], seed: int,
               texts: dict[int, _Text]) -> dict[str, Any]:
    """A linear or log-linear auction, or a tied highest-bid auction run through the engine."""
    _, tr, rec = result.find(q, kind, seed, profile=profile)
    lam, _ = profile
    if kind == "linear":
        revenue = float(tr.totals["expected_payment"].to_numpy()[:2].sum())
    elif kind == "log_linear":
        revenue = float(rec.stacked("kl_payment")[:, :2].sum())
    else:
        revenue = float(rec.stacked("hb_payment")[:, :2].sum())
    brands = [b.name for b in result.design.items[q].brands]
    return {**_row_base(result, q, kind, profile, seed), "text": tr.text,
            **_metrics(_Text.of(tr, rec), texts[REFERENCE], brands, lam), **_money(revenue, sum(profile_bids(*profile)[:2]), tr.n_tokens, kind)}


def _highest_bid_row(result: StudyResult, q: int, profile: tuple[float, float], seed: int,
                     texts: dict[int, _Text]) -> dict[str, Any]:
    """The highest-bid mechanism at a profile with a unique top bidder: its solo text, and
    ``z_w = M sum_t TV(p_w, q(0))`` (notebooks/theory.md §4.4) if the top bidder is an advertiser."""
    bids = list(profile_bids(*profile))
    if not _top_is_unique(bids):
        return _token_row(result, q, "highest_bid", profile, seed, texts)
    top = int(np.argmax(bids))
    run, tr, rec = result.find(q, "solo", seed, agent=top)
    revenue = 0.0
    if top < 2:
        m = max(b for j, b in enumerate(bids) if j != top)
        k = [p for p in result.design.profiles if _top_is_unique(profile_bids(*p))
             and int(np.argmax(profile_bids(*p))) == top].index(profile)
        revenue = m * float(rec.stacked("tv_q0")[:, k].sum())
    brands = [b.name for b in result.design.items[q].brands]
    return {**_row_base(result, q, "highest_bid", profile, seed), "text": tr.text,
            **_metrics(texts[top], texts[REFERENCE], brands, profile[0]), **_money(revenue, sum(bids[:2]), tr.n_tokens, "highest_bid")}


def _rag_row(result: StudyResult, q: int, profile: tuple[float, float], seed: int,
             texts: dict[int, _Text]) -> dict[str, Any]:
    """The one-segment baseline: candidates are the advertisers' solo ads (and the reference answer
    if ``w > 0``), shown with probability ``rel_c b_c / sum_d rel_d b_d``, ``rel_c`` the reference
    agent's geometric-mean token probability of the candidate; metrics are expectations over the
    candidates, the advertisers pay Myerson's payment per token of their ad."""
    bids = np.array(profile_bids(*profile)[:3])
    cand = [a for a in range(3) if bids[a] > 0]
    rel = np.array([math.exp(float(texts[a].logprob[:, REFERENCE].mean())) for a in cand])
    tokens = [len(texts[a].logprob) for a in cand]
    x = rag_allocation(rel, bids[cand])
    z = rag_payments(rel, bids[cand], tokens, [j for j, a in enumerate(cand) if a < 2])
    brands = [b.name for b in result.design.items[q].brands]
    per = [_metrics(texts[a], texts[REFERENCE], brands, profile[0]) for a in cand]
    expected = {key: float(sum(xj * m[key] for xj, m in zip(x, per))) for key in per[0]}
    best = cand[int(np.argmax(x))]
    return {**_row_base(result, q, "rag", profile, seed), "text": texts[best].text, **expected,
            **_money(float(z.sum()), float(bids[:2].sum()), float(np.dot(x, tokens)), "rag"),
            "allocation": " / ".join(f"{v:.3g}" for v in x)}


def _reference_row(result: StudyResult, q: int, profile: tuple[float, float], seed: int,
                   texts: dict[int, _Text]) -> dict[str, Any]:
    brands = [b.name for b in result.design.items[q].brands]
    return {**_row_base(result, q, "reference", profile, seed), "text": texts[REFERENCE].text,
            **_metrics(texts[REFERENCE], texts[REFERENCE], brands, profile[0]),
            **_money(0.0, sum(profile_bids(*profile)[:2]), len(texts[REFERENCE].logprob), "reference")}


def study_table(result: StudyResult) -> pd.DataFrame:
    """One row per (query, platform bid, bid share, seed, mechanism), in the design's order.

    The ``reference`` does not depend on the bids: its row repeats for every profile (its gains and
    loss are 0 by definition, the baseline of the others).  A ``rag`` row's ``text`` is its most
    likely candidate and ``allocation`` lists the candidates' probabilities."""
    rows = []
    for q in range(len(result.design.items)):
        for seed in result.design.seeds:
            texts = {a: _Text.of(*result.find(q, "solo", seed, agent=a)[1:]) for a in range(3)}
            for profile in result.design.profiles:
                rows += [_token_row(result, q, "linear", profile, seed, texts),
                         _token_row(result, q, "log_linear", profile, seed, texts),
                         _highest_bid_row(result, q, profile, seed, texts), _rag_row(result, q, profile, seed, texts),
                         _reference_row(result, q, profile, seed, texts)]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- paired analysis


def per_query(table: pd.DataFrame, by: Sequence[str], metric: str) -> pd.DataFrame:
    """``metric`` averaged over seeds: one column per query id (in order of first appearance), one
    row per group of ``by``."""
    queries = list(dict.fromkeys(table["query_id"]))
    wide = table.groupby([*by, "query_id"], sort=False)[metric].mean().unstack("query_id")
    return wide.reindex(columns=queries)


def _interval(values: np.ndarray, draws: np.ndarray, level: float) -> tuple[float, float, float]:
    boot = values[draws].mean(axis=1)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(values.mean()), float(lo), float(hi)


def _draws(n_queries: int, n_boot: int, seed: int) -> np.ndarray:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be an integer >= 100, got {n_boot!r}")
    return np.random.default_rng(seed).integers(0, n_queries, size=(n_boot, n_queries))


def verdict(low: float, high: float) -> str:
    """``"higher"`` when a 95% interval of a difference lies above 0, ``"lower"`` below, else
    ``"indistinguishable"``."""
    return "higher" if low > 0 else "lower" if high < 0 else "indistinguishable"


def paired_contrasts(table: pd.DataFrame, metrics: Sequence[str], *, baseline: str = "linear",
                     n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Every mechanism against ``baseline`` at each platform bid, per metric: the difference
    (mechanism - baseline) per query, averaged over the bid shares and seeds, with a percentile
    bootstrap interval over queries (one set of resamples for every contrast).  Rows whose metric
    is missing (a revenue share in another unit) are left out, so such pairs are not ranked."""
    queries = list(dict.fromkeys(table["query_id"]))
    draws = _draws(len(queries), n_boot, seed)
    rows = []
    for metric in metrics:
        wide = per_query(table.dropna(subset=[metric]), ["platform_bid", "mechanism"], metric)
        for (w, mech), values in wide.iterrows():
            if mech == baseline or (w, baseline) not in wide.index:
                continue
            diff = (values - wide.loc[(w, baseline)]).to_numpy(dtype=np.float64)
            if np.isnan(diff).any():
                continue
            est, lo, hi = _interval(diff, draws, level)
            rows.append({"contrast": f"{mech} - {baseline}", "platform_bid": w, "metric": metric,
                         "estimate": est, "ci_low": lo, "ci_high": hi, "verdict": verdict(lo, hi)})
    return pd.DataFrame(rows)


def _own(table: pd.DataFrame) -> pd.DataFrame:
    """The table in the advertisers' own terms: one row per advertiser, its own bid share
    (``lam`` for advertiser 1, ``1 - lam`` for advertiser 2), own-brand mention and own gain."""
    parts = []
    for i, share in ((1, table["lam"]), (2, (1 - table["lam"]).round(10))):
        part = table[["query_id", "mechanism", "platform_bid", "seed"]].copy()
        part["advertiser"], part["own_share"] = i, share
        part["mention"], part["gain"] = table[f"mention_{i}"], table[f"gain_{i}"]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def bid_response(table: pd.DataFrame, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each advertiser's own-brand mention rate and gain at each of its own bid shares, per
    mechanism and platform bid, with bootstrap intervals over queries; and the paired contrast
    high share - low share (the largest against the smallest own share) per advertiser.

    Returns ``(response, contrasts)``: ``response`` has ``mechanism, platform_bid, advertiser,
    own_share, metric, estimate, ci_low, ci_high``; ``contrasts`` the same keys without
    ``own_share``, plus ``verdict`` (``advertiser`` 0: both advertisers pooled)."""
    own = _own(table)
    pooled = own.assign(advertiser=0)
    queries = list(dict.fromkeys(table["query_id"]))
    draws = _draws(len(queries), n_boot, seed)
    response, contrasts = [], []
    for metric in ("mention", "gain"):
        wide = per_query(pd.concat([own, pooled]), ["mechanism", "platform_bid", "advertiser", "own_share"], metric)
        for key, values in wide.iterrows():
            est, lo, hi = _interval(values.to_numpy(dtype=np.float64), draws, level)
            response.append(dict(zip(["mechanism", "platform_bid", "advertiser", "own_share"], key),
                                 metric=metric, estimate=est, ci_low=lo, ci_high=hi))
        for key, grp in wide.groupby(level=[0, 1, 2], sort=False):
            shares = grp.index.get_level_values("own_share")
            diff = grp[shares == shares.max()].to_numpy()[0] - grp[shares == shares.min()].to_numpy()[0]
            est, lo, hi = _interval(diff.astype(np.float64), draws, level)
            contrasts.append(dict(zip(["mechanism", "platform_bid", "advertiser"], key), metric=metric,
                                  contrast=f"own share {shares.max():g} - {shares.min():g}",
                                  estimate=est, ci_low=lo, ci_high=hi, verdict=verdict(lo, hi)))
    return pd.DataFrame(response), pd.DataFrame(contrasts)


def summarize(table: pd.DataFrame, metrics: Sequence[str], *, by: Sequence[str] = ("mechanism", "platform_bid"),
              n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Mean of each metric per group over queries (each query's value averaged over the other
    factors: bid shares, seeds), with a percentile bootstrap interval over queries (the same
    resamples for every group).  Gains and the user's loss are already differences against the
    reference text of the same query, so their intervals are paired intervals against the no-ads
    reference.  Rows whose metric is missing (a revenue share in another unit) are left out."""
    queries = list(dict.fromkeys(table["query_id"]))
    draws = _draws(len(queries), n_boot, seed)
    rows = []
    for metric in metrics:
        wide = per_query(table.dropna(subset=[metric]), list(by), metric)
        for key, values in wide.iterrows():
            v = values.to_numpy(dtype=np.float64)
            if np.isnan(v).any():
                continue
            est, lo, hi = _interval(v, draws, level)
            rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "metric": metric,
                         "estimate": est, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def equal_relevance_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """[project] Theory chapter §4.9's equal-relevance case, measured per platform bid.

    The linear rule charges advertiser ``i``, per token, ``TV(p_i, r_{-i}) M(b_i, B_{-i})`` with
    ``M(b, a) = a ln(1 + b/a) - ab/(a + b)``; a one-segment baseline whose candidates all had the
    same relevance and length would charge ``M(b_i, B_{-i})`` per token, so its revenue share would be
    ``sum_i M(b_i, B_{-i}) / B_ads``, a function of the profile alone (``B_{-i}`` includes the
    platform's bid; computed by :func:`~.mechanisms.rag_closed_form` with equal relevances).  Per
    platform bid, over every query and bid share: ``linear_share`` and
    ``rag_share`` (the mean revenue shares of the table), ``equal_relevance_share`` (the mean of
    that function over the same rows) and ``mean_tv = linear_share / equal_relevance_share``, the
    payment-weighted mean of ``TV(p_i, r_{-i})`` over the advertisers and the tokens of the linear
    texts (at most 1).
    """
    missing = {"mechanism", "platform_bid", "lam", "revenue_share"} - set(table.columns)
    if missing:
        raise ValueError(f"the study table lacks the columns {sorted(missing)}")
    rows = []
    for beta, group in table.groupby("platform_bid", sort=True):
        linear = group[group["mechanism"] == "linear"]
        rag = group[group["mechanism"] == "rag"]
        if linear.empty or rag.empty:
            raise ValueError(f"platform bid {beta:g}: the table needs linear and rag rows")
        equal = []
        for lam in linear["lam"].to_numpy(dtype=np.float64):
            bids = profile_bids(float(lam), float(beta))[:3]  # the advertisers' ads and the platform's answer
            pay = rag_closed_form(np.ones(3), bids, np.ones(3), [0, 1])  # equal relevances, one token each
            equal.append(float(pay.sum()) / (bids[0] + bids[1]))
        lin_share, eq_share = float(linear["revenue_share"].mean()), float(np.mean(equal))
        rows.append({"platform_bid": float(beta), "linear_share": lin_share, "equal_relevance_share": eq_share,
                     "mean_tv": lin_share / eq_share, "rag_share": float(rag["revenue_share"].mean())})
    return pd.DataFrame(rows)


def precision_check(result: StudyResult, reference_model: LoadedModel | str, *, items: int = 3) -> dict[str, float]:
    """How far the run's numbers are from another model's (e.g. the same model in float32), on the
    solo texts of the first ``items`` queries, re-scored under ``reference_model``
    (:func:`~.mechanisms.score_tokens`):

    ``gap``: the largest difference, over those texts and the four agents, of a text's mean
    log-probability per token (nats), the quantity the gains and the loss are made of; a contrast is
    a difference of two such means, so its error is at most ``2 gap``; ``agree``: the fraction of
    the greedy steps at which the reference model's most likely token, for the agent that wrote the
    text, is the token written (1 where the two precisions would write the same text)."""
    from .mechanisms import score_tokens

    gap, same, steps = 0.0, 0, 0
    for q in range(min(items, len(result.design.items))):
        for a in range(3):
            run, tr, rec = result.find(q, "solo", result.design.seeds[0], agent=a)
            scored, best = score_tokens(reference_model, run.spec.prompts, tr.token_ids, with_argmax=True)
            gap = max(gap, float(np.max(np.abs(scored.mean(axis=1) - rec.stacked("logprob").mean(axis=0)))))
            same += int((best[a] == np.asarray(tr.token_ids)).sum())
            steps += len(tr.token_ids)
    return {"gap": gap, "agree": same / steps}
