"""Benchmark of many auctions in one batched pass (``run_auctions``) against the limits.

Setup (the issue's): the two agents of the Hawaii scenario, P = 11 bid profiles (the 0.1 grid
of lambda, Alpha's bid share), linear rule, expected critical-bid payments on, greedy, ``--tokens``
new tokens (24) for every auction (no stop string, so every method decodes the same number of
tokens).  Measured in one run, prefill included for all:

- ``sequential``: P calls of :func:`llm_auction_utils.run_auction`, one after another;
- ``run_auctions``: one :func:`llm_auction_utils.run_auctions` call, which computes each distinct
  context once (one KV-cached forward pass per step over the distinct live contexts; identical
  prompts prefilled once; rows fork when auctions part; the prompts' common prefix prefilled once);
- ``run_auctions, no shared prefix``: the same without the shared prefix (its saving);
- ``generate``: Hugging Face ``model.generate`` batched over the same P x 2 prompts (left padding,
  cache, greedy, ``min_new_tokens = max_new_tokens``): the forward passes alone, no auction, every
  row computed.

Each method runs ``--repeats`` times; the minimum wall time is kept (robust to other load).  Peak
memory per method: the RSS high-water mark on the CPU (reset between methods through
``/proc/self/clear_refs``), ``torch.cuda.max_memory_allocated`` on a GPU.  The last three lines are::

    distinct_rows=<rows run_auctions computed>/<rows a non-forking loop computes>
    sweep_ratio_vs_hf_generate=<run_auctions / generate>
    sweep_speedup=<sequential / run_auctions>

(rows: one per context and forward pass, the prefill included; the non-forking loop, like
``generate``, computes every auction's every agent).  Targets on the 2-core CPU: ratio <= 0.7,
speedup >= 6.

Usage::

    python benchmarks/bench_sweep.py [--model gemma-3-270m] [--device auto] [--dtype float32]
        [--tokens 24] [--repeats 2] [--max-rows N] [--auctions 11]

``--model tiny-random-gemma3`` runs it on the tiny random model (a smoke test of the script).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from typing import Any, Callable

import torch

from _common import PeakMemory, sync
from llm_auction_utils import DEFAULT_MODEL, AuctionSpec, RowStats, load_model, load_scenario, run_auction, run_auctions


def _timed(device: torch.device, repeats: int, work: Callable[[], Any]) -> tuple[float, float, Any]:
    """(minimum wall seconds over ``repeats``, peak MiB, the last result)."""
    best, peak, result = float("inf"), 0.0, None
    for _ in range(repeats):
        with PeakMemory(device) as mem:
            sync(device)
            t0 = time.perf_counter()
            result = work()
            sync(device)
            best = min(best, time.perf_counter() - t0)
        peak = max(peak, mem.peak_mib)
    return best, peak, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-rows", type=int, default=None, help="rows per pass of run_auctions (default: auto)")
    parser.add_argument("--auctions", type=int, default=11, help="P: the bid shares 0, 1/(P-1), ..., 1")
    args = parser.parse_args(argv)
    if args.tokens <= 0 or args.repeats <= 0 or args.auctions < 2:
        parser.error("--tokens and --repeats must be positive and --auctions at least 2")
    lambdas = [round(k / (args.auctions - 1), 6) for k in range(args.auctions)]
    lm = load_model(args.model, device=args.device, dtype=args.dtype)
    sc = load_scenario("hawaii")
    specs = [AuctionSpec.create(sc.prompts, [lam, 1.0 - lam], names=sc.names, rule="linear", greedy=True,
                                max_new_tokens=args.tokens, payments=True) for lam in lambdas]
    print(f"model {lm.name} on {lm.device} ({lm.dtype}); torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{platform.processor() or platform.machine()}")
    print(f"P = {len(specs)} auctions x 2 agents, {args.tokens} new tokens each, linear, payments on, greedy")
    run_auctions(specs[:1], model=lm)  # warm-up (allocator, kernels)

    def sequential() -> list[Any]:
        return [run_auction(s.prompts, s.bids, model=lm, names=s.names, rule="linear", greedy=True,
                            max_new_tokens=args.tokens) for s in specs]

    def batched(share: bool) -> Callable[[], list[Any]]:
        return lambda: run_auctions(specs, model=lm, max_rows=args.max_rows, share_prefix=share)

    tok = lm.tokenizer
    prompts = [p for s in specs for p in s.prompts]
    enc = tok(prompts, return_tensors="pt", padding=True).to(lm.device)

    def generate() -> torch.Tensor:
        with torch.inference_mode():
            return lm.model.generate(**enc, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False,
                                     pad_token_id=tok.pad_token_id)

    stats = RowStats()
    run_auctions(specs, model=lm, max_rows=args.max_rows, stats=stats)  # counts the rows (no timing)
    rows = {}
    for name, work in [("sequential run_auction", sequential), ("run_auctions", batched(True)),
                       ("run_auctions, no shared prefix", batched(False)), ("HF generate (batched)", generate)]:
        seconds, peak, result = _timed(lm.device, args.repeats, work)
        rows[name] = (seconds, peak, result)
        print(f"{name:<32} {seconds:8.2f} s   peak {peak:8.0f} MiB")
    seq, auc = rows["sequential run_auction"][2], rows["run_auctions"][2]
    same = all(a.token_ids == b.token_ids for a, b in zip(seq, auc))
    print(f"run_auctions gives the sequential runs' tokens: {same}")
    print(f"shared-prefix saving: {rows['run_auctions, no shared prefix'][0] / rows['run_auctions'][0]:.2f}x")
    print(f"rows per pass: at most {stats.max_rows} (max_rows {args.max_rows or 'default'}); forks {stats.forks}; "
          f"prefill rows {stats.prefill_rows} of {stats.prefill_rows_unshared}")
    print(f"distinct_rows={stats.rows_computed}/{stats.rows_unshared}")
    print(f"sweep_ratio_vs_hf_generate={rows['run_auctions'][0] / rows['HF generate (batched)'][0]:.3f}")
    print(f"sweep_speedup={rows['sequential run_auction'][0] / rows['run_auctions'][0]:.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
