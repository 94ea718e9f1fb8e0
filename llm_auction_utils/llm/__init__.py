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
    "StepInfo": "transcript", "Transcript": "transcript",
    "GEMBENCH_VERSION": "gembench", "REFERENCE_NAME": "gembench", "load_study": "gembench",
    "study_scenario": "gembench",
    "MECHANISMS": "mechanisms", "PAYMENT_RULES": "mechanisms", "StudyDesign": "mechanisms",
    "bootstrap_summary": "mechanisms", "highest_bid_check": "mechanisms", "kl_payment_check": "mechanisms",
    "rag_allocation": "mechanisms", "rag_closed_form": "mechanisms", "rag_payments": "mechanisms",
    "run_study": "mechanisms", "score_tokens": "mechanisms", "study_table": "mechanisms",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
