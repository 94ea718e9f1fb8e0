"""Command line: run one scenario file and print the creative and the payment table.

Usage::

    llm-auction data/scenarios/hawaii.yaml --bids 2 1 --greedy
    llm-auction hawaii --bids 1 0 --bids 1 1 --bids 0 1 --greedy      # three auctions, one batched pass
    python -m llm_auction_utils.llm.cli hawaii --rule log_linear --seed 7 --max-new-tokens 24

``SCENARIO`` is a YAML path or the name of a file in ``data/scenarios``.  Bad
arguments print one line ``llm-auction: error: ...`` and exit with status 2;
errors while running (bad scenario, unknown model) exit with status 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn, Sequence

import pandas as pd

__all__ = ["build_parser", "main"]


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _bid(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bids must be numbers, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"bids must be finite and >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``llm-auction`` argument parser."""
    p = _OneLineParser(
        prog="llm-auction",
        description="Run a token auction (Duetting et al., WWW 2024) on one scenario file and print "
        "the creative and its payments.",
    )
    p.add_argument("scenario", help="scenario YAML file, or the name of one in data/scenarios")
    p.add_argument("--rule", choices=["linear", "log_linear"], help="aggregation rule (default: the scenario's)")
    p.add_argument("--bids", type=_bid, nargs="+", metavar="BID", action="append",
                   help="one bid per agent, in the scenario's order (default: the scenario's); repeat the "
                        "option for several auctions, run together in one batched pass")
    p.add_argument("--max-new-tokens", type=_positive_int, help="at most this many tokens (default: the scenario's)")
    p.add_argument("--seed", type=int, help="random seed (default: fresh, printed)")
    p.add_argument("--greedy", action="store_true", help="argmax of the aggregate instead of sampling")
    p.add_argument("--temperature", type=float, default=1.0, help="temperature of each agent's distribution")
    p.add_argument("--top-k", type=_positive_int, help="truncate the aggregate to its k most probable tokens")
    p.add_argument("--top-p", type=float, help="nucleus truncation of the aggregate")
    p.add_argument("--stable-agent", metavar="NAME",
                   help="use the stable sampler for this agent and report its realized payment")
    p.add_argument("--payments", choices=["critical", "kl", "all", "none"], default="critical",
                   help="payment model: expected critical-bid payments, KL-preference payments (log-linear), both, none")
    p.add_argument("--model", help="model name or path (default: the scenario's, else gemma-3-270m)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``llm-auction`` / ``python -m llm_auction_utils.llm.cli``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seed is not None and args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if not args.temperature > 0:
        parser.error(f"--temperature must be > 0, got {args.temperature}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        parser.error(f"--top-p must lie in (0, 1], got {args.top_p}")
    if args.stable_agent and (args.greedy or args.top_k or args.top_p):
        parser.error("--stable-agent excludes --greedy, --top-k and --top-p")

    # imported here, not at the top: argument errors are reported without loading torch and transformers
    from .engine import run_scenario_sweep
    from .models import DEFAULT_MODEL, ModelLoadError, load_model
    from .scenarios import ScenarioError, load_scenario

    try:
        sc = load_scenario(args.scenario)
        for bids in args.bids or []:
            if len(bids) != len(sc.agents):
                parser.error(f"--bids: {len(bids)} bids given for {len(sc.agents)} agents {sc.names}")
        if args.stable_agent and args.stable_agent not in sc.names:
            parser.error(f"--stable-agent {args.stable_agent!r} is not one of {sc.names}")
        lm = load_model(args.model or sc.model or DEFAULT_MODEL, device=args.device, dtype=args.dtype)
        transcripts = run_scenario_sweep(
            sc, args.bids or [None], model=lm, rule=args.rule, max_new_tokens=args.max_new_tokens, seed=args.seed,
            greedy=args.greedy, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
            sampler="stable" if args.stable_agent else "standard", stable_agent=args.stable_agent,
            payments=args.payments,
        )
    except (ScenarioError, ModelLoadError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"llm-auction: error: {exc}", file=sys.stderr)
        return 1
    print(f"scenario {sc.name!r} ({sc.source}); query: {sc.query}")
    for k, tr in enumerate(transcripts):
        if len(transcripts) > 1:
            print(f"\n=== auction {k + 1} of {len(transcripts)}")
        _print_transcript(tr, lm)
    return 0


def _print_transcript(tr: Any, lm: Any) -> None:
    bids = ", ".join(f"{a}={b:g}" for a, b in zip(tr.agents, tr.bids))
    mode = "greedy" if tr.greedy else f"sampled, seed {tr.seed}"
    print(f"model {lm.name} on {lm.device}; rule {tr.rule}; bids {bids}; {mode}")
    print(f"\ncreative ({tr.n_tokens} tokens, stopped by {tr.stop_reason}):\n  {tr.text}\n")
    table = tr.payment_table().copy()
    table["token"] = table["token"].map(repr)
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.float_format", "{:.4f}".format):
        print("payments per token (expected critical-bid payments; flagged steps are not charged):")
        print(table.to_string(index=False))
        print("\ntotals per agent:")
        print(tr.totals.to_string())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
