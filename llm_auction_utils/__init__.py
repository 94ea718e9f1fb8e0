"""Token auctions for LLM-generated content: a research workbook's helper package.

Implements the mechanism of Duetting, Mirrokni, Paes Leme, Xu and Zuo,
"Mechanism Design for Large Language Models" (WWW 2024): agents are LLMs, each
bids one number, and an auction aggregates their next-token distributions token
by token and charges payments.  Modules name the concepts of the theory
(see ``THEORY.md`` of the project):

- :mod:`llm_auction_utils.aggregation`  -- aggregation rules (linear, log-linear)
- :mod:`llm_auction_utils.preferences`  -- the robust (coordinatewise) order
- :mod:`llm_auction_utils.monotonicity` -- monotonicity checks of any rule
- :mod:`llm_auction_utils.incentives`   -- consistent aggregation, payment monotonicity
- :mod:`llm_auction_utils.payments`     -- pay-your-bid, Myerson, critical-bid payments
- :mod:`llm_auction_utils.sampling`     -- stable sampling, exponential clocks
- :mod:`llm_auction_utils.divergences`  -- KL objectives behind the rules
- :mod:`llm_auction_utils.models`, :mod:`llm_auction_utils.engine` -- the LLM side
- :mod:`llm_auction_utils.influence`    -- what each agent contributes to a creative (step recorders)
- :mod:`llm_auction_utils.parameters`   -- clear errors for bad notebook parameters
- :mod:`llm_auction_utils.notebook`     -- notebook plumbing (theme, seeds, figures)

Submodules are imported on demand so that ``import llm_auction_utils`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {
    "aggregation",
    "preferences",
    "monotonicity",
    "incentives",
    "payments",
    "sampling",
    "divergences",
    "models",
    "engine",
    "scenarios",
    "notebook",
    "runner",
    "influence",
    "parameters",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_SUBMODULES) + ["__version__"]
