"""Token auctions for LLM-generated content: a research workbook's helper package.

Implements the mechanism of Duetting, Mirrokni, Paes Leme, Xu and Zuo, "Mechanism Design
for Large Language Models" (WWW 2024): agents are LLMs, each bids one number, and an
auction aggregates their next-token distributions token by token and charges payments.
The theory it implements is written up in the repository's ``notebooks/theory.md``.

Three layers, one folder each; dependencies point one way (a test keeps it so):

- :mod:`llm_auction_utils.theory` -- the paper's mathematics (aggregation, preferences,
  monotonicity, incentives, payments, sampling, divergences); numpy and torch arrays in,
  no model and no files;
- :mod:`llm_auction_utils.llm` -- models, the auction loop, transcripts, scenarios and the
  influence recorders; imports ``theory``;
- :mod:`llm_auction_utils.workbook` -- notebook plumbing (set-up, figures, records,
  parameter checks, plotting) and the papermill runner and batch runs.

:mod:`llm_auction_utils.files` (atomic writes) serves all three.  The names the notebooks
use are re-exported here, so a notebook imports from one place::

    from llm_auction_utils import linear, run_auctions, setup_notebook

They are imported on first use, so ``import llm_auction_utils`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS: dict[str, str] = {
    # theory
    **{name: "theory" for name in (
        "RULES", "AggregationRule", "NotMonotoneError", "argmin_on_simplex", "bid_path", "bid_shares",
        "check_bid_path", "check_monotonicity", "comparable", "consistent_aggregation", "critical_payment_curve",
        "expected_critical_payment", "expected_critical_payments", "exponential_clock", "generalized_kl", "get_rule", "highest_bid",
        "kl_allocation", "kl_divergence", "kl_preference_payments", "linear", "linear_myerson_payment",
        "linear_objective", "log_linear", "log_linear_logprobs", "log_linear_objective", "myerson_payment",
        "others_linear_aggregate", "pay_your_bid", "payment_monotonicity", "preference_violation",
        "preferred_region_vertices", "random_instances", "rlhf_policy", "rule_name", "sample_token", "stable_sample",
        "stable_sample_linear", "stable_step", "strictly_prefers", "switched_mass", "tv_distance", "utility_curves",
        "verify_incentive_equivalence", "violation_amount", "weakly_prefers",
    )},
    # the LLM side
    **{name: "llm" for name in (
        "AuctionSpec", "BidPathRecorder", "DEFAULT_MODEL", "DecodingOptions", "DivergenceRecorder", "LoadedModel",
        "ModelLoadError", "OthersTVRecorder", "Scenario", "ScenarioError", "StepInfo", "Transcript", "load_model",
        "load_scenario", "run_auction", "run_auctions", "run_scenario", "run_scenario_sweep", "token_influence",
        "top_k_buckets",
    )},
    # notebook plumbing
    **{name: "workbook.notebook" for name in (
        "data_path", "figures_dir", "headless", "progress", "read_records", "record", "repo_root", "save_figure",
        "setup_notebook", "watermark",
    )},
    **{name: "workbook.parameters" for name in ("check_parameters",)},
}
# plotting helpers are found by name in these modules (each topic module lists its own in __all__)
_SEARCHED = ("workbook.plotting",)

_SUBPACKAGES = {"theory", "llm", "workbook", "files"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if not name.startswith("_"):
        for module_name in _SEARCHED:
            module = importlib.import_module(f"{__name__}.{module_name}")
            if name in getattr(module, "__all__", ()):
                value = getattr(module, name)
                globals()[name] = value
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _SUBPACKAGES)


__all__ = sorted(_EXPORTS) + ["__version__"]
