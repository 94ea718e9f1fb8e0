"""Payment rules (THEORY.md section 4).

- :func:`pay_your_bid` -- the naive rule from the blog (each agent pays its bid
  per token); not incentive compatible.
- :func:`myerson_payment` -- ``z(b) = b x(b) - int_0^b x(s) ds`` for any
  increasing allocation curve ``x``.
- :func:`linear_myerson_payment` -- its closed form for linear aggregation,
  ``x(b) = b / (b + B)``: ``B ln(1 + b/B) - b B / (b + B)``.
- :func:`expected_critical_payment` -- one agent's expected critical-bid
  (second-price, stable-sampling) payment: ``TV(p_i, r)`` times the closed form
  for linear; Myerson with the switched mass ``T(s) = TV(q(s), q(0))`` along the
  bid path for any monotone rule.
- :func:`expected_critical_payments` -- all agents of a decoding step at once;
  fast (closed form) for linear, vectorized bid grid for other rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ._validation import (
    Array,
    ArrayLike,
    as_array,
    as_bids,
    check_agent,
    dists_and_bids,
    is_torch,
    like,
    to_numpy,
    xabs,
    xexp,
    xlog,
    xmax,
    xsum,
    xwhere,
    xzeros_like,
)
from .aggregation import RuleLike, get_rule, linear, rule_name
from .preferences import _token_excess

__all__ = [
    "CriticalPayments",
    "NotMonotoneError",
    "critical_payment_curve",
    "expected_critical_payment",
    "expected_critical_payments",
    "linear_myerson_payment",
    "myerson_payment",
    "pay_your_bid",
    "switched_mass",
]


class NotMonotoneError(ValueError):
    """The rule is not monotone for this agent on this step: the critical-bid
    coupling does not exist, so no critical-bid payment is defined."""


def pay_your_bid(bids: ArrayLike) -> Array:
    """Pay-your-bid: agent ``i`` pays ``b_i`` for the token (THEORY.md section 1).

    The naive contrast to critical-bid payments; not truthful (agents shade
    bids).  Returns the validated bids as a new array, ``(..., n)``.
    """
    b = as_bids(bids)
    return b.clone() if is_torch(b) else b.copy()


def _check_nonneg(x: Array, name: str) -> None:
    xn = to_numpy(x)
    if np.isnan(xn).any():
        raise ValueError(f"{name} contains NaN")
    if np.isinf(xn).any():
        raise ValueError(f"{name} contains inf")
    if (xn < 0).any():
        raise ValueError(f"{name} is negative ({float(xn[xn < 0].ravel()[0]):.6g})")


def _simpson_weights(n_points: int) -> np.ndarray:
    """Composite Simpson weights on ``n_points`` (odd) equispaced nodes over [0, 1]."""
    if n_points < 3 or n_points % 2 == 0:
        raise ValueError(f"n_points must be odd and >= 3, got {n_points}")
    w = np.ones(n_points)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return w / (3.0 * (n_points - 1))


def myerson_payment(allocation: Callable[[Array], ArrayLike], bid: ArrayLike, *, n_points: int = 2049) -> Array:
    """Myerson payment ``z(b) = b x(b) - int_0^b x(s) ds`` (THEORY.md section 4).

    ``allocation`` must accept an array of bids and return ``x`` of the same
    shape (increasing in the bid).  ``bid`` may be an array: the integral is
    computed in one vectorized call ``allocation(s)``, ``s`` of shape
    ``bid.shape + (n_points,)``, by composite Simpson (``n_points`` odd) after the
    substitution ``s = b t^3``, which puts nodes where allocation curves are
    steepest (near 0) -- accurate even when ``b`` is many times the competition.
    """
    b = as_array(bid, name="bid")
    _check_nonneg(b, "bid")
    w = like(_simpson_weights(n_points), b)
    t = np.linspace(0.0, 1.0, n_points)
    s = b[..., None] * like(t**3, b)
    x = as_array(allocation(s), name="allocation(s)")
    x = like(x, b)
    if tuple(x.shape) != tuple(s.shape):
        raise ValueError(f"allocation returned shape {tuple(x.shape)} for bids of shape {tuple(s.shape)}")
    if not bool(np.isfinite(to_numpy(x)).all()):
        raise ValueError("allocation returned NaN or inf")
    jac = like(3.0 * t**2, b)  # ds = b * 3 t^2 dt
    integral = b * xsum(w * jac * x, axis=-1)
    return b * x[..., -1] - integral


def _myerson_unit(x: Array) -> Array:
    """``f(x) = ln(1 + x) - x / (1 + x)`` (so that ``z = B f(b/B)``), stable for small ``x``
    via its series ``sum_{k>=2} (-1)^k (k-1)/k x^k``."""
    small = x < 1e-2
    xs = xwhere(small, x, 0.0 * x)
    series = xs * xs * (0.5 + xs * (-2.0 / 3.0 + xs * (0.75 + xs * (-0.8 + xs * (5.0 / 6.0)))))
    log1p = torch.log1p(x) if is_torch(x) else np.log1p(x)
    return xwhere(small, series, log1p - x / (1.0 + x))


def linear_myerson_payment(bid: ArrayLike, others_bid_total: ArrayLike) -> Array:
    """Closed-form Myerson payment of linear aggregation (THEORY.md section 4):

    ``z(b) = B ln(1 + b/B) - b B / (b + B)`` with allocation ``x(b) = b / (b + B)``,
    ``B = sum_{j != i} b_j``.  ``B = 0`` (no competition) gives 0.  Vectorized
    (broadcasts ``bid`` and ``others_bid_total``); computed as
    ``B (log1p(b/B) - (b/B) / (1 + b/B))`` for accuracy.
    """
    b = as_array(bid, name="bid")
    B = like(as_array(others_bid_total, name="others_bid_total"), b) if is_torch(b) else as_array(others_bid_total)
    if is_torch(B) and not is_torch(b):
        b = like(b, B)
    _check_nonneg(b, "bid")
    _check_nonneg(B, "others_bid_total")
    pos = B > 0
    Bs = xwhere(pos, B, 1.0 + 0.0 * B)
    z = Bs * _myerson_unit(b / Bs)
    return xwhere(pos, z, 0.0 * z)


# --------------------------------------------------------------------------
# critical-bid payments
# --------------------------------------------------------------------------
def switched_mass(
    rule: RuleLike, dists: ArrayLike, bids: ArrayLike, agent: int, bid_grid: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """``T(s) = TV(q(s), q(0))`` along agent ``agent``'s bid grid, and the
    per-step monotonicity excess (THEORY.md section 4, 'Any monotone rule').

    Returns ``(T (G,), excess (G-1,))`` as numpy arrays for one instance;
    ``excess[k] > 0`` means ``q(grid[k+1])`` is not weakly preferred to ``q(grid[k])``.
    """
    from .monotonicity import bid_path

    g = np.asarray(bid_grid, dtype=np.float64)
    qs = np.asarray(to_numpy(bid_path(rule, dists, bids, agent, g)), dtype=np.float64)
    p_i = np.asarray(to_numpy(as_array(dists)), dtype=np.float64)[agent]
    T = 0.5 * np.abs(qs - qs[0]).sum(-1)
    ex = _token_excess(qs[1:], qs[:-1], p_i[None, :]).max(-1) if len(g) > 1 else np.zeros(0)
    return T, ex


def critical_payment_curve(
    rule: RuleLike, dists: ArrayLike, bids: ArrayLike, agent: int, bid_grid: ArrayLike
) -> np.ndarray:
    """Expected critical-bid payment ``z(s) = s T(s) - int_0^s T`` at every point
    of a grid starting at 0 (trapezoid rule on the grid), for one instance."""
    g = np.asarray(bid_grid, dtype=np.float64)
    if g[0] != 0:
        raise ValueError("bid_grid must start at 0")
    T, _ = switched_mass(rule, dists, bids, agent, g)
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (T[1:] + T[:-1]) * np.diff(g))])
    return g * T - integral


def expected_critical_payment(
    dists: ArrayLike,
    bids: ArrayLike,
    agent: int,
    rule: RuleLike = linear,
    *,
    n_grid: int = 257,
    atol: float = 1e-9,
) -> float:
    """Expected critical-bid (stable-sampling second-price) payment of one agent
    for one step (THEORY.md section 4).

    - linear: ``TV(p_i, r) * (B ln(1 + b/B) - b B / (b + B))``, ``r`` the
      others' aggregate, ``B = sum_{j != i} b_j``;
    - any other rule: Myerson with the switched mass ``T(s) = TV(q(s), q(0))``
      as allocation, ``z(b) = b T(b) - int_0^b T(s) ds`` (Simpson on ``n_grid``
      points ``s = b t^3``, ``t`` equispaced in ``[0, 1]``).  Raises :class:`NotMonotoneError` if the rule is not
      monotone for ``agent`` along that grid (beyond ``atol``).

    ``b = 0`` or ``B = 0`` (no competition) gives 0.  ``dists (n, V)``, ``bids (n,)``.
    """
    d, b = dists_and_bids(dists, bids)
    if d.ndim != 2:
        raise ValueError(f"expected_critical_payment takes one step dists (n, V), got shape {tuple(d.shape)}")
    n = d.shape[-2]
    agent = check_agent(agent, n)
    bn = np.asarray(to_numpy(b), dtype=np.float64)
    bi = float(bn[agent])
    B = float(bn.sum() - bi)
    if bi == 0.0 or B == 0.0:
        return 0.0
    A = get_rule(rule)
    if rule_name(A) == "linear":
        dn = np.asarray(to_numpy(d), dtype=np.float64)
        others = np.delete(np.arange(n), agent)
        r = (bn[others, None] * dn[others]).sum(0) / B
        tv = 0.5 * np.abs(dn[agent] - r).sum()
        return float(tv * linear_myerson_payment(bi, B))
    if n_grid % 2 == 0:
        n_grid += 1
    tt = np.linspace(0.0, 1.0, n_grid)
    grid = bi * tt**3  # graded grid s = b t^3 (nodes where T is steepest)
    T, ex = switched_mass(A, d, b, agent, grid)
    if (ex > atol).any():
        k = int(np.argmax(ex > atol))
        raise NotMonotoneError(
            f"rule is not monotone for agent {agent} on this step (bids {grid[k]:.6g} -> {grid[k + 1]:.6g} "
            f"violate the order by {ex[k]:.3g}); the critical-bid payment is undefined"
        )
    return float(bi * T[-1] - bi * (_simpson_weights(n_grid) @ (3.0 * tt**2 * T)))


def _log_linear_path(logp: Array, bp: Array, i: int) -> Array:
    """Log-linear aggregate along a bid path without materializing ``(G, n, V)``.

    ``logp (..., n, V)`` (``-inf`` at zeros), ``bp (..., G, n)`` -> ``(..., G, V)``:
    ``log q = (sum_j b_j log p_j) / sum_j b_j - logsumexp``, with zero bids
    contributing nothing.  Only agent ``i``'s bid varies along the path, so the
    others' part is computed once.
    """
    n = logp.shape[-2]
    others = [j for j in range(n) if j != i]
    b_oth = bp[..., 0, :]  # others' bids are constant along the path
    zero = xzeros_like(logp[..., i, :])  # not 0 * logp: 0 * -inf is NaN
    with np.errstate(invalid="ignore"):
        R = zero
        for j in others:
            bj = b_oth[..., j : j + 1]
            R = R + xwhere(bj > 0, bj * logp[..., j, :], zero)
        s_i = bp[..., :, i][..., None]  # (..., G, 1)
        Li = logp[..., i, :][..., None, :]  # (..., 1, V)
        num = xwhere(s_i > 0, s_i * Li, zero[..., None, :]) + R[..., None, :]
    total = xsum(bp, axis=-1)[..., None]
    z = num / total
    m = xmax(z, axis=-1, keepdims=True)
    if bool((m == -float("inf")).any()):
        raise ValueError(
            "log_linear: agents' supports are disjoint (no token has positive probability "
            "under every agent with positive bid); the rule is undefined"
        )
    e = xexp(z - m)
    return e / xsum(e, axis=-1, keepdims=True)


def _path_aggregate(A: Any, name: str | None, d: Array, logp: Array | None, bp: Array, i: int) -> Array:
    """The aggregate along a bid path ``bp (..., G, n)`` in which only agent ``i``'s bid varies -> ``(..., G, V)``."""
    if name == "log_linear":
        return _log_linear_path(logp, bp, i)  # no (G, n, V) temporaries
    G = bp.shape[-2]
    dp = d[..., None, :, :]
    shape = tuple(bp.shape[:-2]) + (G,) + tuple(d.shape[-2:])
    dp = dp.expand(shape) if is_torch(d) else np.broadcast_to(dp, shape)
    return A(dp, bp) if name is None else A(dp, bp, validate=False)


@dataclass(frozen=True)
class CriticalPayments:
    """Expected critical-bid payments of every agent for a step.

    ``payments (..., n)``: expected payment per agent (0.0 where not monotone);
    ``monotone (..., n)``: False where the rule is not monotone for that agent on
    this step -- the payment is then *undefined* and reported as 0.0 so that no
    NaN leaks; callers must flag such steps rather than charge them.
    Same backend/device as the input ``dists``.
    """

    payments: Array
    monotone: Array


def expected_critical_payments(
    dists: ArrayLike,
    bids: ArrayLike,
    rule: RuleLike = "linear",
    *,
    n_grid: int = 17,
    atol: float = 1e-7,
) -> CriticalPayments:
    """Expected critical-bid payments of all agents of a step at once (THEORY.md section 4).

    ``dists (..., n, V)``, ``bids (..., n)`` -> :class:`CriticalPayments` with
    arrays ``(..., n)`` on the backend/device of ``dists``.

    - linear (always monotone), closed form in one pass: with ``S = sum_j b_j``,
      ``B_i = S - b_i`` and ``q`` the aggregate, ``p_i - r_i = S (p_i - q) / B_i``,
      so ``z_i = TV(p_i, q) * S * (ln(1 + b_i/B_i) - b_i/S)`` (0 when ``B_i = 0``;
      evaluated stably for small ``b_i/B_i``).
    - other rules: for each agent, one batched rule call on a grid of ``n_grid``
      bids ``b_i t^3`` in ``[0, b_i]`` (Simpson in ``t``; ``n_grid`` odd) gives ``T(s) = TV(q(s), q(0))``
      and the Myerson payment; the grid also checks monotonicity (tolerance
      ``atol``).  A non-monotone agent gets ``monotone=False`` and payment 0.0.
      The path's two ends are compared first (``q(b_i)`` must be preferred to
      ``q(0)`` by agent ``i``): where they already violate the order for every
      instance of the batch, the agent is flagged without evaluating the grid
      (on a real 262,144-token vocabulary log-linear usually fails there).
    """
    d, b = dists_and_bids(dists, bids)
    A = get_rule(rule)
    n = d.shape[-2]
    lead = tuple(np.broadcast_shapes(tuple(d.shape[:-2]), tuple(b.shape[:-1])))
    if is_torch(b):
        b = b.expand(lead + (n,))
    else:
        b = np.broadcast_to(b, lead + (n,))
    S = xsum(b, axis=-1, keepdims=True)
    B = S - b
    if rule_name(A) == "linear":
        q = linear(d, b, validate=False)
        tv = 0.5 * xsum(xabs(d - q[..., None, :]), axis=-1)
        pos = B > 0
        Bs = xwhere(pos, B, 1.0 + 0.0 * B)
        z = xwhere(pos, tv * S * _myerson_unit(b / Bs), 0.0 * b)
        mono = (b == b) if is_torch(b) else np.ones(b.shape, dtype=bool)
        return CriticalPayments(payments=z, monotone=mono)

    if n_grid < 3:
        raise ValueError(f"n_grid must be >= 3, got {n_grid}")
    if n_grid % 2 == 0:
        n_grid += 1
    t_np = np.linspace(0.0, 1.0, n_grid)
    t = like(t_np**3, d)  # graded grid s = b_i t^3
    w = like(_simpson_weights(n_grid) * 3.0 * t_np**2, d)  # Simpson weights times ds/dt / b_i
    name = rule_name(A)
    logp = xlog(d) if name == "log_linear" else None
    pays, monos = [], []
    for i in range(n):
        bi = b[..., i]
        # bids along the grid: (..., G, n) with agent i's bid = t * b_i
        if is_torch(b):
            bp = b[..., None, :].repeat(*([1] * len(lead)), n_grid, 1)
        else:
            bp = np.repeat(b[..., None, :], n_grid, axis=-2)
        bp[..., :, i] = bi[..., None] * t
        others_zero = B[..., i] == 0
        # where others are all zero (or b_i = 0) the path is degenerate: payment 0, monotone
        bp[..., 0, i] = xwhere(others_zero, bi, 0.0 * bi)
        degenerate = others_zero | (bi == 0)
        bp = xwhere(degenerate[..., None, None], b[..., None, :] + 0.0 * bp, bp)
        p_i = d[..., i, :][..., None, :]
        # cheap necessary condition first: the path's ends, q(b_i) preferred to q(0)
        ends = _path_aggregate(A, name, d, logp, bp[..., [0, n_grid - 1], :], i)
        end_viol = _token_excess(ends[..., 1:, :], ends[..., :1, :], p_i)
        end_viol = (end_viol.amax(dim=(-2, -1)) if is_torch(end_viol) else end_viol.max(axis=(-2, -1))) > atol
        end_viol = end_viol & ~degenerate
        if bool(end_viol.all()):
            pays.append(0.0 * bi)
            monos.append(~end_viol)
            continue
        qs = _path_aggregate(A, name, d, logp, bp, i)  # (..., G, V)
        T = 0.5 * xsum(xabs(qs - qs[..., :1, :]), axis=-1)  # (..., G)
        ex = _token_excess(qs[..., 1:, :], qs[..., :-1, :], p_i)
        viol = (ex.amax(dim=-1) if is_torch(ex) else ex.max(axis=-1)) > atol
        mono_i = ~(viol.any(dim=-1) if is_torch(viol) else viol.any(axis=-1)) & ~end_viol
        z = bi * T[..., -1] - bi * xsum(w * T, axis=-1)
        z = xwhere(mono_i & ~degenerate, z, 0.0 * z)
        z = xwhere(z > 0, z, 0.0 * z)  # clip Simpson round-off below 0
        pays.append(z)
        monos.append(mono_i | degenerate)
    if is_torch(d):
        return CriticalPayments(payments=torch.stack(pays, dim=-1), monotone=torch.stack(monos, dim=-1))
    return CriticalPayments(payments=np.stack(pays, axis=-1), monotone=np.stack(monos, axis=-1))
