"""The LLM side: models, the auction loop, transcripts, scenarios and the influence recorders.

Imports the theory layer, never the workbook plumbing.  Names are imported on first use, so
that ``python -m llm_auction_utils.llm.models`` and the command line start quickly.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AuctionSpec": "engine", "DecodingOptions": "engine", "run_auction": "engine", "run_auctions": "engine",
    "run_scenario": "engine", "run_scenario_sweep": "engine", "RowStats": "contexts",
    "BidPathRecorder": "influence", "DivergenceRecorder": "influence", "OthersTVRecorder": "influence",
    "token_influence": "influence", "top_k_buckets": "influence",
    "DEFAULT_MODEL": "models", "LoadedModel": "models", "ModelLoadError": "models", "load_model": "models",
    "TINY_MODEL": "models", "tiny_random_model": "models",
    "Scenario": "scenarios", "ScenarioError": "scenarios", "load_scenario": "scenarios",
    "names_every_brand": "scenarios", "one_generic_phrase": "scenarios", "without_query_lines": "scenarios",
    "StepInfo": "transcript", "Transcript": "transcript",
    "GEMBENCH_VERSION": "gembench", "REFERENCE_NAME": "gembench", "load_study": "gembench",
    "study_scenario": "gembench",
    "JUDGE_NAME": "gembench", "balanced_order": "gembench", "judge_prompt": "gembench",
    "near_duplicates": "gembench", "selection_summary": "gembench", "load_products": "gembench",
    "load_queries": "gembench", "locate_gembench_files": "gembench",
    "mentions": "mechanisms", "rag_allocation": "mechanisms", "rag_closed_form": "mechanisms",
    "rag_payments": "mechanisms", "score_tokens": "mechanisms",
    "MECHANISMS": "study", "MONEY_UNITS": "study", "PAYMENT_RULES": "study", "StudyDesign": "study",
    "bid_response": "study", "equal_relevance_comparison": "study", "highest_bid_check": "study", "paired_contrasts": "study", "precision_check": "study", "run_study": "study",
    "study_table": "study", "summarize": "study",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
