"""The engine's mechanics on a tiny random model (built in code, seconds, no download).

Batching, context keying and forking, the KV cache, early stops, chunking, samplers, rules and
payments do not depend on what the model says, so they are tested on ``tiny_model`` (a 2-layer
Gemma 3 with a ~700-token vocabulary, :func:`llm_auction_utils.llm.models.tiny_random_model`).
The central property: :func:`run_auctions`, which computes each distinct context once and forks
rows when auctions part, gives every auction the transcript of a one-at-a-time run -- greedy and
seeded sampling token for token, distributions within 1e-4 -- and every agent's distributions
equal an uncached forward pass over its full context.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_auction_utils.llm.contexts import RowStats, common_prefix_len
from llm_auction_utils.llm.engine import AuctionSpec, run_auction, run_auctions, run_scenario
from llm_auction_utils.llm.models import TINY_MODEL, load_model
from llm_auction_utils.llm.scenarios import load_scenario
from llm_auction_utils.theory.aggregation import linear, log_linear
from llm_auction_utils.theory.payments import expected_critical_payments


def _no_nan(tr) -> None:
    numeric = tr.table.select_dtypes(include=[np.number])
    assert np.isfinite(numeric.to_numpy(dtype=float)).all()
    assert not tr.totals.isna().to_numpy().any()


def _uncached(lm, prompt: str, generated: list[int]) -> torch.Tensor:
    """Logits of one agent's full context, alone and without a cache, at the steps' positions."""
    ids = lm.tokenizer(prompt)["input_ids"]
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids + generated], device=lm.device), use_cache=False).logits[0]
    return logits[len(ids) - 1: len(ids) - 1 + len(generated)].float()


def _same_transcript(a, b, names, atol=1e-4) -> None:
    assert a.token_ids == b.token_ids
    assert a.stop_reason == b.stop_reason and a.text == b.text
    np.testing.assert_allclose(a.table["q"], b.table["q"], atol=atol)
    for name in names:
        np.testing.assert_allclose(a.table[f"p_{name}"], b.table[f"p_{name}"], atol=atol)
    for col in ("expected_payment", "realized_payment", "kl_payment"):
        if col in a.totals:
            np.testing.assert_allclose(a.totals[col], b.totals[col], rtol=1e-3, atol=1e-5)


def _prompts() -> tuple[list[str], list[str]]:
    """Two agents whose prompts disagree (two scenarios' advertisers), so greedy sweeps fork."""
    hawaii, paris = load_scenario("hawaii"), load_scenario("paris")
    return [hawaii.prompts[0] + "Fly to", paris.prompts[1] + "Stay at"], ["Alpha", "Other"]


def _mixed_sweep() -> list[AuctionSpec]:
    """A sweep that shares and forks: greedy lambda grid, sampled auctions on one seed (they share
    their draws, so they part only where the aggregates' slots differ), other rules, three
    agents, the two realizing samplers, early stops (length, stop string)."""
    prompts, names = _prompts()
    three = load_scenario("hawaii_three")
    specs = [AuctionSpec.create(prompts, [lam, 1 - lam], names=names, greedy=True, max_new_tokens=10)
             for lam in (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)]
    specs += [AuctionSpec.create(prompts, [lam, 1 - lam], names=names, seed=7, max_new_tokens=9)
              for lam in (0.3, 0.35, 0.7)]
    specs += [
        AuctionSpec.create(prompts, [1.0, 2.0], names=names, rule="log_linear", seed=7, max_new_tokens=8,
                           temperature=0.7, payments="all"),
        AuctionSpec.create(prompts, [1.0, 2.0], names=names, rule="highest_bid", greedy=True, max_new_tokens=6),
        AuctionSpec.create(three.prompts, three.bids, names=three.names, seed=3, max_new_tokens=7, top_k=20),
        AuctionSpec.create(three.prompts, [0.0, 1.0, 1.0], names=three.names, greedy=True, max_new_tokens=3),
        AuctionSpec.create(prompts, [2.0, 1.0], names=names, sampler="stable", stable_agent=0, seed=5,
                           max_new_tokens=6),
        AuctionSpec.create(prompts, [1.0, 1.0], names=names, sampler="joint", seed=5, max_new_tokens=6),
    ]
    # an auction that stops at a stop string: a piece of its own unstopped text
    probe = AuctionSpec.create(prompts, [1.0, 1.0], names=names, seed=8, max_new_tokens=12)
    text = run_auctions([probe], model=load_model(TINY_MODEL))[0].text
    stop = text[len(text) // 2:][:2]
    specs.append(AuctionSpec.create(prompts, [1.0, 1.0], names=names, seed=8, max_new_tokens=12, stop_strings=[stop]))
    return specs


# =========================================================================== forking = one at a time


@pytest.mark.parametrize("max_rows, share_prefix", [(None, True), (7, True), (3, False)])
def test_forking_sweep_equals_one_auction_at_a_time(tiny_model, max_rows, share_prefix):
    specs = _mixed_sweep()
    stats = RowStats()
    together = run_auctions(specs, model=tiny_model, max_rows=max_rows, share_prefix=share_prefix, stats=stats)
    for spec, tr in zip(specs, together):
        alone = run_auctions([spec], model=tiny_model)[0]
        _same_transcript(tr, alone, spec.names)
        _no_nan(tr)
    assert stats.max_rows <= (max_rows or 64)
    if max_rows is None:  # one chunk: the sweep really shared rows and forked them
        assert stats.forks > 0 and stats.rows_computed < stats.rows_unshared
        assert stats.prefill_rows < stats.prefill_rows_unshared
    assert {tr.stop_reason for tr in together} >= {"max_new_tokens", "stop_string"}


def test_every_agent_reads_its_own_context_after_forks(tiny_model):
    """Each agent's distributions at every step == an uncached forward of its prompt + the
    auction's tokens so far, alone (so a forked row's cache holds exactly its context)."""
    specs = _mixed_sweep()
    seen: dict[int, list[torch.Tensor]] = {}
    stats = RowStats()
    trs = run_auctions(specs, model=tiny_model, stats=stats,
                       on_step=lambda s: seen.setdefault(s.auction, []).append(s.logprobs.clone()))
    assert stats.forks > 0
    for k, (spec, tr) in enumerate(zip(specs, trs)):
        temperature = spec.options.temperature
        for i, prompt in enumerate(spec.prompts):
            ref = torch.log_softmax(_uncached(tiny_model, prompt, list(tr.token_ids)).double() / temperature, -1)
            got = torch.stack([lp[i] for lp in seen[k]]).double()
            assert float((got.exp() - ref.exp()).abs().max()) <= 1e-4, (k, i)


def test_identical_auctions_share_every_row(tiny_model):
    """P copies of one sampled auction: one prefill row per distinct prompt and one row per
    context and step, P times fewer rows than a loop over every auction's agents."""
    prompts, names = _prompts()
    spec = AuctionSpec.create(prompts, [1.0, 1.0], names=names, seed=11, max_new_tokens=8)
    one, many = RowStats(), RowStats()
    (alone,) = run_auctions([spec], model=tiny_model, stats=one)
    copies = run_auctions([spec] * 5, model=tiny_model, stats=many)
    assert all(tr.token_ids == alone.token_ids for tr in copies)
    assert many.rows_computed == one.rows_computed and many.rows_unshared == 5 * one.rows_unshared
    assert many.prefill_rows == 2 and many.forks == 0 and many.passes == one.passes == alone.n_tokens


def test_one_prompt_for_every_agent_is_one_row(tiny_model):
    """Agents with the same prompt (and model) have the same context: one row serves them all."""
    prompt = load_scenario("hawaii").prompts[0]
    stats = RowStats()
    tr = run_auction([prompt, prompt, prompt], [1.0, 2.0, 3.0], model=tiny_model, seed=1, max_new_tokens=5)
    (batched,) = run_auctions([AuctionSpec.create([prompt] * 3, [1.0, 2.0, 3.0], seed=1, max_new_tokens=5)],
                              model=tiny_model, stats=stats)
    assert batched.token_ids == tr.token_ids
    assert stats.rows_computed == stats.passes and stats.rows_unshared == 3 * stats.passes
    np.testing.assert_allclose(tr.table["p_agent0"], tr.table["q"], atol=1e-6)  # every agent is q


def test_common_prefix_len_leaves_a_suffix():
    assert common_prefix_len([[1, 2, 3], [1, 2, 4]]) == 2
    assert common_prefix_len([[1, 2, 3], [1, 2, 3]]) == 2  # identical prompts: one token stays for the prefill
    assert common_prefix_len([[5], [5, 6]]) == 0
    assert common_prefix_len([[1, 2], [3, 4]]) == 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.sampled_from([None, 0, 1]), st.integers(1, 6),
                          st.sampled_from(["linear", "log_linear"])), min_size=1, max_size=7),
       st.integers(2, 20))
def test_random_sweeps_equal_one_at_a_time(tiny_model, auctions, max_rows):
    """Any mix of bid shares, greedy or seeded sampling, lengths and rules: batched with forks ==
    one at a time, also in chunks of at most ``max_rows`` rows."""
    prompts, names = _prompts()
    specs = [AuctionSpec.create(prompts, [lam, 1 - lam] if 0 < lam < 1 else [1.0, 1.0], names=names,
                                greedy=seed is None, seed=seed, max_new_tokens=t, rule=rule, payments=False)
             for lam, seed, t, rule in auctions]
    stats = RowStats()
    together = run_auctions(specs, model=tiny_model, max_rows=max_rows, stats=stats)
    assert stats.max_rows <= max_rows
    for spec, tr in zip(specs, together):
        _same_transcript(tr, run_auctions([spec], model=tiny_model)[0], names)


def test_agents_over_two_models_fork_per_model(tiny_model, tiny_model_b):
    """Agents over two models (one tokenizer): each model keys its own rows; the sweep equals one
    auction at a time and each agent reads its own model's context."""
    prompts, names = _prompts()
    specs = [AuctionSpec.create(prompts, [lam, 1 - lam], names=names, seed=4, max_new_tokens=6)
             for lam in (0.2, 0.5, 0.8)]
    models = [tiny_model, tiny_model_b]
    seen: dict[int, list[torch.Tensor]] = {}
    stats = RowStats()
    trs = run_auctions(specs, model=models, stats=stats,
                       on_step=lambda s: seen.setdefault(s.auction, []).append(s.dists.clone()))
    for k, (spec, tr) in enumerate(zip(specs, trs)):
        _same_transcript(tr, run_auctions([spec], model=models)[0], names)
        for i, lm in enumerate(models):
            ref = torch.softmax(_uncached(lm, prompts[i], list(tr.token_ids)).double(), -1)
            got = torch.stack([d[i] for d in seen[k]]).double()
            assert float((got - ref).abs().max()) <= 1e-4
    assert stats.prefill_rows == 2  # one prompt per model


def test_run_auctions_refuses_bad_stats_and_rows(tiny_model):
    prompts, names = _prompts()
    spec = AuctionSpec.create(prompts, [1.0, 1.0], names=names, max_new_tokens=2)
    with pytest.raises(TypeError, match="stats must be a RowStats"):
        run_auctions([spec], model=tiny_model, stats={})
    with pytest.raises(ValueError, match="max_rows must be positive"):
        run_auctions([spec], model=tiny_model, max_rows=0)
    with pytest.raises(TypeError, match="max_rows must be an integer"):
        run_auctions([spec], model=tiny_model, max_rows=2.5)


# =========================================================================== distributions, rules, payments


def test_cached_batched_distributions_match_uncached_and_theory_core(tiny_model):
    """At every step: batched + KV-cached distributions == uncached forward of each agent alone
    (max abs diff <= 1e-4), the aggregate == the theory core on them, payments == theory core."""
    lm = tiny_model
    sc = load_scenario("hawaii_three")
    temperature = 0.8
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    tr = run_auction(sc.prompts, sc.bids, model=lm, names=sc.names, rule="linear", max_new_tokens=8, seed=11,
                     temperature=temperature, on_step=lambda s: seen.append((s.dists.clone(), s.aggregate.clone())))
    assert tr.n_tokens == len(seen) == 8 and tr.stop_reason == "max_new_tokens"
    gen = list(tr.token_ids)
    bids = torch.tensor(sc.bids, dtype=torch.float32)
    ref = torch.stack([torch.softmax(_uncached(lm, p, gen).double() / temperature, -1) for p in sc.prompts], dim=1)
    for t, (dists, q) in enumerate(seen):
        assert float((dists.double() - ref[t]).abs().max()) <= 1e-4, f"step {t}"
        assert float(dists.sum(-1).double().sub(1).abs().max()) <= 1e-5
        assert torch.allclose(q, linear(dists, bids), atol=1e-7, rtol=0)
    tok = torch.tensor(gen)
    p_tok = ref[torch.arange(len(gen)), :, tok].numpy()
    exp = expected_critical_payments(ref, bids.double(), "linear").payments.numpy()
    for i, a in enumerate(sc.names):
        np.testing.assert_allclose(tr.table[f"p_{a}"], p_tok[:, i], atol=1e-4)
        np.testing.assert_allclose(tr.table[f"expected_payment_{a}"], exp[:, i], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(tr.table["share_Alpha Airlines"], 2.0 / 4.5)
    np.testing.assert_allclose(tr.totals["pay_your_bid"], np.asarray(sc.bids) * tr.n_tokens)
    assert tr.table["monotone"].all()
    _no_nan(tr)


def test_log_linear_aggregate_and_flags(tiny_model):
    sc = load_scenario("hawaii_platform")
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    tr = run_auction(sc.prompts, sc.bids, model=tiny_model, names=sc.names, rule="log_linear", max_new_tokens=4,
                     seed=3, on_step=lambda s: seen.append((s.dists.clone(), s.aggregate.clone())))
    bids = torch.tensor(sc.bids)
    for dists, q in seen:
        assert torch.allclose(q, log_linear(dists, bids), atol=1e-6, rtol=0)
    flagged = ~tr.table[[f"monotone_{a}" for a in sc.names]].to_numpy()
    pays = tr.table[[f"expected_payment_{a}" for a in sc.names]].to_numpy()
    assert (pays[flagged] == 0).all() and (pays >= 0).all()  # flagged steps are not charged
    assert (tr.totals["non_monotone_steps"].to_numpy() == flagged.sum(0)).all()
    _no_nan(tr)


def test_stable_sampler_realizes_critical_bid_payments(tiny_model):
    kwargs = dict(model=tiny_model, bids=[1.0, 1.0], max_new_tokens=10, stop_strings=[], sampler="stable",
                  stable_agent="Alpha Airlines", seed=2024)
    tr = run_scenario("hawaii", **kwargs)
    assert tr.sampler == "stable" and tr.stable_agent == "Alpha Airlines"
    real, sw = tr.table["realized_payment"].to_numpy(), tr.table["switched"].to_numpy()
    assert (real >= 0).all() and (real[~sw] == 0).all()
    assert (real[sw] <= 1.0 + 1e-9).all() and (real[sw] > 0).all()  # the critical bid is below the bid
    assert tr.totals.loc["Alpha Airlines", "realized_payment"] == pytest.approx(real.sum())
    assert tr.totals.loc["Beta Resort", "realized_payment"] == 0
    assert (tr.table["q"] > 0).all()  # stable draws follow q: never a zero-probability token
    again = run_scenario("hawaii", **{**kwargs, "payments": False})  # payments draw no randomness
    assert again.token_ids == tr.token_ids
    assert (again.table["realized_payment"] == tr.table["realized_payment"]).all()
    _no_nan(tr)


def test_custom_rule_and_eos_stop(tiny_model):
    """A user rule with the AggregationRule signature plugs in; EOS stops decoding."""
    eos = tiny_model.tokenizer.eos_token_id

    def all_on_eos(dists, bids):
        q = torch.zeros(dists.shape[:-2] + dists.shape[-1:], dtype=dists.dtype, device=dists.device)
        q[..., eos] = 1.0
        return q

    tr = run_scenario("hawaii", model=tiny_model, rule=all_on_eos, max_new_tokens=5, seed=0)
    assert tr.stop_reason == "eos" and tr.token_ids == (eos,) and tr.text == ""
    assert tr.rule == "all_on_eos" and tr.table["q"].iloc[0] == 1.0
    assert tr.table["monotone"].all() and np.allclose(tr.totals["expected_payment"], 0)

    def broken(dists, bids):
        return torch.full(dists.shape[-1:], float("nan"))

    with pytest.raises(ValueError, match="invalid distribution"):
        run_scenario("hawaii", model=tiny_model, rule=broken, max_new_tokens=2)


def test_engine_kl_payments_and_joint_sampler(tiny_model):
    sc = load_scenario("hawaii")
    tr = run_auction(sc.prompts, [1.0, 2.0], model=tiny_model, names=sc.names, rule="log_linear", payments="all",
                     greedy=True, max_new_tokens=3)
    for a in sc.names:
        assert (tr.table[f"kl_payment_{a}"] >= 0).all() and (tr.table[f"kl_allocation_{a}"] >= -1e-6).all()
    with pytest.raises(ValueError, match="defined for the log_linear rule"):
        run_auction(sc.prompts, [1.0, 2.0], model=tiny_model, payments="kl")
    joint = run_auction(sc.prompts, [1.0, 2.0], model=tiny_model, names=sc.names, sampler="joint", seed=4,
                        max_new_tokens=8)
    real = joint.table[[f"realized_payment_{a}" for a in sc.names]].to_numpy()
    sw = joint.table[[f"switched_{a}" for a in sc.names]].to_numpy()
    assert ((real > 0) == sw).all() and not sw.all(axis=1).any()
    assert (real[:, 0] <= 1.0 + 1e-9).all() and (real[:, 1] <= 2.0 + 1e-9).all()
    with pytest.raises(ValueError, match="two agents"):
        three = load_scenario("hawaii_three")
        run_auction(three.prompts, three.bids, model=tiny_model, sampler="joint")
    _no_nan(tr)
    _no_nan(joint)


def test_prompts_of_very_different_lengths_are_prefilled_in_buckets_exactly(tiny_model):
    """A long prompt next to short ones: the prefill runs in length buckets whose caches are joined
    by padding; every agent still reads exactly its own context (uncached forward, alone)."""
    from llm_auction_utils.llm.contexts import length_buckets

    hawaii = load_scenario("hawaii")
    short = [hawaii.prompts[0], hawaii.prompts[1]]
    long = [p + "Query: " + " and ".join(["a long question about flights"] * 12) + "\nAd:\n" for p in short]
    lengths = [len(tiny_model.tokenizer(p)["input_ids"]) for p in short + long]
    assert max(lengths) < 512 and len(length_buckets([n - 200 for n in lengths])) > 1
    specs = [AuctionSpec.create(short, [1.0, 1.0], seed=1, max_new_tokens=5),
             AuctionSpec.create(long, [1.0, 2.0], seed=2, max_new_tokens=5),
             AuctionSpec.create([short[0], long[1]], [2.0, 1.0], seed=3, max_new_tokens=5)]
    seen: dict[int, list[torch.Tensor]] = {}
    trs = run_auctions(specs, model=tiny_model, on_step=lambda s: seen.setdefault(s.auction, []).append(s.dists.clone()))
    for k, (spec, tr) in enumerate(zip(specs, trs)):
        _same_transcript(tr, run_auctions([spec], model=tiny_model)[0], spec.names)
        for i, prompt in enumerate(spec.prompts):
            ref = torch.softmax(_uncached(tiny_model, prompt, list(tr.token_ids)).double(), -1)
            assert float((torch.stack([d[i] for d in seen[k]]).double() - ref).abs().max()) <= 1e-4, (k, i)


def test_length_buckets_cover_every_row_once():
    from llm_auction_utils.llm.contexts import length_buckets

    for lengths in ([5], [10, 10, 10], [3, 200, 4, 5, 190, 60], list(range(1, 300, 7))):
        buckets = length_buckets(lengths)
        assert sorted(j for b in buckets for j in b) == list(range(len(lengths)))
        longest = [max(lengths[j] for j in b) for b in buckets]
        assert longest == sorted(longest)  # buckets by length
        padded = sum(len(b) * m for b, m in zip(buckets, longest)) + 64 * len(buckets)
        assert padded <= len(lengths) * max(lengths) + 64  # never worse than one batch


# =========================================================================== half precision on a CPU


def test_grouped_attention_equals_sdpa_in_float32_with_padding(tiny_model):
    """The half-precision attention (registered for bfloat16 models on a CPU) computes the same
    attention as ``transformers``' sdpa: run in float32 on padded rows, the logits agree."""
    from llm_auction_utils.llm.models import HALF_PRECISION_ATTENTION, _half_precision_on_cpu, tiny_random_model

    lm = tiny_random_model(seed=2)
    hawaii = load_scenario("hawaii")
    enc = lm.tokenizer([hawaii.prompts[0], hawaii.prompts[1][:200]], return_tensors="pt", padding=True)
    with torch.inference_mode():
        reference = lm.model(**enc).logits
        _half_precision_on_cpu(lm.model)
        assert lm.model.config._attn_implementation == HALF_PRECISION_ATTENTION
        grouped = lm.model(**enc).logits
    real = enc["attention_mask"].bool()
    assert float((grouped - reference)[real].abs().max()) < 1e-4


def test_bfloat16_on_a_cpu_runs_the_engine():
    """A bfloat16 model on the CPU attends in the grouped way, and the engine's distributions stay
    valid (float32 after the model; no NaN)."""
    from llm_auction_utils.llm.models import HALF_PRECISION_ATTENTION, tiny_random_model

    lm = tiny_random_model(dtype="bfloat16")
    assert lm.dtype == torch.bfloat16 and lm.model.config._attn_implementation == HALF_PRECISION_ATTENTION
    prompts, names = _prompts()
    seen: list[torch.Tensor] = []
    tr = run_auction(prompts, [1.0, 1.0], model=lm, names=names, seed=0, max_new_tokens=5,
                     on_step=lambda s: seen.append(s.dists.clone()))
    assert tr.n_tokens == 5 and all(d.dtype == torch.float32 for d in seen)
    assert all(float((d.sum(-1) - 1).abs().max()) < 1e-5 for d in seen)
    _no_nan(tr)


def test_auto_dtype_takes_bfloat16_only_where_the_device_computes_it(monkeypatch):
    from llm_auction_utils.llm.models import resolve_dtype

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert resolve_dtype("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("float32", "cpu") == torch.float32
    with pytest.raises(ValueError, match="'auto'"):
        resolve_dtype("half-ish")
