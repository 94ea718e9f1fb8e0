"""Mechanisms compared on real user queries (notebook 09; theory chapter §4, §5, §6).

The study runs, on the same engine, model and bid profiles, for every query of a GEM-Bench
scenario set (:mod:`.gembench`: ``k`` advertisers and the neutral reference agent):

* ``linear``: the token auction with the linear rule, expected critical-bid payments (§4.3);
* ``log_linear``: the token auction with the log-linear rule, charged the KL-preference
  payments of §4.7 ([project extension]; closed form, :func:`kl_preference_closed_form`).  Its
  critical-bid payment is undefined on every step where the rule is not monotone for the agent
  (``flagged``, found at the bid path's ends, §4.4), and on the other steps the quadrature of
  :func:`~llm_auction_utils.theory.payments.expected_critical_payments` over a 262,144-token
  vocabulary needs gigabytes of memory per step, so the study does not charge it;
* ``highest_bid``: per token, the highest bidder's distribution (``rule="highest_bid"``),
  priced at the critical bid ``z_w = M TV(p_w, q(0))`` per token, ``M`` the highest other bid
  (§4.4; :func:`highest_bid_payments`);
* ``rag``: the segment-level baseline of Hajiaghayi et al. (2024), simplified to ONE segment:
  candidate ``c`` (an advertiser's solo ad, or the reference answer when the platform bids)
  is shown with probability ``x_c = rel_c b_c / sum_d rel_d b_d`` (:func:`rag_allocation`),
  ``rel_c`` = the reference agent's mean token probability of the candidate (the exponential
  of its mean log-probability); advertiser ``i`` pays the Myerson payment of that allocation
  (§4.1) per token of its ad (:func:`rag_payments`);
* ``reference``: the reference agent alone (no ads, no payments).

The reference agent takes part in every auction: it is the platform's relevance agent with
the profile's last bid (0 = pure advertising), and with bid 0 it only *observes*: its
distribution at every step gives the user relevance (its mean log-probability of the text)
and ``KL(q || p_ref)`` per token at no extra pass.  Every advertiser likewise observes the
auctions it does not bid in, which gives its value (mean log-probability of the text under
its agent).  Every agent's solo creative (only its bid positive) is run once: the ``rag``
candidates, the ``reference`` mechanism, and the ``highest_bid`` mechanism, whose aggregate
*is* the top bidder's distribution at every step, so it writes the top bidder's solo creative
token for token (greedy, or sampled with the same seed); ``check_queries`` runs the rule
itself through the engine to confirm it.  All auctions of the study go through ONE call of
:func:`~.engine.run_auctions`.

Metrics per (query, mechanism, bid profile, seed): ``value_<k>`` (advertiser ``k``'s mean
log-probability of the text), ``adv_value`` (their bid-weighted mean), ``relevance`` (the
reference's mean log-probability), ``kl_ref`` (mean ``KL(q || p_ref)`` per token, nats),
``mentions`` (advertisers named in full), ``revenue`` (the advertisers' expected payments under
the mechanism's payment rule, :data:`PAYMENT_RULES`),
``tokens`` and ``ms`` (the mechanism's own aggregation and payment time; the forward passes,
shared by all mechanisms, excluded).  :func:`bootstrap_summary` gives means with bootstrap
confidence intervals over queries.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ..theory.aggregation import highest_bid
from ..theory.divergences import tv_distance
from ..theory.payments import linear_myerson_payment, myerson_payment
from ..theory.preferences import token_excess
from .engine import AuctionSpec, next_token_logprobs, run_auctions
from .gembench import StudyItem, study_scenario
from .models import LoadedModel, load_model
from .transcript import StepInfo, Transcript

__all__ = [
    "MECHANISMS",
    "PAYMENT_RULES",
    "StudyDesign",
    "StudyRecorder",
    "StudyResult",
    "StudyRun",
    "bootstrap_summary",
    "highest_bid_payments",
    "kl_preference_closed_form",
    "mentions",
    "highest_bid_check",
    "kl_payment_check",
    "rag_allocation",
    "rag_closed_form",
    "rag_payments",
    "round_significant",
    "run_study",
    "score_tokens",
    "study_auctions",
    "study_table",
]

MECHANISMS = ("linear", "log_linear", "highest_bid", "rag", "reference")
"""The mechanisms of the study, in the order of the tables and figures."""

PAYMENT_RULES = {"linear": "critical bid (expected)", "log_linear": "KL preference", "highest_bid": "critical bid (expected)",
                 "rag": "Myerson (segment)", "reference": "none"}
"""The payment rule behind each mechanism's ``revenue``."""


# --------------------------------------------------------------------------- scoring


def score_tokens(model: LoadedModel | str, prompts: Sequence[str], token_ids: Sequence[int]) -> np.ndarray:
    """``(n, T)``: ``log p_i(t_k | prompt_i, t_1..t_{k-1})`` of a fixed continuation under each prompt.

    One batched forward pass over ``prompt_i + tokens`` (left-padded, padding masked), with the
    engine's tokenization and normalization (:func:`~.engine.next_token_logprobs`): what an
    agent that only observes an auction sees along its creative (theory chapter §1).
    """
    lm = model if isinstance(model, LoadedModel) else load_model(model)
    toks = [int(t) for t in token_ids]
    if not toks:
        raise ValueError("token_ids is empty: nothing to score")
    if isinstance(prompts, str) or not prompts:
        raise TypeError("prompts must be a non-empty sequence of strings")
    rows = [lm.tokenizer(p, add_special_tokens=True)["input_ids"] + toks for p in prompts]
    L, T = max(len(r) for r in rows), len(toks)
    ids = torch.full((len(rows), L), lm.tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for k, r in enumerate(rows):
        ids[k, L - len(r):], mask[k, L - len(r):] = torch.tensor(r), 1
    pos = (mask.cumsum(-1) - 1).clamp_min(0)
    with torch.inference_mode():
        out = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                       position_ids=pos.to(lm.device), logits_to_keep=T + 1)
        logp = next_token_logprobs(out.logits[:, :T, :])[0]
        picked = logp.gather(-1, torch.tensor(toks, device=lm.device).expand(len(rows), T)[..., None])[..., 0]
    return picked.double().cpu().numpy()


# --------------------------------------------------------------------------- closed forms


def highest_bid_payments(dists: torch.Tensor, bids: torch.Tensor, aggregate: torch.Tensor | None = None) -> torch.Tensor:
    """Expected critical-bid payments of the highest-bid rule for one step (theory chapter §4.4).

    ``dists (n, V)``, ``bids (n,)`` -> ``(n,)`` in float64: ``z_i = M_i TV(q(b), q(0))`` if
    ``b_i >= M_i > 0``, else 0, with ``M_i = max_{j != i} b_j`` and ``q(0)`` the rule at ``b_i = 0``.
    The allocation ``T(s) = TV(q(s), q(0))`` jumps from 0 to ``TV(q(b), q(0))`` at ``s = M_i``, so
    Myerson's ``b T(b) - int_0^b T`` is ``M_i TV``: what
    :func:`~llm_auction_utils.theory.payments.expected_critical_payments` integrates for this rule.
    """
    b = torch.as_tensor(bids, dtype=torch.float64)
    q = (highest_bid(dists, b) if aggregate is None else aggregate).double()
    z = torch.zeros(len(b), dtype=torch.float64)
    for i in range(len(b)):
        others = torch.cat([b[:i], b[i + 1:]])
        M = float(others.max()) if len(others) else 0.0
        if M > 0 and float(b[i]) >= M:
            b0 = b.clone()
            b0[i] = 0.0
            z[i] = M * float(tv_distance(q, highest_bid(dists, b0).double(), validate=False))
    return z


def _kl_from_logs(logq: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """``KL(q || p_j)`` for every row ``j`` of ``logp (n, V)`` (``q = 0`` terms are 0)."""
    q = torch.exp(logq)
    return torch.where(q > 0, q * (logq - logp), torch.zeros_like(logp)).sum(-1)


def _log_linear_fast(logprobs: torch.Tensor, bids: torch.Tensor) -> torch.Tensor:
    """``log q`` of the log-linear rule, ``log_softmax(sum_i lambda_i log p_i)`` over the agents with
    ``b_i > 0`` (one matrix product and one logsumexp; equal to
    :func:`~llm_auction_utils.theory.aggregation.log_linear_logprobs` for finite ``logprobs``)."""
    pos = bids > 0
    lam = (bids[pos] / bids[pos].sum()).to(logprobs.dtype)
    s = lam @ logprobs[pos]
    return s - torch.logsumexp(s, dim=-1)


def kl_preference_closed_form(logprobs: torch.Tensor, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KL-preference payments and allocations of the log-linear rule for one step, in closed form,
    and whether the coordinatewise order already fails at the ends of each agent's bid path.

    ``logprobs (n, V)``, ``bids (n,)`` -> ``(z, x, flagged)``, each ``(n,)`` (theory chapter §4.7):
    ``z_i = sum_{j != i} b_j (KL(q(b) || p_j) - KL(q(0) || p_j))`` and
    ``x_i = KL(q(0) || p_i) - KL(q(b) || p_i)`` in float64, ``q(0)`` the aggregate at ``b_i = 0``;
    0 when ``b_i = 0`` or nobody else bids.  ``z`` equals
    :func:`~llm_auction_utils.theory.payments.kl_preference_payments` (its Myerson integral).
    ``flagged[i]``: some token of ``q(b)`` lies outside ``[q(0), p_i]`` by more than 1e-7, so the
    rule is not monotone for agent ``i`` on this step and its critical-bid payment is undefined
    (theory chapter §4.4; the engine's first test, before its quadrature).
    """
    lp = logprobs.double()
    b = torch.as_tensor(bids, dtype=torch.float64, device=lp.device)
    log_qb = _log_linear_fast(lp, b)
    kl_b = _kl_from_logs(log_qb, lp)
    z, x = torch.zeros_like(b), torch.zeros_like(b)
    flagged = torch.zeros(len(b), dtype=torch.bool)
    for i in range(len(b)):
        b0 = b.clone()
        b0[i] = 0.0
        if float(b[i]) == 0 or float(b0.sum()) == 0:
            continue
        log_q0 = _log_linear_fast(lp, b0)
        kl_0 = _kl_from_logs(log_q0, lp)
        z[i] = float((b0 * (kl_b - kl_0)).sum())
        x[i] = float(kl_0[i] - kl_b[i])
        flagged[i] = float(token_excess(torch.exp(log_qb), torch.exp(log_q0), torch.exp(lp[i])).max()) > 1e-7
    return z, x, flagged


# --------------------------------------------------------------------------- the segment baseline


def rag_allocation(relevance: Sequence[float], bids: Sequence[float]) -> np.ndarray:
    """``x_c = rel_c b_c / sum_d rel_d b_d``: the probability that candidate ``c`` fills the segment
    (Hajiaghayi et al. 2024, one segment).  Relevances must be > 0, bids >= 0 and not all 0."""
    rel, b = np.asarray(relevance, dtype=np.float64), np.asarray(bids, dtype=np.float64)
    if rel.shape != b.shape or rel.ndim != 1:
        raise ValueError(f"relevance and bids must be 1-D of one length, got shapes {rel.shape} and {b.shape}")
    if not (np.isfinite(rel).all() and (rel > 0).all()):
        raise ValueError(f"relevance must be finite and > 0, got {rel.tolist()}")
    if not (np.isfinite(b).all() and (b >= 0).all() and (b > 0).any()):
        raise ValueError(f"bids must be finite, >= 0 and not all 0, got {b.tolist()}")
    w = rel * b
    return w / w.sum()


def rag_payments(relevance: Sequence[float], bids: Sequence[float], tokens: Sequence[float],
                 payers: Sequence[int]) -> np.ndarray:
    """Expected payments of the ``payers`` (advertisers) under :func:`rag_allocation` (theory chapter §4.1).

    Candidate ``i``'s allocation at bid ``s`` is ``x_i(s) = rel_i s / (rel_i s + R_{-i})``,
    ``R_{-i} = sum_{d != i} rel_d b_d``, times its ad's ``tokens`` (the bid is per token of one's
    own ad shown).  Myerson's payment ``b x(b) - int_0^b x`` is integrated by
    :func:`~llm_auction_utils.theory.payments.myerson_payment` (it equals the linear rule's
    closed form with ``B_{-i} = R_{-i} / rel_i``).  Non-payers (the platform's answer) pay 0.
    """
    rel, b = np.asarray(relevance, dtype=np.float64), np.asarray(bids, dtype=np.float64)
    T = np.asarray(tokens, dtype=np.float64)
    rag_allocation(rel, b)  # validates
    z = np.zeros(len(b))
    for i in payers:
        R = float(np.dot(np.delete(rel, i), np.delete(b, i)))
        if b[i] == 0 or R == 0:
            continue
        alloc = (lambda s, r=rel[i], R=R: r * s / (r * s + R))
        z[i] = T[i] * float(myerson_payment(alloc, np.float64(b[i]), scale=np.float64(R / rel[i])))
    return z


def rag_closed_form(relevance: Sequence[float], bids: Sequence[float], tokens: Sequence[float],
                    payers: Sequence[int]) -> np.ndarray:
    """:func:`rag_payments` in closed form: ``T_i (B ln(1 + b_i/B) - b_i B/(b_i + B))``, ``B = R_{-i}/rel_i``."""
    rel, b, T = (np.asarray(a, dtype=np.float64) for a in (relevance, bids, tokens))
    z = np.zeros(len(b))
    for i in payers:
        R = float(np.dot(np.delete(rel, i), np.delete(b, i)))
        z[i] = T[i] * float(linear_myerson_payment(b[i], R / rel[i]))
    return z


# --------------------------------------------------------------------------- recorder


class StudyRecorder:
    """``on_step`` callback of one study auction; keeps per step, in float64 on the host:

    ``logprob (T, n)``: every agent's log-probability of the written token; ``kl_ref (T,)``:
    ``KL(q || p_ref)`` on the full vocabulary (exactly 0 when ``q`` is ``p_ref``); with
    ``q0_bids`` (solo runs), ``tv_q0 (T, m)``: ``TV(q, highest_bid(dists, b0))`` for each bid
    vector ``b0`` (the highest-bid mechanism's payments, :func:`highest_bid_payments`); with
    ``kl_payments`` (log-linear), ``kl_payment``, ``kl_allocation`` and ``flagged (T, n)``
    (:func:`kl_preference_closed_form`, bids as given).  ``seconds``: time spent on payments.
    """

    def __init__(self, bids: Sequence[float], reference: int, *, q0_bids: Sequence[Sequence[float]] = (),
                 kl_payments: bool = False):
        self.bids = torch.tensor([float(x) for x in bids], dtype=torch.float64)
        self.reference = int(reference)
        self.q0_bids = [torch.tensor([float(x) for x in b0], dtype=torch.float64) for b0 in q0_bids]
        self.kl_payments = bool(kl_payments)
        self.steps: list[dict[str, np.ndarray]] = []
        self.seconds = 0.0

    def __call__(self, info: StepInfo) -> None:
        if info.logprobs is None:
            raise ValueError("StudyRecorder needs the step's log-probabilities (StepInfo.logprobs)")
        lp, d, r = info.logprobs, info.dists, self.reference
        q = info.aggregate.double()
        p_ref = d[r].double()
        log_ref = torch.where(p_ref > 0, torch.log(p_ref), lp[r].double())
        kl = torch.where(q > 0, q * (torch.log(q) - log_ref), torch.zeros_like(q)).sum()
        entry = {"logprob": lp[:, info.token_id].double().cpu().numpy(), "kl_ref": max(float(kl), 0.0)}
        t0 = time.perf_counter()
        if self.q0_bids:
            entry["tv_q0"] = np.array([float(tv_distance(q, highest_bid(d, b0.to(d.device)).double(), validate=False))
                                       for b0 in self.q0_bids])
        if self.kl_payments:
            z, x, flagged = kl_preference_closed_form(lp, self.bids / self.bids.max())
            entry["kl_payment"], entry["kl_allocation"] = (z * float(self.bids.max())).cpu().numpy(), x.cpu().numpy()
            entry["flagged"] = flagged.cpu().numpy()
        self.seconds += time.perf_counter() - t0
        self.steps.append(entry)

    def stacked(self, key: str) -> np.ndarray:
        """One recorded quantity stacked over the steps (``(T, ...)``)."""
        return np.array([s[key] for s in self.steps])


# --------------------------------------------------------------------------- the design


def _check_profiles(profiles: Any, n: int) -> tuple[tuple[float, ...], ...]:
    if isinstance(profiles, (str, bytes)) or not isinstance(profiles, Sequence) or not profiles:
        raise TypeError("profiles must be a non-empty list of bid profiles")
    out = []
    for p in profiles:
        if isinstance(p, (str, bytes)) or not isinstance(p, Sequence) or len(p) != n:
            raise ValueError(f"bid profile {p!r} must list {n} bids: one per advertiser, then the reference's")
        b = [float(x) for x in p]
        if not all(np.isfinite(b)) or min(b) < 0 or max(b) == 0:
            raise ValueError(f"bid profile {p!r}: bids must be finite, >= 0 and not all 0")
        if b.count(max(b)) > 1:
            raise ValueError(f"bid profile {p!r}: the highest bid must be unique (the highest-bid mechanism "
                             "is read off the top bidder's solo creative)")
        out.append(tuple(b))
    return tuple(out)


@dataclass(frozen=True)
class StudyDesign:
    """What the study runs: ``items`` (queries with ``k`` advertisers each), bid ``profiles``
    (``k`` advertiser bids, then the reference's bid: the platform's weight on relevance),
    decoding (``greedy``, or sampling at ``temperature`` with each of ``seeds``),
    ``max_new_tokens``, and two checks on the first queries: ``check_queries`` runs the
    ``highest_bid`` rule itself through the engine, ``kl_check_queries`` asks the engine for the
    KL-preference payments of the log-linear auctions (``payments="kl"``: quadrature, slow on a CPU)."""

    items: tuple[StudyItem, ...]
    profiles: tuple[tuple[float, ...], ...]
    seeds: tuple[int, ...] = (0,)
    greedy: bool = True
    temperature: float = 1.0
    max_new_tokens: int = 16
    check_queries: int = 1
    kl_check_queries: int = 1

    def __post_init__(self) -> None:
        items = tuple(self.items)
        if not items or not all(isinstance(it, StudyItem) for it in items):
            raise TypeError("items must be a non-empty sequence of StudyItem")
        ks = {len(it.brands) for it in items}
        if len(ks) != 1:
            raise ValueError(f"every query must have the same number of advertisers, got {sorted(ks)}")
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "profiles", _check_profiles(self.profiles, ks.pop() + 1))
        seeds = tuple(self.seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) \
                or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct non-negative integers, got {self.seeds!r}")
        if self.greedy and len(seeds) > 1:
            raise ValueError("greedy decoding does not depend on the seed: give one seed (or greedy=False)")
        object.__setattr__(self, "seeds", seeds)
        for name in ("check_queries", "kl_check_queries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")

    @property
    def k(self) -> int:
        """Advertisers per query (the reference agent is agent ``k``, 0-based)."""
        return len(self.items[0].brands)


@dataclass(frozen=True)
class StudyRun:
    """One auction of the study: query ``item`` (index into the design's items), ``kind``
    (``"solo"``, ``"linear"``, ``"log_linear"`` or ``"highest_bid"``, the last only as a check),
    ``seed``, bid ``profile`` (index; ``None`` for solo runs), the solo run's ``agent``, and for
    a solo run the profiles whose highest bidder it is (``top_of``)."""

    item: int
    kind: str
    seed: int
    spec: AuctionSpec
    profile: int | None = None
    agent: int | None = None
    top_of: tuple[int, ...] = ()


def study_auctions(design: StudyDesign) -> list[StudyRun]:
    """Every auction of the study, grouped by query (queries ordered by prompt length, so each
    batch of :func:`~.engine.run_auctions` pads little), then seed: the ``k + 1`` solo runs,
    then per profile the linear and log-linear auctions (and the highest-bid check)."""
    k = design.k
    order = sorted(range(len(design.items)), key=lambda q: (len(study_scenario(design.items[q]).prompts[0])
                                                             + len(design.items[q].query), q))
    tops = [int(np.argmax(p)) for p in design.profiles]
    runs: list[StudyRun] = []
    for q in order:
        sc = study_scenario(design.items[q], max_new_tokens=design.max_new_tokens)
        for seed in design.seeds:
            common = dict(names=sc.names, greedy=design.greedy, temperature=design.temperature, seed=seed,
                          max_new_tokens=design.max_new_tokens, stop_strings=list(sc.stop))

            def spec(bids: Sequence[float], rule: str, payments: bool | str) -> AuctionSpec:
                return AuctionSpec.create(sc.prompts, list(bids), rule=rule, payments=payments, **common)

            for a in range(k + 1):
                solo = [1.0 if j == a else 0.0 for j in range(k + 1)]
                top_of = tuple(p for p, t in enumerate(tops) if t == a)
                runs.append(StudyRun(q, "solo", seed, spec(solo, "linear", a == k), agent=a, top_of=top_of))
            kl_all = q in order[: design.kl_check_queries]
            for p, bids in enumerate(design.profiles):
                runs.append(StudyRun(q, "linear", seed, spec(bids, "linear", True), profile=p))
                runs.append(StudyRun(q, "log_linear", seed, spec(bids, "log_linear", "kl" if kl_all else False),
                                     profile=p))
                if q in order[: design.check_queries]:
                    runs.append(StudyRun(q, "highest_bid", seed, spec(bids, "highest_bid", False), profile=p))
    return runs


def _recorder(run: StudyRun, design: StudyDesign) -> StudyRecorder:
    q0 = []
    for p in run.top_of:
        b0 = list(design.profiles[p])
        b0[run.agent] = 0.0
        q0.append(b0)
    return StudyRecorder(run.spec.bids, reference=design.k, q0_bids=q0, kl_payments=run.kind == "log_linear")


@dataclass
class StudyResult:
    """What :func:`run_study` returns: the design, every run with its transcript and recorder,
    and the wall-clock ``seconds`` of the one batched call."""

    design: StudyDesign
    runs: list[StudyRun]
    transcripts: list[Transcript]
    recorders: list[StudyRecorder]
    seconds: float = 0.0
    index: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for j, r in enumerate(self.runs):
            self.index[(r.item, r.kind, r.seed, r.profile, r.agent)] = j

    def find(self, item: int, kind: str, seed: int, *, profile: int | None = None,
             agent: int | None = None) -> tuple[StudyRun, Transcript, StudyRecorder]:
        """The run of ``(item, kind, seed, profile, agent)`` with its transcript and recorder."""
        j = self.index[(item, kind, seed, profile, agent)]
        return self.runs[j], self.transcripts[j], self.recorders[j]


def run_study(design: StudyDesign, *, model: LoadedModel | str, max_rows: int | None = None,
              progress: bool = False) -> StudyResult:
    """Run every auction of the study in ONE :func:`~.engine.run_auctions` call (``max_rows`` bounds
    the rows of one forward pass), each with its :class:`StudyRecorder` (``on_step``), timings on."""
    runs = study_auctions(design)
    recorders = [_recorder(r, design) for r in runs]
    t0 = time.perf_counter()
    transcripts = run_auctions([r.spec for r in runs], model=model, max_rows=max_rows, profile=True,
                               progress=progress, on_step=lambda info: recorders[info.auction](info))
    return StudyResult(design, runs, transcripts, recorders, time.perf_counter() - t0)


# --------------------------------------------------------------------------- metrics


def mentions(text: str, names: Sequence[str]) -> int:
    """How many of ``names`` the text names in full (case-insensitive, not inside a longer word)."""
    return sum(bool(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text, flags=re.IGNORECASE)) for n in names)


def _text_metrics(logprob: np.ndarray, kl_ref: np.ndarray, text: str, names: Sequence[str],
                  adv_bids: Sequence[float]) -> dict[str, Any]:
    """Value per advertiser, their bid-weighted mean, relevance, KL to the reference, mentions, tokens."""
    k = len(names)
    value = logprob[:, :k].mean(axis=0)
    w = np.asarray(adv_bids, dtype=np.float64)
    adv_value = float(np.dot(w, value) / w.sum()) if w.sum() > 0 else float(value.mean())
    return {**{f"value_{i + 1}": float(value[i]) for i in range(k)}, "adv_value": adv_value,
            "relevance": float(logprob[:, k].mean()), "kl_ref": float(np.mean(kl_ref)),
            "mentions": mentions(text, names), "tokens": int(len(logprob))}


def _base(result: StudyResult, q: int, mechanism: str, p: int, seed: int) -> dict[str, Any]:
    item, bids = result.design.items[q], result.design.profiles[p]
    return {"query_id": item.query_id, "query": item.query, "category": item.category, "mechanism": mechanism,
            "profile": p, "bids": " / ".join(f"{b:g}" for b in bids), "platform_bid": bids[-1], "seed": seed}


def _auction_row(result: StudyResult, q: int, kind: str, p: int, seed: int) -> dict[str, Any]:
    """A token-auction row: linear (the engine's critical-bid payments) or log-linear (the recorder's
    KL-preference payments and, as ``alloc_<k>``, their allocations summed over the tokens, in nats;
    ``flagged``: advertiser-steps where the critical-bid payment is undefined)."""
    _, tr, rec = result.find(q, kind, seed, profile=p)
    k, bids = result.design.k, result.design.profiles[p]
    if kind == "linear":
        pays, flagged = tr.totals["expected_payment"].to_numpy()[:k], int(tr.totals["non_monotone_steps"].to_numpy()[:k].sum())
        alloc = np.full(k, np.nan)
    else:
        pays, flagged = rec.stacked("kl_payment").sum(axis=0)[:k], int(rec.stacked("flagged")[:, :k].sum())
        alloc = rec.stacked("kl_allocation").sum(axis=0)[:k]
    ms = 1000 * (float(np.sum(tr.timings["aggregation_payments"])) + rec.seconds)
    return {**_base(result, q, kind, p, seed), "text": tr.text,
            **_text_metrics(rec.stacked("logprob"), rec.stacked("kl_ref"), tr.text, tr.agents[:k], bids[:k]),
            **{f"pay_{i + 1}": float(pays[i]) for i in range(k)}, "revenue": float(pays.sum()),
            **{f"alloc_{i + 1}": float(alloc[i]) for i in range(k)},
            "payment rule": PAYMENT_RULES[kind], "flagged": flagged, "ms": ms}


def _highest_bid_row(result: StudyResult, q: int, p: int, seed: int) -> dict[str, Any]:
    """The highest-bid mechanism, read off the top bidder's solo run: z_w = M sum_t TV_t (theory §4.4)."""
    k, bids = result.design.k, np.asarray(result.design.profiles[p])
    w = int(np.argmax(bids))
    run, tr, rec = result.find(q, "solo", seed, agent=w)
    M = float(np.max(np.delete(bids, w)))
    tv = rec.stacked("tv_q0")[:, run.top_of.index(p)]
    pays = np.zeros(k)
    if w < k:
        pays[w] = M * float(tv.sum())
    return {**_base(result, q, "highest_bid", p, seed), "text": tr.text,
            **_text_metrics(rec.stacked("logprob"), rec.stacked("kl_ref"), tr.text, tr.agents[:k], bids[:k]),
            **{f"pay_{i + 1}": float(pays[i]) for i in range(k)}, "revenue": float(pays.sum()),
            "payment rule": PAYMENT_RULES["highest_bid"], "flagged": 0,
            "ms": 1000 * (float(np.sum(tr.timings["aggregation_payments"])) + rec.seconds / len(run.top_of))}


def _rag_row(result: StudyResult, q: int, p: int, seed: int) -> dict[str, Any]:
    """The one-segment RAG baseline: expected metrics over its random allocation, Myerson payments."""
    k, bids = result.design.k, np.asarray(result.design.profiles[p])
    solos = [result.find(q, "solo", seed, agent=a) for a in range(k + 1)]
    names = solos[0][1].agents[:k]
    cand = [a for a in range(k + 1) if bids[a] > 0]
    metrics = [_text_metrics(r.stacked("logprob"), r.stacked("kl_ref"), tr.text, names, bids[:k]) for _, tr, r in solos]
    rel = np.array([np.exp(metrics[a]["relevance"]) for a in cand])
    t0 = time.perf_counter()
    x = rag_allocation(rel, bids[cand])
    z = rag_payments(rel, bids[cand], [metrics[a]["tokens"] for a in cand], [j for j, a in enumerate(cand) if a < k])
    ms = 1000 * (time.perf_counter() - t0)
    pays = np.zeros(k)
    for j, a in enumerate(cand):
        if a < k:
            pays[a] = z[j]
    expected = {key: float(sum(x[j] * metrics[a][key] for j, a in enumerate(cand))) for key in metrics[0]}
    best = cand[int(np.argmax(x))]
    return {**_base(result, q, "rag", p, seed), "text": solos[best][1].text, **expected,
            **{f"pay_{i + 1}": float(pays[i]) for i in range(k)}, "revenue": float(pays.sum()),
            "payment rule": PAYMENT_RULES["rag"], "flagged": 0, "ms": ms, "allocation": " / ".join(f"{v:.3g}" for v in x)}


def _reference_row(result: StudyResult, q: int, p: int, seed: int) -> dict[str, Any]:
    k = result.design.k
    _, tr, rec = result.find(q, "solo", seed, agent=k)
    pays = tr.totals["expected_payment"].to_numpy()[:k]
    return {**_base(result, q, "reference", p, seed), "text": tr.text,
            **_text_metrics(rec.stacked("logprob"), rec.stacked("kl_ref"), tr.text, tr.agents[:k],
                            result.design.profiles[p][:k]),
            **{f"pay_{i + 1}": float(pays[i]) for i in range(k)}, "revenue": float(tr.totals["expected_payment"].sum()),
            "payment rule": PAYMENT_RULES["reference"], "flagged": 0, "ms": 1000 * float(np.sum(tr.timings["aggregation_payments"]))}


def study_table(result: StudyResult) -> pd.DataFrame:
    """One row per (query, mechanism, bid profile, seed), in the design's query order, then profile,
    seed and :data:`MECHANISMS`.  The ``reference`` does not depend on the bids: its row repeats
    for every profile.  ``text`` of a ``rag`` row is its most likely candidate; ``allocation``
    lists the candidates' probabilities (advertisers in order, then the reference if it bids)."""
    rows = []
    for q in range(len(result.design.items)):
        for p in range(len(result.design.profiles)):
            for seed in result.design.seeds:
                rows += [_auction_row(result, q, "linear", p, seed), _auction_row(result, q, "log_linear", p, seed),
                         _highest_bid_row(result, q, p, seed), _rag_row(result, q, p, seed),
                         _reference_row(result, q, p, seed)]
    return pd.DataFrame(rows)


def highest_bid_check(result: StudyResult) -> pd.DataFrame:
    """For every ``highest_bid`` auction run through the engine: did it write the top bidder's
    solo creative token for token, and was its aggregate the top bidder's distribution?"""
    rows = []
    for run, tr in zip(result.runs, result.transcripts):
        if run.kind != "highest_bid":
            continue
        w = int(np.argmax(run.spec.bids))
        _, solo, _ = result.find(run.item, "solo", run.seed, agent=w)
        rows.append({"query_id": result.design.items[run.item].query_id, "profile": run.profile, "seed": run.seed,
                     "top bidder": tr.agents[w], "same tokens": tr.token_ids == solo.token_ids,
                     "max |q - p_top|": float(np.max(np.abs(tr.table["q"] - tr.table[f"p_{tr.agents[w]}"])))})
    return pd.DataFrame(rows)


def kl_payment_check(result: StudyResult) -> float:
    """Largest relative difference between the engine's KL-preference payments (``payments="kl"``,
    Myerson quadrature) and :func:`kl_preference_closed_form` per token, over the checked auctions."""
    worst = 0.0
    for run, tr, rec in zip(result.runs, result.transcripts, result.recorders):
        if run.kind == "log_linear" and run.spec.options.payments == "kl":
            engine = tr.table[[f"kl_payment_{a}" for a in tr.agents]].to_numpy()
            closed = rec.stacked("kl_payment")
            worst = max(worst, float(np.max(np.abs(engine - closed) / np.maximum(np.abs(engine), 1e-6))))
    return worst


# --------------------------------------------------------------------------- summaries


def round_significant(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Every float of ``frame`` rounded to ``digits`` significant digits (what a float32 forward pass
    guarantees is about 4; CONTRIBUTING.md), for records and stored outputs."""
    def sig(v: Any) -> Any:
        return float(f"{v:.{digits}g}") if isinstance(v, float) and np.isfinite(v) else v

    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].map(sig)
    return out


def bootstrap_summary(table: pd.DataFrame, metrics: Sequence[str], *, by: Sequence[str] = ("mechanism", "profile"),
                      n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Mean of each metric per group with a percentile bootstrap confidence interval over QUERIES.

    Each query's value is its mean over seeds; the same resampled queries are used for every group
    (the groups are paired by query).  Returns one row per (group, metric): ``mean``, ``lo``, ``hi``.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be an integer >= 100, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    by = list(by)
    queries = list(dict.fromkeys(table["query_id"]))
    draws = np.random.default_rng(seed).integers(0, len(queries), size=(n_boot, len(queries)))
    rows = []
    for key, grp in table.groupby(by, sort=False):
        per_query = grp.groupby("query_id")[list(metrics)].mean().reindex(queries)
        for m in metrics:
            v = per_query[m].to_numpy(dtype=np.float64)
            if np.isnan(v).any():
                continue
            boot = v[draws].mean(axis=1)
            lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
            rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "metric": m,
                         "mean": float(v.mean()), "lo": float(lo), "hi": float(hi)})
    return pd.DataFrame(rows)
