"""Sampling: stable sampling for critical-bid payments, the exponential clock,
and the plain seeded token sampler used by decoding (notebooks/theory.md §4).

Stable sampling (linear rule, agent ``i`` with bid share ``lambda = b / (b + B)``):
``q(lambda) = lambda p_i + (1 - lambda) r``.  Lay each token's slot of width ``r(t)`` on ``[0, 1)``,
tokens losing probability (``D``: ``p_i(t) < r(t)``) first.  Draw ``u, u' ~ U[0,1)`` (arguments
``u`` and ``u_prime``).  If ``u`` falls in the slot of ``d`` in ``D`` at offset ``o``, the token
stays ``d`` while ``q_d(lambda) > o``, i.e. below the switch level
``lambda* = (r(d) - o) / (r(d) - p_i(d))``, and then becomes the gaining token chosen by ``u'``
with probabilities proportional to ``p_i(t) - r(t)``.  Marginals are exactly ``q(lambda)``;
raising the bid switches the token at most once, from a ``D`` token to an ``I`` token, and
agent ``i`` pays the critical bid ``b* = B lambda* / (1 - lambda*)`` only when it switched
(notebooks/theory.md §4.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch

from .aggregation import RuleLike, bid_path, get_rule, others_linear_aggregate, rule_name
from .arrays import ArrayLike, as_array, is_torch, to_float64
from .monotonicity import NotMonotoneError
from .preferences import token_excess
from .validation import as_bids, as_distributions, check_agent, dists_and_bids, dists_and_scaled_bids, order_atol, scale_bids

__all__ = [
    "ClockDraw",
    "StableDraw",
    "StableSample",
    "JointDraw",
    "exponential_clock",
    "joint_stable_step",
    "sample_token",
    "stable_sample",
    "stable_sample_linear",
    "stable_step",
    "uniforms",
]

Rng = Union[np.random.Generator, torch.Generator, None]
"""A source of randomness: a numpy ``Generator``, a ``torch.Generator``, or ``None`` (fresh entropy)."""


def _scalarize(x: np.ndarray, scalar: bool, kind: type) -> Any:
    return kind(x.reshape(())) if scalar else x


def _uniform(u: ArrayLike, name: str) -> np.ndarray:
    a = to_float64(as_array(u, name=name))
    if not np.isfinite(a).all() or (a < 0).any() or (a >= 1).any():
        raise ValueError(f"{name} must lie in [0, 1)")
    return a


def _pick(cdf: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Index of the slot containing ``w`` (``cdf`` cumulative widths); zero-width slots are never hit."""
    idx = np.searchsorted(cdf, w, side="right")
    return np.minimum(idx, len(cdf) - 1)


@dataclass(frozen=True)
class StableSample:
    """Result of :func:`stable_sample_linear` (arrays when ``u`` is an array).

    ``token``: sampled token at the agent's share ``lambda``; ``switched``: the agent's bid
    changed the token (``lambda >= lambda*``); ``switch_level``: ``lambda*`` (``inf`` when ``u``
    fell in a gaining/fixed slot, ``> 1`` when no bid switches it); ``critical_bid``:
    ``b* = B lambda* / (1 - lambda*)`` when ``others_bid_total`` was given (``inf`` when no
    bid switches), else ``None``.
    """

    token: Any
    switched: Any
    switch_level: Any
    critical_bid: Any = None

def _losing_first_slot(losing: np.ndarray, widths: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lay slots of width ``widths[t]`` on [0, 1), losing tokens first (notebooks/theory.md §4).

    Returns, for each uniform ``u``, the token whose slot holds ``u`` and the offset
    of ``u`` inside that slot.
    """
    order = np.concatenate([np.flatnonzero(losing), np.flatnonzero(~losing)])
    cdf = np.cumsum(widths[order])
    starts = cdf - widths[order]
    w = u * cdf[-1]
    pos = _pick(cdf, w)
    return order[pos], np.clip(w - starts[pos], 0.0, None)


def stable_sample_linear(
    p_i: ArrayLike,
    r: ArrayLike,
    share: float,
    u: ArrayLike,
    u_prime: ArrayLike,
    *,
    others_bid_total: float | None = None,
) -> StableSample:
    """Stable sample of linear aggregation ``q = lambda p_i + (1 - lambda) r`` (notebooks/theory.md §4.3).

    ``p_i``, ``r``: distributions ``(V,)``; ``share``: the agent's bid share ``lambda in [0, 1]``;
    ``u``, ``u_prime``: the uniforms ``u, u'`` in ``[0, 1)`` (scalars, or arrays of draws of the
    same shape -- vectorized).  Token marginals are exactly ``q``; for fixed ``(u, u')`` the token
    changes at most once as ``lambda`` increases, from a ``D`` token (``p_i < r``) to an ``I``
    token (``p_i > r``).
    """
    p = to_float64(as_distributions(p_i, name="p_i", min_ndim=1))
    rr = to_float64(as_distributions(r, name="r", min_ndim=1))
    if p.ndim != 1 or rr.shape != p.shape:
        raise ValueError(f"p_i and r must be vectors of the same length, got shapes {p.shape} and {rr.shape}")
    x = float(share)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"share must lie in [0, 1], got {x}")
    uu, vv = _uniform(u, "u"), _uniform(u_prime, "u_prime")
    if uu.shape != vv.shape:
        raise ValueError(f"u and u_prime must have the same shape, got {uu.shape} and {vv.shape}")
    scalar = uu.ndim == 0

    D = p < rr
    tok, off = _losing_first_slot(D, rr, uu)
    in_d = D[tok]
    gap = np.where(in_d, rr[tok] - p[tok], 1.0)
    xstar = np.where(in_d, (rr[tok] - off) / gap, np.inf)
    switched = in_d & (x >= xstar)

    gains = np.clip(p - rr, 0.0, None)
    gcdf = np.cumsum(gains)
    if gcdf[-1] > 0:
        new_tok = _pick(gcdf, vv * gcdf[-1])
        token = np.where(switched, new_tok, tok)
    else:  # p_i == r: nothing ever switches
        token = tok
        switched = np.zeros_like(switched)

    crit = None
    if others_bid_total is not None:
        B = float(others_bid_total)
        if not np.isfinite(B) or B < 0:
            raise ValueError(f"others_bid_total must be finite and >= 0, got {B}")
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(xstar < 1.0, B * xstar / (1.0 - xstar), np.inf)
        crit = _scalarize(c, scalar, float)
    return StableSample(
        token=_scalarize(token, scalar, int),
        switched=_scalarize(switched, scalar, bool),
        switch_level=_scalarize(xstar, scalar, float),
        critical_bid=crit,
    )


@dataclass(frozen=True)
class StableDraw:
    """One stable-sampling draw for agent ``i`` at its bid ``b`` (scalars, or
    arrays for vectorized draws).

    ``token``: the sampled token; ``critical_bid``: the smallest bid at which the
    agent's bid switches this draw's token (``inf`` if no bid up to ``b`` -- for
    linear: no bid at all -- switches it); ``payment``: the critical bid when the
    agent's bid switched the token, else 0 (it pays only when it changed what
    would have been written); ``switched``: whether it did.
    """

    token: Any
    critical_bid: Any
    payment: Any
    switched: Any


def _no_switch_draw(qb: np.ndarray, p_i: np.ndarray, u: np.ndarray, scalar: bool) -> StableDraw:
    """Draws where the agent's bid cannot switch the token (no competition, or no bid).  The
    slots keep the losing-first order ``D = {p_i < q}``, so the token is the one the coupling
    gives for any positive bid that does not switch it."""
    tok, _ = _losing_first_slot(p_i < qb, qb, u)
    z = np.zeros(u.size)
    return StableDraw(
        token=_scalarize(tok, scalar, int),
        critical_bid=_scalarize(np.full(u.size, np.inf), scalar, float),
        payment=_scalarize(z, scalar, float),
        switched=_scalarize(z.astype(bool), scalar, bool),
    )


def _switch_bids(q_at: Any, bid: float, tokens: np.ndarray, offsets: np.ndarray, tol: float) -> np.ndarray:
    """Bisection for ``s* = inf{s : q_d(s) <= o}`` of every switched draw (token ``d``, offset ``o``)."""
    lo, hi = np.zeros(tokens.size), np.full(tokens.size, bid)
    n_iter = min(int(np.ceil(np.log2(max(bid, tol) / tol))) + 1, 200)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        below = q_at(mid)[np.arange(tokens.size), tokens] <= offsets
        hi, lo = np.where(below, mid, hi), np.where(below, lo, mid)
    return hi


def _gaining_tokens(q_at: Any, bid: float, s_star: np.ndarray, q0: np.ndarray, qb: np.ndarray, v: np.ndarray,
                    tol: float) -> np.ndarray:
    """The gaining token of each switched draw: chosen by ``v`` (the draws' ``u'``) with probabilities proportional to
    ``dq_t/ds`` at ``s*`` (central difference) over the tokens that gain."""
    h = max(1e-6 * bid, 10 * tol)
    rate = np.clip(q_at(np.minimum(s_star + h, bid)) - q_at(np.maximum(s_star - h, 0.0)), 0.0, None)
    rate = rate * (qb > q0)[None, :]
    fallback = np.clip(qb - q0, 0.0, None)
    rate = np.where(rate.sum(-1, keepdims=True) > 0, rate, fallback[None, :])
    cdf = np.cumsum(rate, axis=-1)
    return np.minimum((cdf <= (v * cdf[:, -1])[:, None]).sum(-1), q0.size - 1)


def stable_sample(
    dists: ArrayLike,
    bids: ArrayLike,
    agent: int,
    rule: RuleLike,
    u: ArrayLike,
    u_prime: ArrayLike,
    *,
    tol: float = 1e-10,
    n_check: int = 65,
    atol: float | None = None,
) -> StableDraw:
    """Stable sample for any monotone rule along agent ``agent``'s bid path (notebooks/theory.md §4).

    Slots of width ``q(0)(t)`` (the aggregate without the agent), tokens that lose
    probability at bid ``b`` first.  ``u`` in the slot of ``d`` at offset ``o`` keeps ``d``
    while ``q_d(s) > o``; the switch bid ``s* = inf{s : q_d(s) <= o}`` is found by bisection
    (to ``tol``), vectorized over draws.  A switched draw moves to the gaining token chosen
    by ``u_prime`` with probabilities proportional to ``dq_t/ds`` at ``s*`` (central difference),
    so the marginals are ``q(b)`` up to discretization (exact when one token gains).

    Raises :class:`~.monotonicity.NotMonotoneError` if the rule is not monotone for
    ``agent`` along ``n_check`` bids in ``[0, b]``.  ``dists (n, V)``, ``bids (n,)``;
    ``u``, ``u_prime``: the uniforms ``u, u'``, scalars or arrays of the same shape.
    """
    A = get_rule(rule)
    d, b, scale = dists_and_scaled_bids(dists, bids) if rule_name(A) is not None else (*dists_and_bids(dists, bids), 1.0)
    if d.ndim != 2:
        raise ValueError(f"stable_sample takes one step dists (n, V), got shape {tuple(d.shape)}")
    dn, bn, scale = to_float64(d), to_float64(b), float(np.reshape(scale, ()))
    agent = check_agent(agent, dn.shape[0])
    atol = order_atol(dn) if atol is None else atol
    uu, vv = _uniform(u, "u"), _uniform(u_prime, "u_prime")
    if uu.shape != vv.shape:
        raise ValueError(f"u and u_prime must have the same shape, got {uu.shape} and {vv.shape}")
    scalar = uu.ndim == 0
    uf, vf = uu.reshape(-1), vv.reshape(-1)
    bi = float(bn[agent])
    B = float(bn.sum() - bi)

    def q_at(s: np.ndarray) -> np.ndarray:
        return to_float64(bid_path(dn, bn, agent, A, s, validate=False))

    if B == 0.0 or bi == 0.0:  # no competition (q does not depend on the bid) or no bid: no switch
        return _no_switch_draw(q_at(np.array([bi]))[0], dn[agent], uf, scalar)
    grid = bi * np.linspace(0.0, 1.0, max(n_check, 2))
    qs = q_at(grid)
    ex = token_excess(qs[1:], qs[:-1], dn[agent][None, :]).max(-1)
    if (ex > atol).any():
        k = int(np.argmax(ex > atol))
        raise NotMonotoneError.on_step(agent, grid[k], grid[k + 1], ex[k], "stable sampling")
    q0, qb = qs[0], qs[-1]
    # on a monotone path each q_t moves toward p_i(t) and never past it, so the tokens that lose
    # probability are D = {t : p_i(t) < q(0)(t)} whatever the bid: one fixed order of the slots
    losing = dn[agent] < q0
    tok, off = _losing_first_slot(losing, q0, uf)
    switched = losing[tok] & (qb[tok] <= off)
    crit = np.full(uf.size, np.inf)
    token = tok.copy()
    idx = np.flatnonzero(switched)
    if idx.size:
        crit[idx] = _switch_bids(q_at, bi, tok[idx], off[idx], tol)
        token[idx] = _gaining_tokens(q_at, bi, crit[idx], q0, qb, vf[idx], tol)
    crit = crit * scale  # bids were divided by their largest value
    return StableDraw(
        token=_scalarize(token, scalar, int),
        critical_bid=_scalarize(crit, scalar, float),
        payment=_scalarize(np.where(switched, crit, 0.0), scalar, float),
        switched=_scalarize(switched, scalar, bool),
    )


def uniforms(rng: Rng, size: int) -> np.ndarray:
    """``size`` uniforms in ``[0, 1)`` (float64 numpy) from any source of randomness: a numpy
    ``Generator``, a ``torch.Generator`` (drawn on its device) or ``None`` (fresh entropy).
    The package's one normalizer of randomness."""
    if rng is None:
        return np.random.default_rng().random(size)
    if isinstance(rng, np.random.Generator):
        return rng.random(size)
    if isinstance(rng, torch.Generator):
        return torch.rand(size, generator=rng, dtype=torch.float64, device=rng.device).cpu().numpy()
    raise TypeError(f"rng must be a numpy Generator, a torch.Generator or None, got {type(rng).__name__}")


def stable_step(dists: ArrayLike, bids: ArrayLike, agent: int, rule: RuleLike = "linear", rng: Rng = None) -> StableDraw:
    """One stable-sampling decoding step for ``agent`` (notebooks/theory.md §4).

    Draws ``u, u'`` from ``rng`` and returns a :class:`StableDraw` of Python scalars.
    Linear: the exact construction of :func:`stable_sample_linear` with ``r`` the others'
    aggregate and the share ``lambda = b / (b + B_{-i})``; other rules: :func:`stable_sample` (bisection;
    raises :class:`~.monotonicity.NotMonotoneError` when not monotone).  With no other
    positive bid the token is drawn from ``q`` and nothing is paid.
    """
    A = get_rule(rule)
    if rule_name(A) != "linear":
        u, v = uniforms(rng, 2)
        return stable_sample(dists, bids, agent, A, u, v)
    d, b, scale = dists_and_scaled_bids(dists, bids)
    if d.ndim != 2:
        raise ValueError(f"stable_step takes one step dists (n, V), got shape {tuple(d.shape)}")
    agent = check_agent(agent, d.shape[0])
    u, v = uniforms(rng, 2)
    dn, bn, scale = to_float64(d), to_float64(b), float(scale.reshape(()))
    bi = float(bn[agent])
    B = float(np.delete(bn, agent).sum())
    if B == 0.0:
        q = dn[agent]
        tok = int(_pick(np.cumsum(q), np.array(u * q.sum())))
        return StableDraw(token=tok, critical_bid=float("inf"), payment=0.0, switched=False)
    r = others_linear_aggregate(dn, bn, validate=False)[agent]
    s = stable_sample_linear(dn[agent], r, bi / (bi + B), u, v, others_bid_total=B)
    crit = float(s.critical_bid) * scale
    return StableDraw(token=int(s.token), critical_bid=crit, payment=crit if s.switched else 0.0, switched=bool(s.switched))


@dataclass(frozen=True)
class JointDraw:
    """One draw of :func:`joint_stable_step`: the ``token`` and, for each of the two agents, the
    realized critical-bid ``payments (2,)`` and whether its bid ``switched (2,)`` the token."""

    token: int
    payments: np.ndarray
    switched: np.ndarray


def joint_stable_step(dists: ArrayLike, bids: ArrayLike, rng: Rng = None) -> JointDraw:
    """[project extension] Two agents, linear rule: one draw that realizes BOTH agents' critical-bid
    payments (notebooks/theory.md §4.8).

    Agent 1's stable coupling (slots of width ``p_2``, agent 1's losing tokens first) is stable for
    agent 2 as well: agent 2's bid path is the same segment between ``p_1`` and ``p_2``, walked the
    other way, and along it the token switches at most once, from a token agent 2 loses to one it
    gains.  With ``lambda = b_1 / (b_1 + b_2)`` and the draw's switch level ``lambda*``: agent 1 pays
    its critical bid ``b_2 lambda* / (1 - lambda*)`` when ``lambda >= lambda*`` (its bid moved the
    token to its side); agent 2 pays ``b_1 (1 - lambda*) / lambda*`` when ``lambda < lambda* <= 1``
    (its bid kept the token on its side).
    Each agent's expected payment is ``TV(p_1, p_2)`` times its Myerson payment.  With one
    bidder, nobody's bid changes the token: the draw is from that bidder's distribution and
    nothing is paid.  ``dists (2, V)``, ``bids (2,)``.
    """
    d, b, scale = dists_and_scaled_bids(dists, bids)
    if tuple(d.shape[:-1]) != (2,):
        raise ValueError(f"joint_stable_step takes two agents' dists (2, V), got shape {tuple(d.shape)}")
    dn, bn, scale = to_float64(d), to_float64(b), float(scale.reshape(()))
    u, v = uniforms(rng, 2)
    zero = np.zeros(2)
    if bn.min() == 0.0:
        q = dn[int(np.argmax(bn))]
        return JointDraw(token=int(_pick(np.cumsum(q), np.array(u * q.sum()))), payments=zero,
                         switched=zero.astype(bool))
    x = bn[0] / (bn[0] + bn[1])
    s = stable_sample_linear(dn[0], dn[1], x, u, v, others_bid_total=bn[1])
    x_star = float(s.switch_level)
    pay, switched = zero.copy(), zero.astype(bool)
    if s.switched:
        pay[0], switched[0] = float(s.critical_bid) * scale, True
    elif x_star <= 1.0:
        pay[1], switched[1] = bn[0] * (1.0 - x_star) / x_star * scale, True
    return JointDraw(token=int(s.token), payments=pay, switched=switched)


@dataclass(frozen=True)
class ClockDraw:
    """Exponential-clock draw: ``winner`` (whose distribution is sampled) and the
    winner's ``payment`` ``E_w * max_{j != w} b_j / E_j`` (arrays when batched)."""

    winner: Any
    payment: Any


def exponential_clock(bids: ArrayLike, rng: Rng = None, *, size: int | tuple[int, ...] | None = None) -> ClockDraw:
    """Exponential-clock variant (notebooks/theory.md §4).

    ``E_j ~ Exp(1)`` i.i.d.; the winner is ``argmax_j b_j / E_j`` (chosen with
    probability ``lambda_j``) and pays ``E_w * max_{j != w} b_j / E_j`` -- its
    critical bid, so its expected payment equals the Myerson payment
    ``B ln(1 + b/B) - b B / (b + B)`` *without* the TV factor: it pays even when
    the token would have been the same.  ``bids (n,)``; ``size`` draws many
    clocks at once (arrays of shape ``size``).  Scale-free like the other rules: the bids are
    divided by the largest one first and the payments multiplied back (the winner's critical bid
    never exceeds its own bid), so bids near the float64 limit neither overflow nor lose the draw.
    """
    b64 = to_float64(as_bids(bids))
    if b64.ndim != 1:
        raise ValueError(f"bids must be a vector (n,), got shape {b64.shape}")
    b, scale = scale_bids(b64)
    scale = float(scale[0])
    n = b.shape[0]
    shape = () if size is None else ((size,) if isinstance(size, int) else tuple(size))
    m = int(np.prod(shape)) if shape else 1
    e = -np.log1p(-uniforms(rng, m * n)).reshape(m, n)  # Exp(1) by inversion
    e = np.maximum(e, np.finfo(float).tiny)
    score = b / e
    win = score.argmax(-1)
    others = score.copy()
    others[np.arange(m), win] = -np.inf
    second = others.max(-1) if n > 1 else np.zeros(m)
    pay = np.minimum(e[np.arange(m), win] * np.maximum(second, 0.0), b[win]) * scale
    if not shape:
        return ClockDraw(winner=int(win[0]), payment=float(pay[0]))
    return ClockDraw(winner=win.reshape(shape), payment=pay.reshape(shape))


def sample_token(q: ArrayLike, rng: Rng = None) -> Any:
    """Draw token indices from ``q (..., V)`` by inverse CDF with one uniform per row.

    Deterministic for a given ``rng`` state (numpy ``Generator`` or ``torch.Generator``;
    for torch the uniforms are drawn on the generator's device).  Zero-probability tokens are never drawn.  Returns an ``int`` for a
    single distribution, else an integer array/tensor of shape ``q.shape[:-1]``
    (torch input gives a ``long`` tensor on ``q``'s device).
    """
    qq = as_distributions(q, name="q", min_ndim=1)
    lead = tuple(qq.shape[:-1])
    V = qq.shape[-1]
    if is_torch(qq):
        if isinstance(rng, torch.Generator):
            u = torch.rand(lead, generator=rng, dtype=torch.float64, device=rng.device).to(qq.device)
        else:
            u = torch.as_tensor(uniforms(rng, int(np.prod(lead)) if lead else 1).reshape(lead), device=qq.device)
        cdf = torch.cumsum(qq.to(torch.float64), dim=-1)
        w = (u * cdf[..., -1]).unsqueeze(-1)
        idx = torch.searchsorted(cdf, w.contiguous(), right=True).squeeze(-1)
        last = V - 1 - torch.argmax((qq > 0).flip(-1).to(torch.int8), dim=-1)
        idx = torch.minimum(idx, last)
        return int(idx) if not lead else idx
    qn = np.asarray(qq, dtype=np.float64)
    u = uniforms(rng, int(np.prod(lead)) if lead else 1).reshape(lead)
    cdf = np.cumsum(qn, axis=-1)
    w = u * cdf[..., -1]
    idx = (cdf <= w[..., None]).sum(-1)
    last = V - 1 - np.argmax((qn > 0)[..., ::-1], axis=-1)
    idx = np.minimum(idx, last)
    return int(idx) if not lead else idx
