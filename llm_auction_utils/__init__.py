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

# where the names a notebook imports are found, in this order (each module lists its own in __all__)
_LAYERS = ("theory", "llm", "workbook.notebook", "workbook.parameters", "workbook.plotting")
_SUBPACKAGES = {"theory", "llm", "workbook", "files"}


def _public_names() -> list[str]:
    names: set[str] = set()
    for layer in _LAYERS:
        names.update(importlib.import_module(f"{__name__}.{layer}").__all__)
    return sorted(names)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "__all__":
        return _public_names() + ["__version__"]
    if not name.startswith("_"):
        for layer in _LAYERS:
            module = importlib.import_module(f"{__name__}.{layer}")
            if name in module.__all__:
                value = getattr(module, name)
                globals()[name] = value
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_public_names()) | _SUBPACKAGES)
