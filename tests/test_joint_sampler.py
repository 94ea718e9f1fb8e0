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


# --------------------------------------------------------------------------- no stable coupling for n >= 3
# notebooks/theory.md §4.8: three agents, linear rule, agent 3 bidding 1 and b_1, b_2 in {0, 1}.  A realized
# critical-bid payment for agent i needs the token to change between agent i's bid 0 and bid 1 (the others
# fixed) only as much as it must: P(X != X') = TV(q, q'), i.e. P(X = X' = t) = min(q(t), q'(t)) on each of
# the four edges of the square of profiles.  A linear program over joint laws of the four profiles' tokens.

COUNTEREXAMPLE = np.array([[0.49, 0.19, 0.32], [0.53, 0.03, 0.44], [0.79, 0.14, 0.07]])
PROFILES = [(0, 0), (0, 1), (1, 0), (1, 1)]  # (b_1, b_2); b_3 = 1
EDGES = [((0, 0), (1, 0)), ((0, 1), (1, 1)), ((0, 0), (0, 1)), ((1, 0), (1, 1))]  # agent 1's, then agent 2's


def _outcomes(dists: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    return {(b1, b2): np.asarray(linear(dists, [float(b1), float(b2), 1.0])) for b1, b2 in PROFILES}


def _stable_coupling_exists(dists: np.ndarray) -> bool:
    from itertools import product

    from scipy.optimize import linprog

    q = _outcomes(dists)
    V = dists.shape[1]
    cells = np.array(list(product(range(V), repeat=len(PROFILES))))  # one joint token per profile
    rows, rhs = [], []
    for k, prof in enumerate(PROFILES):  # marginals: the token at each profile has law q(profile)
        for t in range(V):
            rows.append(cells[:, k] == t)
            rhs.append(q[prof][t])
    for a, c in EDGES:  # stability: along each edge a token stays put as often as it can
        ka, kc = PROFILES.index(a), PROFILES.index(c)
        for t in range(V):
            rows.append((cells[:, ka] == t) & (cells[:, kc] == t))
            rhs.append(min(q[a][t], q[c][t]))
    res = linprog(np.zeros(len(cells)), A_eq=np.array(rows, dtype=float), b_eq=rhs, bounds=(0, None), method="highs")
    assert res.status in (0, 2), res.message  # 0: feasible, 2: infeasible
    return res.status == 0


def test_the_counterexample_numbers():
    q = _outcomes(COUNTEREXAMPLE)
    # token 2 (index 1) loses probability along agent 2's paths and gains along agent 1's
    assert q[(0, 1)][1] < q[(0, 0)][1] and q[(1, 1)][1] < q[(1, 0)][1]
    assert q[(1, 0)][1] > q[(0, 0)][1] and q[(1, 1)][1] > q[(0, 1)][1]
    # at b_2 = 1 only token 1 loses along agent 1's path, so 0.035 must switch from token 1 into token 2
    d1 = q[(1, 1)] - q[(0, 1)]
    assert d1[0] < 0 < d1[2] and abs(d1[1] - 0.035) < 1e-12
    # along agent 2's paths tokens 1 and 2 both lose, so a draw that is token 1 at (0, 1) was token 1 at (0, 0),
    # and a draw that is token 2 at (1, 1) was token 2 at (1, 0)
    assert (q[(0, 1)][:2] < q[(0, 0)][:2]).all() and (q[(1, 1)][:2] < q[(1, 0)][:2]).all()
    # at b_2 = 0 token 2 gains only 0.025 along agent 1's path: less than the 0.035 those draws need
    assert abs((q[(1, 0)] - q[(0, 0)])[1] - 0.025) < 1e-12


def test_no_coupling_is_stable_for_all_agents_at_once_with_three_agents():
    assert not _stable_coupling_exists(COUNTEREXAMPLE)


def test_a_stable_coupling_exists_when_agent_3_copies_agent_1():
    # then every profile's outcome lies on the segment between p_1 and p_2, as with two agents
    copy = COUNTEREXAMPLE.copy()
    copy[2] = copy[0]
    assert _stable_coupling_exists(copy)
