"""Stable sampling, exponential clock, truthfulness, and the seeded token sampler.

Monte-Carlo tolerances: token frequencies are compared with q by a chi-square
statistic (p-value > 1e-4 with fixed seeds) and by max-abs <= 5 standard
errors; mean payments within 5 standard errors of the expected payment.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from llm_auction_utils.theory.aggregation import linear, log_linear
from llm_auction_utils.theory.divergences import tv_distance
from llm_auction_utils.theory.payments import NotMonotoneError, expected_critical_payment, linear_myerson_payment
from llm_auction_utils.theory.sampling import (
    exponential_clock,
    sample_token,
    stable_sample,
    stable_sample_linear,
    stable_step,
)

M = 200_000


def _freq_matches(tokens: np.ndarray, q: np.ndarray) -> None:
    m = tokens.size
    counts = np.bincount(tokens, minlength=q.size)
    assert (counts[q == 0] == 0).all(), "a zero-probability token was drawn"
    se = np.sqrt(q * (1 - q) / m)
    assert np.abs(counts / m - q).max() <= 5 * se.max() + 1e-12
    pos = q > 0
    assert chisquare(counts[pos], m * q[pos] / q[pos].sum()).pvalue > 1e-4


@pytest.mark.parametrize("x", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_linear_stable_sampler_marginals_equal_q(x):
    rng = np.random.default_rng(int(x * 10))
    p = rng.dirichlet(np.ones(6) * 0.5)
    r = rng.dirichlet(np.ones(6) * 0.5)
    s = stable_sample_linear(p, r, x, rng.random(M), rng.random(M))
    _freq_matches(s.token, x * p + (1 - x) * r)


def test_switches_only_from_d_to_i_at_most_once_along_increasing_bids():
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(8) * 0.5)
    r = rng.dirichlet(np.ones(8) * 0.5)
    D, I = p < r, p > r
    u, v = rng.random(3000), rng.random(3000)
    xs = np.linspace(0, 1, 41)
    toks = np.stack([stable_sample_linear(p, r, x, u, v).token for x in xs])  # (41, 3000)
    changes = (np.diff(toks, axis=0) != 0).sum(0)
    assert changes.max() <= 1 and changes.sum() > 100
    k = np.flatnonzero(changes)
    first = toks[0, k]
    last = toks[-1, k]
    assert D[first].all() and I[last].all()
    # the switch happens exactly at the reported switch level
    s_lvl = stable_sample_linear(p, r, 0.3, u, v).switch_level
    for x in (0.25, 0.75):
        sw = stable_sample_linear(p, r, x, u, v).switched
        np.testing.assert_array_equal(sw, s_lvl <= x)


def test_payment_only_when_token_changed_and_mean_equals_expected_payment():
    rng = np.random.default_rng(11)
    d = rng.dirichlet(np.ones(5) * 0.7, size=3)
    bids = np.array([1.3, 0.8, 1.5])
    i = 0
    B = bids[1:].sum()
    r = linear(d[1:], bids[1:])
    u, v = rng.random(M), rng.random(M)
    at_b = stable_sample_linear(d[i], r, bids[i] / (bids[i] + B), u, v, others_bid_total=B)
    at_0 = stable_sample_linear(d[i], r, 0.0, u, v, others_bid_total=B)
    changed = at_b.token != at_0.token
    np.testing.assert_array_equal(changed, at_b.switched)
    pay = np.where(at_b.switched, at_b.critical_bid, 0.0)
    assert (pay[~changed] == 0).all() and (pay[changed] > 0).all()
    assert (pay <= bids[i] + 1e-12).all()  # the critical bid never exceeds the bid
    expected = float(tv_distance(d[i], r)) * float(linear_myerson_payment(bids[i], B))
    assert expected == pytest.approx(expected_critical_payment(d, bids, i))
    se = pay.std() / np.sqrt(M)
    assert abs(pay.mean() - expected) <= 5 * se


def test_general_bisection_sampler_on_two_token_log_linear_step():
    d = np.array([[0.7, 0.3], [0.15, 0.85]])
    bids = [1.5, 1.0]
    rng = np.random.default_rng(3)
    m = 40_000
    draw = stable_sample(d, bids, 0, log_linear, rng.random(m), rng.random(m))
    _freq_matches(draw.token, log_linear(d, bids))
    expected = expected_critical_payment(d, bids, 0, rule=log_linear)
    se = draw.payment.std() / np.sqrt(m)
    assert expected > 0.01
    assert abs(draw.payment.mean() - expected) <= 5 * se
    assert (draw.payment[~draw.switched] == 0).all() and (draw.payment[draw.switched] <= 1.5).all()


def test_general_sampler_reproduces_linear_exact_construction():
    rng = np.random.default_rng(4)
    d = rng.dirichlet(np.ones(2), size=2)
    bids = np.array([0.7, 1.1])
    u, v = rng.random(500), rng.random(500)
    gen = stable_sample(d, bids, 0, lambda a, b: linear(a, b), u, v, tol=1e-12)
    ex = stable_sample_linear(d[0], d[1], 0.7 / 1.8, u, v, others_bid_total=1.1)
    np.testing.assert_array_equal(gen.token, ex.token)
    np.testing.assert_array_equal(gen.switched, ex.switched)
    np.testing.assert_allclose(gen.payment, np.where(ex.switched, ex.critical_bid, 0.0), atol=1e-8)


def test_general_sampler_refuses_non_monotone_step():
    with pytest.raises(NotMonotoneError):
        stable_sample([[0.5, 0.49, 0.01], [0.01, 0.49, 0.5]], [1.0, 1.0], 0, log_linear, 0.3, 0.4)


def test_truthfulness_of_critical_bid_payments_and_shading_under_pay_your_bid():
    """Value `val` per switched token: utility E[val * switched(b) - payment(b)] peaks at b = val."""
    rng = np.random.default_rng(21)
    d = rng.dirichlet(np.ones(6) * 0.5, size=2)
    B = 1.0
    u, v = rng.random(50_000), rng.random(50_000)
    val = 1.2
    grid = np.round(np.linspace(0.0, 3.0, 31), 10)  # contains val
    util_cb, util_pyb = [], []
    for b in grid:
        s = stable_sample_linear(d[0], d[1], b / (b + B), u, v, others_bid_total=B)
        realized = np.where(s.switched, s.critical_bid, 0.0)
        util_cb.append(np.mean(val * s.switched - realized))
        util_pyb.append(np.mean((val - b) * s.switched))  # pay your bid whenever it mattered
    util_cb, util_pyb = np.array(util_cb), np.array(util_pyb)
    k_val = int(np.argmin(np.abs(grid - val)))
    assert util_cb[k_val] >= util_cb.max() - 1e-12
    assert util_cb[k_val] > util_cb[0] and util_cb[k_val] > util_cb[-1]
    assert grid[int(np.argmax(util_pyb))] < val - 0.2  # agents shade under pay-your-bid


def test_stable_step_generators_and_reproducibility():
    d = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    a = stable_step(d, [1.0, 2.0], 0, rng=np.random.default_rng(5))
    b = stable_step(d, [1.0, 2.0], 0, rng=np.random.default_rng(5))
    assert a == b and isinstance(a.token, int) and isinstance(a.payment, float)
    assert a.payment == (a.critical_bid if a.switched else 0.0)
    t1 = stable_step(torch.tensor(d), [1.0, 2.0], 0, rng=torch.Generator().manual_seed(1))
    t2 = stable_step(torch.tensor(d), [1.0, 2.0], 0, rng=torch.Generator().manual_seed(1))
    assert t1 == t2
    g = np.random.default_rng(0)
    draws = [stable_step(d, [1.0, 2.0], 0, rng=g) for _ in range(4000)]
    toks = np.array([s.token for s in draws])
    _freq_matches(toks, linear(d, [1.0, 2.0]))
    # two-token log-linear through stable_step
    s = stable_step(np.array([[0.7, 0.3], [0.2, 0.8]]), [1.0, 1.0], 0, rule="log_linear", rng=np.random.default_rng(0))
    assert s.token in (0, 1) and np.isfinite(s.payment)
    # alone: no payment
    s = stable_step(d, [1.0, 0.0], 0, rng=np.random.default_rng(0))
    assert s.payment == 0.0 and not s.switched
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        stable_step(d, [1.0, 2.0], 0, rng=42)  # type: ignore[arg-type]


@pytest.mark.parametrize("bids", [[1.0, 2.0, 3.0], [0.5, 0.5], [2.0, 0.0, 1.0]])
def test_exponential_clock_probabilities_and_expected_payments(bids):
    b = np.array(bids)
    m = 200_000
    c = exponential_clock(b, np.random.default_rng(9), size=m)
    lam = b / b.sum()
    freq = np.bincount(c.winner, minlength=b.size) / m
    assert np.abs(freq - lam).max() <= 5 * np.sqrt(0.25 / m)
    for i in range(b.size):
        pay_i = np.where(c.winner == i, c.payment, 0.0)
        expected = float(linear_myerson_payment(b[i], b.sum() - b[i]))  # Myerson without the TV factor
        assert abs(pay_i.mean() - expected) <= 5 * pay_i.std() / np.sqrt(m) + 1e-12
    assert (c.payment <= b[c.winner] + 1e-12).all()
    one = exponential_clock(b, np.random.default_rng(0))
    assert isinstance(one.winner, int) and isinstance(one.payment, float)


def test_sample_token_is_deterministic_and_correct():
    q = np.array([0.1, 0.0, 0.6, 0.3])
    a = sample_token(q, np.random.default_rng(3))
    assert a == sample_token(q, np.random.default_rng(3)) and isinstance(a, int)
    toks = sample_token(np.broadcast_to(q, (M, 4)), np.random.default_rng(0))
    _freq_matches(toks, q)
    qt = torch.tensor(q, dtype=torch.float32)
    t1 = sample_token(qt, torch.Generator().manual_seed(0))
    assert t1 == sample_token(qt, torch.Generator().manual_seed(0)) and t1 != 1
    tt = sample_token(qt.expand(50_000, 4), torch.Generator().manual_seed(0))
    assert isinstance(tt, torch.Tensor) and tt.dtype == torch.long
    _freq_matches(tt.numpy(), q)
    with pytest.raises(ValueError, match="q row 0 sums to"):
        sample_token(np.array([[0.5, 0.6]]), np.random.default_rng(0))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 1.0))
def test_linear_sampler_critical_bid_consistent_with_switch_level(seed, x):
    rng = np.random.default_rng(seed)
    p, r = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
    u, v = rng.random(200), rng.random(200)
    s = stable_sample_linear(p, r, x, u, v, others_bid_total=2.0)
    finite = np.isfinite(s.critical_bid)
    xs = s.switch_level[finite]
    np.testing.assert_allclose(s.critical_bid[finite], 2.0 * xs / (1 - xs))
    assert not np.isnan(s.critical_bid).any()
    assert (~s.switched | finite).all()


def test_stable_sampler_errors():
    with pytest.raises(ValueError, match="share must lie in"):
        stable_sample_linear([0.5, 0.5], [0.5, 0.5], 1.5, 0.1, 0.1)
    with pytest.raises(ValueError, match="u must lie in"):
        stable_sample_linear([0.5, 0.5], [0.5, 0.5], 0.5, 1.0, 0.1)
    with pytest.raises(ValueError, match="same shape"):
        stable_sample_linear([0.5, 0.5], [0.5, 0.5], 0.5, [0.1, 0.2], 0.1)
    with pytest.raises(ValueError, match="r row 0 sums to"):
        stable_sample_linear([0.5, 0.5], [0.5, 0.6], 0.5, 0.1, 0.1)


def test_general_sampler_bid_zero_is_coupled_with_positive_bids() -> None:
    """At bid 0 the slots keep the losing-first order: a tiny bid changes no unswitched token."""
    from llm_auction_utils.theory.aggregation import linear, log_linear

    dists = np.array([[0.85, 0.15], [0.3, 0.7], [0.55, 0.45]])
    u = np.linspace(0.01, 0.99, 99)
    v = u[::-1]
    for rule in (linear, log_linear):
        at_zero = stable_sample(dists, [0.0, 1.0, 2.0], 0, rule, u, v)
        tiny = stable_sample(dists, [1e-3, 1.0, 2.0], 0, rule, u, v)
        assert np.array_equal(at_zero.token != tiny.token, tiny.switched)


def test_exponential_clock_is_scale_free_up_to_the_float64_limit():
    """Bids near 1e308 used to overflow ``b / E`` and give an infinite payment."""
    from llm_auction_utils.theory.sampling import exponential_clock

    small = exponential_clock([1.0, 1.0, 0.5], np.random.default_rng(3), size=2000)
    for c in (1e-300, 1e300, 1e308 / 1.0):
        big = exponential_clock([c, c, 0.5 * c], np.random.default_rng(3), size=2000)
        assert np.array_equal(big.winner, small.winner)
        assert np.isfinite(big.payment).all()
        np.testing.assert_allclose(big.payment, small.payment * c, rtol=1e-12)
    huge = exponential_clock([1e308, 1e308, 5e307], np.random.default_rng(0), size=5)
    assert np.isfinite(huge.payment).all() and (huge.payment <= 1e308).all()
