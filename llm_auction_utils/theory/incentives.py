"""The two incentive properties of a mechanism (aggregation + payment rule) along one agent's
bids (notebooks/theory.md §3, the project's formalization).

Fix agent ``i`` and the others' bids; write ``q(b)``, ``z(b)`` for what the agent gets and pays
at bid ``b``, and compare outcomes with the agent's order ``>=_i`` of notebooks/theory.md §2:

- *consistent aggregation*: any two outcomes the agent can obtain are comparable, ``q(b') >=_i q(b)``
  or ``q(b) >=_i q(b')`` for all bids ``b, b'`` (every admissible loss ranks them alike);
- *payment monotonicity*: ``z(0) = 0``, ``z`` is non-decreasing in the bid, and for all bids
  ``b, b'`` (in either order) ``z(b') > z(b)`` iff ``q(b') >_i q(b)``: the agent pays strictly
  more exactly when it gets a strictly preferred outcome.

Neither mentions the direction in which a higher bid moves the outcome.  notebooks/theory.md §3
proves that a rule satisfies consistent aggregation and admits a payment with payment
monotonicity, for every agent and every ``b_{-i}``, iff it is monotone.  On a bid grid every
check here is exact: :func:`pair_relations` ranks every pair of outcomes,
:func:`consistent_aggregation` and :func:`payment_monotonicity` check the two properties,
:func:`payment_feasibility` decides by a linear program whether ANY payment satisfies payment
monotonicity, and :func:`verify_incentive_equivalence` checks the equivalence on one path.
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
    "RELATIONS",
    "ConsistencyReport",
    "EquivalenceReport",
    "PaymentMonotonicityReport",
    "PaymentFeasibilityReport",
    "consistent_aggregation",
    "pair_relations",
    "payment_feasibility",
    "payment_monotonicity",
    "utility_curves",
    "verify_incentive_equivalence",
]

UNCHANGED, BETTER, INCOMPARABLE, WORSE = 0, 1, 2, 3
RELATIONS = ("unchanged", "strictly better", "incomparable", "strictly worse")
"""Names of the codes 0, 1, 2, 3 of :func:`pair_relations`."""


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


def _relations(qs: np.ndarray, p_i: np.ndarray, atol: float) -> tuple[np.ndarray, np.ndarray]:
    """``(R, E)``: the codes of :func:`pair_relations` and ``E[k, l] = max_t`` excess of ``q_l`` outside
    the box of ``q_k``."""
    E = _pairwise_excess(qs, p_i).max(-1)
    moved = np.abs(qs[None, :, :] - qs[:, None, :]).max(-1) > atol
    better = (E <= atol) & moved
    worse = (E.T <= atol) & moved & ~better
    R = np.where(moved, INCOMPARABLE, UNCHANGED)
    R[better], R[worse] = BETTER, WORSE
    return R, E


def pair_relations(qs: ArrayLike, p_i: ArrayLike, atol: float = 1e-9) -> np.ndarray:
    """How agent ``i`` ranks every pair of outcomes of a path (notebooks/theory.md §2, §3).

    ``qs (G, V)`` (outcomes along the agent's bids), ``p_i (V,)`` -> ``R (G, G)`` with codes
    (:data:`RELATIONS`): ``R[k, l] = 0`` unchanged (``max_t |q_l - q_k| <= atol``), ``1`` ``q_l``
    strictly better (``q_l >_i q_k``), ``2`` incomparable (neither is weakly preferred), ``3`` ``q_l``
    strictly worse (``q_k >_i q_l``).  Outcomes are compared with slack ``atol``.
    """
    q, p = to_float64(qs), to_float64(p_i)
    if q.ndim != 2 or p.shape != q.shape[-1:]:
        raise ValueError(f"qs must be (G, V) and p_i (V,), got shapes {q.shape} and {p.shape}")
    return _relations(q, p, atol)[0]


@dataclass(frozen=True)
class ConsistencyReport:
    """Consistent aggregation along ``bid_grid`` for one agent: every two outcomes comparable.

    ``holds``; ``n_pairs`` checked (all ``k < l``); ``violation``: the incomparable pair ``(k, l)``
    farthest from comparable (or ``None``), ``amount`` its distance (the smaller of how far ``q_l``
    lies outside the box of ``q_k`` and ``q_k`` outside the box of ``q_l``; with ``holds``, the
    largest such distance found, at most ``atol``), ``token`` the token on which ``q_l`` leaves the
    box of ``q_k``; ``incomparable_pairs`` how many pairs are not comparable; ``worse_pairs`` how
    many pairs ``k < l`` have ``q(grid[k]) >_i q(grid[l])`` (comparable, so allowed here; payment
    monotonicity rules them out).
    """

    holds: bool
    n_pairs: int
    violation: tuple[int, int] | None
    amount: float
    token: int | None
    incomparable_pairs: int
    worse_pairs: int
    bid_grid: np.ndarray = field(repr=False)
    qs: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class PaymentMonotonicityReport:
    """Payment monotonicity along ``bid_grid`` for one agent.

    ``holds`` = ``zero_at_zero and non_decreasing and iff_holds``; ``violations`` lists up to 10
    offending pairs ``(k, l, reason)``, ``k < l``.
    """

    holds: bool
    zero_at_zero: bool
    non_decreasing: bool
    iff_holds: bool
    n_pairs: int
    violations: list[tuple[int, int, str]]
    payments: np.ndarray = field(repr=False)


def consistent_aggregation(
    dists: ArrayLike, bids: ArrayLike, agent: int, rule: RuleLike, bid_grid: ArrayLike, *, atol: float = 1e-9
) -> ConsistencyReport:
    """Check consistent aggregation for ``agent`` on ``bid_grid``: every pair of outcomes comparable
    (notebooks/theory.md §3)."""
    g, qs, p_i = _path(dists, bids, agent, rule, bid_grid)
    R, E = _relations(qs, p_i, atol)
    upper = np.triu(np.ones(R.shape, dtype=bool), 1)
    gap = np.where(upper, np.minimum(E, E.T), -1.0)  # distance from comparable, per pair
    bad = upper & (R == INCOMPARABLE)
    common = dict(n_pairs=int(upper.sum()), incomparable_pairs=int(bad.sum()),
                  worse_pairs=int((upper & (R == WORSE)).sum()), bid_grid=g, qs=qs)
    if not bad.any():
        return ConsistencyReport(holds=True, violation=None, amount=float(max(gap.max(), 0.0)), token=None, **common)
    k, l = np.unravel_index(int(np.argmax(np.where(bad, gap, -1.0))), gap.shape)
    token = int(np.argmax(_pairwise_excess(qs[[k, l]], p_i)[0, 1]))
    return ConsistencyReport(holds=False, violation=(int(k), int(l)), amount=float(gap[k, l]), token=token, **common)


def _payments_on(g: np.ndarray, payments: ArrayLike | Callable[[np.ndarray], ArrayLike] | None,
                 dists: ArrayLike, bids: ArrayLike, agent: int, rule: RuleLike) -> np.ndarray:
    if payments is None:
        return critical_payment_curve(dists, bids, agent, rule, g)
    z = to_float64(payments(g) if callable(payments) else payments)
    if z.shape != g.shape:
        raise ValueError(f"payments has shape {z.shape}, expected {g.shape} (one per grid bid)")
    if not np.isfinite(z).all():
        raise ValueError("payments contain NaN or inf")
    return z


def _iff_violations(g: np.ndarray, z: np.ndarray, R: np.ndarray, payment_atol: float) -> list[tuple[int, int, str]]:
    """Pairs ``k < l`` where "pays strictly more" and "strictly preferred" disagree, in either direction."""
    k, l = np.triu_indices(len(g), 1)
    keep = g[l] != g[k]
    k, l = k[keep], l[keep]
    more, less = z[l] - z[k] > payment_atol, z[k] - z[l] > payment_atol
    bad = (more != (R[k, l] == BETTER)) | (less != (R[k, l] == WORSE))
    out = []
    for a, c in zip(k[bad], l[bad]):
        if z[c] - z[a] > payment_atol and R[a, c] != BETTER:
            why = f"pays more ({z[a]:.6g} -> {z[c]:.6g}) without a strictly preferred outcome"
        elif R[a, c] == BETTER:
            why = "strictly preferred outcome without paying more"
        elif R[a, c] == WORSE:
            why = "the lower bid's outcome is strictly preferred, yet it does not pay more"
        else:
            why = f"pays less ({z[a]:.6g} -> {z[c]:.6g}) for an outcome that is not strictly worse"
        out.append((int(a), int(c), why))
    return out


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
    """Check payment monotonicity for ``agent`` on ``bid_grid`` (notebooks/theory.md §3).

    ``payments``: values ``z(grid)`` ``(G,)``, or a function of the grid, or ``None`` for the
    expected critical-bid payments (Myerson with ``T(s) = TV(q(s), q(0))``; the grid must then
    start at 0).  Checks ``z(0) = 0`` (when the grid starts at 0), ``z`` non-decreasing, and for
    every pair of bids, in either order, ``z(b') > z(b)`` iff ``q(b') >_i q(b)`` (payments compared
    with ``payment_atol``, outcomes with ``atol``).
    """
    g, qs, p_i = _path(dists, bids, agent, rule, bid_grid)
    z = _payments_on(g, payments, dists, bids, agent, rule)
    R, _ = _relations(qs, p_i, atol)
    viol: list[tuple[int, int, str]] = []
    zero_ok = not (g[0] == 0 and abs(z[0]) > payment_atol)
    if not zero_ok:
        viol.append((0, 0, f"z(0) = {z[0]:.6g}, expected 0"))
    nondec = bool((np.diff(z) >= -payment_atol).all())
    if not nondec:
        k = int(np.argmax(np.diff(z) < -payment_atol))
        viol.append((k, k + 1, f"payment decreases {z[k]:.6g} -> {z[k + 1]:.6g}"))
    pairs = _iff_violations(g, z, R, payment_atol)
    viol += pairs[: max(0, 10 - len(viol))]
    G = len(g)
    return PaymentMonotonicityReport(
        holds=zero_ok and nondec and not pairs, zero_at_zero=zero_ok, non_decreasing=nondec, iff_holds=not pairs,
        n_pairs=G * (G - 1) // 2, violations=viol, payments=z,
    )


@dataclass(frozen=True)
class EquivalenceReport:
    """Result of :func:`verify_incentive_equivalence` on one agent's bid path.

    ``monotone``: the rule is monotone for the agent on the grid; ``consistency``: the
    consistent-aggregation report; ``critical_payments``: the payment-monotonicity report of the
    critical-bid payments; ``feasibility``: whether any payment satisfies payment monotonicity (the
    linear program of :func:`payment_feasibility`); ``equivalence_holds``: the statement of
    notebooks/theory.md §3 checks out on this path (monotone iff consistent aggregation holds and
    some payment exists, and when monotone the critical-bid payment is one); ``counterexample``: for
    a non-monotone path, the worst pair of bids ``(b, b')``, ``b < b'``, and the token on which
    ``q(b')`` leaves the box of ``q(b)``; ``excluded_by``: for a non-monotone path, which of the two
    properties rules out every payment rule (``"consistent aggregation"``, ``"payment monotonicity"``
    or ``"both"``).
    """

    monotone: bool
    consistency: ConsistencyReport
    critical_payments: PaymentMonotonicityReport
    feasibility: "PaymentFeasibilityReport"
    equivalence_holds: bool
    counterexample: tuple[float, float, int] | None
    excluded_by: str | None
    explanation: str


def _worst_pair(g: np.ndarray, qs: np.ndarray, p_i: np.ndarray) -> tuple[float, float, int]:
    """The pair ``b < b'`` whose outcome ``q(b')`` lies farthest outside the box of ``q(b)``, and the token."""
    E = _pairwise_excess(qs, p_i)
    amount = np.where(np.triu(np.ones(E.shape[:2], dtype=bool), 1), E.max(-1), -1.0)
    k, l = np.unravel_index(int(np.argmax(amount)), amount.shape)
    return float(g[k]), float(g[l]), int(E[k, l].argmax())


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
    """Verify the equivalence of notebooks/theory.md §3 for ``rule`` on one instance, both ways.

    - monotone on the grid  ->  consistent aggregation holds and the critical-bid payments satisfy
      payment monotonicity;
    - not monotone          ->  consistent aggregation fails, or no payment at all satisfies payment
      monotonicity (the linear program of :func:`payment_feasibility`), or both; ``excluded_by`` says
      which.  The critical-bid payment candidate is checked as well, for illustration.

    ``bid_grid`` must start at 0.  ``atol`` decides when an outcome moved (strict improvement),
    ``payment_atol`` when a payment rose.  On paths that level off (an outcome moving by less than
    ``atol`` while the payment still rises by more than ``payment_atol``) the two tolerances must be
    chosen together: a rise of the critical-bid payment between bids ``b < b'`` is at most
    ``b' * TV(q(b), q(b'))``.
    """
    A = get_rule(rule)
    g = as_bid_grid(bid_grid)
    if g[0] != 0:
        raise ValueError("bid_grid must start at 0")
    mono = check_bid_path(dists, bids, agent, A, g, atol=atol).is_monotone
    cons = consistent_aggregation(dists, bids, agent, A, g, atol=atol)
    pm = payment_monotonicity(dists, bids, agent, A, g, None, atol=atol, payment_atol=payment_atol)
    feas = payment_feasibility(dists, bids, agent, A, g, atol=atol)
    both = cons.holds and feas.feasible
    if mono:
        ok, cex, by = both and pm.holds, None, None
        expl = ("monotone: consistent aggregation holds and the critical-bid payments satisfy payment monotonicity"
                if ok else "monotone, but a property failed on this grid (check the tolerances)")
    else:
        ok = not both
        cex = _worst_pair(g, cons.qs, to_float64(dists)[agent])
        by = ("both" if not cons.holds and not feas.feasible else "consistent aggregation" if not cons.holds
              else "payment monotonicity" if not feas.feasible else None)
        why = {"consistent aggregation": "two outcomes on the path are incomparable (consistent aggregation fails)",
               "payment monotonicity": "no payment satisfies payment monotonicity (linear program)",
               "both": "two outcomes are incomparable and no payment satisfies payment monotonicity",
               None: "yet both properties hold on this grid: check the tolerances"}[by]
        expl = (f"not monotone: raising the bid {cex[0]:.6g} -> {cex[1]:.6g} moves token {cex[2]} out of the "
                f"agent's box; {why}")
    return EquivalenceReport(monotone=mono, consistency=cons, critical_payments=pm, feasibility=feas,
                             equivalence_holds=ok, counterexample=cex, excluded_by=by, explanation=expl)


def utility_curves(
    critical_bids: ArrayLike, tv: ArrayLike, others_bid_total: ArrayLike, value: float, bid_grid: ArrayLike
) -> dict[str, np.ndarray]:
    """Expected utility per token of an agent with value ``v`` per switched token, for every bid of a grid.

    notebooks/theory.md §4, linear rule with stable sampling.  Inputs, for ``S`` steps
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

    ``feasible``: some payment vector ``z (G,)`` satisfies payment monotonicity on the grid (decided
    by the linear program; ``margin`` is its optimum, 1 when feasible and 0 when not).  Of the
    ``n_pairs`` pairs ``k < l``, ``n_strict`` demand ``z(b_l) > z(b_k)`` (``q(b_l) >_i q(b_k)``),
    ``n_worse`` demand ``z(b_k) > z(b_l)`` (``q(b_k) >_i q(b_l)``: impossible for a non-decreasing
    ``z``), and all the others ``z(b_l) = z(b_k)``.  ``witness``: a feasible ``z`` (integers: 0 on the
    first block of bids that must pay the same, then 1, 2, ...), or ``None``.  ``chain``: when
    infeasible, the certificate.  Either one pair ``[(k, l, reason)]`` with ``q(b_k) >_i q(b_l)``
    although ``b_k < b_l`` (``certificate == "worse pair"``), or ``[(k, l, reason), (a_1, c_1,
    reason), ...]`` (``certificate == "equal block"``): ``q(b_l) >_i q(b_k)`` forces
    ``z(b_l) > z(b_k)``, while each later pair ``(a, c)`` forces ``z(b_c) = z(b_a)``; these intervals
    ``[a, c]`` overlap and cover ``[k, l]``, so with ``z`` non-decreasing ``z(b_k) = z(b_l)``.
    """

    feasible: bool
    margin: float
    n_pairs: int
    n_strict: int
    n_worse: int
    witness: np.ndarray | None
    chain: list[tuple[int, int, str]]
    certificate: str
    bid_grid: np.ndarray = field(repr=False)
    qs: np.ndarray = field(repr=False)

    def describe(self) -> str:
        """The certificate in words, one line per pair (or the witness when feasible)."""
        g = self.bid_grid
        if self.feasible:
            return f"feasible: z = {np.array2string(self.witness)} on bids {np.array2string(g, precision=3)}"
        (k, l, why), rest = self.chain[0], self.chain[1:]
        if self.certificate == "worse pair":
            return (f"q({g[k]:.4g}) >_i q({g[l]:.4g}) ({why}): z({g[k]:.4g}) > z({g[l]:.4g})\n"
                    f"but {g[k]:.4g} < {g[l]:.4g} and z is non-decreasing: contradiction")
        lines = [f"q({g[l]:.4g}) >_i q({g[k]:.4g}) ({why}): z({g[l]:.4g}) > z({g[k]:.4g})"]
        lines += [f"q({g[c]:.4g}) and q({g[a]:.4g}) ({why}): z({g[c]:.4g}) = z({g[a]:.4g})" for a, c, why in rest]
        lines.append(f"z non-decreasing, so these equalities force z({g[k]:.4g}) = z({g[l]:.4g}): contradiction")
        return "\n".join(lines)


def _payment_lp(R: np.ndarray) -> float:
    """``max eps`` over ``z (G,)``, ``eps in [0, 1]``: ``z_0 = 0``, ``z`` non-decreasing, ``z_l >= z_k + eps``
    where ``q_l`` is strictly better, ``z_k >= z_l + eps`` where it is strictly worse, ``z_l <= z_k`` on the
    others; feasible iff ``eps > 0``."""
    G = R.shape[0]
    k, l = np.triu_indices(G, 1)
    rows = np.zeros((len(k) + G - 1, G + 1))
    pairs = np.arange(len(k))
    up, down = R[k, l] == BETTER, R[k, l] == WORSE
    rows[pairs, k] = np.where(up, 1.0, -1.0)  # better: z_k - z_l + eps <= 0; worse: z_l - z_k + eps <= 0;
    rows[pairs, l] = np.where(up, -1.0, 1.0)  # others: z_l - z_k <= 0
    rows[pairs, G] = (up | down).astype(float)
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


def _reach(equal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every grid index ``m``: the furthest end ``c`` of an equal-payment pair ``(a, c)`` with ``a <= m``
    (``m`` itself if none reaches further), and that pair's start ``a``.  Such a pair forces ``z`` constant
    on ``[a, c]`` (``z`` is non-decreasing)."""
    G = equal.shape[0]
    k, l = np.nonzero(np.triu(equal, 1))
    own = np.arange(G)
    np.maximum.at(own, k, l)  # furthest end of a pair starting at m
    best_c, best_a = own.copy(), np.arange(G)
    for m in range(1, G):
        if best_c[m - 1] >= best_c[m]:  # ties: the earliest start
            best_c[m], best_a[m] = best_c[m - 1], best_a[m - 1]
    return best_a, best_c


def _equal_blocks(best_c: np.ndarray) -> np.ndarray:
    """Block index of every grid bid: overlapping intervals of equal-payment pairs merge into blocks on
    which ``z`` must be constant."""
    block = np.zeros(len(best_c), dtype=int)
    for m in range(1, len(best_c)):
        block[m] = block[m - 1] + (best_c[m - 1] < m)
    return block


def _cover(best_a: np.ndarray, best_c: np.ndarray, k: int, l: int) -> list[tuple[int, int]]:
    """Fewest equal-payment intervals ``(a, c)`` that overlap one after the other and cover ``[k, l]``
    (greedy: from the current point, the interval that starts at or before it and reaches furthest)."""
    chain, point = [], k
    while point < l and best_c[point] > point:
        chain.append((int(best_a[point]), int(best_c[point])))
        point = int(best_c[point])
    return chain if point >= l else []


def _reason(qs: np.ndarray, E: np.ndarray, R: np.ndarray, p_i: np.ndarray, a: int, c: int) -> str:
    if R[a, c] == UNCHANGED:
        return "outcome unchanged"
    t = int(np.argmax(_pairwise_excess(qs[[a, c]], p_i)[0, 1]))
    s = int(np.argmax(_pairwise_excess(qs[[c, a]], p_i)[0, 1]))
    return (f"incomparable: token {t} {qs[a, t]:.4g} -> {qs[c, t]:.4g} leaves the box (p_i = {p_i[t]:.4g}), "
            f"token {s} {qs[c, s]:.4g} -> {qs[a, s]:.4g} leaves it the other way")


def _worse_certificate(qs: np.ndarray, R: np.ndarray, p_i: np.ndarray, atol: float) -> list[tuple[int, int, str]]:
    """The clearest pair ``k < l`` with ``q_k >_i q_l``: a higher bid buys a strictly worse outcome."""
    k_all, l_all = np.nonzero(np.triu(R == WORSE, 1))
    best = int(np.argmax(np.abs(qs[l_all] - qs[k_all]).max(-1)))
    k, l = int(k_all[best]), int(l_all[best])
    t = int(np.argmax(np.abs(qs[l] - qs[k])))
    return [(k, l, f"back from the higher bid to the lower one no token moves away from p_i; token {t} "
                   f"{qs[l, t]:.4g} -> {qs[k, t]:.4g}, p_i = {p_i[t]:.4g}")]


def _block_certificate(qs: np.ndarray, E: np.ndarray, R: np.ndarray, p_i: np.ndarray, atol: float,
                       best_a: np.ndarray, best_c: np.ndarray, inside: np.ndarray) -> list[tuple[int, int, str]]:
    """The strict pair inside an equal-payment block with the shortest covering chain (ties: the clearest)."""
    k_all, l_all = np.nonzero(inside)
    covers = [_cover(best_a, best_c, int(k), int(l)) for k, l in zip(k_all, l_all)]
    movable = np.abs(qs[k_all] - p_i) > atol  # every token that can move toward p_i moves by at least this much
    clear = np.where(movable, np.abs(qs[l_all] - qs[k_all]), np.inf).min(-1)
    best = min(range(len(k_all)), key=lambda j: (len(covers[j]), -clear[j], k_all[j], l_all[j]))
    k, l = int(k_all[best]), int(l_all[best])
    t = int(np.argmax(np.abs(qs[l] - qs[k])))
    chain = [(k, l, f"no token moves away from p_i; token {t} {qs[k, t]:.4g} -> {qs[l, t]:.4g}")]
    return chain + [(a, c, _reason(qs, E, R, p_i, a, c)) for a, c in covers[best]]


def payment_feasibility(
    dists: ArrayLike, bids: ArrayLike, agent: int, rule: RuleLike, bid_grid: ArrayLike, *, atol: float = 1e-9
) -> PaymentFeasibilityReport:
    """Does ANY payment rule satisfy payment monotonicity along ``bid_grid``? (notebooks/theory.md §3)

    Payment monotonicity alone constrains ``z`` on the grid: ``z(0) = 0``, ``z`` non-decreasing, and
    for every pair of bids, in either order, ``z(b') > z(b)`` iff ``q(b') >_i q(b)`` (outcomes compared
    with ``atol``); so for ``b < b'``: ``z(b') > z(b)`` where ``q(b')`` is strictly better,
    ``z(b) > z(b')`` where it is strictly worse (impossible), and ``z(b') = z(b)`` otherwise.  A
    linear program (:func:`scipy.optimize.linprog`) decides whether any ``z`` satisfies these
    constraints.  The answer is read off as well from the constraints' structure: infeasible iff a
    higher bid gets a strictly worse outcome, or a strict pair lies inside a block of bids that the
    equal-payment pairs force to pay the same; the report gives the shortest such certificate, or an
    integer witness ``z``.  For a monotone rule the critical-bid payment is another witness.
    Consistent aggregation is not part of this check.  ``bid_grid`` must start at 0.
    """
    g, qs, p_i = _path(dists, bids, agent, rule, bid_grid)
    if g[0] != 0:
        raise ValueError("bid_grid must start at 0 (payment monotonicity fixes z(0) = 0)")
    R, E = _relations(qs, p_i, atol)
    upper = np.triu(np.ones(R.shape, dtype=bool), 1)
    margin = _payment_lp(R)
    best_a, best_c = _reach(upper & ((R == UNCHANGED) | (R == INCOMPARABLE)))
    block = _equal_blocks(best_c)
    inside = upper & (R == BETTER) & (block[:, None] == block[None, :])
    n_worse = int((upper & (R == WORSE)).sum())
    if (margin > 0.5) != (n_worse == 0 and not inside.any()):
        raise RuntimeError(f"payment_feasibility: the linear program (margin {margin:.3g}) and the block "
                           "structure disagree; a numerical problem in the solver")
    G = len(g)
    common = dict(margin=margin, n_pairs=G * (G - 1) // 2, n_strict=int((upper & (R == BETTER)).sum()),
                  n_worse=n_worse, bid_grid=g, qs=qs)
    if margin > 0.5:
        return PaymentFeasibilityReport(feasible=True, witness=block.astype(float), chain=[], certificate="", **common)
    if n_worse:
        chain, kind = _worse_certificate(qs, R, p_i, atol), "worse pair"
    else:
        chain, kind = _block_certificate(qs, E, R, p_i, atol, best_a, best_c, inside), "equal block"
    return PaymentFeasibilityReport(feasible=False, witness=None, chain=chain, certificate=kind, **common)
