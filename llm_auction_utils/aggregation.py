"""Aggregation rules: how the auction turns the agents' next-token distributions
and bids into one distribution (THEORY.md sections 1 and 5).

Shapes: ``dists`` is ``(n, V)`` or batched ``(..., n, V)`` (agents on the
second-to-last axis, vocabulary last); ``bids`` is ``(n,)`` or ``(..., n)`` and
broadcasts against the leading dimensions of ``dists``.  The result ``q`` has
shape ``(..., V)``.  numpy in gives numpy out; torch in gives torch out on the
same device and dtype (bids are moved to the device/dtype of ``dists``).
Everything is vectorized over the vocabulary and the leading dimensions, so the
rules are fast at ``V = 262,144``.

Any function with the :class:`AggregationRule` signature ``rule(dists, bids) -> q``
plugs into the checkers of :mod:`~llm_auction_utils.monotonicity`,
:mod:`~llm_auction_utils.incentives`, :mod:`~llm_auction_utils.payments` and
:mod:`~llm_auction_utils.sampling`.
"""

from __future__ import annotations

from typing import Callable, Protocol, Union, runtime_checkable

import numpy as np

from ._validation import (
    Array,
    ArrayLike,
    as_bids,
    dists_and_bids,
    to_numpy,
    xexp,
    xlog,
    xmax,
    xsum,
    xwhere,
)

__all__ = [
    "AggregationRule",
    "RULES",
    "bid_shares",
    "get_rule",
    "linear",
    "log_linear",
    "others_linear_aggregate",
    "rule_name",
]


@runtime_checkable
class AggregationRule(Protocol):
    """An aggregation function ``A(p_1..p_n; b) -> q`` (THEORY.md section 1).

    Called as ``rule(dists, bids)`` with ``dists (..., n, V)`` and
    ``bids (..., n)``; returns ``q (..., V)``, a distribution per leading index.
    The checkers call rules on batches; a user rule should broadcast over the
    leading dimensions like :func:`linear` does.
    """

    def __call__(self, dists: Array, bids: Array, /) -> Array: ...


RuleLike = Union[str, Callable[..., Array]]


def bid_shares(bids: ArrayLike) -> Array:
    """Bid shares ``lambda_i = b_i / sum_j b_j`` over the last axis (THEORY.md section 1).

    ``bids`` is ``(n,)`` or ``(..., n)``, finite, non-negative and not all zero
    along the agent axis.  Scale invariant: ``bid_shares(c * b) == bid_shares(b)``.
    """
    b = as_bids(bids)
    return b / xsum(b, axis=-1, keepdims=True)


def _shares_for(dists: ArrayLike, bids: ArrayLike, validate: bool) -> tuple[Array, Array]:
    if validate:
        d, b = dists_and_bids(dists, bids)
    else:
        d, b = dists, bids
    return d, b / xsum(b, axis=-1, keepdims=True)


def linear(dists: ArrayLike, bids: ArrayLike, *, validate: bool = True) -> Array:
    """Linear (bid-weighted average) aggregation ``q = sum_i lambda_i p_i`` (THEORY.md section 5).

    It is ``argmin_q sum_i b_i KL(p_i || q)`` and it is monotone: raising ``b_i``
    moves ``q`` along the segment toward ``p_i``.  Blog example: agents
    ``{Large: .8, Generative: .2}``, ``{Large: 1}``, ``{Generative: 1}`` with bids
    ``1, 2, 2`` give ``{Large: .56, Generative: .44}``.

    ``validate=False`` skips input checks (for callers that validated already).
    """
    d, lam = _shares_for(dists, bids, validate)
    return xsum(lam[..., :, None] * d, axis=-2)


def others_linear_aggregate(dists: ArrayLike, bids: ArrayLike, *, validate: bool = True) -> Array:
    """The others' linear aggregate ``r_i = sum_{j != i} b_j p_j / B_i``, ``B_i = sum_{j != i} b_j`` (THEORY.md section 4).

    ``dists (..., n, V)``, ``bids (..., n)`` -> ``(..., n, V)``, row ``i`` for agent ``i``.
    It is what the auction would write without agent ``i``; with ``S = sum_j b_j`` and
    ``q`` the linear aggregate, ``S q = b_i p_i + B_i r_i``, so the critical-bid
    payment's factor is ``TV(p_i, r_i)``.  Where nobody else bids (``B_i = 0``)
    ``r_i = p_i`` (agent ``i`` alone decides the token; ``TV = 0``).
    """
    d, b = dists_and_bids(dists, bids) if validate else (dists, bids)
    total = xsum(b[..., :, None] * d, axis=-2)  # (..., V) = S q
    B = xsum(b, axis=-1, keepdims=True) - b  # (..., n)
    alone = B <= 0
    Bs = xwhere(alone, 1.0 + 0.0 * B, B)
    r = (total[..., None, :] - b[..., :, None] * d) / Bs[..., :, None]
    r = xwhere(alone[..., :, None], d, r)
    return xwhere(r > 0, r, 0.0 * r)  # round-off below 0 where only agent i had mass


def log_linear(dists: ArrayLike, bids: ArrayLike, *, validate: bool = True) -> Array:
    """Log-linear aggregation ``q proportional to prod_i p_i^lambda_i`` (THEORY.md section 5).

    It is ``argmin_q sum_i b_i KL(q || p_i)``.  Computed in log space
    (``log q = sum_i lambda_i log p_i - logsumexp``).  Exact zeros: a token that
    any agent with a positive share gives probability 0 gets probability 0;
    agents with zero bid have exponent 0 and zero nothing out.  If no token has
    positive probability under every agent with a positive bid (e.g. the blog
    example) the rule is undefined and a :class:`ValueError` is raised -- NaN is
    never returned.  Not monotone in general (see THEORY.md section 5).
    """
    d, lam = _shares_for(dists, bids, validate)
    w = lam[..., :, None]
    with np.errstate(invalid="ignore"):  # 0 * log(0) in the branch not taken
        terms = xwhere(w > 0, w * xlog(d), 0.0 * d)
    s = xsum(terms, axis=-2)
    m = xmax(s, axis=-1, keepdims=True)
    undefined = m == -float("inf")
    if bool(undefined.any()):
        und = to_numpy(undefined)[..., 0]
        where = ""
        if und.ndim > 0:
            idx = np.unravel_index(int(np.argmax(und.ravel())), und.shape)
            where = f" (batch item {tuple(int(i) for i in idx)})"
        raise ValueError(
            "log_linear: agents' supports are disjoint (no token has positive probability "
            f"under every agent with positive bid); the rule is undefined{where}"
        )
    e = xexp(s - m)
    return e / xsum(e, axis=-1, keepdims=True)


RULES: dict[str, AggregationRule] = {"linear": linear, "log_linear": log_linear}
"""The built-in rules by name."""


def get_rule(rule: RuleLike) -> Callable[..., Array]:
    """Return the aggregation rule for a name (``"linear"``, ``"log_linear"``) or a callable.

    A callable is returned unchanged (any function ``rule(dists, bids) -> q``).
    An unknown name raises :class:`ValueError` listing the valid names.
    """
    if isinstance(rule, str):
        key = rule.strip().lower().replace("-", "_")
        if key in RULES:
            return RULES[key]
        valid = ", ".join(repr(k) for k in RULES)
        raise ValueError(f"unknown aggregation rule {rule!r}; valid names: {valid}")
    if callable(rule):
        return rule
    raise TypeError(f"rule must be a rule name or a callable, got {type(rule).__name__}")


def rule_name(rule: RuleLike) -> str | None:
    """The built-in name of ``rule`` (``"linear"``/``"log_linear"``), else ``None``."""
    r = get_rule(rule)
    for k, v in RULES.items():
        if r is v:
            return k
    return None
