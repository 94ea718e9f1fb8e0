"""Tests of the study of notebook 09 (:mod:`llm_auction_utils.llm.study`).

The design's validation and layout; the whole pipeline on the tiny random model (every mechanism
on every query and profile, the metrics' identities, the payments' bounds, the highest-bid rule
equal to its top bidder's solo text); and the paired analysis on synthetic tables whose answer is
known (a planted effect is found, no effect is "indistinguishable", the resamples are shared).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llm_auction_utils.llm import study as s
from llm_auction_utils.llm.gembench import Brand, StudyItem


def _item(q: int = 0, query: str = "Plan a trip to Hawaii") -> StudyItem:
    brands = (Brand("Alpha Air", "an airline", "a"), Brand("Beta Resort", "a resort", "b"))
    return StudyItem(q, query, "Travel", brands)


# =========================================================================== design


def test_design_validation():
    d = s.StudyDesign([_item()])
    assert d.profiles == [(0.2, 0.0), (0.5, 0.0), (0.8, 0.0), (0.2, 1.0), (0.5, 1.0), (0.8, 1.0)]
    assert s.profile_bids(0.2, 1.0) == (0.2, 0.8, 1.0, 0.0)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        s.StudyDesign([_item()], shares=(0.0, 0.5))
    with pytest.raises(ValueError, match="must not repeat"):
        s.StudyDesign([_item()], shares=(0.2, 0.2))
    with pytest.raises(ValueError, match="platform_bids: -1"):
        s.StudyDesign([_item()], platform_bids=(0.0, -1.0))
    with pytest.raises(ValueError, match="greedy decoding does not depend on the seed"):
        s.StudyDesign([_item()], seeds=(0, 1))
    with pytest.raises(TypeError, match="items must be a non-empty sequence of StudyItem"):
        s.StudyDesign([])
    with pytest.raises(ValueError, match="two advertisers per query"):
        s.StudyDesign([StudyItem(0, "q", "c", _item().brands[:1])])
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
        s.StudyDesign([_item()], max_new_tokens=0)


def test_study_auctions_layout():
    d = s.StudyDesign([_item(0), _item(1, "Where to stay in Paris")], check_queries=1)
    runs = s.study_auctions(d)
    kinds = [r.kind for r in runs]
    # per query: 3 solo runs + 6 profiles x (linear, log-linear); the highest-bid rule runs where the top
    # bid is tied (lam 0.5, w 0) and, on the first query, at every profile (the check)
    assert kinds.count("solo") == 6 and kinds.count("linear") == 12 and kinds.count("log_linear") == 12
    assert kinds.count("highest_bid") == 6 + 1
    assert all(len(r.spec.prompts) == 4 and r.spec.bids[3] == 0 for r in runs)  # the judge reads, never bids
    assert all(r.spec.names[3] == "Judge" for r in runs)


# =========================================================================== the pipeline, tiny model


@pytest.fixture(scope="module")
def tiny_study(tiny_model):
    items = [_item(0), _item(1, "Where to stay in Paris for a weekend"), _item(2, "Cheap flights to Rome")]
    design = s.StudyDesign(items, max_new_tokens=6)
    result = s.run_study(design, model=tiny_model)
    return result, s.study_table(result)


def test_every_mechanism_on_every_query_and_profile(tiny_study):
    result, table = tiny_study
    assert len(table) == 3 * 6 * len(s.MECHANISMS)
    assert table.groupby(["query_id", "lam", "platform_bid"])["mechanism"].apply(
        lambda m: sorted(m) == sorted(s.MECHANISMS)).all()
    assert result.rows.rows_computed < result.rows.rows_unshared  # the engine shared rows
    numeric = table.drop(columns=["revenue_share"]).select_dtypes(include=[np.number])
    assert np.isfinite(numeric.to_numpy(dtype=float)).all()  # no NaN, except the shares in another unit


def test_metric_identities_and_payment_bounds(tiny_study):
    _, table = tiny_study
    ref = table[table["mechanism"] == "reference"]
    assert (ref[["gain_1", "gain_2", "gain", "user_loss", "kl_ref_q", "kl_q_ref", "revenue"]] == 0).all().all()
    assert (table[["kl_ref_q", "kl_q_ref", "revenue", "pay_your_bid"]] >= 0).all().all()
    comparable = table[table["money_unit"] == "bid x tokens"].dropna(subset=["revenue_share"])
    assert comparable["mechanism"].isin(["linear", "highest_bid", "rag"]).all()
    assert comparable["revenue_share"].between(0, 1 + 1e-9).all()
    # the one-segment baseline charges less than half of the first price of what it allocates (theory §4.9)
    assert (comparable.loc[comparable["mechanism"] == "rag", "revenue_share"] < 0.5).all()
    assert table.loc[table["mechanism"] == "log_linear", "revenue_share"].isna().all()
    assert (table.loc[table["mechanism"] == "log_linear", "money_unit"] == "bid x nats").all()
    # highest bid: the platform outbids both advertisers at weight 1, so nobody pays
    assert (table.loc[(table["mechanism"] == "highest_bid") & (table["platform_bid"] == 1), "revenue"] == 0).all()
    mentions = table[["mention_1", "mention_2"]]
    assert mentions[table["mechanism"] != "rag"].isin([0.0, 1.0]).all().all()  # exact matches
    assert mentions[table["mechanism"] == "rag"].stack().between(0, 1).all()  # expectations over candidates


def test_highest_bid_rule_writes_its_top_bidders_solo_text(tiny_study):
    result, _ = tiny_study
    check = s.highest_bid_check(result)
    assert len(check) == 5  # the first query's profiles with a unique top bid
    assert check["same tokens"].all() and (check["max |q - p_top|"] < 1e-6).all()


def test_gain_is_a_log_likelihood_ratio_against_the_reference_text(tiny_study):
    result, table = tiny_study
    _, _, rec = result.find(0, "solo", 0, agent=0)
    _, _, ref = result.find(0, "solo", 0, agent=2)
    expected = rec.stacked("logprob")[:, 0].mean() - ref.stacked("logprob")[:, 0].mean()
    row = table[(table["query_id"] == 0) & (table["mechanism"] == "highest_bid") & (table["lam"] == 0.8)
                & (table["platform_bid"] == 0)].iloc[0]
    assert row["gain_1"] == pytest.approx(expected)  # advertiser 1 tops (0.8, 0.2, 0): its solo text
    judge = ref.stacked("logprob")[:, 3].mean() - rec.stacked("logprob")[:, 3].mean()
    assert row["user_loss"] == pytest.approx(judge)


# =========================================================================== paired analysis, synthetic


def _synthetic(effect: float, n: int = 40, seed: int = 0) -> pd.DataFrame:
    """Two mechanisms on ``n`` queries; ``b`` exceeds ``a`` by ``effect`` plus noise per query, and
    advertiser 1's mention rises with its own share under ``a`` only."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n)
    rows = []
    for q in range(n):
        for lam in (0.2, 0.8):
            for mech, shift in (("a", 0.0), ("b", effect)):
                rows.append({"query_id": q, "mechanism": mech, "lam": lam, "platform_bid": 0.0, "seed": 0,
                             "gain": base[q] + shift + 0.1 * rng.normal(),
                             "mention_1": float(mech == "a" and lam == 0.8), "mention_2": 0.0,
                             "gain_1": 0.0, "gain_2": 0.0})
    return pd.DataFrame(rows)


def test_paired_contrasts_find_a_planted_effect_and_only_then():
    found = s.paired_contrasts(_synthetic(0.3), ["gain"], baseline="a", n_boot=500)
    assert list(found["contrast"]) == ["b - a"] and found["verdict"].iloc[0] == "higher"
    assert found["ci_low"].iloc[0] < 0.3 < found["ci_high"].iloc[0]
    none = s.paired_contrasts(_synthetic(0.0), ["gain"], baseline="a", n_boot=500)
    assert none["verdict"].iloc[0] == "indistinguishable"
    # pairing: the per-query noise (sd 1) cancels; unpaired intervals would be about 10 times wider
    assert found["ci_high"].iloc[0] - found["ci_low"].iloc[0] < 0.15
    again = s.paired_contrasts(_synthetic(0.3), ["gain"], baseline="a", n_boot=500)
    pd.testing.assert_frame_equal(found, again)  # seeded resamples
    with pytest.raises(ValueError, match="n_boot must be an integer >= 100"):
        s.paired_contrasts(_synthetic(0.3), ["gain"], n_boot=10)


def test_bid_response_reports_each_advertisers_rise():
    response, contrasts = s.bid_response(_synthetic(0.0), n_boot=500)
    one = contrasts[(contrasts["mechanism"] == "a") & (contrasts["advertiser"] == 1) & (contrasts["metric"] == "mention")]
    assert one["estimate"].iloc[0] == 1.0 and one["verdict"].iloc[0] == "higher"
    flat = contrasts[(contrasts["mechanism"] == "b") & (contrasts["advertiser"] == 1) & (contrasts["metric"] == "mention")]
    assert flat["verdict"].iloc[0] == "indistinguishable"
    # advertiser 2's own share is 1 - lam: its rows sit at own shares 0.8 and 0.2
    two = response[(response["advertiser"] == 2) & (response["metric"] == "mention")]
    assert sorted(two["own_share"].unique()) == [0.2, 0.8]
    pooled = response[(response["advertiser"] == 0) & (response["mechanism"] == "a") & (response["metric"] == "mention")]
    assert pooled.set_index("own_share")["estimate"].to_dict() == {0.2: 0.0, 0.8: 0.5}


def test_summarize_brackets_each_mean():
    out = s.summarize(_synthetic(0.3), ["gain"], n_boot=500)
    assert list(out["mechanism"]) == ["a", "b"]
    assert (out["ci_low"] <= out["estimate"]).all() and (out["estimate"] <= out["ci_high"]).all()


def test_precision_check_against_the_same_model_finds_no_gap(tiny_study, tiny_model):
    result, _ = tiny_study
    check = s.precision_check(result, tiny_model, items=2)
    assert check["gap"] < 1e-4 and check["agree"] == 1.0


def _myerson(b: float, B: float) -> float:
    return B * np.log1p(b / B) - b * B / (b + B)


def test_equal_relevance_comparison_recovers_a_planted_total_variation():
    """theory §4.9: linear share / equal-relevance share is the payment-weighted mean TV(p_i, r_{-i})."""
    tv = (0.3, 0.6)  # advertiser 1's and 2's TV to the others' aggregate, on every token
    rows, weighted, weights = [], {0.0: 0.0, 1.0: 0.0}, {0.0: 0.0, 1.0: 0.0}
    for beta in (0.0, 1.0):
        for lam in (0.2, 0.5, 0.8):
            m = (_myerson(lam, 1 - lam + beta), _myerson(1 - lam, lam + beta))  # B_{-i} includes the platform's bid
            rows.append(dict(mechanism="linear", platform_bid=beta, lam=lam, revenue_share=m[0] * tv[0] + m[1] * tv[1]))
            rows.append(dict(mechanism="rag", platform_bid=beta, lam=lam, revenue_share=0.1 + lam / 10))
            weighted[beta] += m[0] * tv[0] + m[1] * tv[1]
            weights[beta] += m[0] + m[1]
    got = s.equal_relevance_comparison(pd.DataFrame(rows)).set_index("platform_bid")
    for beta in (0.0, 1.0):
        assert got.loc[beta, "mean_tv"] == pytest.approx(weighted[beta] / weights[beta], rel=1e-12)
        assert got.loc[beta, "rag_share"] == pytest.approx(0.15)
    assert got.loc[0.0, "equal_relevance_share"] == pytest.approx(
        (2 * (_myerson(0.2, 0.8) + _myerson(0.8, 0.2)) + 2 * (0.5 * np.log(2) - 0.25)) / 3)  # about 0.185
    with pytest.raises(ValueError, match="columns"):
        s.equal_relevance_comparison(pd.DataFrame(rows).drop(columns="lam"))


def test_equal_relevance_comparison_on_the_tiny_study(tiny_study):
    _, table = tiny_study
    got = s.equal_relevance_comparison(table)
    assert list(got["platform_bid"]) == [0.0, 1.0]
    assert got["mean_tv"].between(0, 1 + 1e-9).all() and got["rag_share"].between(0, 0.5).all()
