"""KL identities behind the rules, TV, RLHF link (notebooks/theory.md §2 and §5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_auction_utils.theory.aggregation import linear, log_linear
from llm_auction_utils.theory.divergences import (
    argmin_on_simplex,
    generalized_kl,
    kl_divergence,
    linear_objective,
    log_linear_objective,
    rlhf_policy,
    tv_distance,
)
from llm_auction_utils.theory.preferences import weakly_prefers


def test_kl_conventions():
    assert kl_divergence([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(np.log(2))
    assert kl_divergence([1.0, 0.0], [0.0, 1.0]) == np.inf
    assert kl_divergence([0.0, 1.0], [0.5, 0.5]) == pytest.approx(np.log(2))
    kt = kl_divergence(torch.tensor([[0.5, 0.5], [1.0, 0.0]]), torch.tensor([[0.5, 0.5], [0.0, 1.0]]))
    assert kt[0] == 0 and torch.isinf(kt[1]) and not torch.isnan(kt).any()
    assert tv_distance([1.0, 0.0], [0.0, 1.0]) == 1.0
    with pytest.raises(ValueError, match="vocabulary sizes differ"):
        kl_divergence([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="q contain NaN"):
        kl_divergence([1.0, 0.0], [np.nan, 1.0])


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6))
def test_kl_nonnegative_and_generalized_kl_matches_on_distributions(seed, v):
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.ones(v)), rng.dirichlet(np.ones(v))
    kl = kl_divergence(p, q)
    assert kl >= -1e-12
    assert generalized_kl(p, q) == pytest.approx(kl, abs=1e-12)
    assert 0.0 <= tv_distance(p, q) <= 1.0
    assert tv_distance(p, q) <= np.sqrt(kl / 2) + 1e-12  # Pinsker


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6), st.floats(0.0, 1.0))
def test_unnormalized_kls_respect_the_robust_order(seed, v, a):
    """Per-token KL terms of unnormalized measures decrease when moving toward p_i (section 2)."""
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.ones(v)), rng.dirichlet(np.ones(v))
    q_new = q + a * (p - q)
    assert weakly_prefers(q_new, q, p)
    assert generalized_kl(p, q_new) <= generalized_kl(p, q) + 1e-12
    assert generalized_kl(q_new, p) <= generalized_kl(q, p) + 1e-12
    with pytest.raises(ValueError, match="negative"):
        generalized_kl(-p, q)


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4), st.integers(2, 5))
def test_linear_is_argmin_of_weighted_forward_kl(seed, n, v):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(v), size=n)
    b = rng.exponential(size=n) + 0.05
    q_opt = argmin_on_simplex(lambda q: linear_objective(q, d, b), v, seed=seed, n_starts=1)
    np.testing.assert_allclose(q_opt, linear(d, b), atol=1e-5)
    assert linear_objective(linear(d, b), d, b) <= linear_objective(q_opt, d, b) + 1e-12


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4), st.integers(2, 5))
def test_log_linear_is_argmin_of_weighted_reverse_kl(seed, n, v):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(v), size=n)
    b = rng.exponential(size=n) + 0.05
    q_opt = argmin_on_simplex(lambda q: log_linear_objective(q, d, b), v, seed=seed, n_starts=1)
    np.testing.assert_allclose(q_opt, log_linear(d, b), atol=1e-5)
    # and the linear rule does not minimize the reverse objective in general
    assert log_linear_objective(log_linear(d, b), d, b) <= log_linear_objective(linear(d, b), d, b) + 1e-12


def test_argmin_with_support_and_zero_bids():
    d = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    b = np.array([1.0, 1.0])
    q_ll = log_linear(d, b)
    assert q_ll[2] == 0
    q_opt = argmin_on_simplex(lambda q: log_linear_objective(q, d, b), 3, support=d[0] > 0)
    np.testing.assert_allclose(q_opt, q_ll, atol=1e-5)
    # an agent with zero bid does not count, even when its KL is infinite
    d2 = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    assert np.isfinite(linear_objective([0.0, 0.4, 0.6], d2, [0.0, 1.0]))
    assert linear_objective([0.0, 0.4, 0.6], d2, [1.0, 1.0]) == np.inf
    with pytest.raises(ValueError, match="support"):
        argmin_on_simplex(lambda q: 0.0, 3, support=[False, False, False])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6), st.floats(0.05, 5.0))
def test_rlhf_policy_identity(seed, v, kappa):
    rng = np.random.default_rng(seed)
    p_ref = rng.dirichlet(np.ones(v))
    rewards = rng.normal(size=(3, v))
    lam = rng.dirichlet(np.ones(3))
    pol = rlhf_policy(p_ref, lam @ rewards, kappa)
    # closed form p_ref exp(r / kappa) / Z
    w = p_ref * np.exp((lam @ rewards) / kappa)
    np.testing.assert_allclose(pol, w / w.sum(), rtol=1e-9)
    # agents p_i = RLHF policy of reward r_i: log-linear with shares lam = RLHF policy for sum_i lam_i r_i
    agents = np.stack([rlhf_policy(p_ref, rewards[i], kappa) for i in range(3)])
    np.testing.assert_allclose(log_linear(agents, lam), pol, rtol=1e-8, atol=1e-14)
    # it maximizes E_q[r] - kappa KL(q || p_ref): beats random distributions
    obj = lambda q: q @ (lam @ rewards) - kappa * kl_divergence(q, p_ref)  # noqa: E731
    for q in rng.dirichlet(np.ones(v), size=20):
        assert obj(pol) >= obj(q) - 1e-12


def test_rlhf_errors_and_zeros():
    assert rlhf_policy([0.0, 1.0], [5.0, 0.0], 1.0)[0] == 0.0
    with pytest.raises(ValueError, match="kl_weight must be positive"):
        rlhf_policy([0.5, 0.5], [0.0, 1.0], 0.0)
    with pytest.raises(ValueError, match="reward contains NaN"):
        rlhf_policy([0.5, 0.5], [np.nan, 1.0], 1.0)
