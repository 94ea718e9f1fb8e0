"""Step recorders and influence measures (module ``influence``), on synthetic steps; plus ``others_linear_aggregate``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_auction_utils.theory.aggregation import linear, log_linear, others_linear_aggregate
from llm_auction_utils.theory.divergences import kl_divergence, tv_distance
from llm_auction_utils.llm.influence import (
    BidPathRecorder,
    DivergenceRecorder,
    OthersTVRecorder,
    token_influence,
    top_k_buckets,
)
from llm_auction_utils.theory.monotonicity import check_bid_path
from llm_auction_utils.theory.payments import expected_critical_payments, linear_myerson_payment


def _step(dists: np.ndarray, bids, step: int = 0, rule=linear) -> SimpleNamespace:
    """What the engine hands to ``on_step`` (float32 tensors, as on the model's device)."""
    d = torch.tensor(dists, dtype=torch.float32)
    q = rule(d, torch.tensor(bids, dtype=torch.float32))
    return SimpleNamespace(step=step, dists=d, aggregate=q, token_id=int(torch.argmax(q)), payments=None, monotone=None)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 4), v=st.integers(2, 9))
def test_others_aggregate_recomposes_the_linear_aggregate(seed, n, v):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.ones(v), size=n)
    b = rng.exponential(size=n) + 0.01
    r = others_linear_aggregate(d, b)
    S, B = b.sum(), b.sum() - b
    np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-12)
    for i in range(n):
        np.testing.assert_allclose(b[i] * d[i] + B[i] * r[i], S * linear(d, b), atol=1e-12)   # S q = b_i p_i + B_i r_i
        others = [j for j in range(n) if j != i]
        np.testing.assert_allclose(r[i], linear(d[others], b[others]), atol=1e-12)
    # the closed-form payment is TV(p_i, r_i) x Myerson(b_i, B_i)
    z = expected_critical_payments(d, b).payments
    np.testing.assert_allclose(z, tv_distance(d, r) * linear_myerson_payment(b, B), rtol=1e-9, atol=1e-15)


def test_others_aggregate_when_nobody_else_bids_and_on_torch():
    d = np.array([[0.7, 0.3], [0.1, 0.9]])
    r = others_linear_aggregate(d, [2.0, 0.0])
    np.testing.assert_allclose(r[1], [0.7, 0.3])          # agent 1's others: agent 0
    np.testing.assert_allclose(r[0], d[0])                # nobody else bids: r_0 = p_0, TV 0
    rt = others_linear_aggregate(torch.tensor(d), torch.tensor([1.0, 3.0]))
    assert isinstance(rt, torch.Tensor)
    np.testing.assert_allclose(rt.numpy(), others_linear_aggregate(d, [1.0, 3.0]))
    with pytest.raises(ValueError, match="negative"):
        others_linear_aggregate(d, [1.0, -1.0])


def test_divergence_recorder_matches_the_theory_core():
    rng = np.random.default_rng(0)
    d = rng.dirichlet(np.ones(50), size=2)
    rec = DivergenceRecorder(["alpha", "beta"])
    for t, bids in enumerate([[0.3, 0.7], [1.0, 0.0]]):
        rec(_step(d, bids, step=t))
    df = rec.frame(rule="linear", lam=0.3)
    assert list(df.columns[:4]) == ["rule", "lam", "step", "token_id"]
    assert len(df) == 2 and np.isfinite(df.drop(columns=["rule"]).to_numpy(dtype=float)).all()
    q = linear(d, [0.3, 0.7])
    np.testing.assert_allclose(df.loc[0, ["kl_p_q_alpha", "kl_p_q_beta"]].to_numpy(dtype=float), kl_divergence(d, q), rtol=1e-5)
    np.testing.assert_allclose(df.loc[0, ["tv_alpha", "tv_beta"]].to_numpy(dtype=float), tv_distance(d, q), rtol=1e-5)
    assert df.loc[1, "kl_p_q_alpha"] < 1e-9 and df.loc[1, "kl_q_p_alpha"] < 1e-9   # all the bid on alpha: q = p_alpha
    assert rec.first_dists.shape == (2, 50) and rec.first_dists.dtype == np.float64
    with pytest.raises(ValueError, match="made for 3 agents"):
        DivergenceRecorder(["a", "b", "c"])(_step(d, [1.0, 1.0]))
    with pytest.raises(ValueError, match="distinct"):
        DivergenceRecorder(["a", "a"])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 3), k=st.integers(1, 20))
def test_top_k_buckets_keep_tv_exactly(seed, n, k):
    rng = np.random.default_rng(seed)
    d = rng.dirichlet(np.full(40, 0.3), size=n)
    r = others_linear_aggregate(d, rng.exponential(size=n) + 0.1)
    keep = np.zeros(40, dtype=bool)
    keep[rng.choice(40, size=k, replace=False)] = True
    pc, rc = top_k_buckets(d, r, keep)
    assert pc.shape == rc.shape == (n, k + 2)
    np.testing.assert_allclose(pc.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(tv_distance(pc, rc), tv_distance(d, r), atol=1e-12)
    with pytest.raises(ValueError, match="boolean keep"):
        top_k_buckets(d, r, keep.astype(int))


def test_others_tv_recorder_gives_the_payment_factor():
    rng = np.random.default_rng(3)
    d = rng.dirichlet(np.ones(300), size=3)
    bids = [1.0, 2.0, 0.5]
    rec = OthersTVRecorder(bids, top_k=16)
    info = _step(d, bids)
    rec(info)
    rec(_step(d, bids, step=1))
    assert rec.tv.shape == (2, 3) and rec.steps[0]["p"].shape == (3, 18)
    b = np.array(bids)
    z = expected_critical_payments(info.dists, torch.tensor(bids)).payments.double().numpy()
    np.testing.assert_allclose(rec.tv[0] * linear_myerson_payment(b, b.sum() - b), z, rtol=1e-4)
    np.testing.assert_allclose(tv_distance(rec.steps[0]["p"], rec.steps[0]["r"]), rec.tv[0], atol=1e-9)
    with pytest.raises(ValueError, match="top_k must be smaller"):
        OthersTVRecorder(bids, top_k=300)(info)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        OthersTVRecorder(bids, top_k=0)
    with pytest.raises(ValueError, match="NaN|finite"):
        OthersTVRecorder([1.0, float("nan")])


def test_bid_path_recorder_agrees_with_check_bid_path():
    P1, P2 = [0.5, 0.49, 0.01], [0.01, 0.49, 0.5]          # the log-linear counterexample of notebooks/theory.md §5
    d = np.array([P1, P2])
    rec = BidPathRecorder("log_linear", [1.0, 1.0])
    rec(_step(d, [1.0, 1.0], rule=log_linear))
    df = rec.frame()
    assert list(df["agent"]) == [0, 1] and (df["worst"] > 1e-3).all() and df["above both"].all()
    grid = np.linspace(0, 1, 17) ** 3
    ref = check_bid_path(torch.tensor(d, dtype=torch.float32), [1.0, 1.0], 0, "log_linear", grid, atol=1e-7)
    assert df.loc[0, "worst"] == pytest.approx(ref.worst_violation)
    lin = BidPathRecorder("linear", [1.0, 2.0])
    lin(_step(d, [1.0, 2.0]))
    assert (lin.frame()["worst"] <= 1e-7).all() and not lin.frame()["above both"].any()
    with pytest.raises(ValueError, match="t_grid must run from 0 to 1"):
        BidPathRecorder("linear", [1.0, 1.0], t_grid=[0.0, 0.5])


def test_token_influence_splits_each_token():
    table = pd.DataFrame({"token": ["Fly", " to"], "q": [0.5, 0.2], "share_A": [0.25, 0.25], "share_B": [0.75, 0.75],
                          "p_A": [0.8, 0.2], "p_B": [0.4, 0.2]})
    tr = SimpleNamespace(table=table, agents=("A", "B"))
    infl = token_influence(tr)
    np.testing.assert_allclose(infl.sum(axis=1), 1.0)
    np.testing.assert_allclose(infl["A"], [0.4, 0.25])
    assert list(infl.index) == ["Fly", " to"]
    with pytest.raises(ValueError, match="lacks the columns"):
        token_influence(SimpleNamespace(table=table.drop(columns=["p_B"]), agents=("A", "B")))
