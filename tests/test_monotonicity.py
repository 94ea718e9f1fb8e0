"""Monotonicity checker: finds the known violations and none for monotone rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_auction_utils.theory.aggregation import linear, log_linear
from llm_auction_utils.theory.arrays import to_float64
from llm_auction_utils.theory.divergences import kl_divergence
from llm_auction_utils.theory.monotonicity import bid_path, check_bid_path, check_monotonicity, random_instances
from llm_auction_utils.theory.preferences import weakly_prefers

P1 = [0.5, 0.49, 0.01]
P2 = [0.01, 0.49, 0.5]


def test_theory_counterexample_value_and_bid_path_check():
    rep = check_bid_path([P1, P2], [0.0, 1.0], 0, log_linear, [0.0, 1.0])
    assert not rep.is_monotone
    assert rep.first_violation == 0 and rep.token == 1
    assert rep.qs[0, 1] == pytest.approx(0.49, abs=1e-12)
    assert rep.qs[1, 1] == pytest.approx(0.776, abs=1e-3)
    assert rep.worst_violation == pytest.approx(0.776 - 0.49, abs=1e-3)
    assert "NOT monotone" in str(rep)


def test_checker_finds_log_linear_violations_on_three_tokens():
    rep = check_monotonicity(log_linear, n_agents=2, vocab_size=3, n_instances=3000, seed=1)
    assert not rep.is_monotone and rep.n_violations > 0
    c = rep.counterexample
    assert c is not None
    # the counterexample is genuine: re-evaluate the rule
    new_bids = c.bids.copy()
    new_bids[c.agent] = c.new_bid
    assert c.new_bid > c.bids[c.agent]
    q0, q1 = log_linear(c.dists, c.bids), log_linear(c.dists, new_bids)
    assert not weakly_prefers(q1, q0, c.dists[c.agent], atol=1e-6)
    np.testing.assert_allclose(q1, c.q_after, atol=1e-9)
    assert "counterexample" in str(rep)


def test_adversarial_search_alone_finds_log_linear_violation():
    rep = check_monotonicity(log_linear, n_agents=3, vocab_size=3, n_instances=1, seed=3, n_restarts=16, n_steps=150)
    assert not rep.is_monotone and rep.worst_violation > 1e-3


def test_log_linear_with_two_tokens_is_monotone():
    rep = check_monotonicity(log_linear, n_agents=3, vocab_size=2, n_instances=5000, seed=2)
    assert rep.is_monotone, str(rep)
    assert rep.n_checked == 5000 and rep.n_adversarial > 0


@pytest.mark.parametrize("vocab_size", [3, 8, 50])
def test_linear_is_monotone(vocab_size):
    rep = check_monotonicity(linear, n_agents=3, vocab_size=vocab_size, n_instances=5000, seed=vocab_size)
    assert rep.is_monotone and rep.counterexample is None
    assert rep.worst_violation < 1e-12


def test_user_rule_plugs_in_and_unbatched_rules_work():
    # weights 1 / (1 + b_i): raising a bid moves q away from the bidder's distribution
    def inverse_rule(d, b):
        return linear(d, 1.0 / (1.0 + np.asarray(b)))

    rep = check_monotonicity(inverse_rule, vocab_size=4, n_instances=500, seed=0, adversarial=False)
    assert not rep.is_monotone and rep.n_violations > 400

    # "winner takes all" (highest bidder's distribution) is monotone in this order
    def argmax_rule(d, b):
        d, b = np.asarray(d), np.asarray(b)
        return np.take_along_axis(d, b.argmax(-1)[..., None, None], axis=-2)[..., 0, :]

    assert check_monotonicity(argmax_rule, vocab_size=4, n_instances=500, seed=0, n_steps=50).is_monotone

    def one_at_a_time(d, b):
        assert np.ndim(b) == 1
        return linear(d, b)

    rep = check_monotonicity(one_at_a_time, vocab_size=4, n_instances=50, batched=False, adversarial=False)
    assert rep.is_monotone and rep.n_checked == 50


def test_bad_rule_output_is_reported():
    with pytest.raises(ValueError, match="rule returned shape"):
        check_monotonicity(lambda d, b: np.ones(3), n_instances=10, adversarial=False)
    with pytest.raises(ValueError, match="unknown aggregation rule"):
        check_monotonicity("nope")


def test_random_instances_are_valid():
    d, b, a, nb = random_instances(np.random.default_rng(0), 500, 3, 6)
    np.testing.assert_allclose(d.sum(-1), 1.0, atol=1e-12)
    assert (d >= 0).all() and (b >= 0).all() and (b.sum(-1) > 0).all()
    assert (nb > b[np.arange(500), a]).all()
    assert (d == 0).any(), "sparse instances expected"
    assert ((d > 0).all(axis=1)).any(axis=-1).all(), "a common token keeps every rule defined"


def test_bid_path_shapes_backends_and_errors():
    grid = np.linspace(0, 3, 7)
    qs = bid_path([P1, P2], [0.0, 1.0], 0, linear, grid)
    assert qs.shape == (7, 3)
    np.testing.assert_allclose(qs[3], linear([P1, P2], [1.5, 1.0]))
    qt = bid_path(torch.tensor([P1, P2], dtype=torch.float64), [0.0, 1.0], 0, "log_linear", grid)
    assert isinstance(qt, torch.Tensor) and qt.shape == (7, 3)
    np.testing.assert_allclose(qt.numpy(), bid_path([P1, P2], [0.0, 1.0], 0, log_linear, grid), atol=1e-12)
    batched = bid_path(np.stack([[P1, P2], [P2, P1]]), [0.0, 1.0], 0, linear, grid)
    assert batched.shape == (2, 7, 3)
    with pytest.raises(ValueError, match="all-zero bids"):
        bid_path([P1, P2], [0.0, 0.0], 0, linear, grid)
    with pytest.raises(ValueError, match="agent 2 out of range"):
        bid_path([P1, P2], [0.0, 1.0], 2, linear, grid)
    with pytest.raises(ValueError, match="at least 2 bids"):
        check_bid_path([P1, P2], [0.0, 1.0], 0, linear, [1.0])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6), st.integers(2, 4))
def test_kl_to_own_distribution_decreases_in_bid_for_log_linear(seed, v, n):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(v), size=n)
    b = rng.exponential(size=n) + 0.01
    i = int(rng.integers(n))
    grid = np.sort(np.concatenate([[0.0], rng.exponential(size=10) * 5]))
    qs = bid_path(d, b, i, log_linear, grid)
    kl = kl_divergence(qs, d[i])
    assert (np.diff(kl) <= 1e-10).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_linear_bid_path_is_monotone(seed):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(5) * 0.3, size=3)
    rep = check_bid_path(d, rng.exponential(size=3), int(rng.integers(3)), linear, np.linspace(0, 10, 21))
    assert rep.is_monotone and rep.first_violation is None


def test_a_path_that_moves_every_token_one_way_can_still_violate_the_order():
    """theory.md §4.4: the stable construction needs coordinatewise-monotone paths with the losing set
    fixed; monotonicity in the order is sufficient, not necessary.  The chapter's log-linear example:
    every coordinate moves one way along agent 3's path, yet tokens 1, 3, 5 move away from p_3."""
    p = np.array([[.1, .1, .1, .6, .1], [.1, .1, .1, .6, .1], [.1, .6, .1, .1, .1]])
    grid = np.linspace(0.0, 1.0, 201)
    qs = to_float64(bid_path(p, [0.73, 2.4, 0.0], 2, log_linear, grid))
    steps = np.diff(qs, axis=0)
    assert all((steps[:, t] >= -1e-15).all() or (steps[:, t] <= 1e-15).all() for t in range(5))
    assert (steps[:, 3] <= 1e-15).all()  # D = {token 4}
    assert np.allclose(qs[-1, [0, 2, 4]], 0.1186, atol=5e-4)  # 0.1 = p_3(t) -> about 0.119
    assert not check_bid_path(p, [0.73, 2.4, 0.0], 2, log_linear, grid).is_monotone
