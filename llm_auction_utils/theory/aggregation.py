"""Aggregation rules: how the auction turns the agents' next-token distributions and
bids into one distribution (theory chapter: [§1](../../notebooks/theory.md#1-the-token-auction-model),
[§5](../../notebooks/theory.md#5-kl-derived-aggregation-rules)).

Shapes: ``dists`` is ``(n, V)`` or batched ``(..., n, V)`` (agents on the
second-to-last axis, vocabulary last); ``bids`` is ``(n,)`` or ``(..., n)`` and
broadcasts against the leading dimensions of ``dists``.  The result ``q`` has shape
``(..., V)``.  numpy in gives numpy out; torch in gives torch out on the same device
and dtype.  Everything is vectorized, so the rules are fast at ``V = 262,144``.

Any function with the :class:`AggregationRule` signature ``rule(dists, bids) -> q``
plugs into the checkers of :mod:`.monotonicity` and :mod:`.incentives`, the payments
of :mod:`.payments` and the samplers of :mod:`.sampling`.  :func:`bid_path` evaluates a
rule along one agent's bids (the others' fixed), the object that monotonicity,
payments and stable sampling all look at.
"""

from __future__ import annotations

from typing import Callable, Protocol, Union, runtime_checkable

import numpy as np

from .arrays import Array, ArrayLike, as_array, is_half, is_torch, like, to_float64, to_numpy, xexp, xlog, xmax, xsum, xwhere, xzeros_like
from .validation import as_bid_grid, as_bids, as_distributions, check_agent, dists_and_scaled_bids, scale_bids

__all__ = [
    "AggregationRule",
    "RULES",
    "RuleLike",
    "bid_path",
    "bid_shares",
    "get_rule",
    "highest_bid",
    "linear",
    "log_linear",
    "log_linear_logprobs",
    "others_linear_aggregate",
    "others_weights",
    "path_bids",
    "rule_name",
]


@runtime_checkable
class AggregationRule(Protocol):
    """An aggregation function ``A(p_1..p_n; b) -> q``.

    Called as ``rule(dists, bids)`` with ``dists (..., n, V)`` and ``bids (..., n)``;
    returns ``q (..., V)``, a distribution per leading index.  The checkers call rules
    on batches, so a user rule should broadcast over the leading dimensions like
    :func:`linear` does.  A user rule receives the bids as given; the built-in rules
    depend on the bids only through their shares, so for them the package divides the
    bids by their largest value first (and scales payments back), which keeps huge and
    tiny bids exact.
    """

    def __call__(self, dists: Array, bids: Array, /) -> Array: ...


RuleLike = Union[str, Callable[..., Array]]


def bid_shares(bids: ArrayLike) -> Array:
    """Bid shares ``lambda_i = b_i / S``, ``S = sum_j b_j``, over the last axis.

    ``bids`` is ``(n,)`` or ``(..., n)``, finite, non-negative and not all zero along
    the agent axis.  Scale invariant: ``bid_shares(c * b) == bid_shares(b)``.
    """
    b = as_bids(bids)
    scaled, _ = scale_bids(b)
    return like(scaled / scaled.sum(axis=-1, keepdims=True), b)


def _validated(dists: ArrayLike, bids: ArrayLike, validate: bool) -> tuple[Array, Array]:
    """``(dists, bids / max)`` checked (or as given with ``validate=False``); half-precision tensors are
    computed in float32, like the engine's forward passes on a GPU (callers cast the result back)."""
    d, b = dists_and_scaled_bids(dists, bids)[:2] if validate else (dists, bids)
    if is_half(d):
        d = d.float()
        b = b.float() if is_torch(b) else b
    return d, b


def _back(q: Array, dists: ArrayLike) -> Array:
    """``q`` in the dtype of a half-precision input (no-op otherwise)."""
    return q.to(dists.dtype) if is_half(dists) else q


def _shares(dists: ArrayLike, bids: ArrayLike, validate: bool) -> tuple[Array, Array]:
    d, b = _validated(dists, bids, validate)
    return d, b / xsum(b, axis=-1, keepdims=True)


def linear(dists: ArrayLike, bids: ArrayLike, *, validate: bool = True) -> Array:
    """Linear (bid-weighted average) aggregation ``q = sum_i lambda_i p_i``.

    It is ``argmin_q sum_i b_i KL(p_i || q)`` and it is monotone: raising ``b_i`` moves
    ``q`` along the segment toward ``p_i``.  Blog example: agents ``{Large: .8,
    Generative: .2}``, ``{Large: 1}``, ``{Generative: 1}`` with bids ``1, 2, 2`` give
    ``{Large: .56, Generative: .44}``.  ``validate=False`` skips the input checks.
    Half-precision tensors are computed in float32 and returned in their own dtype.
    """
    d, lam = _shares(dists, bids, validate)
    return _back(xsum(lam[..., :, None] * d, axis=-2), dists)


def others_weights(bids: ArrayLike) -> np.ndarray:
    """``W (..., n, n)``: row ``i`` holds the others' bids ``b_j`` (``j != i``, 0 on the diagonal),
    divided by the largest of them, in float64 (1 on the diagonal where nobody else bids).

    ``r_{-i} = sum_j W_ij p_j / sum_j W_ij`` is then computed from the other agents only, with
    weights in ``[0, 1]``: no cancellation and, in any dtype, no underflow of the others'
    bids relative to each other, however lopsided agent ``i``'s own bid is.
    """
    b = to_float64(bids)
    n = b.shape[-1]
    w = np.broadcast_to(b[..., None, :], b.shape[:-1] + (n, n)).copy()
    idx = np.arange(n)
    w[..., idx, idx] = 0.0
    top = w.max(axis=-1, keepdims=True)
    alone = top[..., 0] <= 0
    w = np.where(top > 0, w / np.where(top > 0, top, 1.0), 0.0)
    w[..., idx, idx] = np.where(alone, 1.0, 0.0)  # nobody else bids: r_{-i} = p_i
    return w


def others_linear_aggregate(dists: ArrayLike, bids: ArrayLike, *, validate: bool = True) -> Array:
    """The others' linear aggregate ``r_{-i} = sum_{j != i} b_j p_j / B_{-i}``, ``B_{-i} = sum_{j != i} b_j``.

    ``dists (..., n, V)``, ``bids (..., n)`` -> ``(..., n, V)``, row ``i`` for agent ``i``:
    what the auction would write without agent ``i`` (notebooks/theory.md §4).  Computed from the
    other agents directly (:func:`others_weights`), never as ``(S q - b_i p_i) / B_{-i}``, which
    cancels catastrophically when ``b_i >> B_{-i}``.  Where nobody else bids
    (``B_{-i} = 0``) ``r_{-i} = p_i``: agent ``i`` alone decides the token.
    """
    d = as_distributions(dists) if validate else dists
    b = as_bids(bids, d.shape[-2], allow_all_zero=True) if validate else bids
    w = like(others_weights(b), d)  # (..., n, n)
    return (w @ d) / xsum(w, axis=-1, keepdims=True)


def log_linear_logprobs(logprobs: Array, bids: Array) -> Array:
    """The log-linear aggregate in log space: ``log q = sum_i lambda_i log p_i - logsumexp(...)``.

    ``logprobs (..., n, V)`` (``-inf`` at zeros; e.g. a ``log_softmax``), non-negative
    ``bids (..., n)`` not all zero (already validated) -> ``log q (..., V)``.  Bids are
    divided by their largest value first, so huge bids do not overflow; agents with bid 0
    contribute nothing (their ``-inf`` entries included).  Exact even where the
    probabilities themselves would underflow in float32.  Raises the disjoint-support
    :class:`ValueError` where every token has probability 0 under some agent with a
    positive bid.
    """
    w = bids / xmax(bids, axis=-1, keepdims=True)
    wv = w[..., :, None]
    zero = xzeros_like(logprobs)
    with np.errstate(invalid="ignore"):  # 0 * -inf in the branch not taken
        terms = xwhere(wv > 0, wv * logprobs, zero)
    s = xsum(terms, axis=-2) / xsum(w, axis=-1, keepdims=True)
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
    z = s - m
    return z - xlog(xsum(xexp(z), axis=-1, keepdims=True))


def log_linear(dists: ArrayLike, bids: ArrayLike, *, validate: bool = True) -> Array:
    """Log-linear aggregation ``q proportional to prod_i p_i^lambda_i``.

    It is ``argmin_q sum_i b_i KL(q || p_i)``.  Computed in log space
    (``log q = sum_i lambda_i log p_i - logsumexp``).  A token that any agent with a
    positive bid gives probability 0 gets probability 0; agents with zero bid have
    exponent 0 and zero nothing out.  If no token has positive probability under every
    agent with a positive bid (the blog example) the rule is undefined and a
    :class:`ValueError` is raised -- never NaN.  Not monotone under the coordinatewise
    order of the notebooks/theory.md §2 (see §5).  Half-precision tensors (float16, bfloat16) are
    computed in float32 and returned in their own dtype, as the engine does on a GPU.
    """
    d, b = _validated(dists, bids, validate)
    return _back(xexp(log_linear_logprobs(xlog(d), b)), dists)


def highest_bid(dists: ArrayLike, bids: ArrayLike, *, validate: bool = True) -> Array:
    """Highest bid wins, token by token: ``q = p_w`` for the highest bidder ``w`` (ties: the tied
    bidders' average).

    A [project extension] baseline the workbook compares the token auction with (notebook 09).  It
    is monotone: raising your bid can only switch the outcome to your own distribution.  The winner
    ``w``'s expected critical-bid payment is the second-highest bid ``m`` times ``TV(p_w, q(0))``, where
    ``q(0)`` is the outcome without ``w`` (the distribution of the bidders who bid ``m``); the other
    agents pay 0 (notebooks/theory.md §4.4).  Half-precision tensors are computed in float32.
    """
    d, b = _validated(dists, bids, validate)
    top = b == xmax(b, axis=-1, keepdims=True)
    w = top * 1.0 if is_torch(top) else top.astype(np.float64)
    w = like(w, d) if not is_torch(d) else w.to(d.dtype)
    return _back(xsum((w / xsum(w, axis=-1, keepdims=True))[..., :, None] * d, axis=-2), dists)


RULES: dict[str, AggregationRule] = {"linear": linear, "log_linear": log_linear, "highest_bid": highest_bid}
"""The built-in rules by name."""


def get_rule(rule: RuleLike) -> Callable[..., Array]:
    """The aggregation rule for a name (``"linear"``, ``"log_linear"``, ``"highest_bid"``) or a callable.

    A callable is returned unchanged.  An unknown name raises :class:`ValueError`
    listing the valid names; anything else raises :class:`TypeError`.
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
    """The built-in name of ``rule`` (``"linear"``, ``"log_linear"``, ``"highest_bid"``), else ``None``."""
    r = get_rule(rule)
    return next((k for k, v in RULES.items() if r is v), None)


def path_bids(b: Array, agent: int, grid: Array) -> Array:
    """``(..., G, n)``: the bids ``b (..., n)`` with agent ``agent``'s replaced by ``grid (..., G)``."""
    G = grid.shape[-1]
    lead = tuple(np.broadcast_shapes(tuple(b.shape[:-1]), tuple(grid.shape[:-1])))
    n = b.shape[-1]
    if is_torch(b):
        bp = b.expand(lead + (n,))[..., None, :].repeat(*([1] * len(lead)), G, 1)
        bp[..., :, agent] = grid.expand(lead + (G,))
    else:
        bp = np.repeat(np.broadcast_to(b, lead + (n,))[..., None, :], G, axis=-2).copy()
        bp[..., :, agent] = np.broadcast_to(grid, lead + (G,))
    return bp


def _broadcast(x: Array, shape: tuple[int, ...]) -> Array:
    return x.expand(shape) if is_torch(x) else np.broadcast_to(x, shape)


def bid_path(
    dists: ArrayLike,
    bids: ArrayLike,
    agent: int,
    rule: RuleLike,
    bid_grid: ArrayLike,
    *,
    validate: bool = True,
    logprobs: Array | None = None,
) -> Array:
    """The aggregate ``q(s)`` along agent ``agent``'s bids ``s`` in ``bid_grid``, the others' bids fixed.

    ``dists (..., n, V)``, ``bids (..., n)``, ``bid_grid (G,)`` (or ``(..., G)``: one grid
    per instance) -> ``(..., G, V)``; one batched call of the rule (``dists`` broadcast,
    not copied).  The log-linear rule is evaluated without ``(G, n, V)`` temporaries.
    A grid point where all bids are zero is undefined and raises :class:`ValueError`.
    """
    A = get_rule(rule)
    if validate:
        d = as_distributions(dists)
        agent = check_agent(agent, d.shape[-2])
        b64 = to_float64(as_bids(bids, d.shape[-2], allow_all_zero=True))
        g64 = to_float64(as_array_grid(bid_grid, np.zeros(0)))
        # the built-in rules depend on the bids only through their shares: divide bids and grid by one
        # scale per instance (no overflow); a user rule gets the bids as given
        scale = np.maximum(b64.max(axis=-1, keepdims=True), g64.max(axis=-1, keepdims=True))
        scale = np.where((scale > 0) & (rule_name(A) is not None), scale, 1.0)
        b, grid = like(b64 / scale, d), like(g64 / scale, d)
    else:
        d, b, grid = dists, bids, like(bid_grid, dists)
    lead = tuple(np.broadcast_shapes(tuple(d.shape[:-2]), tuple(b.shape[:-1]), tuple(grid.shape[:-1])))
    bp = path_bids(_broadcast(b, lead + b.shape[-1:]), agent, _broadcast(grid, lead + grid.shape[-1:]))
    totals = to_numpy(xsum(bp, axis=-1))
    if (totals <= 0).any():
        raise ValueError(f"bid path of agent {agent} passes through all-zero bids (bid 0 with no other positive bid)")
    if rule_name(A) == "log_linear":
        logp = (xlog(d) if logprobs is None else logprobs)[..., None, :, :]  # (..., 1, n, V): broadcast over the grid
        return xexp(log_linear_logprobs(logp, bp))
    return A(_broadcast(d[..., None, :, :], tuple(bp.shape[:-1]) + tuple(d.shape[-2:])), bp)


def as_array_grid(bid_grid: ArrayLike, ref: Array) -> Array:
    """A bid grid ``(G,)`` or ``(..., G)`` checked (finite, ``>= 0``) and put on ``ref``'s backend."""
    g = as_array(bid_grid, name="bid_grid")
    g = as_bid_grid(g) if g.ndim <= 1 else as_bids(g, name="bid_grid", allow_all_zero=True)
    return like(g, ref)
