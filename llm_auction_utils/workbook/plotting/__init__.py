"""Plotting helpers of the notebooks, one module per topic; every figure of a notebook is drawn
by a function here, so the notebooks keep only the call (theory chapter notation).

- :mod:`.simplex` -- the 3-token simplex in barycentric coordinates (notebook 02);
- :mod:`.auction`, :mod:`.incentives`, :mod:`.payments`, :mod:`.kl`, :mod:`.creatives`,
  :mod:`.llm_payments`, :mod:`.agents`, :mod:`.comparison` -- the figures of notebooks 00-01, 03,
  04, 05, 06, 07, 08 and 09.
"""

from __future__ import annotations

from .agents import *  # noqa: F401,F403
from .auction import *  # noqa: F401,F403
from .comparison import *  # noqa: F401,F403
from .creatives import *  # noqa: F401,F403
from .incentives import *  # noqa: F401,F403
from .kl import *  # noqa: F401,F403
from .llm_payments import *  # noqa: F401,F403
from .payments import *  # noqa: F401,F403
from .simplex import *  # noqa: F401,F403
from . import agents, auction, comparison, creatives, incentives, kl, llm_payments, payments, simplex

__all__ = sorted(
    set(agents.__all__) | set(auction.__all__) | set(comparison.__all__) | set(creatives.__all__)
    | set(incentives.__all__) | set(kl.__all__) | set(llm_payments.__all__) | set(payments.__all__)
    | set(simplex.__all__)
)
