"""Aggregation rules: blog example, identities (hypothesis), backends, batching, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from llm_auction_utils.theory.aggregation import AggregationRule, bid_shares, get_rule, linear, log_linear, rule_name

BLOG_DISTS = [[0.8, 0.2], [1.0, 0.0], [0.0, 1.0]]  # tokens: Large, Generative
BLOG_BIDS = [1.0, 2.0, 2.0]


@st.composite
def instances(draw, positive: bool = False, max_n: int = 4, max_v: int = 6):
    n = draw(st.integers(1, max_n))
    v = draw(st.integers(1, max_v))
    lo = 0.05 if positive else 0.0
    raw = draw(arrays(np.float64, (n, v), elements=st.floats(lo, 1.0)))
    raw[:, 0] += 0.05  # a common token so every rule is defined
    dists = raw / raw.sum(-1, keepdims=True)
    bids = draw(arrays(np.float64, (n,), elements=st.floats(0.0, 10.0)))
    bids[draw(st.integers(0, n - 1))] += 0.1  # not all zero
    return dists, bids


def test_blog_example_linear():
    q = linear(BLOG_DISTS, BLOG_BIDS)
    np.testing.assert_allclose(q, [0.56, 0.44], atol=1e-12)


def test_blog_example_log_linear_is_undefined():
    with pytest.raises(ValueError, match="supports are disjoint"):
        log_linear(BLOG_DISTS, BLOG_BIDS)


def test_bid_shares_values_and_errors():
    np.testing.assert_allclose(bid_shares([1, 2, 2]), [0.2, 0.4, 0.4])
    np.testing.assert_allclose(bid_shares([[1, 0], [1, 3]]), [[1, 0], [0.25, 0.75]])
    with pytest.raises(ValueError, match="all bids are zero"):
        bid_shares([0, 0])
    with pytest.raises(ValueError, match=r"bid of agent 1 is negative \(-0\.5\)"):
        bid_shares([1, -0.5])
    with pytest.raises(ValueError, match="bids contain NaN"):
        bid_shares([1, np.nan])


@settings(max_examples=60, deadline=None)
@given(instances())
def test_linear_is_the_convex_combination(inst):
    d, b = inst
    q = linear(d, b)
    lam = b / b.sum()
    np.testing.assert_allclose(q, (lam[:, None] * d).sum(0), atol=1e-12)
    np.testing.assert_allclose(q.sum(), 1.0, atol=1e-12)
    assert (q >= d.min(0) - 1e-12).all() and (q <= d.max(0) + 1e-12).all()


@settings(max_examples=60, deadline=None)
@given(instances(), st.floats(1e-3, 1e3))
def test_scale_invariance_of_bids(inst, c):
    d, b = inst
    np.testing.assert_allclose(linear(d, c * b), linear(d, b), atol=1e-12)
    np.testing.assert_allclose(log_linear(d, c * b), log_linear(d, b), atol=1e-10)
    np.testing.assert_allclose(bid_shares(c * b), bid_shares(b), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(instances(positive=True))
def test_log_linear_is_normalized_product_of_powers(inst):
    d, b = inst
    lam = b / b.sum()
    prod = np.prod(d ** lam[:, None], axis=0)
    np.testing.assert_allclose(log_linear(d, b), prod / prod.sum(), rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(instances())
def test_log_linear_zeros(inst):
    d, b = inst
    q = log_linear(d, b)
    np.testing.assert_allclose(q.sum(), 1.0, atol=1e-12)
    zero_under_bidder = ((d == 0) & (b[:, None] > 0)).any(0)
    assert (q[zero_under_bidder] == 0).all()
    assert np.isfinite(q).all()


def test_zero_bid_agent_does_not_zero_out_tokens():
    d = [[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]]
    np.testing.assert_allclose(log_linear(d, [0.0, 1.0]), [0.2, 0.3, 0.5], atol=1e-12)
    np.testing.assert_allclose(log_linear(d, [1.0, 1.0]), [1.0, 0.0, 0.0], atol=1e-12)


def test_theory_counterexample_values():
    p1, p2 = [0.5, 0.49, 0.01], [0.01, 0.49, 0.5]
    assert log_linear([p1, p2], [0.0, 1.0])[1] == pytest.approx(0.49, abs=1e-12)
    assert log_linear([p1, p2], [1.0, 1.0])[1] == pytest.approx(0.776, abs=1e-3)


@settings(max_examples=30, deadline=None)
@given(instances(), st.sampled_from([torch.float64, torch.float32]))
def test_numpy_and_torch_agree(inst, dtype):
    d, b = inst
    dt, bt = torch.tensor(d, dtype=dtype), torch.tensor(b, dtype=dtype)
    # reference on the values the tensor actually holds (float32 flushes e.g. 1e-46 to 0,
    # which log-linear rightly treats as an exact zero)
    d_ref, b_ref = dt.double().numpy(), bt.double().numpy()
    for rule in (linear, log_linear):
        qt = rule(dt, bt)
        assert isinstance(qt, torch.Tensor) and qt.dtype == dtype
        tol = 1e-10 if dtype == torch.float64 else 2e-5
        np.testing.assert_allclose(qt.double().numpy(), rule(d_ref, b_ref), atol=tol)


def test_torch_bids_as_list_and_mixed_inputs():
    d = torch.tensor([[0.5, 0.5], [0.1, 0.9]], dtype=torch.float32)
    q = linear(d, [1, 3])
    assert isinstance(q, torch.Tensor) and q.dtype == torch.float32
    np.testing.assert_allclose(q.numpy(), [0.2, 0.8], atol=1e-6)


def test_batched_equals_per_item_with_broadcast_bids():
    rng = np.random.default_rng(0)
    d = rng.dirichlet(np.ones(7), size=(4, 5, 3))  # (4, 5, n=3, V=7)
    b = rng.exponential(size=(5, 3))  # broadcasts over the first axis
    for rule in (linear, log_linear):
        q = rule(d, b)
        assert q.shape == (4, 5, 7)
        for i in range(4):
            for j in range(5):
                np.testing.assert_allclose(q[i, j], rule(d[i, j], b[j]), atol=1e-12)
    qs = linear(d[0], b[0])  # same bids for every batch item
    np.testing.assert_allclose(qs[2], linear(d[0, 2], b[0]), atol=1e-12)


def test_disjoint_supports_error_names_the_batch_item():
    d = np.array([[[0.5, 0.5], [0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]]])
    with pytest.raises(ValueError, match=r"supports are disjoint.*batch item \(1,\)"):
        log_linear(d, [1.0, 1.0])
    with pytest.raises(ValueError, match="supports are disjoint"):
        log_linear(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), [1.0, 1.0])


@pytest.mark.parametrize("rule", [linear, log_linear])
def test_rules_reject_bad_input(rule):
    with pytest.raises(ValueError, match="dists has 3 agents but bids has 2"):
        rule(BLOG_DISTS, [1.0, 2.0])
    with pytest.raises(ValueError, match="sums to"):
        rule([[0.5, 0.4]], [1.0])
    with pytest.raises(ValueError, match="all bids are zero"):
        rule([[0.5, 0.5]], [0.0])


def test_get_rule_and_protocol():
    assert get_rule("linear") is linear
    assert get_rule("log-linear") is log_linear
    custom = lambda d, b: linear(d, b)  # noqa: E731
    assert get_rule(custom) is custom
    assert isinstance(linear, AggregationRule)
    assert rule_name(log_linear) == "log_linear" and rule_name(custom) is None
    with pytest.raises(ValueError, match="valid names: 'linear', 'log_linear'"):
        get_rule("geometric")
    with pytest.raises(TypeError):
        get_rule(3)  # type: ignore[arg-type]


def test_large_vocabulary_is_vectorized():
    rng = np.random.default_rng(0)
    V = 262_144
    d = torch.tensor(rng.dirichlet(np.ones(V), size=3), dtype=torch.float32)
    b = torch.tensor([1.0, 2.0, 3.0])
    for rule in (linear, log_linear):
        q = rule(d, b)
        assert q.shape == (V,) and torch.isfinite(q).all()
        assert abs(float(q.sum()) - 1.0) < 1e-4


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("rule", ["linear", "log_linear", "highest_bid"])
def test_half_precision_inputs_are_computed_in_float32_and_returned_in_their_dtype(rule, dtype):
    """``log_linear`` on bfloat16 used to raise "Got unsupported ScalarType BFloat16"."""
    d32 = torch.tensor([[0.5, 0.25, 0.25], [0.125, 0.375, 0.5]])  # exact in both half formats
    A = get_rule(rule)
    q = A(d32.to(dtype), torch.tensor([1.0, 2.0]))
    assert q.dtype == dtype and bool(torch.isfinite(q).all())
    expected = A(d32, torch.tensor([1.0, 2.0]))
    assert torch.allclose(q.float(), expected, atol=4e-3)
