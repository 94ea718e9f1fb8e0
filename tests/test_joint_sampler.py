"""The joint sampler: one stable coupling realizes both agents' critical-bid payments (n = 2, linear)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from llm_auction_utils.theory import linear, linear_myerson_payment, tv_distance
from llm_auction_utils.theory.sampling import joint_stable_step

N_DRAWS = 20_000


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000))
def test_marginals_and_mean_payments_of_both_agents(seed):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(5), size=2)
    b = rng.exponential(size=2) + 0.2
    draws = [joint_stable_step(d, b, rng) for _ in range(N_DRAWS)]
    tokens = np.array([x.token for x in draws])
    pays = np.stack([x.payments for x in draws])
    q = linear(d, b)
    counts = np.bincount(tokens, minlength=5)
    support = q > 1e-9
    assert chisquare(counts[support], N_DRAWS * q[support] / q[support].sum()).pvalue > 1e-4
    tv = float(tv_distance(d[0], d[1]))
    for i, j in ((0, 1), (1, 0)):
        expected = tv * float(linear_myerson_payment(b[i], b[j]))
        se = pays[:, i].std(ddof=1) / np.sqrt(N_DRAWS)
        assert abs(pays[:, i].mean() - expected) <= 4 * se + 1e-12, (i, pays[:, i].mean(), expected, se)
    # an agent pays only when its bid switched the token, and never more than its bid
    for x in draws:
        for i in range(2):
            assert (x.payments[i] > 0) == bool(x.switched[i])
            assert x.payments[i] <= b[i] + 1e-12
        assert not x.switched.all()  # at most one agent's bid decides a draw


def test_one_bidder_pays_nothing_and_bad_shapes():
    d = np.array([[0.7, 0.3], [0.2, 0.8]])
    draw = joint_stable_step(d, [1.0, 0.0], np.random.default_rng(0))
    assert draw.payments.tolist() == [0.0, 0.0] and draw.token in (0, 1)
    with pytest.raises(ValueError, match="two agents"):
        joint_stable_step(np.ones((3, 2)) / 2, [1.0, 1.0, 1.0])


def test_payments_scale_with_the_bids():
    d = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    a = joint_stable_step(d, [1.0, 2.0], np.random.default_rng(7))
    b = joint_stable_step(d, [1e150, 2e150], np.random.default_rng(7))
    assert a.token == b.token
    np.testing.assert_allclose(b.payments, 1e150 * a.payments, rtol=1e-12)
