"""Benchmark of the auction decoder against the practical limit and a naive loop.

For n = 2, 3, 4 agents (prompts of the Hawaii scenarios, equal bids, linear
rule, seeded sampling, expected critical-bid payments on) and ``--tokens`` new
tokens, in one run on one model:

- ``auction``: :func:`llm_auction_utils.llm.engine.run_auction` -- one batched,
  KV-cached forward pass per step, aggregation and payments in torch;
- ``generate``: Hugging Face ``model.generate`` on the same n prompts, batched,
  left-padded, with cache, greedy, ``min_new_tokens = max_new_tokens`` (no
  auction at all: the practical limit of the forward passes);
- ``naive``: per step, re-run every agent's full context on its own without a
  cache (``use_cache=False``; only the last position's logits are projected,
  which favours the naive loop), then the same aggregation, payments and
  sampling.  Over the first ``--naive-tokens`` tokens (default: all; its cost
  per token grows with the context, so stopping early *understates* it).

Per-token time is the *median decode-step time*: a timestamp is taken after
every step (the auction's ``on_step`` callback, a ``StoppingCriteria`` inside
``generate``, the naive loop's own), and the median of the differences is
taken, then the minimum over ``--repeats``.  Prefill is excluded for both.
The median is robust to bursts of load from other processes on a shared
machine; the mean (wall time / tokens, prefill included) is printed as well.

Reported per n: seconds per token of each, ``auction / generate``,
``naive / auction``, the share of an auction step spent in softmax +
aggregation + payments and in everything besides the forward pass, and the
peak memory of each phase (peak RSS on CPU, reset between phases through
``/proc/self/clear_refs``; ``torch.cuda.max_memory_allocated`` on GPU).  The
LAST line is ``ratio_vs_hf_generate=<max over n of auction/generate>``.
Goals: ratio <= 1.15, naive >= 3x slower than the auction, aggregation and
payments <= 5% of a step.

Usage::

    python benchmarks/bench_decoding.py [--model gemma-3-270m] [--device auto] [--dtype float32]
        [--tokens 64] [--agents 2,3,4] [--repeats 2] [--naive-tokens N]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from typing import Any

import numpy as np
import torch

from _common import PeakMemory, sync
from llm_auction_utils import (
    DEFAULT_MODEL,
    LoadedModel,
    expected_critical_payments,
    get_rule,
    load_model,
    load_scenario,
    run_auction,
    sample_token,
)
from llm_auction_utils.llm.engine import next_token_distributions


# --------------------------------------------------------------------------- memory


# --------------------------------------------------------------------------- the three decoders


class _Stamps:
    """Timestamps after each decoding step; ``sync`` first on GPU so they mean completed work."""

    def __init__(self, device: torch.device):
        self.device = device
        self.t: list[float] = []

    def stamp(self) -> None:
        sync(self.device)
        self.t.append(time.perf_counter())

    def median_step(self) -> float:
        return float(np.median(np.diff(self.t)))


class _StampingCriteria:
    """A ``generate`` stopping criterion that never stops and stamps every step."""

    def __init__(self, stamps: _Stamps):
        self.stamps = stamps

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.stamps.stamp()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def time_auction(lm: LoadedModel, prompts: list[str], bids: list[float], tokens: int, seed: int,
                 profile: bool) -> tuple[float, float, Any]:
    """(median step seconds, mean seconds per token incl. prefill, transcript)."""
    stamps = _Stamps(lm.device)
    sync(lm.device)
    t0 = time.perf_counter()
    tr = run_auction(prompts, bids, model=lm, rule="linear", max_new_tokens=tokens, seed=seed, profile=profile,
                     on_step=lambda info: stamps.stamp())
    sync(lm.device)
    return stamps.median_step(), (time.perf_counter() - t0) / tr.n_tokens, tr


def time_generate(lm: LoadedModel, prompts: list[str], tokens: int) -> tuple[float, float]:
    """(median step seconds, mean seconds per token incl. prefill) of batched greedy ``generate``."""
    from transformers import StoppingCriteriaList

    batch = lm.tokenizer(prompts, return_tensors="pt", padding=True).to(lm.device)
    stamps = _Stamps(lm.device)
    sync(lm.device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = lm.model.generate(**batch, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                                pad_token_id=lm.tokenizer.pad_token_id,
                                stopping_criteria=StoppingCriteriaList([_StampingCriteria(stamps)]))
    sync(lm.device)
    assert out.shape[1] - batch["input_ids"].shape[1] == tokens
    return stamps.median_step(), (time.perf_counter() - t0) / tokens


def time_naive(lm: LoadedModel, prompts: list[str], bids: list[float], tokens: int, seed: int) -> tuple[float, float]:
    """Per step: every agent's full context through the model on its own, no cache.

    Returns (median step seconds, mean step seconds)."""
    rule = get_rule("linear")
    ctx = [lm.tokenizer(p)["input_ids"] for p in prompts]
    b = torch.tensor(bids, dtype=torch.float32, device=lm.device)
    gen = torch.Generator(device=lm.device).manual_seed(seed)
    new: list[int] = []
    stamps = _Stamps(lm.device)
    stamps.stamp()
    with torch.inference_mode():
        for _ in range(tokens):
            logits = [lm.model(input_ids=torch.tensor([c + new], device=lm.device), use_cache=False,
                               logits_to_keep=1).logits[0, -1] for c in ctx]
            dists = next_token_distributions(torch.stack(logits))
            q = rule(dists, b)
            expected_critical_payments(dists, b, rule)
            new.append(int(sample_token(q, gen)))
            stamps.stamp()
    steps = np.diff(stamps.t)
    return float(np.median(steps)), float(steps.mean())


# --------------------------------------------------------------------------- main


def _agent_prompts(n: int) -> tuple[list[str], list[str]]:
    """Up to 4 agents: the three Hawaii advertisers and the platform agent."""
    three = load_scenario("hawaii_three")
    plat = load_scenario("hawaii_platform")
    names = three.names + [plat.names[-1]]
    prompts = three.prompts + [plat.prompts[-1]]
    if not 1 <= n <= len(prompts):
        raise SystemExit(f"bench_decoding: --agents values must lie in 1..{len(prompts)}, got {n}")
    return names[:n], prompts[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--agents", default="2,3,4", help="comma-separated numbers of agents")
    ap.add_argument("--repeats", type=int, default=2, help="timed repeats (the minimum is reported)")
    ap.add_argument("--naive-tokens", type=int, default=None,
                    help="tokens for the naive loop (default: --tokens; fewer understates its cost, "
                    "which grows with the context)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        agents = [int(a) for a in args.agents.split(",") if a.strip()]
    except ValueError:
        ap.error(f"--agents must be comma-separated integers, got {args.agents!r}")
    if args.tokens <= 0 or args.repeats <= 0:
        ap.error("--tokens and --repeats must be positive")
    naive_tokens = min(args.naive_tokens or args.tokens, args.tokens)

    t0 = time.perf_counter()
    lm = load_model(args.model, device=args.device, dtype=args.dtype)
    load_s = time.perf_counter() - t0
    dev = lm.device
    print(f"# model {lm.name} ({lm.dtype}) on {dev}; loaded in {load_s:.1f} s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
          + (f", {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else ""))
    print(f"# {args.tokens} new tokens, linear rule, sampled auction with payments; per-token time = median "
          f"decode step, min over {args.repeats} repeat(s); naive over its first {naive_tokens} tokens")
    # warm-up (kernels, allocator, tokenizer caches)
    _, warm_prompts = _agent_prompts(max(agents))
    run_auction(warm_prompts, [1.0] * max(agents), model=lm, max_new_tokens=3, seed=0)
    time_generate(lm, warm_prompts, 3)

    rows = []
    for n in agents:
        names, prompts = _agent_prompts(n)
        bids = [1.0] * n
        auc, gen, auc_mean, gen_mean = [], [], [], []
        shares_ap, shares_ov = [], []
        mem_a = mem_g = float("nan")
        for r in range(args.repeats):
            with PeakMemory(dev) as m:
                med, mean, tr = time_auction(lm, prompts, bids, args.tokens, args.seed + r, profile=dev.type != "cuda")
            mem_a = m.peak_mib if r == 0 else max(mem_a, m.peak_mib)
            auc.append(med)
            auc_mean.append(mean)
            if dev.type == "cuda":  # a separate profiled run: profiling synchronizes the device
                _, _, tr = time_auction(lm, prompts, bids, args.tokens, args.seed + r, profile=True)
            tm = tr.timings
            # decoding steps only (the first step's forward time is the prefill): one entry per step each
            fwd, ap, aux = tm["forward"][1:], tm["aggregation_payments"][1:], tm["auction"][1:]
            shares_ap.append(float(np.median(ap / (fwd + aux))))
            shares_ov.append(float(np.median(aux / (fwd + aux))))
            with PeakMemory(dev) as m:
                gmed, gmean = time_generate(lm, prompts, args.tokens)
            mem_g = m.peak_mib if r == 0 else max(mem_g, m.peak_mib)
            gen.append(gmed)
            gen_mean.append(gmean)
        with PeakMemory(dev) as m:
            naive, naive_mean = time_naive(lm, prompts, bids, naive_tokens, args.seed)
        mem_n = m.peak_mib
        a, g = min(auc), min(gen)
        rows.append(dict(n=n, auction=a, generate=g, ratio=a / g, naive=naive, naive_x=naive / a,
                         agg_pay=float(np.median(shares_ap)), overhead=float(np.median(shares_ov)),
                         mem_a=mem_a, mem_g=mem_g, mem_n=mem_n, tokens=tr.n_tokens))
        print(f"# n={n}: median step auction {[round(x, 4) for x in auc]}, generate {[round(x, 4) for x in gen]}, "
              f"naive {naive:.4f} s; mean per token (prefill incl.) auction {[round(x, 4) for x in auc_mean]}, "
              f"generate {[round(x, 4) for x in gen_mean]}, naive {naive_mean:.4f} s; "
              f"auction tokens {tr.n_tokens}", flush=True)

    mem_label = "peak MiB (CUDA allocated)" if dev.type == "cuda" else "peak RSS MiB"
    print()
    print(f"| n | auction s/token | generate s/token | auction/generate | naive s/token | naive/auction "
          f"| softmax+agg+payments share | non-forward share | {mem_label} auction / generate / naive |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {r['auction']:.4f} | {r['generate']:.4f} | {r['ratio']:.3f} | {r['naive']:.4f} "
              f"| {r['naive_x']:.1f}x | {100 * r['agg_pay']:.1f}% | {100 * r['overhead']:.1f}% "
              f"| {r['mem_a']:.0f} / {r['mem_g']:.0f} / {r['mem_n']:.0f} |")
    ratio = max(r["ratio"] for r in rows)
    goals = [
        f"ratio {ratio:.3f} <= 1.15: {'met' if ratio <= 1.15 else 'MISSED'}",
        f"naive >= 3x: {'met' if min(r['naive_x'] for r in rows) >= 3 else 'MISSED'}",
        f"agg+payments <= 5%: {'met' if max(r['agg_pay'] for r in rows) <= 0.05 else 'MISSED'}",
    ]
    print("# goals: " + "; ".join(goals))
    print(f"ratio_vs_hf_generate={ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
