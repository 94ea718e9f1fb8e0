"""Payments: Myerson identities, critical-bid payments (closed form and general rule)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_auction_utils.theory.aggregation import linear, log_linear
from llm_auction_utils.theory.divergences import tv_distance
from llm_auction_utils.theory.payments import (
    NotMonotoneError,
    critical_payment_curve,
    expected_critical_payment,
    expected_critical_payments,
    linear_myerson_payment,
    myerson_payment,
    pay_your_bid,
)

P1 = [0.5, 0.49, 0.01]
P2 = [0.01, 0.49, 0.5]


def linear_callable(d, b):
    """The linear rule hidden behind a plain callable (forces the general code path)."""
    return linear(d, b)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 50.0), st.floats(1e-3, 50.0))
def test_myerson_closed_form_equals_numeric_integral(b, B):
    numeric = myerson_payment(lambda s: s / (s + B), b)
    closed = linear_myerson_payment(b, B)
    assert float(numeric) == pytest.approx(float(closed), rel=1e-7, abs=1e-12)
    # direct formula B ln(1 + b/B) - b B / (b + B)
    assert float(closed) == pytest.approx(B * np.log1p(b / B) - b * B / (b + B), rel=1e-6, abs=1e-12)
    # payment never exceeds the bid times the allocation
    assert 0.0 <= float(closed) <= b * b / (b + B) + 1e-12


def test_linear_myerson_small_ratio_and_vectorized():
    b = np.array([0.0, 1e-8, 1e-4, 1e-2, 1.0])
    z = linear_myerson_payment(b, 2.0)
    # second-order expansion z ~ b^2 / (2B) for small b
    np.testing.assert_allclose(z[1:3], b[1:3] ** 2 / 4.0, rtol=1e-3)
    assert z[0] == 0.0
    np.testing.assert_allclose(linear_myerson_payment(1.0, np.array([0.0, 1.0])), [0.0, np.log(2) - 0.5])
    zt = linear_myerson_payment(torch.tensor([1.0, 2.0], dtype=torch.float64), 1.0)
    assert isinstance(zt, torch.Tensor)
    np.testing.assert_allclose(zt.numpy(), linear_myerson_payment(np.array([1.0, 2.0]), 1.0))
    with pytest.raises(ValueError, match="bid is negative"):
        linear_myerson_payment(-1.0, 1.0)
    with pytest.raises(ValueError, match="others_bid_total contains NaN"):
        linear_myerson_payment(1.0, np.nan)


def test_myerson_payment_errors():
    with pytest.raises(ValueError, match="rtol or atol must be positive"):
        myerson_payment(lambda s: s, 1.0, rtol=0.0)
    with pytest.raises(ValueError, match="allocation returned NaN"):
        myerson_payment(lambda s: s * np.nan, 1.0)
    with pytest.raises(ValueError, match="allocation returned shape"):
        myerson_payment(lambda s: np.ones(3), 1.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4), st.integers(2, 6))
def test_expected_critical_payment_linear_is_tv_times_closed_form(seed, n, v):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(v), size=n)
    b = rng.exponential(size=n)
    i = int(rng.integers(n))
    others = [j for j in range(n) if j != i]
    B = b[others].sum()
    r = linear(d[others], b[others])
    expected = float(tv_distance(d[i], r)) * float(linear_myerson_payment(b[i], B))
    assert expected_critical_payment(d, b, i) == pytest.approx(expected, rel=1e-9, abs=1e-14)
    # all agents at once (closed form) agree
    allp = expected_critical_payments(d, b)
    assert float(allp.payments[i]) == pytest.approx(expected, rel=1e-9, abs=1e-14)
    assert allp.monotone.all()


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_general_rule_payment_via_switched_mass_equals_closed_form(seed):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(4), size=3)
    b = rng.exponential(size=3) + 0.05
    for i in range(3):
        closed = expected_critical_payment(d, b, i)
        general = expected_critical_payment(d, b, i, rule=linear_callable)
        assert general == pytest.approx(closed, rel=1e-6, abs=1e-12)
    many = expected_critical_payments(d, b, linear_callable)
    np.testing.assert_allclose(many.payments, expected_critical_payments(d, b).payments, rtol=1e-5, atol=1e-12)
    assert many.monotone.all()


def test_critical_payment_curve_matches_closed_form_on_grid():
    d = np.array([P1, P2])
    grid = np.linspace(0.0, 2.0, 401)
    z = critical_payment_curve(d, [0.0, 1.0], 0, linear, grid)
    tv = float(tv_distance(d[0], d[1]))
    np.testing.assert_allclose(z, tv * linear_myerson_payment(grid, 1.0), atol=1e-5)


def test_non_monotone_step_is_flagged_not_charged():
    d = np.array([P1, P2])
    with pytest.raises(NotMonotoneError, match="not monotone for agent 0"):
        expected_critical_payment(d, [1.0, 1.0], 0, rule=log_linear)
    res = expected_critical_payments(d, [1.0, 1.0], "log_linear")
    assert not res.monotone.any()
    np.testing.assert_array_equal(res.payments, [0.0, 0.0])
    assert np.isfinite(res.payments).all()


def test_log_linear_two_token_payments_are_finite_and_monotone():
    d = np.array([[0.7, 0.3], [0.2, 0.8]])
    res = expected_critical_payments(d, [1.5, 1.0], "log_linear")
    assert res.monotone.all() and (res.payments > 0).all()
    for i in range(2):
        assert float(res.payments[i]) == pytest.approx(expected_critical_payment(d, [1.5, 1.0], i, rule=log_linear), rel=1e-5)


def test_degenerate_cases_and_backends():
    d = np.array([P1, P2])
    assert expected_critical_payment(d, [1.0, 0.0], 0) == 0.0  # no competition
    assert expected_critical_payment(d, [0.0, 1.0], 0) == 0.0  # no bid
    res = expected_critical_payments(d, [1.0, 0.0])
    np.testing.assert_array_equal(res.payments, [0.0, 0.0])
    res_ll = expected_critical_payments(d, [1.0, 0.0], "log_linear")
    np.testing.assert_array_equal(res_ll.payments, [0.0, 0.0])
    assert res_ll.monotone.all()
    t = torch.tensor(d, dtype=torch.float32)
    rt = expected_critical_payments(t, torch.tensor([1.0, 2.0]))
    assert isinstance(rt.payments, torch.Tensor) and rt.payments.dtype == torch.float32
    assert rt.monotone.dtype == torch.bool
    np.testing.assert_allclose(rt.payments.numpy(), expected_critical_payments(d, [1.0, 2.0]).payments, rtol=1e-5)
    rt2 = expected_critical_payments(t, torch.tensor([1.0, 1.0]), "log_linear")
    assert not bool(rt2.monotone.any()) and float(rt2.payments.abs().sum()) == 0.0


def test_batched_payments_equal_per_item():
    rng = np.random.default_rng(5)
    d = rng.dirichlet(np.ones(6), size=(4, 3))
    b = rng.exponential(size=(4, 3))
    res = expected_critical_payments(d, b)
    assert res.payments.shape == (4, 3)
    for k in range(4):
        np.testing.assert_allclose(res.payments[k], [expected_critical_payment(d[k], b[k], i) for i in range(3)], rtol=1e-9)


def test_large_vocabulary_closed_form_is_fast_and_finite():
    rng = np.random.default_rng(0)
    V = 262_144
    d = torch.tensor(rng.dirichlet(np.ones(V), size=3), dtype=torch.float32)
    res = expected_critical_payments(d, torch.tensor([1.0, 2.0, 3.0]))
    assert res.payments.shape == (3,) and torch.isfinite(res.payments).all() and bool(res.monotone.all())


def test_pay_your_bid():
    np.testing.assert_array_equal(pay_your_bid([1.0, 2.0]), [1.0, 2.0])
    with pytest.raises(ValueError, match="negative"):
        pay_your_bid([1.0, -2.0])
    with pytest.raises(ValueError, match="dists has 3 agents but bids has 2"):
        expected_critical_payments(np.ones((3, 2)) / 2, [1.0, 2.0])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 6), v=st.integers(3, 5))
def test_log_linear_batch_equals_items_with_the_end_check(seed, k, v):
    """A batch mixing monotone and non-monotone steps runs the grid; a lone non-monotone step
    is flagged by the cheap end check alone. Both paths give the same flags and payments."""
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.full(v, 0.6), size=(k, 2))
    b = rng.exponential(size=(k, 2)) + 0.05
    res = expected_critical_payments(d, b, "log_linear")
    for j in range(k):
        one = expected_critical_payments(d[j], b[j], "log_linear")
        np.testing.assert_array_equal(one.monotone, res.monotone[j])
        np.testing.assert_allclose(one.payments, res.payments[j], rtol=1e-9, atol=1e-15)
        for i in range(2):
            if one.monotone[i]:
                assert one.payments[i] == pytest.approx(expected_critical_payment(d[j], b[j], i, rule=log_linear), rel=1e-4, abs=1e-9)
            else:
                assert one.payments[i] == 0.0


def test_end_check_flags_a_violation_between_the_path_ends():
    """The counterexample of notebooks/theory.md §5: raising agent 0's bid from 0 to 1 moves the middle token away from p_0."""
    d = np.array([P1, P2])
    q0, q1 = log_linear(d, [0.0, 1.0]), log_linear(d, [1.0, 1.0])
    assert q1[1] > max(q0[1], P1[1])     # the middle token leaves the interval [q(0), p_0]
    res = expected_critical_payments(d, [1.0, 1.0], "log_linear")
    assert not res.monotone[0] and res.payments[0] == 0.0


# --------------------------------------------------------------------------- quadrature that does not converge


def staircase(d, b):
    """A monotone rule whose bid path has 64 small jumps: the adaptive quadrature runs out of panels."""
    return linear(d, np.floor(64 * b / b.sum(-1, keepdims=True)) / 64 + 1e-3)


def test_an_unconverged_payment_integral_is_flagged_and_named():
    from llm_auction_utils.theory.quadrature import QuadratureWarning

    d = np.array([[0.6, 0.38, 0.02], [0.02, 0.42, 0.56]])
    with pytest.warns(QuadratureWarning, match=r"agent 0 \(package index; agent 1 of the text\).*auction 3, step 7"):
        cp = expected_critical_payments(d, [9.0, 1.0], staircase, rtol=1e-8, context="auction 3, step 7")
    assert cp.converged.tolist() == [False, True] and cp.monotone.all()
    assert cp.payments[0] > 0  # the value is still returned
    with pytest.warns(QuadratureWarning, match="myerson_payment: 2 of 2 integrals"):
        myerson_payment(lambda s: np.floor(64 * s / (s + 1)) / 64, np.array([9.0, 3.0]), scale=1.0, rtol=1e-8)


def test_converged_payments_are_flagged_so_and_do_not_warn(recwarn):
    d = np.array([P1, P2])
    lin = expected_critical_payments(d, [2.0, 1.0])
    two = expected_critical_payments(np.array([[0.7, 0.3], [0.2, 0.8]]), [2.0, 1.0], "log_linear")
    from llm_auction_utils.theory.payments import kl_preference_payments

    kl = kl_preference_payments(d, [2.0, 1.0], context="step 0")
    assert lin.converged.all() and two.converged.all() and kl.converged.all()
    assert not [w for w in recwarn if "panel limit" in str(w.message)]
    t = expected_critical_payments(torch.tensor([[0.7, 0.3], [0.2, 0.8]]), [2.0, 1.0], "log_linear")
    assert t.converged.dtype == torch.bool and bool(t.converged.all())


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4), st.integers(2, 6))
def test_the_linear_rules_forward_kl_twin_pays_the_externality(seed, n, v):
    """theory.md §4.7: with value per nat of KL(p_i || q), the linear rule's allocation
    KL(p_i || q(0)) - KL(p_i || q(b)) has the Myerson payment sum_{j != i} b_j (KL(p_j || q(b)) - KL(p_j || q(0)))."""
    from scipy.integrate import quad
    from llm_auction_utils.theory.divergences import kl_divergence

    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(v) * 0.7, size=n) + 1e-6  # full support: KL(p_i || r_{-i}) is finite
    d /= d.sum(-1, keepdims=True)
    b = rng.uniform(0.1, 3.0, size=n)

    def q(s: float) -> np.ndarray:
        return np.asarray(linear(d, np.r_[s, b[1:]]), dtype=np.float64)

    def alloc(s: float) -> float:
        return float(kl_divergence(d[0], q(0.0)) - kl_divergence(d[0], q(s)))

    myerson = b[0] * alloc(b[0]) - quad(alloc, 0.0, b[0], epsabs=1e-12, epsrel=1e-10, limit=200)[0]
    externality = sum(b[j] * float(kl_divergence(d[j], q(b[0])) - kl_divergence(d[j], q(0.0))) for j in range(1, n))
    assert myerson == pytest.approx(externality, rel=1e-6, abs=1e-9)
