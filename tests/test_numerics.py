"""Numerics that hold at the real vocabulary size and at extreme bids (theory chapter §7).

- the log-linear rule computed from float32 log-probabilities agrees with a float64 log-space
  reference at V = 262,144 even with sharp logits (where float32 probabilities underflow);
- extreme bids give the right answer or a clear error, never NaN; payments are homogeneous of
  degree 1 in the bids;
- non-linear payments are accurate (relative error <= 1e-4) up to b/B = 1e6 against an
  independent adaptive quadrature;
- the others' aggregate has no cancellation at b_i / B_{-i} = 3e9 in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from llm_auction_utils.llm.engine import next_token_logprobs
from llm_auction_utils.theory import (
    bid_path,
    bid_shares,
    expected_critical_payments,
    kl_allocation,
    kl_preference_payments,
    linear,
    linear_myerson_payment,
    log_linear,
    log_linear_logprobs,
    others_linear_aggregate,
    stable_step,
    tv_distance,
)

V_REAL = 262_144


def _sharp_logits(spread: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (spread * torch.randn(2, V_REAL, generator=g)).float()


@pytest.mark.parametrize("spread", [30.0, 100.0])
def test_log_linear_in_log_space_at_the_real_vocabulary_size(spread):
    logits = _sharp_logits(spread)
    bids = torch.tensor([1.0, 1.0])
    logp32, p32 = next_token_logprobs(logits)
    q = torch.exp(log_linear_logprobs(logp32, bids)).double()
    ref_logp = torch.log_softmax(logits.double(), -1)
    ref = torch.softmax(0.5 * ref_logp.sum(0), -1)
    assert float(0.5 * (q - ref).abs().sum()) <= 1e-5
    # the rule from float32 *probabilities* cannot do this: most tokens underflow to 0 there
    assert float((p32 == 0).double().mean()) > 0.5


@pytest.mark.parametrize("spread", [30.0, 100.0])
def test_log_linear_bid_path_and_payments_use_the_log_probabilities(spread):
    logits = _sharp_logits(spread, seed=1)
    logp32, p32 = next_token_logprobs(logits)
    bids = torch.tensor([1.0, 2.0])
    qs = bid_path(p32, bids, 0, "log_linear", [0.0, 1.0], validate=False, logprobs=logp32)
    ref_logp = torch.log_softmax(logits.double(), -1)
    ref = torch.softmax((ref_logp[0] + 2.0 * ref_logp[1]) / 3.0, -1)
    assert float(0.5 * (qs[-1].double() - ref).abs().sum()) <= 1e-5
    kp = kl_preference_payments(p32, bids, logprobs=logp32)
    assert torch.isfinite(kp.payments).all() and (kp.payments >= 0).all() and kp.monotone.all()
    cp = expected_critical_payments(p32, bids, "log_linear", logprobs=logp32)
    assert torch.isfinite(cp.payments).all()


def test_linear_rule_unchanged_from_probabilities():
    logits = _sharp_logits(3.0, seed=2)
    _, p32 = next_token_logprobs(logits)
    q = linear(p32, torch.tensor([1.0, 3.0]))
    assert torch.allclose(q, 0.25 * p32[0] + 0.75 * p32[1], atol=1e-9, rtol=0)


# --------------------------------------------------------------------------- extreme bids

D = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])


@pytest.mark.parametrize("bids", [[1e300, 1e300], [1e308, 1.7e308], [1e-300, 1e-300], [3e38, 1e38], [1e-300, 1.0]])
def test_extreme_bids_numpy_give_the_scale_free_answer(bids):
    ref_shares = np.asarray(bids) / np.max(bids)
    ref_shares = ref_shares / ref_shares.sum()
    np.testing.assert_allclose(bid_shares(bids), ref_shares, rtol=1e-12)
    np.testing.assert_allclose(linear(D, bids), ref_shares @ D, rtol=1e-12)
    assert np.isfinite(log_linear(D, bids)).all()
    cp = expected_critical_payments(D, bids, "linear")
    assert np.isfinite(cp.payments).all()
    np.testing.assert_allclose(cp.payments / np.max(bids), expected_critical_payments(D, ref_shares * 2).payments / 2
                               / np.max(ref_shares), rtol=1e-9)


@pytest.mark.parametrize("bids", [[1e300, 1.0], [3e38, 1.0], [1e-30, 1.0], [1e300, 1e300]])
def test_extreme_bids_float32_tensors_right_or_clear_error(bids):
    d = torch.tensor(D, dtype=torch.float32)
    q = linear(d, bids)  # aggregation only needs the ratios: always right
    ratio = np.asarray(bids) / max(bids)
    np.testing.assert_allclose(q.double().numpy(), (ratio / ratio.sum()) @ D, atol=1e-6)
    ref = expected_critical_payments(D, bids, "linear").payments  # float64
    if ref.max() > 3e38:  # the payments themselves do not fit float32
        with pytest.raises(ValueError, match="overflow the dtype of dists"):
            expected_critical_payments(d, bids, "linear")
    else:
        got = expected_critical_payments(d, bids, "linear").payments.double().numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-30)
    with pytest.raises(ValueError, match="bids do not fit the dtype of dists"):
        from llm_auction_utils.theory.validation import dists_and_bids

        dists_and_bids(d, [1e300, 1.0])  # raw bids cast to float32 would overflow: a clear error


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["linear", "log_linear"]), st.floats(-200, 200))
def test_payments_are_homogeneous_of_degree_one(seed, rule, log10_c):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(4), size=2)
    b = rng.exponential(size=2) + 0.1
    c = 10.0 ** log10_c
    base = expected_critical_payments(d, b, rule)
    scaled = expected_critical_payments(d, b * c, rule)
    np.testing.assert_array_equal(base.monotone, scaled.monotone)
    np.testing.assert_allclose(scaled.payments, c * base.payments, rtol=1e-9, atol=0)
    if rule == "log_linear":
        np.testing.assert_allclose(kl_preference_payments(d, b * c).payments, c * kl_preference_payments(d, b).payments,
                                   rtol=1e-9)


def test_no_nan_from_bad_or_extreme_input():
    for bids in ([np.nan, 1.0], [np.inf, 1.0], [-1.0, 1.0]):
        with pytest.raises(ValueError):
            expected_critical_payments(D, bids)
    with pytest.raises(ValueError, match="all bids are zero"):
        linear(D, [0.0, 0.0])
    assert np.isfinite(linear_myerson_payment(1e300, 1e-300))
    assert linear_myerson_payment(1e300, 1e-300) == pytest.approx(1e-300 * (np.log(1e300) - np.log(1e-300) - 1), rel=1e-12)


# --------------------------------------------------------------------------- lopsided bids


def _reference_payment(x, b: float, B: float) -> float:
    """Myerson ``int_0^b (x(b) - x(s)) ds`` by scipy's adaptive quadrature in ``y = ln(s)``."""
    xb = x(b)
    lo = np.log(min(b, B)) - 30.0
    f = lambda y: (xb - x(np.exp(y))) * np.exp(y)  # noqa: E731
    pts = [np.log(B)] if lo < np.log(B) < np.log(b) else None
    val, _ = quad(f, lo, np.log(b), points=pts, limit=400, epsabs=0.0, epsrel=1e-11)
    return val


@pytest.mark.parametrize("ratio", [1e-3, 1.0, 1e3, 1e6])
def test_log_linear_payments_at_lopsided_bids_match_adaptive_quadrature(ratio):
    d = np.array([[0.8, 0.2], [0.3, 0.7]])  # two tokens: log-linear is monotone
    B = 1.0
    bids = np.array([ratio * B, B])
    q0 = bid_path(d, bids, 0, "log_linear", [0.0])[0]

    def T(s: float) -> float:
        return float(tv_distance(bid_path(d, bids, 0, "log_linear", [s])[0], q0))

    ref = _reference_payment(T, ratio * B, B)
    got = float(expected_critical_payments(d, bids, "log_linear").payments[0])
    assert got == pytest.approx(ref, rel=1e-4)
    ref_kl = _reference_payment(lambda s: float(kl_allocation(d, bids, 0, [s])[0]), ratio * B, B)
    assert float(kl_preference_payments(d, bids).payments[0]) == pytest.approx(ref_kl, rel=1e-4)


@pytest.mark.parametrize("ratio", [1e-3, 1.0, 1e3, 1e6, 1e9])
def test_mixture_weighted_by_squared_bids_at_lopsided_bids(ratio):
    rule = lambda d, b: linear(d, b**2)  # noqa: E731 - monotone, not linear in the bids
    d = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    bids = np.array([ratio, 1.0])
    q0 = bid_path(d, bids, 0, rule, [0.0])[0]
    T = lambda s: float(tv_distance(bid_path(d, bids, 0, rule, [s])[0], q0))  # noqa: E731
    got = float(expected_critical_payments(d, bids, rule).payments[0])
    assert got == pytest.approx(_reference_payment(T, ratio, 1.0), rel=1e-4)


# --------------------------------------------------------------------------- no cancellation


def test_others_aggregate_without_cancellation_in_float32():
    p = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], dtype=torch.float32)
    b = torch.tensor([3e9, 1.0, 1.0], dtype=torch.float32)
    r = others_linear_aggregate(p, b)
    assert torch.allclose(r[0].double(), torch.tensor([0.35, 0.65], dtype=torch.float64), atol=1e-6)
    # in float32, S - b_1 is 0 here: the subtraction (S q - b_1 p_1) / (S - b_1) would have no digits left
    assert float(b.sum() - b[0]) != float(b[1] + b[2])


def test_stable_step_critical_bid_scales_with_the_bids():
    rng = np.random.default_rng(3)
    a = stable_step(D, [1.0, 2.0], 0, rng=rng)
    b = stable_step(D, [1e200, 2e200], 0, rng=np.random.default_rng(3))
    assert a.token == b.token and a.switched == b.switched
    if np.isfinite(a.critical_bid):
        assert b.critical_bid == pytest.approx(1e200 * a.critical_bid, rel=1e-12)


def test_user_rules_get_the_bids_as_given():
    """A user rule may depend on more than the bid shares (here a reserve weight on a default):
    the package must not rescale its bids, unlike the built-in rules'."""
    reserve = 1.0

    def toward_default(d, b):
        return ((b[..., :, None] * d).sum(-2) + reserve / d.shape[-1]) / (b.sum(-1, keepdims=True) + reserve)

    bids = np.array([3.0, 2.0])
    grid = np.array([0.0, 1.5, 3.0])
    path = bid_path(D, bids, 0, toward_default, grid)
    for k, s in enumerate(grid):
        np.testing.assert_allclose(path[k], toward_default(D, np.array([s, 2.0])), atol=1e-15)
    cp = expected_critical_payments(D, bids, toward_default)
    scaled = expected_critical_payments(D, bids * 10, toward_default)
    assert cp.monotone.all() and not np.allclose(scaled.payments, 10 * cp.payments)  # not homogeneous: no rescaling
