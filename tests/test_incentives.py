"""Consistent aggregation, payment monotonicity and their equivalence with monotone aggregation
(notebooks/theory.md §3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_auction_utils.theory.aggregation import bid_path, highest_bid, linear, log_linear
from llm_auction_utils.theory.incentives import (
    RELATIONS,
    consistent_aggregation,
    pair_relations,
    payment_feasibility,
    payment_monotonicity,
    utility_curves,
    verify_incentive_equivalence,
)
from llm_auction_utils.theory.payments import expected_critical_payment
from llm_auction_utils.theory.preferences import strictly_prefers
from llm_auction_utils.theory.sampling import stable_sample_linear
from llm_auction_utils.theory.payments import linear_myerson_payment
from llm_auction_utils.theory.divergences import tv_distance

P1 = [0.5, 0.49, 0.01]
P2 = [0.01, 0.49, 0.5]
GRID = np.linspace(0.0, 3.0, 16)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4))
def test_critical_bid_payments_satisfy_both_properties_for_linear(seed, n):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(5) * 0.5, size=n)
    b = rng.exponential(size=n) + 0.05
    i = int(rng.integers(n))
    assert consistent_aggregation(d, b, i, linear, GRID).holds
    pm = payment_monotonicity(d, b, i, linear, GRID)  # default: critical-bid payments
    assert pm.holds, pm.violations
    rep = verify_incentive_equivalence(d, b, i, linear, GRID)
    assert rep.monotone and rep.equivalence_holds and rep.counterexample is None


def test_closed_form_payments_pass_and_wrong_payments_fail():
    d = np.array([P1, P2])
    B = 1.0
    tv = float(tv_distance(d[0], d[1]))
    closed = lambda g: tv * linear_myerson_payment(g, B)  # noqa: E731
    assert payment_monotonicity(d, [0.0, B], 0, linear, GRID, closed).holds
    # charging nothing: strictly better outcomes without paying more
    zero = payment_monotonicity(d, [0.0, B], 0, linear, GRID, np.zeros_like(GRID))
    assert not zero.holds and not zero.iff_holds and zero.zero_at_zero
    # pay-your-bid per token is fine here, but a payment that drops is not non-decreasing
    dropping = payment_monotonicity(d, [0.0, B], 0, linear, GRID, np.sin(GRID) + 0.0)
    assert not dropping.non_decreasing
    # charging at bid 0
    assert not payment_monotonicity(d, [0.0, B], 0, linear, GRID, GRID + 1.0).zero_at_zero


def test_paying_for_no_change_breaks_payment_monotonicity():
    # identical distributions: the outcome never changes, so any positive payment is "paying more for nothing"
    d = np.array([[0.3, 0.7], [0.3, 0.7]])
    rep = payment_monotonicity(d, [0.0, 1.0], 0, linear, GRID, GRID)
    assert not rep.holds and "without a strictly preferred outcome" in rep.violations[0][2]
    assert payment_monotonicity(d, [0.0, 1.0], 0, linear, GRID).holds  # critical-bid payment is 0 here


def test_log_linear_counterexample_breaks_consistent_aggregation():
    d = np.array([P1, P2])
    cons = consistent_aggregation(d, [0.0, 1.0], 0, log_linear, GRID)
    assert not cons.holds and cons.token == 1 and cons.violation is not None and cons.incomparable_pairs > 0
    k, l = cons.violation
    assert k < l and cons.amount > 0.0
    rep = verify_incentive_equivalence(d, [0.0, 1.0], 0, log_linear, GRID)
    assert not rep.monotone and rep.equivalence_holds
    assert rep.counterexample is not None and rep.counterexample[2] == 1
    assert rep.excluded_by in ("consistent aggregation", "both") and "incomparable" in rep.explanation
    # the critical-bid candidate charges for an outcome the agent does not prefer
    assert not rep.critical_payments.holds


def test_log_linear_two_tokens_is_fine():
    d = np.array([[0.7, 0.3], [0.2, 0.8]])
    rep = verify_incentive_equivalence(d, [0.5, 1.0], 0, log_linear, GRID)
    assert rep.monotone and rep.equivalence_holds and rep.critical_payments.holds and rep.feasibility.feasible


def inverse_shares(d, b):
    """Weights 1 - lambda_i: bidding more lowers the agent's weight (it depends on the shares only)."""
    return linear(d, 1.0 - b / b.sum(-1, keepdims=True))


def peaked_shares(d, b):
    """Weights lambda e^(-4 lambda): the agent's effective share rises, falls and rises again."""
    lam = b / b.sum(-1, keepdims=True)
    return linear(d, lam * np.exp(-4.0 * lam))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 3), st.integers(2, 5),
       st.sampled_from(["linear", "highest", "log-linear", "inverse", "peaked"]))
def test_monotone_iff_both_properties_can_hold(seed, n, vocab, name):
    """notebooks/theory.md §3 on one path: monotone <=> consistent aggregation and some payment with payment
    monotonicity (the linear program); and on a monotone path the critical-bid payment is one."""
    rule = {"linear": linear, "highest": highest_bid, "log-linear": log_linear, "inverse": inverse_shares,
            "peaked": peaked_shares}[name]
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(vocab) * 0.7, size=n)
    b, i = rng.exponential(size=n) + 0.05, int(rng.integers(n))
    grid = np.linspace(0.0, 4.0, 21)
    rep = verify_incentive_equivalence(d, b, i, rule, grid, atol=1e-12, payment_atol=1e-14)
    assert rep.equivalence_holds, rep.explanation
    assert rep.monotone == (rep.consistency.holds and rep.feasibility.feasible)
    if rep.monotone:
        assert rep.critical_payments.holds and rep.excluded_by is None
    else:
        assert rep.excluded_by in ("consistent aggregation", "payment monotonicity", "both")


def test_consistent_aggregation_alone_allows_a_non_monotone_rule():
    # two agents: every outcome lies on the segment between p_1 and p_2, so all are comparable, yet a
    # higher bid buys a strictly worse outcome; payment monotonicity rules that out (z would have to fall)
    d = np.array([P1, P2])
    for rule in (inverse_shares, peaked_shares):
        rep = verify_incentive_equivalence(d, [1.0, 1.0], 0, rule, GRID, atol=1e-12)
        assert not rep.monotone and rep.consistency.holds and rep.consistency.worse_pairs > 0
        assert not rep.feasibility.feasible and rep.feasibility.certificate == "worse pair"
        assert rep.excluded_by == "payment monotonicity" and rep.equivalence_holds
        k, l, _ = rep.feasibility.chain[0]
        assert k < l and bool(strictly_prefers(rep.consistency.qs[k], rep.consistency.qs[l], d[0], atol=1e-12))


def test_payment_monotonicity_alone_allows_a_non_monotone_rule():
    # the agent's bid swaps mass between two tokens across p_i: no two outcomes are ranked either way, so
    # z = 0 satisfies payment monotonicity, and consistent aggregation is what fails
    p_1 = np.array([0.4, 0.4, 0.2])
    swap = lambda d, b: np.where((b[..., :1] > 0), np.array([0.3, 0.5, 0.2]), np.array([0.5, 0.3, 0.2]))  # noqa: E731
    d = np.array([p_1, [0.5, 0.3, 0.2]])
    rep = verify_incentive_equivalence(d, [0.0, 1.0], 0, swap, [0.0, 1.0, 2.0], atol=1e-12)
    assert not rep.monotone and not rep.consistency.holds and rep.feasibility.feasible
    assert rep.feasibility.n_strict == 0 and rep.feasibility.n_worse == 0
    assert payment_monotonicity(d, [0.0, 1.0], 0, swap, [0.0, 1.0, 2.0], np.zeros(3), atol=1e-12).holds
    assert rep.excluded_by == "consistent aggregation" and rep.equivalence_holds


def test_a_higher_bid_that_buys_a_worse_outcome_breaks_payment_monotonicity():
    d = np.array([P1, P2])
    grid = np.linspace(0.0, 2.0, 5)
    R = pair_relations(np.asarray(bid_path(d, [1.0, 1.0], 0, inverse_shares, grid)), d[0], 1e-12)
    assert (R[np.triu_indices(5, 1)] == RELATIONS.index("strictly worse")).all()
    assert (np.diag(R) == RELATIONS.index("unchanged")).all()
    rep = payment_monotonicity(d, [1.0, 1.0], 0, inverse_shares, grid, np.zeros(5), atol=1e-12)
    assert not rep.holds and "the lower bid's outcome is strictly preferred" in rep.violations[0][2]


def test_the_degenerate_case_needs_another_payment_than_the_critical_bid():
    # log-linear, two tokens, p_1 vetoes token 2: any positive bid gives q = p_1 at once, so the expected
    # critical-bid payment is 0 although the outcome strictly improved; z = 1{b > 0} works
    d = np.array([[1.0, 0.0], [0.4, 0.6]])
    assert expected_critical_payment(d, [2.0, 1.0], 0, "log_linear") == 0.0
    grid = [0.0, 0.5, 1.0, 2.0]
    step = np.array([0.0, 1.0, 1.0, 1.0])
    assert payment_monotonicity(d, [1.0, 1.0], 0, log_linear, grid, step, atol=1e-12).holds
    assert not payment_monotonicity(d, [1.0, 1.0], 0, log_linear, grid, np.zeros(4), atol=1e-12).holds
    assert payment_feasibility(d, [1.0, 1.0], 0, log_linear, grid, atol=1e-12).feasible


def test_errors():
    d = np.array([P1, P2])
    with pytest.raises(ValueError, match="payments has shape"):
        payment_monotonicity(d, [0.0, 1.0], 0, linear, GRID, np.zeros(3))
    with pytest.raises(ValueError, match="payments contain NaN"):
        payment_monotonicity(d, [0.0, 1.0], 0, linear, GRID, np.full(GRID.shape, np.nan))
    with pytest.raises(ValueError, match="must start at 0"):
        verify_incentive_equivalence(d, [0.0, 1.0], 0, linear, GRID + 1)
    with pytest.raises(ValueError, match="at least 2 bids"):
        consistent_aggregation(d, [0.0, 1.0], 0, linear, [0.0])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), v=st.sampled_from([0.25, 0.5, 1.0, 2.0]))
def test_utility_curves_truthful_bid_is_best_for_critical_bid_only(seed, v):
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(4):
        p, r = rng.dirichlet(np.ones(6), size=2)
        steps.append((p, r, float(rng.uniform(0.5, 2.0))))
    crit = []
    for p, r, B in steps:  # the critical bids do not depend on the agent's own bid: draw them at any share
        draw = stable_sample_linear(p, r, 0.5, rng.random(3000), rng.random(3000), others_bid_total=B)
        crit.append(draw.critical_bid)
    tv = np.array([float(tv_distance(p, r)) for p, r, _ in steps])
    B = np.array([B for *_, B in steps])
    grid = np.union1d(np.linspace(0, 4, 81), [v])
    iv = int(np.flatnonzero(grid == v)[0])
    cur = utility_curves(np.array(crit), tv, B, v, grid)
    for rule in ["critical bid", "critical bid (exact)"]:
        assert cur[rule].max() - cur[rule][iv] <= 1e-12, rule          # regret of truthful bidding is 0
    assert grid[np.argmax(cur["first price on switch"])] < v and grid[np.argmax(cur["pay-your-bid"])] < v
    assert cur["pay-your-bid"][iv] < cur["pay-your-bid"].max()
    # Monte Carlo agrees with the closed form TV x (v b/(b+B) - Myerson) within a few standard errors
    assert np.abs(cur["critical bid"] - cur["critical bid (exact)"]).max() < 0.05 * v + 0.01


def test_utility_curves_errors():
    with pytest.raises(ValueError, match="critical_bids"):
        utility_curves(np.array([[np.nan]]), [0.5], [1.0], 1.0, [0, 1])
    with pytest.raises(ValueError, match="tv must be"):
        utility_curves(np.array([[0.5]]), [1.5], [1.0], 1.0, [0, 1])
    with pytest.raises(ValueError, match="others_bid_total"):
        utility_curves(np.array([[0.5]]), [0.5], [0.0], 1.0, [0, 1])
    with pytest.raises(ValueError, match="value must be"):
        utility_curves(np.array([[0.5]]), [0.5], [1.0], -1.0, [0, 1])
    with pytest.raises(ValueError, match="non-decreasing"):
        utility_curves(np.array([[0.5]]), [0.5], [1.0], 1.0, [1, 0])
