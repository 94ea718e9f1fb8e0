"""The mechanisms notebook 09 compares the token auction with, and their payments in closed form.

Theory chapter §4, §5 and §6; the study itself (design, runs, metrics, paired analysis) is
:mod:`.study`.

* the **highest-bid** rule (``rule="highest_bid"``): per token, the highest bidder's distribution;
  its expected critical-bid payment is ``z_w = M TV(q(b), q(0))`` per token, ``M`` the highest
  other bid (§4.4; :func:`highest_bid_payments`);
* the **log-linear** rule's KL-preference payments ([project extension], §4.7) in closed form
  (:func:`kl_preference_closed_form`), equal to the engine's Myerson quadrature;
* **rag**: the segment-level baseline of Hajiaghayi et al. (2024), simplified to ONE segment:
  candidate ``c`` is shown with probability ``x_c = rel_c b_c / sum_d rel_d b_d``
  (:func:`rag_allocation`); advertiser ``i`` pays the Myerson payment of that allocation (§4.1)
  per token of its ad (:func:`rag_payments`, :func:`rag_closed_form`);
* scoring a fixed text under agents (:func:`score_tokens`) and brand mentions (:func:`mentions`).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch

from ..theory.aggregation import highest_bid
from ..theory.divergences import tv_distance
from ..theory.payments import linear_myerson_payment, myerson_payment
from ..theory.preferences import token_excess
from .engine import next_token_logprobs
from .models import LoadedModel, load_model

__all__ = [
    "highest_bid_payments",
    "kl_preference_closed_form",
    "mentions",
    "rag_allocation",
    "rag_closed_form",
    "rag_payments",
    "score_tokens",
]

# --------------------------------------------------------------------------- scoring


def score_tokens(model: LoadedModel | str, prompts: Sequence[str], token_ids: Sequence[int], *,
                 with_argmax: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``(n, T)``: ``log p_i(t_k | prompt_i, t_1..t_{k-1})`` of a fixed continuation under each prompt.

    One batched forward pass over ``prompt_i + tokens`` (left-padded, padding masked), with the
    engine's tokenization and normalization (:func:`~.engine.next_token_logprobs`): what an
    agent that only observes an auction sees along its creative (theory chapter §1).  With
    ``with_argmax``, also ``(n, T)``: each prompt's most likely token at each position.
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
    scores = picked.double().cpu().numpy()
    return (scores, logp.argmax(-1).cpu().numpy()) if with_argmax else scores


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


def kl_preference_closed_form(logprobs: torch.Tensor, bids: torch.Tensor, *,
                              flags: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KL-preference payments and allocations of the log-linear rule for one step, in closed form,
    and whether the coordinatewise order already fails at the ends of each agent's bid path.

    ``logprobs (n, V)``, ``bids (n,)`` -> ``(z, x, flagged)``, each ``(n,)`` (theory chapter §4.7):
    ``z_i = sum_{j != i} b_j (KL(q(b) || p_j) - KL(q(0) || p_j))`` and
    ``x_i = KL(q(0) || p_i) - KL(q(b) || p_i)`` (float64 results), ``q(0)`` the aggregate at
    ``b_i = 0``; 0 when ``b_i = 0`` or nobody else bids.  ``z`` equals
    :func:`~llm_auction_utils.theory.payments.kl_preference_payments` (its Myerson integral).
    ``flagged[i]`` (with ``flags``): some token of ``q(b)`` lies outside ``[q(0), p_i]`` by more
    than 1e-7, so the rule is not monotone for agent ``i`` on this step and its critical-bid
    payment is undefined (theory chapter §4.4); without ``flags``, all False.

    Vectorized over the agents: the aggregate and every leave-one-out aggregate come from one
    matrix product and one ``logsumexp``, every ``KL(q_r || p_j)`` from one more product, in the
    dtype of ``logprobs`` (float32 logprobs: float32 terms, float64 sums); agents with bid 0
    (observers) take no part.
    """
    dt = torch.float64 if logprobs.dtype == torch.float64 else torch.float32
    lp = logprobs.to(dt)
    b = torch.as_tensor(bids, dtype=torch.float64, device=lp.device)
    n = len(b)
    z, x = torch.zeros(n, dtype=torch.float64, device=lp.device), torch.zeros(n, dtype=torch.float64, device=lp.device)
    flagged = torch.zeros(n, dtype=torch.bool)
    bidders = torch.nonzero(b > 0).flatten()
    if len(bidders) < 2:
        return z, x, flagged
    scale = b.max()
    bb, lpb = b[bidders] / scale, lp[bidders].clamp_min(torch.finfo(dt).min)
    m = len(bidders)
    w = bb.repeat(m + 1, 1)
    w[1:] -= torch.diag(bb)  # row 0: everybody's bid; row 1 + k: bidder k's bid at 0
    s = (w / w.sum(-1, keepdim=True)).to(dt) @ lpb
    log_q = s - torch.logsumexp(s, dim=-1, keepdim=True)
    q = torch.exp(log_q)
    kl = (q * log_q).sum(-1, dtype=torch.float64)[:, None] - (q @ lpb.T).double()  # KL(q_r || p_j), (m + 1, m)
    for k, i in enumerate(bidders.tolist()):
        z[i] = scale * (w[1 + k] * (kl[0] - kl[1 + k])).sum()
        x[i] = kl[1 + k, k] - kl[0, k]
        if flags:
            flagged[i] = float(token_excess(q[0], q[1 + k], torch.exp(lpb[k])).max()) > 1e-7
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


def mentions(text: str, names: Sequence[str]) -> int:
    """How many of ``names`` the text names in full (case-insensitive, not inside a longer word)."""
    return sum(bool(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text, flags=re.IGNORECASE)) for n in names)
