"""Payment rules (notebooks/theory.md §4).

- :func:`pay_your_bid` -- the naive rule (each agent pays its bid per token); not truthful.
- :func:`myerson_payment` -- ``z(b) = b x(b) - int_0^b x(s) ds`` for any non-decreasing
  allocation curve ``x``.
- :func:`linear_myerson_payment` -- its closed form for the linear rule, ``x(b) = b / (b + B_{-i})``:
  ``B_{-i} ln(1 + b/B_{-i}) - b B_{-i} / (b + B_{-i})``.
- :func:`expected_critical_payments` / :func:`expected_critical_payment` -- the expected
  critical-bid (second-price, stable-sampling) payment of every agent of a step / of one
  agent: ``TV(p_i, r_{-i})`` times the closed form for linear; Myerson with the switched
  mass ``T(s) = TV(q(s), q(0))`` along the bid path for any other rule, where the step is
  flagged instead of charged if the rule is not monotone for the agent.
- :func:`kl_preference_payments` -- [project extension] payments for the log-linear rule
  under KL preferences, allocation ``x_i(b) = KL(q(0) || p_i) - KL(q(b) || p_i)``.

Integrals are computed as ``z(b) = int_0^b (x(b) - x(s)) ds`` (no cancellation between
``b x(b)`` and the integral) by adaptive Gauss-Kronrod quadrature in ``w = ln(1 + s/B_{-i})``,
in which the integrand is smooth and bounded from ``b << B_{-i}`` to ``b >> B_{-i}``
(notebooks/theory.md §7).  Bids are divided by their largest value first (payments are
homogeneous of degree 1 in the bids), so huge or tiny bids neither overflow nor underflow.
An integral that stops at the quadrature's panel limit before reaching its tolerance is not
dropped silently: the results carry a ``converged`` flag, and a :class:`~.quadrature.QuadratureWarning`
names the agent (and the decoding step, when the caller passes ``context``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .aggregation import RuleLike, bid_path, get_rule, log_linear_logprobs, others_linear_aggregate, path_bids, rule_name
from .arrays import Array, ArrayLike, as_array, is_torch, like, to_float64, to_numpy, xabs, xexp, xlog, xmax, xsum, xwhere, xzeros_like
from .divergences import tv_distance
from .monotonicity import NotMonotoneError
from .preferences import token_excess
from .quadrature import QuadratureResult, QuadratureWarning, gauss_kronrod
from .validation import as_bid_grid, as_bids, as_distributions, cast_bids, check_agent, order_atol, scale_bids

__all__ = [
    "CriticalPayments",
    "KLPayments",
    "NotMonotoneError",
    "QuadratureWarning",
    "critical_payment_curve",
    "expected_critical_payment",
    "expected_critical_payments",
    "kl_allocation",
    "kl_preference_payments",
    "linear_myerson_payment",
    "myerson_payment",
    "myerson_unit",
    "pay_your_bid",
    "payment_rtol",
    "switched_mass",
]

PAYMENT_RTOL = 1e-6
"""Default relative tolerance of the payment integrals (the quadrature's error estimate)."""


def payment_rtol(rtol: float, dists: Array) -> float:
    """``rtol`` raised to the precision that ``dists``' dtype allows (notebooks/theory.md §7).

    A float32 integrand summed over a vocabulary carries round-off near ``1e-6`` relative, so an
    error estimate below that never converges and the quadrature would halve panels to its limit:
    float32 inputs integrate to at least ``1e-4`` relative (a float32 forward pass gives about four
    significant digits), half precision to ``1e-2``, float64 to ``rtol`` as given.
    """
    if not rtol > 0:
        raise ValueError(f"rtol must be > 0, got {rtol!r}")
    floor = {torch.float16: 1e-2, torch.bfloat16: 1e-2, torch.float32: 1e-4}.get(getattr(dists, "dtype", None), 0.0)
    if isinstance(dists, np.ndarray) and dists.dtype == np.float32:
        floor = 1e-4
    return max(float(rtol), floor)

_NODE_CHUNK = 30  # nodes of the bid path evaluated at once (bounds memory at V = 262,144)


def pay_your_bid(bids: ArrayLike) -> Array:
    """Pay-your-bid: agent ``i`` pays ``b_i`` for the token (notebooks/theory.md §4).

    The naive contrast to critical-bid payments; not truthful (agents shade bids).
    Returns the validated bids as a new array, ``(..., n)``.
    """
    b = as_bids(bids)
    return b.clone() if is_torch(b) else b.copy()


def myerson_unit(x: Array) -> Array:
    """``f(x) = ln(1 + x) - x / (1 + x)``, so that the linear rule's Myerson payment is
    ``B_{-i} f(b / B_{-i})``; its series ``sum_{k>=2} (-1)^k (k-1)/k x^k`` for small ``x``."""
    small = x < 1e-2
    xs = xwhere(small, x, 0.0 * x)
    series = xs * xs * (0.5 + xs * (-2.0 / 3.0 + xs * (0.75 + xs * (-0.8 + xs * (5.0 / 6.0)))))
    log1p = torch.log1p(x) if is_torch(x) else np.log1p(x)
    return xwhere(small, series, log1p - x / (1.0 + x))


def _nonnegative(x: ArrayLike, name: str) -> Array:
    a = as_array(x, name=name)
    an = to_float64(a)
    if np.isnan(an).any():
        raise ValueError(f"{name} contains NaN")
    if np.isinf(an).any():
        raise ValueError(f"{name} contains inf")
    if (an < 0).any():
        raise ValueError(f"{name} is negative ({float(an[an < 0].ravel()[0]):.6g})")
    return a


def linear_myerson_payment(bid: ArrayLike, others_bid_total: ArrayLike) -> Array:
    """Closed-form Myerson payment of the linear rule (notebooks/theory.md §4):

    ``z(b) = B ln(1 + b/B) - b B / (b + B)`` with allocation ``x(b) = b / (b + B)``,
    ``B = B_{-i}`` the others' total bid; ``B = 0`` (no competition) gives 0.  Broadcasts;
    evaluated as ``B f(b/B)`` (:func:`myerson_unit`).
    """
    b = _nonnegative(bid, "bid")
    B = _nonnegative(others_bid_total, "others_bid_total")
    if is_torch(B) and not is_torch(b):
        b = like(b, B)
    B = like(B, b)
    pos = B > 0
    Bs = xwhere(pos, B, 1.0 + 0.0 * B)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # inf * 0 in the unused branch
        ratio = b / Bs
        # beyond 1e15, ln(1 + x) = ln b - ln B to double precision (and b / B may overflow)
        big = ratio > 1e15
        log_ratio = xlog(xwhere(big, b, 1.0 + 0.0 * b)) - xlog(xwhere(big, Bs, 1.0 + 0.0 * Bs))
        f = xwhere(big, log_ratio - 1.0, myerson_unit(xwhere(big, 0.0 * ratio, ratio)))
    z = Bs * f
    return xwhere(pos, z, 0.0 * z)


# --------------------------------------------------------------------------
# Myerson integrals by quadrature
# --------------------------------------------------------------------------
def _myerson_integral(gap: Callable[[Array], Array], bid: Array, scale: Array, rtol: float) -> QuadratureResult:
    """``int_0^bid gap(s) ds`` with ``gap(s) = x(bid) - x(s) >= 0``, in ``w = ln(1 + s/scale)``
    (``scale > 0``), for a batch of integrals ``bid (...,)``; ``gap`` receives ``s (..., K)``."""
    upper = torch.log1p(bid / scale) if is_torch(bid) else np.log1p(bid / scale)
    top = to_float64(upper)
    panels = max(1, int(np.ceil(top.max() / 2.0))) if top.size else 1  # panels of width <= 2 in w

    def integrand(w: Array) -> Array:
        s = scale[..., None] * (torch.expm1(w) if is_torch(w) else np.expm1(w))
        return gap(s) * scale[..., None] * xexp(w)

    return gauss_kronrod(integrand, xzeros_like(upper), upper, rtol=rtol, initial_panels=panels)


_NEGLIGIBLE = 1e-12
"""An error estimate below this fraction of the bid counts as converged (a payment is at most the bid)."""


def _converged(res: QuadratureResult, bid: Array) -> Array:
    """Where the integral reached its tolerance, or its error estimate is negligible against the bid."""
    return res.converged | (res.error <= _NEGLIGIBLE * bid)


def _warn_unconverged(converged: Array, what: str, rtol: float, context: str, agents: bool = True) -> None:
    """One :class:`QuadratureWarning` per agent (last axis) with an integral that did not converge."""
    ok = np.asarray(to_numpy(converged), dtype=bool)
    if ok.all():
        return
    where = f" ({context})" if context else ""
    if not agents:
        warnings.warn(f"{what}: {int((~ok).sum())} of {ok.size} integrals stopped at the quadrature's panel limit "
                      f"before reaching rtol {rtol:g}{where}; those payments may be less accurate "
                      "(notebooks/theory.md §7)", QuadratureWarning, stacklevel=3)
        return
    for i in np.flatnonzero(~ok.reshape(-1, ok.shape[-1]).all(axis=0)):
        warnings.warn(f"{what}: the payment integral of agent {i} (package index; agent {i + 1} of the text) stopped "
                      f"at the quadrature's panel limit before reaching rtol {rtol:g}{where}; the payment may be less "
                      "accurate (notebooks/theory.md §7)", QuadratureWarning, stacklevel=3)


def myerson_payment(
    allocation: Callable[[Array], ArrayLike], bid: ArrayLike, *, scale: ArrayLike | None = None,
    rtol: float = 1e-8,
) -> Array:
    """Myerson payment ``z(b) = b x(b) - int_0^b x(s) ds = int_0^b (x(b) - x(s)) ds`` (notebooks/theory.md §4).

    ``allocation`` accepts an array of bids and returns ``x`` of the same shape
    (non-decreasing in the bid).  ``bid`` may be an array: every integral is computed
    in vectorized calls ``allocation(s)``, ``s (*bid.shape, K)``.  ``scale``: the bid at
    which ``x`` changes fastest (for an allocation ``b / (b + B)``, ``B``); default
    ``bid / 1000``.  Adaptive Gauss-Kronrod in ``w = ln(1 + s / scale)``; a
    :class:`~.quadrature.QuadratureWarning` says when some integral stopped at the panel limit
    before reaching ``rtol``.
    """
    b = _nonnegative(bid, "bid")
    c = like(_nonnegative(scale, "scale"), b) if scale is not None else b / 1000.0
    c = xwhere(c > 0, c, 1.0 + 0.0 * c)

    def x_of(s: Array) -> Array:
        x = like(as_array(allocation(s), name="allocation(s)"), b)
        if tuple(x.shape) != tuple(s.shape):
            raise ValueError(f"allocation returned shape {tuple(x.shape)} for bids of shape {tuple(s.shape)}")
        if not bool(np.isfinite(to_float64(x)).all()):
            raise ValueError("allocation returned NaN or inf")
        return x

    x_b = x_of(b[..., None])[..., 0]
    res = _myerson_integral(lambda s: x_b[..., None] - x_of(s), b, c, rtol)
    _warn_unconverged(_converged(res, b), "myerson_payment", rtol, "", agents=False)
    return res.value


# --------------------------------------------------------------------------
# critical-bid payments
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class CriticalPayments:
    """Expected critical-bid payments of every agent for a step.

    ``payments (..., n)``: expected payment per agent (0.0 where not monotone);
    ``monotone (..., n)``: False where the rule is not monotone for that agent on this
    step -- the payment is then *undefined* and reported as 0.0 so that no NaN leaks;
    callers must flag such steps rather than charge them.  ``violation (..., n)``: the
    largest violation of the order found along the path (0 where monotone).
    ``converged (..., n)``: False where the payment integral stopped at the quadrature's panel
    limit before reaching its tolerance (always True for the linear rule's closed form); a
    :class:`~.quadrature.QuadratureWarning` names those agents.  Same backend and device as ``dists``.
    """

    payments: Array
    monotone: Array
    violation: Array
    converged: Array


def _rescale(z: Array, scale: np.ndarray, what: str) -> Array:
    """Payments computed with bids ``/ scale``, times ``scale`` (they are homogeneous of degree 1 in the
    bids); a clear error if the result does not fit the dtype."""
    if is_torch(z):
        out = (z.double() * torch.as_tensor(np.array(scale), device=z.device)).to(z.dtype)
    else:
        out = z * scale
    if not bool(np.isfinite(to_float64(out)).all()):
        raise ValueError(f"{what} overflow the dtype of dists ({z.dtype}) at these bids; pass float64 dists "
                         "or divide the bids by a common factor")
    return out


def _others_total(b: Array, i: int) -> Array:
    """``B_{-i}`` summed from the other agents (no ``S - b_i`` cancellation)."""
    n = b.shape[-1]
    others = [j for j in range(n) if j != i]
    return xsum(b[..., others], axis=-1) if others else xzeros_like(b[..., 0])


def _path_chunks(d: Array, b: Array, i: int, A: Callable[..., Array], s: Array, logprobs: Array | None) -> Array:
    """``q(s) (..., K, V)`` along agent ``i``'s bids ``s (..., K)``, evaluated ``_NODE_CHUNK`` nodes at a time."""
    parts = [bid_path(d, b, i, A, s[..., k: k + _NODE_CHUNK], validate=False, logprobs=logprobs)
             for k in range(0, s.shape[-1], _NODE_CHUNK)]
    return parts[0] if len(parts) == 1 else (torch.cat(parts, dim=-2) if is_torch(s) else np.concatenate(parts, axis=-2))


def _step_and_bids(dists: ArrayLike, bids: ArrayLike, scale_free: bool = True) -> tuple[Array, np.ndarray, np.ndarray]:
    """Validated ``dists (..., n, V)``, and the bids as float64 ``(lead..., n)`` with a ``scale (lead..., 1)``,
    broadcast against the leading dimensions: divided by their largest value for a ``scale_free`` (built-in)
    rule, as given (scale 1) for a user rule, which may depend on more than the bid shares."""
    d = as_distributions(dists)
    n = d.shape[-2]
    b = as_bids(bids, n)
    b64, scale = scale_bids(b) if scale_free else (to_float64(b), np.ones(to_float64(b).shape[:-1] + (1,)))
    lead = tuple(np.broadcast_shapes(tuple(d.shape[:-2]), tuple(b64.shape[:-1])))
    return d, np.broadcast_to(b64, lead + (n,)), np.broadcast_to(scale, lead + (1,))


def _others_totals(b: Array) -> Array:
    """``(..., n)``: ``B_{-i}`` of every agent."""
    return _stack_last([_others_total(b, i) for i in range(b.shape[-1])])


def _linear_critical(d: Array, b64: np.ndarray, scale: np.ndarray) -> CriticalPayments:
    """Closed form ``z_i = TV(p_i, r_{-i}) B_{-i} f(b_i / B_{-i})``: ``r_{-i}`` summed from the others, the
    Myerson factor in float64 from the float64 bids (however lopsided), times the bids' scale."""
    tv = tv_distance(d, others_linear_aggregate(d, b64, validate=False), validate=False)
    factor = linear_myerson_payment(b64, _others_totals(b64)) * scale
    z = tv * like(factor, tv)
    if not bool(np.isfinite(to_float64(z)).all()):
        raise ValueError(f"payments overflow the dtype of dists ({d.dtype}) at these bids; pass float64 dists "
                         "or divide the bids by a common factor")
    mono = (z == z) if is_torch(z) else np.ones(z.shape, dtype=bool)
    return CriticalPayments(payments=z, monotone=mono, violation=0.0 * z, converged=mono)


def expected_critical_payments(
    dists: ArrayLike,
    bids: ArrayLike,
    rule: RuleLike = "linear",
    *,
    rtol: float = PAYMENT_RTOL,
    atol: float | None = None,
    logprobs: Array | None = None,
    context: str = "",
) -> CriticalPayments:
    """Expected critical-bid payments of all agents of a step at once (notebooks/theory.md §4).

    ``dists (..., n, V)``, ``bids (..., n)`` -> :class:`CriticalPayments` with arrays
    ``(..., n)`` on the backend and device of ``dists``.

    - linear (always monotone), closed form: ``z_i = TV(p_i, r_{-i}) (B ln(1 + b_i/B) - b_i B / (b_i + B))``,
      ``B = B_{-i}``, ``r_{-i}`` the others' aggregate computed from the others directly.
    - any other rule: Myerson with the switched mass ``T(s) = TV(q(s), q(0))`` as the
      allocation; on a monotone path ``T(b) - T(s) = TV(q(b), q(s))``, so
      ``z = int_0^b TV(q(b), q(s)) ds`` (adaptive quadrature to ``rtol``, at least the precision of the dtype: :func:`payment_rtol`).  The path's two
      ends are compared first (``q(b_i)`` must be preferred to ``q(0)``); then every
      quadrature node ``s`` must satisfy ``q(b_i) >=_i q(s) >=_i q(0)``, and the first
      round's nodes, in order, must be successively preferred.  A violation beyond ``atol``
      (default :func:`~.validation.order_atol`) flags the agent: ``monotone=False``, payment 0.
    - ``logprobs``: the same distributions as log-probabilities (the engine passes its
      ``log_softmax``); the log-linear rule is then evaluated in log space, exactly even
      where float32 probabilities underflow.
    - ``context``: where the step comes from (the engine passes the auction and the step), added
      to the :class:`~.quadrature.QuadratureWarning` of an integral that did not converge
      (``converged`` is False for that agent).

    ``b_i = 0`` or ``B_{-i} = 0`` (no competition) gives 0.
    """
    A = get_rule(rule)
    d, b64, scale = _step_and_bids(dists, bids, scale_free=rule_name(A) is not None)
    if rule_name(A) == "linear":
        return _linear_critical(d, b64, scale)
    bn = cast_bids(b64, d, strict=True)
    atol = order_atol(d) if atol is None else atol
    rtol = payment_rtol(rtol, d)
    pays, monos, viols, convs = zip(*(_critical_one_agent(d, bn, i, A, rtol, atol, logprobs) for i in range(d.shape[-2])))
    converged = _stack_last(list(convs))
    _warn_unconverged(converged, "expected_critical_payments", rtol, context)
    return CriticalPayments(payments=_rescale(_stack_last(list(pays)), scale, "payments"),
                            monotone=_stack_last(list(monos)), violation=_stack_last(list(viols)), converged=converged)


def _excess_max(q_new: Array, q_old: Array, p_i: Array) -> Array:
    return xmax(token_excess(q_new, q_old, p_i), axis=-1)


def _critical_one_agent(
    d: Array, b: Array, i: int, A: Callable[..., Array], rtol: float, atol: float, logprobs: Array | None
) -> tuple[Array, Array, Array, Array]:
    """Payment, monotone flag, worst violation and convergence flag of agent ``i`` for a batch (bids normalized)."""
    bi = b[..., i]
    B = _others_total(b, i)
    degenerate = (bi == 0) | (B == 0)
    live = ~degenerate
    # the ends: q(0) and q(b_i); degenerate instances get a harmless path (their payment is 0)
    s0 = xwhere(B == 0, bi, 0.0 * bi)
    ends = _path_chunks(d, b, i, A, _stack_last([s0, bi]), logprobs)
    q0, qb = ends[..., 0, :], ends[..., 1, :]
    p_i = d[..., i, :]
    viol = xwhere(live, _excess_max(qb, q0, p_i), 0.0 * bi)
    ok = live & (viol <= atol)
    if not bool(ok.any()):
        return 0.0 * bi, ~(live & (viol > atol)), viol, bi == bi
    first_round: list[Array] = []

    def gap(s: Array) -> Array:
        qs = _path_chunks(d, b, i, A, s, logprobs)  # (..., K, V)
        worst = xmax(token_excess(qs, q0[..., None, :], p_i[..., None, :]), axis=-1)
        worst = xmax(_stack_last([worst, xmax(token_excess(qb[..., None, :], qs, p_i[..., None, :]), axis=-1)]), axis=-1)
        if not first_round:  # the first round's nodes, in increasing order of s, successively
            first_round.append(_successive_excess(qs, s, p_i))
        viol_nodes.append(xmax(worst, axis=-1))
        return tv_distance(qb[..., None, :], qs, validate=False)

    viol_nodes: list[Array] = []
    B_safe = xwhere(B > 0, B, 1.0 + 0.0 * B)
    res = _myerson_integral(lambda s: gap(xwhere(ok[..., None], s, bi[..., None] + 0.0 * s)), xwhere(ok, bi, 0.0 * bi),
                            B_safe, rtol)
    path_viol = xmax(_stack_last(viol_nodes + first_round), axis=-1)
    viol = xwhere(ok, path_viol, viol)
    mono = ~(live & (viol > atol))
    z = xwhere(mono & live, res.value, 0.0 * bi)
    converged = _converged(res, bi) | ~(mono & live)
    return xwhere(z > 0, z, 0.0 * z), mono, viol, converged


def _successive_excess(qs: Array, s: Array, p_i: Array) -> Array:
    """Worst violation between successive path points, the points ``qs (..., K, V)`` taken in the order of ``s (..., K)``."""
    order = torch.argsort(s, dim=-1) if is_torch(s) else np.argsort(s, axis=-1)
    idx = order[..., :, None].expand(qs.shape) if is_torch(qs) else np.broadcast_to(order[..., :, None], qs.shape)
    sorted_q = torch.gather(qs, -2, idx) if is_torch(qs) else np.take_along_axis(qs, idx, axis=-2)
    ex = token_excess(sorted_q[..., 1:, :], sorted_q[..., :-1, :], p_i[..., None, :])
    return xmax(xmax(ex, axis=-1), axis=-1)


def _stack_last(xs: list[Array]) -> Array:
    return torch.stack(xs, dim=-1) if is_torch(xs[0]) else np.stack(xs, axis=-1)


def expected_critical_payment(
    dists: ArrayLike,
    bids: ArrayLike,
    agent: int,
    rule: RuleLike = "linear",
    *,
    rtol: float = PAYMENT_RTOL,
    atol: float | None = None,
) -> float:
    """Expected critical-bid payment of one agent for one step ``dists (n, V)``, ``bids (n,)``
    (notebooks/theory.md §4): :func:`expected_critical_payments` for that agent.

    Raises :class:`NotMonotoneError` where the rule is not monotone for the agent on this step.
    """
    d = as_distributions(dists)
    if d.ndim != 2:
        raise ValueError(f"expected_critical_payment takes one step dists (n, V), got shape {tuple(d.shape)}")
    agent = check_agent(agent, d.shape[0])
    cp = expected_critical_payments(d, bids, rule, rtol=rtol, atol=atol)
    if not bool(cp.monotone[agent]):
        bi = float(to_float64(as_bids(bids))[agent])
        raise NotMonotoneError.on_step(agent, 0.0, bi, float(cp.violation[agent]), "the critical-bid payment")
    return float(cp.payments[agent])


def switched_mass(
    dists: ArrayLike, bids: ArrayLike, agent: int, rule: RuleLike, bid_grid: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """``T(s) = TV(q(s), q(0))`` along agent ``agent``'s bid grid, and the per-step excess of the order.

    Returns ``(T (G,), excess (G-1,))`` as numpy arrays for one instance; ``excess[k] > 0``
    means ``q(grid[k+1])`` is not weakly preferred to ``q(grid[k])``.
    """
    g = as_bid_grid(bid_grid)
    qs = to_float64(bid_path(dists, bids, agent, rule, g))
    p_i = to_float64(as_array(dists))[agent]
    T = tv_distance(qs, qs[:1], validate=False)
    ex = token_excess(qs[1:], qs[:-1], p_i[None, :]).max(-1) if len(g) > 1 else np.zeros(0)
    return T, ex


def critical_payment_curve(
    dists: ArrayLike, bids: ArrayLike, agent: int, rule: RuleLike, bid_grid: ArrayLike
) -> np.ndarray:
    """Expected critical-bid payment ``z(s) = s T(s) - int_0^s T`` at every point of a grid
    that starts at 0, the integral by the trapezoid rule *on the grid* (so that ``z`` moves
    exactly where ``T`` does: the object the payment-monotonicity checks compare)."""
    g = as_bid_grid(bid_grid)
    if g[0] != 0:
        raise ValueError("bid_grid must start at 0")
    T, _ = switched_mass(dists, bids, agent, rule, g)
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (T[1:] + T[:-1]) * np.diff(g))])
    return g * T - integral


# --------------------------------------------------------------------------
# [project extension] KL-preference payments for the log-linear rule
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class KLPayments:
    """KL-preference payments of every agent for a step (notebooks/theory.md §4, [project extension]).

    ``payments (..., n)``; ``allocation (..., n)``: ``x_i(b_i) = KL(q(0) || p_i) - KL(q(b) || p_i)``
    in nats; ``monotone (..., n)``: ``x_i`` was non-decreasing at every quadrature node
    (it is in theory; False would flag a numerical problem); ``converged (..., n)``: False where
    the payment integral stopped at the quadrature's panel limit before reaching its tolerance
    (a :class:`~.quadrature.QuadratureWarning` names those agents).
    """

    payments: Array
    allocation: Array
    monotone: Array
    converged: Array


def _kl_to(logq: Array, logp_i: Array) -> Array:
    """``KL(q || p_i)`` from log-probabilities (``q = 0`` terms are 0)."""
    q = xexp(logq)
    diff = xwhere(q > 0, logq - logp_i, 0.0 * logq)
    return xsum(q * diff, axis=-1)


def _log_path(logp: Array, b: Array, i: int, s: Array) -> Array:
    """``log q(s) (..., K, V)`` of the log-linear rule along agent ``i``'s bids ``s (..., K)``."""
    return log_linear_logprobs(logp[..., None, :, :], path_bids(b, i, s))


def kl_allocation(
    dists: ArrayLike, bids: ArrayLike, agent: int, bid_grid: ArrayLike, *, logprobs: Array | None = None
) -> Array:
    """``x_i(s) = KL(q(0) || p_i) - KL(q(s) || p_i)`` of the log-linear rule at every bid ``s`` of a grid.

    ``dists (n, V)``, ``bids (n,)``, ``bid_grid (G,)`` -> ``(G,)`` in nats (notebooks/theory.md §4):
    ``x_i(0) = 0`` and ``x_i`` is non-decreasing.  Raises :class:`ValueError` where
    ``KL(q(0) || p_i)`` is infinite (agent ``i`` gives probability 0 to a token the
    others write) or where nobody else bids.
    """
    d = as_distributions(dists)
    if d.ndim != 2:
        raise ValueError(f"kl_allocation takes one step dists (n, V), got shape {tuple(d.shape)}")
    g64 = as_bid_grid(bid_grid)
    b64 = to_float64(as_bids(bids, d.shape[0], allow_all_zero=True))
    scale = max(float(b64.max()), float(g64.max())) or 1.0
    b = like(b64 / scale, d)
    agent = check_agent(agent, d.shape[0])
    if float(to_float64(_others_total(b, agent))) == 0.0:
        raise ValueError(f"kl_allocation: no agent but {agent} bids, so the aggregate at bid 0 is undefined")
    g = like(g64 / scale, d)
    logp = xlog(d) if logprobs is None else logprobs
    logp_i = logp[agent]
    kl0 = _kl_to(_log_path(logp, b, agent, 0.0 * g[:1])[0], logp_i)
    if not bool(np.isfinite(to_float64(kl0))):
        raise ValueError(f"kl_allocation: KL(q(0) || p_{agent}) is infinite: agent {agent} gives probability 0 "
                         "to a token the others' aggregate writes")
    return kl0 - _kl_to(_log_path(logp, b, agent, g), logp_i[None, :])


def kl_preference_payments(
    dists: ArrayLike,
    bids: ArrayLike,
    *,
    rtol: float = PAYMENT_RTOL,
    logprobs: Array | None = None,
    context: str = "",
) -> KLPayments:
    """[project extension] Myerson payments of the log-linear rule under KL preferences (notebooks/theory.md §4).

    Agent ``i``'s allocation is ``x_i(b) = KL(q(0) || p_i) - KL(q(b) || p_i)``, where ``q(0)`` is
    the aggregate with agent ``i``'s bid at 0: how many nats closer to ``p_i`` its bid moves
    the aggregate.  ``x_i(0) = 0`` and ``x_i`` is non-decreasing, so Myerson's
    ``z_i(b) = b x_i(b) - int_0^b x_i(s) ds`` is truthful and individually rational for an
    agent whose value is ``v`` per nat, and a zero bid pays 0.  Computed as
    ``int_0^b (KL(q(s) || p_i) - KL(q(b) || p_i)) ds`` by adaptive quadrature to ``rtol`` (at least :func:`payment_rtol`).
    ``logprobs``: the same distributions as log-probabilities (evaluated in log space).
    ``context``: where the step comes from, added to the :class:`~.quadrature.QuadratureWarning` of
    an integral that did not converge (``converged`` is False for that agent).
    """
    d, b64, scale = _step_and_bids(dists, bids)
    n = d.shape[-2]
    bn = cast_bids(b64, d, strict=True)
    rtol = payment_rtol(rtol, d)
    logp = xlog(d) if logprobs is None else logprobs
    pays, allocs, monos, convs = zip(*(_kl_one_agent(logp, bn, i, rtol) for i in range(n)))
    converged = _stack_last(list(convs))
    _warn_unconverged(converged, "kl_preference_payments", rtol, context)
    return KLPayments(payments=_rescale(_stack_last(list(pays)), scale, "payments"),
                      allocation=_stack_last(list(allocs)), monotone=_stack_last(list(monos)), converged=converged)


def _kl_one_agent(logp: Array, b: Array, i: int, rtol: float) -> tuple[Array, Array, Array, Array]:
    bi = b[..., i]
    B = _others_total(b, i)
    live = (bi > 0) & (B > 0)
    B_safe = xwhere(B > 0, B, 1.0 + 0.0 * B)
    logp_i = logp[..., i, :]
    if not bool(live.any()):
        zero = 0.0 * bi
        everywhere = (bi == bi) if is_torch(bi) else np.ones(bi.shape, dtype=bool)
        return zero, zero, everywhere, everywhere
    s0 = xwhere(B == 0, bi, 0.0 * bi)  # without competition the path is flat: any bid will do
    ends = _log_path(logp, b, i, _stack_last([s0, bi]))
    # instances without competition: q does not depend on b_i, the allocation is 0
    kl0 = xwhere(live, _kl_to(ends[..., 0, :], logp_i), 0.0 * bi)
    if not bool(np.isfinite(to_float64(kl0)).all()):
        raise ValueError(f"kl_preference_payments: KL(q(0) || p_{i}) is infinite: agent {i} gives probability 0 "
                         "to a token the others' aggregate writes")
    klb = xwhere(live, _kl_to(ends[..., 1, :], logp_i), 0.0 * bi)
    x_b = xwhere(live, kl0 - klb, 0.0 * bi)
    worst: list[Array] = [xwhere(live, -x_b, 0.0 * bi)]

    def gap(s: Array) -> Array:
        parts = [_kl_to(_log_path(logp, b, i, s[..., k: k + _NODE_CHUNK]), logp_i[..., None, :])
                 for k in range(0, s.shape[-1], _NODE_CHUNK)]
        kl_s = parts[0] if len(parts) == 1 else (torch.cat(parts, -1) if is_torch(s) else np.concatenate(parts, -1))
        g = kl_s - klb[..., None]  # x(b) - x(s)
        worst.append(xmax(xwhere(live[..., None], -g, 0.0 * g), axis=-1))
        return xwhere(g > 0, g, 0.0 * g)

    res = _myerson_integral(lambda s: gap(xwhere(live[..., None], s, bi[..., None] + 0.0 * s)),
                            xwhere(live, bi, 0.0 * bi), B_safe, rtol)
    tol = 1e-9 + 1e-6 * xabs(x_b)
    mono = xmax(_stack_last(worst), axis=-1) <= tol
    z = xwhere(live, res.value, 0.0 * bi)
    return xwhere(z > 0, z, 0.0 * z), x_b, mono, _converged(res, bi) | ~live

