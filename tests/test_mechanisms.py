"""Tests of :mod:`llm_auction_utils.llm.mechanisms` (notebook 09): the closed forms against the
package's quadratures, the segment baseline, brand mentions, and the scoring pass against the
engine's own log-probabilities.  The study itself is tested in ``tests/test_study.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm_auction_utils.llm import mechanisms as m
from llm_auction_utils.theory.payments import expected_critical_payments, kl_preference_payments


def _dists(seed: int, n: int = 3, V: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(n, V, generator=g, dtype=torch.float64), dim=-1)


@pytest.mark.parametrize("seed", range(4))
def test_highest_bid_payments_equal_the_quadrature(seed):
    d, b = _dists(seed), torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)
    closed = m.highest_bid_payments(d, b)
    quad = expected_critical_payments(d, b, "highest_bid")
    assert torch.allclose(closed, torch.as_tensor(quad.payments, dtype=torch.float64), rtol=1e-5, atol=1e-9)
    assert closed[1] == 0 and closed[2] == 0 and closed[0] > 0  # only the winner pays


@pytest.mark.parametrize("seed", range(3))
def test_kl_preference_closed_form_equals_the_quadrature(seed):
    d, b = _dists(seed), torch.tensor([1.0, 0.6, 0.3], dtype=torch.float64)
    z, x, flagged = m.kl_preference_closed_form(torch.log(d), b)
    quad = kl_preference_payments(d, b)
    assert torch.allclose(z, torch.as_tensor(quad.payments, dtype=torch.float64), rtol=1e-6, atol=1e-10)
    assert (x >= -1e-12).all() and flagged.dtype == torch.bool
    # float32 log-probabilities: float32 terms, float64 sums, within 1e-4 of the float64 answer
    z32, x32, flagged32 = m.kl_preference_closed_form(torch.log(d).float(), b)
    assert torch.allclose(z32, z, rtol=1e-4, atol=1e-6) and torch.allclose(x32, x, rtol=1e-4, atol=1e-6)
    assert torch.equal(flagged32, flagged)
    assert not m.kl_preference_closed_form(torch.log(d), b, flags=False)[2].any()


def test_rag_allocation_and_payments():
    x = m.rag_allocation([0.2, 0.1], [1.0, 3.0])
    assert np.allclose(x, [0.4, 0.6])
    rel, bids, tokens = [0.5, 0.25, 0.4], [2.0, 1.0, 0.5], [10, 8, 12]
    quad, closed = m.rag_payments(rel, bids, tokens, [0, 1]), m.rag_closed_form(rel, bids, tokens, [0, 1])
    assert np.allclose(quad[:2], closed[:2], rtol=1e-7) and quad[2] == 0  # the reference pays nothing
    assert (quad[:2] >= 0).all() and (quad[:2] <= np.array(bids[:2]) * np.array(tokens[:2])).all()
    with pytest.raises(ValueError, match="relevance must be finite and > 0"):
        m.rag_allocation([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="not all 0"):
        m.rag_allocation([1.0, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="1-D of one length"):
        m.rag_allocation([1.0], [1.0, 2.0])


def test_mentions_counts_full_names_only():
    assert m.mentions("Book at OpenTable or yelp today", ["OpenTable", "Yelp", "Zomato"]) == 2
    assert m.mentions("OpenTables are nice", ["OpenTable"]) == 0


@pytest.mark.model
def test_score_tokens_matches_the_engine(default_model):
    from llm_auction_utils.llm.engine import AuctionSpec, run_auctions

    prompts = ["Query: a trip to Hawaii\nAnswer:\n", "Ad for Alpha Airlines, an airline:\n"]
    recorded = []
    spec = AuctionSpec.create(prompts, [1.0, 0.0], names=["a", "b"], greedy=True, max_new_tokens=5, payments=False)
    (tr,) = run_auctions([spec], model=default_model,
                         on_step=lambda info: recorded.append(info.logprobs[:, info.token_id].double().cpu().numpy()))
    scored = m.score_tokens(default_model, prompts, tr.token_ids)
    assert scored.shape == (2, len(tr.token_ids))
    assert np.abs(scored - np.array(recorded).T).max() < 1e-3
