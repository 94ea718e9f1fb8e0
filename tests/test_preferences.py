"""The robust (coordinatewise) order of notebooks/theory.md §2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_auction_utils.theory.preferences import (
    comparable,
    preference_violation,
    strictly_prefers,
    violation_amount,
    weakly_prefers,
)


def _dist(rng, v):
    return rng.dirichlet(np.ones(v))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 8), st.floats(0.0, 1.0))
def test_moving_toward_p_is_weakly_preferred(seed, v, a):
    rng = np.random.default_rng(seed)
    q, p = _dist(rng, v), _dist(rng, v)
    q_new = q + a * (p - q)
    assert weakly_prefers(q_new, q, p)
    assert comparable(q, q_new, p)
    # strict iff it actually moved
    assert bool(strictly_prefers(q_new, q, p)) == bool(np.abs(q_new - q).max() > 1e-9)
    # moving away (past q, opposite direction) is not preferred unless nothing moves
    q_away = q - 0.5 * min(a, 0.9) * (p - q) / max(1.0, np.abs(p - q).max() / max(q.min(), 1e-12))
    if np.abs(q_away - q).max() > 1e-9:
        assert not weakly_prefers(q_away, q, p)


def test_overshooting_past_p_is_not_preferred():
    p = np.array([0.5, 0.5])
    q = np.array([0.2, 0.8])
    assert weakly_prefers(p, q, p)
    assert not weakly_prefers(np.array([0.6, 0.4]), q, p)
    v = preference_violation(np.array([0.6, 0.4]), q, p)
    assert v.amount == pytest.approx(0.1)
    assert int(v.token) in (0, 1) and v.p_i == pytest.approx(0.5)


def test_incomparable_pair_and_theory_counterexample():
    p1 = np.array([0.5, 0.49, 0.01])
    q0 = np.array([0.01, 0.49, 0.5])
    q1 = np.array([0.5, 0.49, 0.01]) * 0 + np.array([0.112, 0.776, 0.112])
    assert not weakly_prefers(q1, q0, p1)
    v = preference_violation(q1, q0, p1)
    assert int(v.token) == 1 and v.amount == pytest.approx(0.286, abs=1e-3)
    # q1 and q0 are not comparable for agent 1 either way
    assert not comparable(q1, q0, p1)


def test_batched_and_torch():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(5), size=(3, 4))
    q = rng.dirichlet(np.ones(5), size=(3, 4))
    q_new = q + 0.3 * (p - q)
    out = weakly_prefers(q_new, q, p)
    assert out.shape == (3, 4) and out.all()
    out_t = weakly_prefers(torch.tensor(q_new), torch.tensor(q), torch.tensor(p))
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.bool and bool(out_t.all())
    bad = q_new.copy()
    bad[1, 2] = rng.dirichlet(np.ones(5))  # an arbitrary jump: not between q and p
    assert violation_amount(bad[1, 2], q[1, 2], p[1, 2]) > 0.01
    res = weakly_prefers(bad, q, p)
    assert not res[1, 2] and res.sum() == 11
    assert violation_amount(bad, q, p).shape == (3, 4)
    # broadcasting a single p_i against a batch
    assert weakly_prefers(q_new[0], q[0], p[0, 0]).shape == (4,)


def test_equal_is_weak_not_strict_and_errors():
    q = np.array([0.3, 0.7])
    assert weakly_prefers(q, q, np.array([0.9, 0.1]))
    assert not strictly_prefers(q, q, np.array([0.9, 0.1]))
    with pytest.raises(ValueError, match="vocabulary sizes differ"):
        weakly_prefers(q, q, np.array([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match="q_new row 0 sums to"):
        weakly_prefers(np.array([[0.3, 0.3]]), q, q)
