"""The two incentive properties of a mechanism (aggregation + payment rule)
along one agent's bids (theory chapter §3, [project] formalization).

Fix agent ``i`` and the others' bids; write ``q(b)``, ``z(b)`` for the outcome
and payment at bid ``b``:

- *consistent aggregation*: ``b < b'`` implies ``q(b') >=_i q(b)`` (higher bids
  never give an outcome ranked lower, and reachable outcomes are comparable);
- *payment monotonicity*: ``z(0) = 0``, ``z`` non-decreasing, and
  ``z(b') > z(b)`` iff ``q(b') >_i q(b)`` for ``b < b'``.

Both are checked exactly on a bid grid.  :func:`verify_incentive_equivalence`
checks the equivalence of the theory chapter §3 both ways for a rule: a monotone
rule with the critical-bid payments satisfies both; a non-monotone rule fails
consistent aggregation (a property of ``q`` alone), so no payment rule can
satisfy both, and the counterexample pair is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.optimize import linprog

from .aggregation import RuleLike, bid_path, get_rule
from .arrays import ArrayLike, to_float64
from .monotonicity import check_bid_path
from .payments import critical_payment_curve, linear_myerson_payment
from .preferences import token_excess
from .validation import as_bid_grid

__all__ = [
    "ConsistencyReport",
    "EquivalenceReport",
    "PaymentMonotonicityReport",
    "PaymentFeasibilityReport",
    "consistent_aggregation",
    "payment_feasibility",
    "payment_monotonicity",
    "utility_curves",
    "verify_incentive_equivalence",
]


@dataclass(frozen=True)
class ConsistencyReport:
    """Consistent aggregation along ``bid_grid`` for one agent.

    ``holds``; ``n_pairs`` checked (all ``k < l``); ``violation``: the worst pair
    ``(k, l)`` with ``q(grid[l])`` not weakly preferred to ``q(grid[k])`` (or
    ``None``), its ``amount`` and worst ``token``; ``incomparable_pairs``: how many
    pairs are not comparable at all.
    """

    holds: bool
    n_pairs: int
    violation: tuple[int, int] | None
    amount: float
    token: int | None
    incomparable_pairs: int
    bid_grid: np.ndarray = field(repr=False)
    qs: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class PaymentMonotonicityReport:
    """Payment monotonicity along ``bid_grid`` for one agent.

    ``holds`` = ``zero_at_zero and non_decreasing and iff_holds``; ``violations``
    lists up to 10 offending pairs ``(k, l, reason)``.
    """

    holds: bool
    zero_at_zero: bool
    non_decreasing: bool
    iff_holds: bool
    n_pairs: int
    violations: list[tuple[int, int, str]]
    payments: np.ndarray = field(repr=False)


def _path(dists: ArrayLike, bids: ArrayLike, agent: int, rule: RuleLike, bid_grid: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = as_bid_grid(bid_grid)
    if len(g) < 2:
        raise ValueError("bid_grid needs at least 2 bids")
    qs = to_float64(bid_path(dists, bids, agent, rule, g))
    if qs.ndim != 2:
        raise ValueError(f"incentive checks take one instance dists (n, V); got a path of shape {qs.shape}")
    return g, qs, to_float64(dists)[agent]


def _pairwise_excess(qs: np.ndarray, p_i: np.ndarray) -> np.ndarray:
    """``E[k, l, t]``: excess of ``q_l(t)`` outside ``[q_k(t), p_i(t)]``."""
    return token_excess(qs[None, :, :], qs[:, None, :], p_i[None, None, :])


def consistent_aggregation(
    dists: ArrayLike, bids: ArrayLike, agent: int, rule: RuleLike, bid_grid: ArrayLike, *, atol: float = 1e-9
) -> ConsistencyReport:
    """Check consistent aggregation for ``agent`` on ``bid_grid`` (all pairs ``k < l``)."""
    g, qs, p_i = _path(dists, bids, agent, rule, bid_grid)
    E = _pairwise_excess(qs, p_i)  # (G, G, V)
    amt = E.max(-1)
    G = len(g)
    upper = np.triu(np.ones((G, G), dtype=bool), 1)
    bad = (amt > atol) & upper
    comparable = (amt <= atol) | (amt.T <= atol)
    incomparable = int((~comparable & upper).sum())
    if bad.any():
        k, l = np.unravel_index(int(np.argmax(np.where(upper, amt, -1.0))), amt.shape)
        return ConsistencyReport(
            holds=False, n_pairs=int(upper.sum()), violation=(int(k), int(l)), amount=float(amt[k, l]),
            token=int(E[k, l].argmax()), incomparable_pairs=incomparable, bid_grid=g, qs=qs,
        )
    return ConsistencyReport(
        holds=True, n_pairs=int(upper.sum()), violation=None, amount=float(np.max(np.where(upper, amt, 0.0))),
        token=None, incomparable_pairs=incomparable, bid_grid=g, qs=qs,
    )


def payment_monotonicity(
    dists: ArrayLike,
    bids: ArrayLike,
    agent: int,
    rule: RuleLike,
    bid_grid: ArrayLike,
    payments: ArrayLike | Callable[[np.ndarray], ArrayLike] | None = None,
    *,
    atol: float = 1e-9,
    payment_atol: float = 1e-12,
) -> PaymentMonotonicityReport:
    """Check payment monotonicity for ``agent`` on ``bid_grid``.

    ``payments``: values ``z(grid)`` ``(G,)``, or a function of the grid, or
    ``None`` for the expected critical-bid payments (Myerson with
    ``T(s) = TV(q(s), q(0))``; the grid must then start at 0).  Checks
    ``z(0) = 0`` (when the grid starts at 0), ``z`` non-decreasing, and for every
    pair ``k < l``: ``z_l > z_k`` iff ``q_l >_i q_k`` (payments compared with
    ``payment_atol``, outcomes with ``atol``).
    """
    g, qs, p_i = _path(dists, bids, agent, rule, bid_grid)
    if payments is None:
        z = critical_payment_curve(dists, bids, agent, rule, g)
    else:
        z = to_float64(payments(g) if callable(payments) else payments)
    if z.shape != g.shape:
        raise ValueError(f"payments has shape {z.shape}, expected {g.shape} (one per grid bid)")
    if not np.isfinite(z).all():
        raise ValueError("payments contain NaN or inf")
    E = _pairwise_excess(qs, p_i)
    weak = E.max(-1) <= atol
    moved = np.abs(qs[None, :, :] - qs[:, None, :]).max(-1) > atol
    strict = weak & moved  # strict[k, l]: q_l >_i q_k
    G = len(g)
    viol: list[tuple[int, int, str]] = []
    zero_ok = True
    if g[0] == 0 and abs(z[0]) > payment_atol:
        zero_ok = False
        viol.append((0, 0, f"z(0) = {z[0]:.6g}, expected 0"))
    nondec = bool((np.diff(z) >= -payment_atol).all())
    if not nondec:
        k = int(np.argmax(np.diff(z) < -payment_atol))
        viol.append((k, k + 1, f"payment decreases {z[k]:.6g} -> {z[k + 1]:.6g}"))
    iff = True
    for k in range(G):
        for l in range(k + 1, G):
            if g[l] == g[k]:
                continue
            pays_more = z[l] - z[k] > payment_atol
            if pays_more != bool(strict[k, l]):
                iff = False
                if len(viol) < 10:
                    why = (
                        f"pays more ({z[k]:.6g} -> {z[l]:.6g}) without a strictly preferred outcome"
                        if pays_more
                        else "strictly preferred outcome without paying more"
                    )
                    viol.append((k, l, why))
    return PaymentMonotonicityReport(
        holds=zero_ok and nondec and iff, zero_at_zero=zero_ok, non_decreasing=nondec, iff_holds=iff,
        n_pairs=G * (G - 1) // 2, violations=viol, payments=z,
    )


@dataclass(frozen=True)
class EquivalenceReport:
    """Result of :func:`verify_incentive_equivalence`.

    ``monotone``: the rule is monotone for the agent on the grid;
    ``consistency``: the consistent-aggregation report;
    ``critical_payments``: payment-monotonicity report of the critical-bid
    payments; ``equivalence_holds``: the section-3 statement checks out on this
    instance (monotone and both properties hold with critical-bid payments, or
    not monotone and consistent aggregation fails -- then no payment can satisfy
    both); ``counterexample``: for a non-monotone rule, the pair of bids
    ``(b, b')`` and the token showing it.
    """

    monotone: bool
    consistency: ConsistencyReport
    critical_payments: PaymentMonotonicityReport
    equivalence_holds: bool
    counterexample: tuple[float, float, int] | None
    explanation: str


def verify_incentive_equivalence(
    dists: ArrayLike,
    bids: ArrayLike,
    agent: int,
    rule: RuleLike,
    bid_grid: ArrayLike,
    *,
    atol: float = 1e-9,
    payment_atol: float = 1e-12,
) -> EquivalenceReport:
    """Verify the equivalence of the theory chapter §3 for ``rule`` on one instance, both ways.

    - monotone on the grid  ->  critical-bid payments satisfy both properties;
    - not monotone          ->  consistent aggregation fails (with the
      counterexample), so no payment rule satisfies both; the critical-bid
      payment candidate is checked as well for illustration.
    ``bid_grid`` must start at 0.  ``atol`` decides when an outcome moved (strict
    improvement), ``payment_atol`` when a payment rose.  On paths that level off
    (an outcome moving by less than ``atol`` while the payment still rises by more
    than ``payment_atol``) the two tolerances must be chosen together: a rise of
    the critical-bid payment between bids ``b < b'`` is at most ``b' * TV(q(b), q(b'))``.
    """
    A = get_rule(rule)
    g = as_bid_grid(bid_grid)
    if g[0] != 0:
        raise ValueError("bid_grid must start at 0")
    mono = check_bid_path(dists, bids, agent, A, g, atol=atol).is_monotone
    cons = consistent_aggregation(dists, bids, agent, A, g, atol=atol)
    pm = payment_monotonicity(dists, bids, agent, A, g, None, atol=atol, payment_atol=payment_atol)
    if mono:
        ok = cons.holds and pm.holds
        cex = None
        expl = (
            "monotone: critical-bid payments satisfy consistent aggregation and payment monotonicity"
            if ok
            else "monotone, but a property failed on this grid (check tolerances)"
        )
    elif cons.violation is None or cons.token is None:  # not monotone, yet every pair is consistent
        ok, cex = False, None
        expl = "not monotone on the grid, yet consistent aggregation holds: check the tolerances"
    else:
        ok = not cons.holds
        k, l = cons.violation
        cex = (float(g[k]), float(g[l]), cons.token)
        expl = (
            f"not monotone: raising the bid {g[k]:.6g} -> {g[l]:.6g} moves token {cons.token} "
            f"{cons.qs[k, cons.token]:.6g} -> {cons.qs[l, cons.token]:.6g} away from p_i = "
            f"{to_float64(dists)[agent, cons.token]:.6g}; consistent aggregation "
            "fails, so no payment rule satisfies both properties"
            + ("" if pm.holds else " (the critical-bid payment candidate also breaks payment monotonicity)")
        )
    return EquivalenceReport(
        monotone=mono, consistency=cons, critical_payments=pm, equivalence_holds=ok, counterexample=cex, explanation=expl
    )


def utility_curves(
    critical_bids: ArrayLike, tv: ArrayLike, others_bid_total: ArrayLike, value: float, bid_grid: ArrayLike
) -> dict[str, np.ndarray]:
    """Expected utility per token of an agent with value ``v`` per switched token, for every bid of a grid.

    theory chapter §4, linear rule with stable sampling.  Inputs, for ``S`` steps
    and ``M`` stable-sampling draws per step:

    - ``critical_bids (S, M)``: per draw the smallest bid at which the token switches
      to the agent's draw (``inf`` where it never does);
    - ``tv (S,)``, ``others_bid_total (S,)``: ``TV(p_i, r_i)`` and ``B_i`` of each step.

    Returns arrays over ``bid_grid``, averaged over steps (Monte Carlo over the draws):

    - ``"critical bid"``: ``E[(v - c) 1{c <= b}]``, pay the critical bid when switched;
    - ``"critical bid (exact)"``: ``mean_s TV_s (v b / (b + B_s) - Myerson(b, B_s))``;
    - ``"first price on switch"``: ``E[(v - b) 1{c <= b}]``, pay the bid when switched;
    - ``"pay-your-bid"``: ``E[v 1{c <= b}] - b``, pay the bid on every token.

    The first two are maximized at ``b = v`` (truthfulness); the other two are not.
    """
    c = np.sort(to_float64(critical_bids).ravel())
    if c.size == 0 or np.isnan(c).any() or (c < 0).any():
        raise ValueError("critical_bids must be a non-empty array of bids >= 0 (inf where never switched), without NaN")
    grid = as_bid_grid(bid_grid)
    tv_a = to_float64(tv).reshape(-1, 1)
    B = to_float64(others_bid_total).reshape(-1, 1)
    if tv_a.shape != B.shape or not (np.isfinite(tv_a).all() and (tv_a >= 0).all() and (tv_a <= 1 + 1e-12).all()):
        raise ValueError("tv must be values in [0, 1], one per step, like others_bid_total")
    if not (np.isfinite(B).all() and (B > 0).all()):
        raise ValueError("others_bid_total must be finite and > 0 at every step")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"value must be a finite number > 0, got {value!r}")
    n = c.size
    k = np.searchsorted(c, grid, side="right")  # draws switched at bid b
    paid = np.r_[0.0, np.cumsum(np.where(np.isfinite(c), c, 0.0))][k]  # sum of their critical bids
    exact = np.mean(tv_a * (value * grid / (grid + B) - linear_myerson_payment(grid[None, :], B)), axis=0)
    return {
        "critical bid": (value * k - paid) / n,
        "critical bid (exact)": exact,
        "first price on switch": (value - grid) * k / n,
        "pay-your-bid": value * k / n - grid,
    }


# --------------------------------------------------------------------------
# can ANY payment satisfy payment monotonicity? (a linear program on the grid)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class PaymentFeasibilityReport:
    """Result of :func:`payment_feasibility` for one agent along ``bid_grid``.

    ``feasible``: some payment vector ``z (G,)`` satisfies payment monotonicity on the
    grid (decided by the linear program; ``margin`` is its optimum, 1 when feasible and
    0 when not).  ``n_strict`` of the ``n_pairs`` pairs ``k < l`` have
    ``q(b_l) >_i q(b_k)`` (the payment must rise); on all the others it must stay equal.
    ``witness``: a feasible ``z`` (integers: 0 on the first block of bids that must pay
    the same, then 1, 2, ...), or ``None``.  ``chain``: when infeasible, the certificate
    ``[(k, l, reason), (a_1, c_1, reason), ...]``: ``q(b_l) >_i q(b_k)`` forces
    ``z(b_l) > z(b_k)``, while each later pair ``(a, c)`` is not a strict improvement and
    forces ``z(b_c) = z(b_a)``; these intervals ``[a, c]`` overlap and cover ``[k, l]``,
    so with ``z`` non-decreasing ``z(b_k) = z(b_l)``: a contradiction.
    """

    feasible: bool
    margin: float
    n_pairs: int
    n_strict: int
    witness: np.ndarray | None
    chain: list[tuple[int, int, str]]
    bid_grid: np.ndarray = field(repr=False)
    qs: np.ndarray = field(repr=False)

    def describe(self) -> str:
        """The certificate in words, one line per pair (or the witness when feasible)."""
        g = self.bid_grid
        if self.feasible:
            return f"feasible: z = {np.array2string(self.witness)} on bids {np.array2string(g, precision=3)}"
        (k, l, why), rest = self.chain[0], self.chain[1:]
        lines = [f"q({g[l]:.4g}) >_i q({g[k]:.4g}) ({why}): z({g[l]:.4g}) > z({g[k]:.4g})"]
        lines += [f"q({g[c]:.4g}) not >_i q({g[a]:.4g}) ({why}): z({g[c]:.4g}) = z({g[a]:.4g})" for a, c, why in rest]
        lines.append(f"z non-decreasing, so these equalities force z({g[k]:.4g}) = z({g[l]:.4g}): contradiction")
        return "\n".join(lines)


def _strict_pairs(qs: np.ndarray, p_i: np.ndarray, atol: float) -> tuple[np.ndarray, np.ndarray]:
    """``strict[k, l]``: ``q_l >_i q_k``; ``excess[k, l]``: how far ``q_l`` lies outside the intervals."""
    excess = _pairwise_excess(qs, p_i).max(-1)
    moved = np.abs(qs[None, :, :] - qs[:, None, :]).max(-1) > atol
    return (excess <= atol) & moved, excess


def _payment_lp(strict: np.ndarray) -> float:
    """``max eps`` over ``z (G,)``, ``eps in [0, 1]``: ``z_0 = 0``, ``z`` non-decreasing,
    ``z_l >= z_k + eps`` on strict pairs, ``z_l <= z_k`` on the others; feasible iff ``eps > 0``."""
    G = strict.shape[0]
    k, l = np.triu_indices(G, 1)
    rows = np.zeros((len(k) + G - 1, G + 1))
    pairs = np.arange(len(k))
    s = strict[k, l]
    rows[pairs, k] = np.where(s, 1.0, -1.0)  # strict: z_k - z_l + eps <= 0; else z_l - z_k <= 0
    rows[pairs, l] = np.where(s, -1.0, 1.0)
    rows[pairs, G] = s.astype(float)
    steps = np.arange(G - 1)
    rows[len(k) + steps, steps], rows[len(k) + steps, steps + 1] = 1.0, -1.0  # z_k - z_{k+1} <= 0
    a_eq = np.zeros((1, G + 1))
    a_eq[0, 0] = 1.0
    cost = np.zeros(G + 1)
    cost[G] = -1.0
    res = linprog(cost, A_ub=rows, b_ub=np.zeros(len(rows)), A_eq=a_eq, b_eq=[0.0],
                  bounds=[(0.0, float(G))] * G + [(0.0, 1.0)], method="highs")
    if res.status != 0:
        raise RuntimeError(f"payment_feasibility: the linear program failed ({res.message})")
    return float(res.x[G]) + 0.0  # no -0.0


def _reach(strict: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every grid index ``m``: the furthest end ``c`` of a non-strict pair ``(a, c)`` with ``a <= m``
    (``m`` itself if none reaches further), and that pair's start ``a``.  A non-strict pair forces ``z``
    constant on ``[a, c]`` (``z`` is non-decreasing)."""
    G = strict.shape[0]
    k, l = np.nonzero(np.triu(~strict, 1))
    own = np.arange(G)
    np.maximum.at(own, k, l)  # furthest end of a pair starting at m
    best_c, best_a = own.copy(), np.arange(G)
    for m in range(1, G):
        if best_c[m - 1] >= best_c[m]:  # ties: the earliest start
            best_c[m], best_a[m] = best_c[m - 1], best_a[m - 1]
    return best_a, best_c


def _equal_blocks(best_c: np.ndarray) -> np.ndarray:
    """Block index of every grid bid: overlapping intervals of non-strict pairs merge into blocks
    on which ``z`` must be constant."""
    block = np.zeros(len(best_c), dtype=int)
    for m in range(1, len(best_c)):
        block[m] = block[m - 1] + (best_c[m - 1] < m)
    return block


def _cover(best_a: np.ndarray, best_c: np.ndarray, k: int, l: int) -> list[tuple[int, int]]:
    """Fewest non-strict intervals ``(a, c)`` that overlap one after the other and cover ``[k, l]``
    (greedy: from the current point, the interval that starts at or before it and reaches furthest)."""
    chain, point = [], k
    while point < l and best_c[point] > point:
        chain.append((int(best_a[point]), int(best_c[point])))
        point = int(best_c[point])
    return chain if point >= l else []


def _reason(qs: np.ndarray, excess: np.ndarray, p_i: np.ndarray, a: int, c: int, atol: float) -> str:
    if excess[a, c] <= atol:
        return "outcome unchanged"
    t = int(np.argmax(_pairwise_excess(qs[[a, c]], p_i)[0, 1]))
    return f"token {t} moves {qs[a, t]:.4g} -> {qs[c, t]:.4g}, away from p_i = {p_i[t]:.4g}"


def payment_feasibility(
    dists: ArrayLike, bids: ArrayLike, agent: int, rule: RuleLike, bid_grid: ArrayLike, *, atol: float = 1e-9
) -> PaymentFeasibilityReport:
    """Does ANY payment rule satisfy payment monotonicity along ``bid_grid``? (theory chapter §3)

    Payment monotonicity alone constrains ``z`` on the grid: ``z(0) = 0``, ``z``
    non-decreasing, and for every pair ``b < b'``, ``z(b') > z(b)`` iff
    ``q(b') >_i q(b)`` (outcomes compared with ``atol``), hence ``z(b') = z(b)`` when
    ``q(b')`` is not a strict improvement.  A linear program (:func:`scipy.optimize.linprog`)
    decides whether any ``z`` satisfies these constraints.  The answer is read off as well from
    the constraints' structure: the non-strict pairs force ``z`` constant on blocks of bids, and
    the constraints are infeasible iff a strict pair lies inside one block; the report gives the
    shortest such chain of pairs (the certificate), or an integer witness ``z``.  For a
    monotone rule the critical-bid payment is another witness; consistent aggregation, a
    property of ``q`` alone, is not part of this check.  ``bid_grid`` must start at 0.
    """
    g, qs, p_i = _path(dists, bids, agent, rule, bid_grid)
    if g[0] != 0:
        raise ValueError("bid_grid must start at 0 (payment monotonicity fixes z(0) = 0)")
    strict, excess = _strict_pairs(qs, p_i, atol)
    margin = _payment_lp(strict)
    best_a, best_c = _reach(strict)
    block = _equal_blocks(best_c)
    k_all, l_all = np.nonzero(np.triu(strict, 1) & (block[:, None] == block[None, :]))
    if (margin > 0.5) != (len(k_all) == 0):
        raise RuntimeError(f"payment_feasibility: the linear program (margin {margin:.3g}) and the block "
                           "structure disagree; a numerical problem in the solver")
    G = len(g)
    n_strict = int(np.triu(strict, 1).sum())
    if len(k_all) == 0:
        return PaymentFeasibilityReport(feasible=True, margin=margin, n_pairs=G * (G - 1) // 2, n_strict=n_strict,
                                        witness=block.astype(float), chain=[], bid_grid=g, qs=qs)
    covers = [_cover(best_a, best_c, int(k), int(l)) for k, l in zip(k_all, l_all)]
    # the clearest strict pair: every token that can move toward p_i moves by at least this much
    movable = np.abs(qs[k_all] - p_i) > atol
    clear = np.where(movable, np.abs(qs[l_all] - qs[k_all]), np.inf).min(-1)
    best = min(range(len(k_all)), key=lambda j: (len(covers[j]), -clear[j], k_all[j], l_all[j]))
    k, l = int(k_all[best]), int(l_all[best])
    t = int(np.argmax(np.abs(qs[l] - qs[k])))
    chain = [(k, l, f"no token moves away from p_i; token {t} {qs[k, t]:.4g} -> {qs[l, t]:.4g}")]
    chain += [(a, c, _reason(qs, excess, p_i, a, c, atol)) for a, c in covers[best]]
    return PaymentFeasibilityReport(feasible=False, margin=margin, n_pairs=G * (G - 1) // 2, n_strict=n_strict,
                                    witness=None, chain=chain, bid_grid=g, qs=qs)
