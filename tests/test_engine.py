"""Tests of the auction engine, scenarios and command line.

Fast tests (no model): scenario files and their errors, input validation,
top-k / top-p truncation (hypothesis).  The engine's mechanics (batching, forking,
caching, samplers, rules, payments) are tested on a tiny random model in
``tests/test_engine_mechanics.py``.  The few tests here where the real model matters
(``@pytest.mark.model``, Gemma 3 270M on CPU, few tokens): greedy decoding reproduces
``model.generate``, a scenario's creative stops at its stop string, a real sweep
shares and forks rows, the command line.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_auction_utils.llm.engine import aggregate_top_k, aggregate_top_p, run_auction, run_scenario
from llm_auction_utils.llm.models import ModelLoadError
from llm_auction_utils.llm.scenarios import (
    ScenarioError,
    advertiser_prompt,
    list_scenarios,
    load_scenario,
    platform_prompt,
    scenario_from_dict,
)


def _no_nan(tr) -> None:
    numeric = tr.table.select_dtypes(include=[np.number])
    assert not numeric.isna().to_numpy().any()
    assert np.isfinite(numeric.to_numpy(dtype=float)).all()
    assert not tr.totals.isna().to_numpy().any()


# =========================================================================== scenarios


def test_shipped_scenarios_load_and_build_few_shot_prompts():
    names = list_scenarios()
    assert {"hawaii", "hawaii_simple", "hawaii_three", "hawaii_platform", "paris"} <= set(names)
    simple = load_scenario("hawaii_simple")
    alpha = simple.prompts[0]
    assert alpha.endswith("Ad for Alpha Airlines, an airline with direct flights to Hawaii:\n")
    assert alpha.count("Ad for ") == 3  # two examples, then the agent's own open line
    assert alpha == advertiser_prompt("Alpha Airlines", "an airline with direct flights to Hawaii", simple.examples)
    hawaii = load_scenario("hawaii")
    assert hawaii.names == ["Alpha Airlines", "Beta Resort"]
    assert hawaii.query == "Vacations in Hawaii"
    assert hawaii.stop == ("\n",)
    alpha, beta = hawaii.prompts
    assert alpha.endswith("Query: Vacations in Hawaii\nAd for Alpha Airlines, an airline with direct flights to Hawaii:\n")
    assert alpha.count("Ad for ") == 5 and alpha.count("Query: ") == 5  # four joint examples, then the open line
    # each agent names only its own kind of brand: the airline's examples fill the travel slot only
    assert "Roma Express" in alpha and "Hotel Roma" not in alpha and "a charming hotel" in alpha
    assert "Hotel Roma" in beta and "Roma Express" not in beta and "a fast train" in beta
    three = load_scenario("hawaii_three")
    assert len(three.agents) == 3 and three.bids == [2.0, 1.5, 1.0]
    assert [a.slot for a in three.agents] == ["travel", "stay", "tour"]
    plat = load_scenario("hawaii_platform")
    assert [a.role for a in plat.agents] == ["advertiser", "advertiser", "platform"]
    assert plat.prompts[-1].endswith('Ad for the search "Vacations in Hawaii":\n')
    generic = [je.generic_example() for je in plat.joint_examples]
    assert plat.prompts[-1] == platform_prompt("Vacations in Hawaii", generic, query_line="Query: {query}")
    assert "Roma Express" not in plat.prompts[-1] and "Hotel Roma" not in plat.prompts[-1]


def test_scenario_with_bids():
    sc = load_scenario("hawaii")
    assert sc.with_bids([3, 0]).bids == [3.0, 0.0]
    assert sc.with_bids({"Beta Resort": 2}).bids == [1.0, 2.0]
    with pytest.raises(ScenarioError, match="unknown agents"):
        sc.with_bids({"Gamma": 1})
    with pytest.raises(ScenarioError, match="2 agents"):
        sc.with_bids([1, 2, 3])
    with pytest.raises(ScenarioError, match="all bids are zero"):
        sc.with_bids([0, 0])
    with pytest.raises(ScenarioError, match="non-negative"):
        sc.with_bids([-1, 1])


_GOOD = {
    "name": "t",
    "query": "q",
    "advertisers": [{"name": "A", "brief": "an a", "bid": 1}, {"name": "B", "brief": "a b", "bid": 2}],
}


@pytest.mark.parametrize(
    "patch, field, message",
    [
        ({"query": None}, "query", "is missing"),
        ({"advertisers": []}, "advertisers", "non-empty list"),
        ({"advertisers": [{"name": "A", "brief": "x", "bid": "abc"}]}, "advertisers[0].bid", "non-negative number"),
        ({"advertisers": [{"name": "A", "brief": "x", "bid": -1}]}, "advertisers[0].bid", "non-negative"),
        ({"advertisers": [{"name": "A", "brief": "x"}]}, "advertisers[0].bid", "is missing"),
        ({"advertisers": [{"name": "A", "bid": 1}]}, "advertisers[0]", "exactly one of 'brief'"),
        ({"advertisers": [{"name": "A", "brief": "x", "bid": 1, "colour": 2}]}, "advertisers[0]", "unknown field"),
        ({"advertisers": [{"name": "A", "brief": "x", "bid": 0}]}, "advertisers", "all bids are zero"),
        ({"advertisers": [{"name": "A", "brief": "x", "bid": 1}, {"name": "A", "brief": "y", "bid": 1}]},
         "advertisers", "unique"),
        ({"rule": "median"}, "rule", "unknown aggregation rule"),
        ({"max_new_tokens": 0}, "max_new_tokens", "positive integer"),
        ({"stop": [""]}, "stop", "non-empty strings"),
        ({"platform": {"bid": 1}, "examples": [{"brand": "X", "about": "y", "ad": "z"}]}, "examples", "no 'query'"),
        ({"examples": [{"brand": "X", "ad": "z"}]}, "examples[0].about", "is missing"),
        ({"bids": [1, 2]}, "top level", "unknown field"),
        ({"query_line": "Query"}, "query_line", "must contain {query}"),
        ({"joint_examples": [{"query": "q", "ad": "with {x}", "slots": {"y": {"brand": "B", "about": "b", "generic": "g"}}}]},
         "joint_examples[0].ad", "placeholders"),
        ({"joint_examples": [{"query": "q", "ad": "with {x}", "slots": {"x": {"brand": "B", "about": "b"}}}]},
         "joint_examples[0].slots.x.generic", "is missing"),
        ({"joint_examples": [{"query": "q", "ad": "with {x}", "slots": {"x": {"brand": "B", "about": "b", "generic": "g"}}}],
          "advertisers": [{"name": "A", "brief": "an a", "bid": 1, "slot": "z"}]}, "advertisers[0].slot", "must name a slot"),
        ({"advertisers": [{"name": "A", "brief": "an a", "bid": 1, "slot": "x"}]}, "advertisers[0].slot",
         "only used with 'joint_examples'"),
        ({"examples": [{"brand": "X", "about": "y", "ad": "z"}],
          "joint_examples": [{"query": "q", "ad": "with {x}", "slots": {"x": {"brand": "B", "about": "b", "generic": "g"}}}]},
         "joint_examples", "not both"),
    ],
)
def test_scenario_errors_name_file_and_field(patch, field, message):
    data = {**_GOOD, **patch}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, source="bad.yaml")
    text = str(info.value)
    assert text.startswith(f"bad.yaml: {field}:"), text
    assert message in text


def test_scenario_file_errors(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nquery: [unclosed\n")
    with pytest.raises(ScenarioError, match="broken.yaml: not valid YAML"):
        load_scenario(p)
    p.write_text("")
    with pytest.raises(ScenarioError, match="broken.yaml: the file is empty"):
        load_scenario(p)
    p.write_text("name: x\nquery: q\nadvertisers:\n  - name: A\n    brief: b\n    bid: many\n")
    with pytest.raises(ScenarioError, match=r"broken.yaml: advertisers\[0\].bid"):
        load_scenario(p)
    with pytest.raises(FileNotFoundError, match="hawaii"):
        load_scenario("no_such_scenario")


# =========================================================================== validation (no model load)


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        ({"prompts": []}, ValueError, "no agents"),
        ({"prompts": ["ok", "  "]}, ValueError, "prompt of agent 1 is empty"),
        ({"prompts": "just one string"}, TypeError, "sequence of strings"),
        ({"bids": [1.0]}, ValueError, "1 bids given for 2 agents"),
        ({"bids": [1.0, float("nan")]}, ValueError, "is NaN"),
        ({"bids": [1.0, -2.0]}, ValueError, "negative"),
        ({"bids": [0, 0]}, ValueError, "all bids are zero"),
        ({"bids": [1.0, "x"]}, TypeError, "must be a number"),
        ({"bids": [1.0, float("inf")]}, ValueError, "infinite"),
        ({"max_new_tokens": 0}, ValueError, "max_new_tokens must be positive"),
        ({"max_new_tokens": -3}, ValueError, "max_new_tokens must be positive"),
        ({"max_new_tokens": 2.5}, TypeError, "max_new_tokens must be an integer"),
        ({"rule": "median"}, ValueError, "unknown aggregation rule"),
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"top_k": 0}, ValueError, "top_k"),
        ({"top_p": 1.5}, ValueError, "top_p"),
        ({"sampler": "magic"}, ValueError, "unknown sampler"),
        ({"sampler": "stable"}, ValueError, "needs stable_agent"),
        ({"sampler": "stable", "stable_agent": "zed"}, ValueError, "not one of"),
        ({"sampler": "stable", "stable_agent": 0, "greedy": True}, ValueError, "exclude each other"),
        ({"sampler": "stable", "stable_agent": 0, "top_k": 5}, ValueError, "top_k/top_p"),
        ({"stable_agent": 0}, ValueError, "only used with sampler='stable'"),
        ({"names": ["a", "a"]}, ValueError, "unique"),
        ({"stop_strings": [""]}, ValueError, "stop_strings"),
        ({"seed": -1}, ValueError, "seed"),
        ({"model": "no-such-org/no-such-model-xyz"}, ModelLoadError, "gemma-3-270m"),
    ],
)
def test_bad_input_gives_clear_errors(kwargs, exc, message):
    args = {"prompts": ["Ad for A:\n", "Ad for B:\n"], "bids": [1.0, 1.0]}
    args.update(kwargs)
    prompts, bids = args.pop("prompts"), args.pop("bids")
    with pytest.raises(exc, match=message):
        run_auction(prompts, bids, **args)


# =========================================================================== truncation


def _max0(t: torch.Tensor) -> float:
    return float(t.max()) if t.numel() else 0.0


_probs = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=2, max_size=40).filter(lambda v: sum(v) > 1e-3)


@settings(max_examples=60, deadline=None)
@given(_probs, st.integers(1, 50))
def test_top_k_keeps_the_k_largest(values, k):
    q = torch.tensor(values, dtype=torch.float64)
    q = q / q.sum()
    out = aggregate_top_k(q, k)
    assert torch.isfinite(out).all() and abs(float(out.sum()) - 1) < 1e-9
    kept = out > 0
    assert int(kept.sum()) <= min(k, int((q > 0).sum()))
    if kept.any():
        # every kept token is at least as likely as every dropped one; ratios preserved
        assert float(q[kept].min()) >= _max0(q[~kept]) - 1e-15
        ratio = out[kept] / q[kept]
        assert torch.allclose(ratio, ratio[0].expand_as(ratio))
    assert int(out.argmax()) == int(q.argmax()) or math.isclose(float(q.max()), float(q[out.argmax()]))


@settings(max_examples=60, deadline=None)
@given(_probs, st.floats(0.01, 1.0))
def test_top_p_keeps_the_smallest_nucleus(values, p):
    q = torch.tensor(values, dtype=torch.float64)
    q = q / q.sum()
    out = aggregate_top_p(q, p)
    assert torch.isfinite(out).all() and abs(float(out.sum()) - 1) < 1e-9
    kept = out > 0
    assert kept[q.argmax()]
    mass = float(q[kept].sum())
    assert mass >= min(p, 1.0) - 1e-9  # the nucleus reaches p ...
    smallest_kept = float(q[kept].min())
    assert mass - smallest_kept < p + 1e-9  # ... and is minimal: without its smallest token it would not
    assert float(q[kept].min()) >= _max0(q[~kept]) - 1e-15


def test_next_token_distributions_are_accurately_normalized():
    """Wide vocabularies: rows sum to 1 within 1e-5 in float32 and match a float64 softmax."""
    from llm_auction_utils.llm.engine import next_token_distributions

    g = torch.Generator().manual_seed(0)
    logits = 4.0 * torch.randn(3, 262_144, generator=g) - 20.0
    for temperature in (1.0, 0.7, 1.5):
        p = next_token_distributions(logits, temperature)
        assert p.dtype == torch.float32 and torch.isfinite(p).all()
        assert float((p.sum(-1) - 1).abs().max()) <= 1e-5
        ref = torch.softmax(logits.double() / temperature, -1)
        assert float((p.double() - ref).abs().max()) <= 1e-6
    with torch.no_grad():
        half = next_token_distributions(logits.to(torch.bfloat16))
    assert half.dtype == torch.float32 and float((half.sum(-1) - 1).abs().max()) <= 1e-5


def test_top_p_one_and_large_k_are_identity():
    q = torch.softmax(torch.randn(5, 100, generator=torch.Generator().manual_seed(0)), -1)
    assert torch.equal(aggregate_top_p(q, 1.0), q)
    assert torch.equal(aggregate_top_k(q, 100), q)
    batched = aggregate_top_k(q, 3)
    assert ((batched > 0).sum(-1) == 3).all()


# =========================================================================== with the real model


def _generated_positions(lm, prompt: str, generated: list[int]) -> torch.Tensor:
    """Uncached forward of one agent's full context on its own -> logits at the steps' positions."""
    ids = lm.tokenizer(prompt)["input_ids"]
    full = torch.tensor([ids + generated], device=lm.device)
    with torch.inference_mode():
        logits = lm.model(input_ids=full, use_cache=False).logits[0].float()
    return logits[len(ids) - 1 : len(ids) - 1 + len(generated)]


@pytest.mark.model
@pytest.mark.parametrize("rule", ["linear", "log_linear"])
def test_greedy_with_all_bid_share_reproduces_generate(default_model, rule):
    """One agent with the whole bid share + greedy == ``model.generate`` greedy of its prompt,
    with the other agents (longer prompts: this one is left-padded) in the batch."""
    lm = default_model
    sc = load_scenario("hawaii_three")
    lens = [len(lm.tokenizer(p)["input_ids"]) for p in sc.prompts]
    winner = int(np.argmin(lens))
    assert lens[winner] < max(lens)  # the winner's prompt gets left padding
    bids = [0.0] * 3
    bids[winner] = 1.0
    n_new = 10
    tr = run_auction(sc.prompts, bids, model=lm, names=sc.names, rule=rule, greedy=True, max_new_tokens=n_new,
                     payments=rule == "linear")  # (log-linear payments are costly; checked elsewhere)
    ids = lm.tokenizer(sc.prompts[winner], return_tensors="pt").to(lm.device)
    with torch.inference_mode():
        ref = lm.model.generate(**ids, max_new_tokens=n_new, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id)
    ref_new = ref[0, ids["input_ids"].shape[1]:].tolist()
    assert list(tr.token_ids) == ref_new[: len(tr.token_ids)]
    assert len(tr.token_ids) == len(ref_new) or tr.stop_reason == "eos"
    # the winner pays nothing (no competition) and the zero bidders pay nothing
    assert np.allclose(tr.totals["expected_payment"], 0.0)
    assert np.allclose(tr.totals.loc[sc.names[winner], "pay_your_bid"], len(tr.token_ids))
    np.testing.assert_allclose(tr.table["q"], tr.table[f"p_{sc.names[winner]}"], rtol=1e-4, atol=1e-6)
    _no_nan(tr)


@pytest.mark.model
def test_stop_string_greedy_creative_and_top_k_one(default_model):
    lm = default_model
    tr = run_scenario("hawaii", model=lm, bids=[1.0, 3.0], greedy=True, max_new_tokens=20)
    assert tr.stop_reason == "stop_string"
    assert "\n" not in tr.text and len(tr.text) > 10
    assert "\n" in tr.table["token"].iloc[-1]
    assert "".join(tr.table["token"]).startswith(tr.text)
    assert tr.table["q"].between(0, 1).all()
    # top-k = 1 sampling is greedy decoding
    tk = run_scenario("hawaii", model=lm, bids=[1.0, 3.0], top_k=1, seed=5, max_new_tokens=6, stop_strings=[])
    assert tk.token_ids == tr.token_ids[:6]
    _no_nan(tr)
    _no_nan(tk)


@pytest.mark.model
def test_cli_runs_a_scenario_file(default_model, capsys):
    from llm_auction_utils.llm.cli import main

    rc = main(["data/scenarios/hawaii.yaml", "--bids", "1", "3", "--greedy", "--max-new-tokens", "3"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "creative (3 tokens" in out and "totals per agent" in out
    assert "Alpha Airlines" in out and "expected_payment" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["hawaii", "--bids", "1", "x"], "bids must be numbers"),
        (["hawaii", "--max-new-tokens", "0"], "positive integer"),
        (["hawaii", "--rule", "median"], "invalid choice"),
        (["hawaii", "--top-p", "2"], "--top-p"),
        (["hawaii", "--stable-agent", "A", "--greedy"], "excludes"),
    ],
)
def test_cli_bad_arguments_give_one_line_errors(argv, message, capsys):
    from llm_auction_utils.llm.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("llm-auction: error:")


def test_cli_missing_scenario_and_wrong_bid_count(capsys):
    from llm_auction_utils.llm.cli import main

    assert main(["no_such_scenario"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err
    with pytest.raises(SystemExit):
        main(["hawaii", "--bids", "1", "2", "3"])
    assert "3 bids given for 2 agents" in capsys.readouterr().err


# =========================================================================== many auctions in one pass


@pytest.mark.parametrize(
    "auctions, message",
    [
        ([], "no auctions"),
        ([{"prompts": ["a", "b"], "bids": [1, 1]}, {"prompts": ["a", "b"], "bids": [0, 0]}], "auction 1: all bids are zero"),
        ([{"prompts": ["a", "b"], "bids": [1]}], "auction 0: 1 bids given for 2 agents"),
        ([{"prompts": ["a", "b"], "bids": [1, 1]}, {"prompts": ["a"], "bids": [1], "rule": "median"}],
         "auction 1: unknown aggregation rule"),
    ],
)
def test_run_auctions_bad_input_names_the_auction_before_any_model(auctions, message):
    from llm_auction_utils.llm.engine import run_auctions

    # an unloadable model proves the input is checked before any model is touched
    with pytest.raises(ValueError, match=message):
        run_auctions(auctions, model="no-such-org/no-such-model-xyz")


@pytest.mark.model
def test_a_real_sweep_shares_and_forks_rows_and_equals_one_at_a_time(default_model):
    """On the real model: a greedy sweep over the bid share computes fewer rows than it has agent
    rows, forks where the creatives part, and gives the one-at-a-time runs' creatives."""
    from llm_auction_utils.llm.contexts import RowStats
    from llm_auction_utils.llm.engine import AuctionSpec, run_auctions

    sc = load_scenario("hawaii")
    specs = [AuctionSpec.create(sc.prompts, [lam, 1 - lam], names=sc.names, greedy=True, max_new_tokens=8,
                                payments=False) for lam in (0.0, 0.5, 1.0)]
    stats = RowStats()
    together = run_auctions(specs, model=default_model, stats=stats)
    assert stats.prefill_rows == 2 and stats.forks > 0 and stats.rows_computed < stats.rows_unshared
    for spec, tr in zip(specs, together):
        alone = run_auctions([spec], model=default_model)[0]
        assert tr.token_ids == alone.token_ids
        np.testing.assert_allclose(tr.table["q"], alone.table["q"], atol=1e-4)
