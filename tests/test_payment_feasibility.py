"""payment_feasibility: can ANY payment satisfy payment monotonicity along a bid grid? (notebooks/theory.md §3)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_auction_utils.theory.aggregation import bid_path, highest_bid, linear, log_linear
from llm_auction_utils.theory.incentives import consistent_aggregation, payment_feasibility, payment_monotonicity
from llm_auction_utils.theory.preferences import strictly_prefers

P1 = [0.5, 0.49, 0.01]
P2 = [0.01, 0.49, 0.5]
FAR_GRID = np.r_[0.0, np.geomspace(0.01, 1000.0, 30)]  # agent i's share from 0 to 0.999 against a bid of 1


def inverse_shares(d, b):
    """Weights 1 - lambda_i: bidding more lowers the agent's weight (depends on the shares only, as bid_path assumes)."""
    return linear(d, 1.0 - b / b.sum(-1, keepdims=True))


MONOTONE = {"linear": linear, "highest bid wins": highest_bid, "square-root shares": lambda d, b: linear(d, np.sqrt(b)),
            "power shares": lambda d, b: linear(d, b**4)}


def _instance(seed: int, n: int, vocab: int) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(vocab), size=n)
    return d, rng.exponential(size=n) + 0.1, int(rng.integers(n))


def _check_certificate(d, b, i, rule, report, atol):
    """Verify the certificate independently.  "worse pair": a lower bid gets a strictly preferred outcome.
    "equal block": the first pair strictly improves, the others are neither strictly better nor strictly
    worse, and their intervals overlap one after the other and cover the strict pair (so z must be equal
    on it)."""
    g = report.bid_grid
    qs = np.asarray(bid_path(d, b, i, rule, g))
    (k, l, _), rest = report.chain[0], report.chain[1:]
    if report.certificate == "worse pair":
        assert k < l and rest == [] and bool(strictly_prefers(qs[k], qs[l], d[i], atol=atol))
        return
    assert report.certificate == "equal block"
    assert k < l and bool(strictly_prefers(qs[l], qs[k], d[i], atol=atol))
    point = k
    for a, c, _ in rest:
        assert a < c and not bool(strictly_prefers(qs[c], qs[a], d[i], atol=atol))
        assert not bool(strictly_prefers(qs[a], qs[c], d[i], atol=atol))
        assert a <= point < c
        point = c
    assert point >= l


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4), st.integers(2, 6), st.sampled_from(sorted(MONOTONE)))
def test_monotone_rules_are_feasible_and_the_critical_bid_payment_is_a_witness(seed, n, vocab, name):
    d, b, i = _instance(seed, n, vocab)
    grid = np.linspace(0.0, 4.0, 17)
    rep = payment_feasibility(d, b, i, MONOTONE[name], grid, atol=1e-12)
    assert rep.feasible and rep.chain == [] and rep.margin == pytest.approx(1.0)
    # the report's own witness, and the critical-bid payment (Myerson with the switched mass), both pass
    assert payment_monotonicity(d, b, i, MONOTONE[name], grid, rep.witness, atol=1e-12, payment_atol=1e-14).holds
    critical = payment_monotonicity(d, b, i, MONOTONE[name], grid, atol=1e-12, payment_atol=1e-14)
    assert critical.holds, critical.violations


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 3), st.integers(3, 5), st.sampled_from(["log-linear", "inverse shares"]))
def test_every_answer_carries_a_valid_certificate(seed, n, vocab, name):
    rule = log_linear if name == "log-linear" else inverse_shares
    d, b, i = _instance(seed, n, vocab)
    grid = np.linspace(0.0, 6.0, 25)
    rep = payment_feasibility(d, b, i, rule, grid, atol=1e-12)
    if rep.feasible:
        assert payment_monotonicity(d, b, i, rule, grid, rep.witness, atol=1e-12, payment_atol=1e-14).holds
    else:
        assert rep.witness is None and rep.margin == pytest.approx(0.0, abs=1e-9)
        _check_certificate(d, b, i, rule, rep, 1e-12)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 0.6), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_log_linear_with_a_shared_token_admits_no_payment(mid, x, y):
    # both agents give the middle token the same probability: every positive bid pushes it away
    # from p_1(mid) (so z must stay at z(0) = 0), while large bids strictly improve the outcome
    a, c = 0.05 + x * (0.9 - mid), 0.05 + y * (0.9 - mid)
    if abs(a - c) < 0.05:
        a, c = 0.05, 0.9 - mid
    d = np.array([[a, mid, 1.0 - a - mid], [c, mid, 1.0 - c - mid]])
    rep = payment_feasibility(d, [1.0, 1.0], 0, log_linear, FAR_GRID, atol=1e-12)
    assert not rep.feasible
    _check_certificate(d, [1.0, 1.0], 0, log_linear, rep, 1e-12)
    assert not consistent_aggregation(d, [1.0, 1.0], 0, log_linear, FAR_GRID, atol=1e-12).holds


def test_the_theory_chapter_counterexample():
    d = np.array([P1, P2])
    rep = payment_feasibility(d, [1.0, 1.0], 0, log_linear, [0.0, 1.0, 2.0, 4.0], atol=1e-12)
    assert not rep.feasible and rep.certificate == "equal block"
    assert rep.chain[0][:2] == (1, 3) and [c[:2] for c in rep.chain[1:]] == [(0, 3)]
    assert "token 1 0.49 -> 0.6617" in rep.chain[1][2]
    assert "contradiction" in rep.describe()


def test_inverse_shares_admit_no_payment():
    # with two agents every raise moves the outcome back along the segment, away from p_i: the lower bid's
    # outcome is strictly preferred, so it would have to pay strictly more, and z is non-decreasing
    d = np.array([P1, P2])
    grid = np.linspace(0.0, 4.0, 9)
    rep = payment_feasibility(d, [1.0, 1.0], 0, inverse_shares, grid, atol=1e-12)
    assert not rep.feasible and rep.n_strict == 0 and rep.n_worse == 36 and rep.certificate == "worse pair"
    _check_certificate(d, [1.0, 1.0], 0, inverse_shares, rep, 1e-12)
    assert "non-decreasing: contradiction" in rep.describe()
    # all its outcomes are comparable: consistent aggregation alone does not exclude it
    assert consistent_aggregation(d, [1.0, 1.0], 0, inverse_shares, grid, atol=1e-12).holds


def test_unchanged_outcome_forces_equal_payments():
    d = np.array([[0.3, 0.7], [0.3, 0.7]])  # the agent agrees with the others: nothing ever moves
    rep = payment_feasibility(d, [1.0, 1.0], 0, linear, [0.0, 1.0, 2.0])
    assert rep.feasible and rep.n_strict == 0 and np.array_equal(rep.witness, [0.0, 0.0, 0.0])
    assert "feasible" in rep.describe()


def test_grid_must_start_at_zero():
    with pytest.raises(ValueError, match="must start at 0"):
        payment_feasibility(np.array([P1, P2]), [1.0, 1.0], 0, linear, [0.5, 1.0])
