"""Benchmark the theory core: monotonicity-checker throughput and aggregation at V = 262,144.

Run:  python benchmarks/bench_monotonicity.py [--n-instances N] [--vocab-size V] ...

Prints the checker's random-instance throughput (n agents, V tokens, batched
evaluation; the adversarial search timed separately), and the time of one
linear / log-linear aggregation and one all-agents critical-payment step at a
large vocabulary, against a Python loop over the vocabulary on a slice to show
the rules are vectorized.  Last line: ``monotonicity_instances_per_second=<number>``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from llm_auction_utils import check_monotonicity, linear, log_linear
from llm_auction_utils.theory.payments import expected_critical_payments


def _times(fn, repeats: int) -> np.ndarray:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return np.array(out)


def _best_of(fn, repeats: int) -> float:
    return float(_times(fn, repeats).min())


def _fmt(ts: np.ndarray) -> str:
    return f"best {ts.min() * 1e3:8.2f} ms, median {np.median(ts) * 1e3:8.2f} ms"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-instances", type=int, default=100_000, help="random instances for the checker")
    ap.add_argument("--n-agents", type=int, default=3)
    ap.add_argument("--vocab-size", type=int, default=50, help="V for the checker")
    ap.add_argument("--large-vocab", type=int, default=262_144, help="V for the aggregation timing")
    ap.add_argument("--loop-slice", type=int, default=2_000, help="tokens for the per-token Python-loop baseline")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, numpy {np.__version__}")

    # -- checker throughput (random instances only, then adversarial search alone) --
    check_monotonicity(linear, n_agents=args.n_agents, vocab_size=args.vocab_size, n_instances=1000, adversarial=False)
    rates = {}
    for name, rule in (("linear", linear), ("log_linear", log_linear)):
        t = time.perf_counter()
        rep = check_monotonicity(
            rule, n_agents=args.n_agents, vocab_size=args.vocab_size, n_instances=args.n_instances,
            seed=args.seed, adversarial=False,
        )
        dt = time.perf_counter() - t
        rates[name] = rep.n_checked / dt
        print(
            f"check_monotonicity({name}, n={args.n_agents}, V={args.vocab_size}): {rep.n_checked} instances "
            f"in {dt:.3f} s = {rates[name]:,.0f} instances/s; monotone={rep.is_monotone}, "
            f"violations={rep.n_violations}"
        )
        t = time.perf_counter()
        rep = check_monotonicity(
            rule, n_agents=args.n_agents, vocab_size=args.vocab_size, n_instances=0, seed=args.seed,
            n_restarts=32, n_steps=200,
        )
        dt = time.perf_counter() - t
        print(f"  adversarial search alone: {rep.n_adversarial} rule evaluations in {dt:.3f} s; monotone={rep.is_monotone}")

    # -- aggregation at a large vocabulary --
    V = args.large_vocab
    rng = np.random.default_rng(args.seed)
    d64 = rng.dirichlet(np.ones(V), size=args.n_agents)
    bids = rng.exponential(size=args.n_agents) + 0.1
    cases = {
        "numpy float64": (d64, bids),
        "torch float32": (torch.tensor(d64, dtype=torch.float32), torch.tensor(bids, dtype=torch.float32)),
    }
    for label, (d, b) in cases.items():
        for rule in (linear, log_linear):
            rule(d, b)
            ts = _times(lambda: rule(d, b), args.repeats)
            print(f"{rule.__name__:>10} ({label}, n={args.n_agents}, V={V}): {_fmt(ts)} per step")
        ts = _times(lambda: expected_critical_payments(d, b), args.repeats)
        print(f"payments linear     ({label}, closed form, all agents): {_fmt(ts)} per step")
        ts = _times(lambda: expected_critical_payments(d, b, "log_linear"), max(2, args.repeats // 4))
        print(f"payments log_linear ({label}, 17-point bid grid, all agents): {_fmt(ts)} per step")

    # per-token Python loop baseline on a slice, extrapolated to V
    k = min(args.loop_slice, V)
    lam = bids / bids.sum()

    def loop() -> None:
        out = np.empty(k)
        for t in range(k):
            out[t] = sum(lam[i] * d64[i, t] for i in range(args.n_agents))

    dt_loop = _best_of(loop, 2) * V / k
    dt_vec = _best_of(lambda: linear(d64, bids), args.repeats)
    print(
        f"python loop over the vocabulary (extrapolated from {k} tokens): {dt_loop * 1e3:.1f} ms; "
        f"vectorized linear is {dt_loop / dt_vec:,.0f}x faster"
    )
    print(f"monotonicity_instances_per_second={rates['linear']:.0f}")


if __name__ == "__main__":
    main()
