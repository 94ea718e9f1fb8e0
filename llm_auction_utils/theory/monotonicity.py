"""Monotonicity checks for any aggregation rule (notebooks/theory.md §3, [project]).

A rule ``A`` is *monotone* when for every agent ``i``, every ``b_{-i}`` and bids
``b < b'``: ``A(p; b', b_{-i}) >=_i A(p; b, b_{-i})`` in the coordinatewise order of
:mod:`.preferences` -- raising your bid moves every token's probability toward your
own distribution, never past it.

- :func:`check_monotonicity` searches for violations of any rule: random instances
  evaluated in batches (Dirichlet distributions, sparse ones included, random bids,
  zero bids, a random raise of one agent's bid), then an adversarial random local
  search that maximizes the violation amount.
- :func:`check_bid_path` checks one instance along a grid of one agent's bids
  (:func:`~.aggregation.bid_path`): successive points must be weakly preferred (the
  order is transitive along a path, because every interval has ``p_i(t)`` as an
  endpoint, so successive checks cover all pairs).
- :class:`NotMonotoneError` is what payments and stable sampling raise on a step where
  the rule is not monotone for an agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy.special import softmax

from .arrays import ArrayLike, to_float64
from .aggregation import RuleLike, bid_path, get_rule, rule_name
from .preferences import token_excess
from .validation import as_bid_grid, as_distributions, check_agent, order_atol

__all__ = [
    "BidPathReport",
    "Counterexample",
    "MonotonicityReport",
    "NotMonotoneError",
    "check_bid_path",
    "check_monotonicity",
    "random_instances",
]


class NotMonotoneError(ValueError):
    """The rule is not monotone for this agent on this step: the critical-bid coupling does
    not exist, so neither a critical-bid payment nor a stable sample is defined."""

    @classmethod
    def on_step(cls, agent: int, bid_before: float, bid_after: float, amount: float, what: str) -> "NotMonotoneError":
        """The error for agent ``agent`` whose raise ``bid_before -> bid_after`` violates the order by ``amount``."""
        return cls(
            f"rule is not monotone for agent {agent} on this step (bids {bid_before:.6g} -> {bid_after:.6g} "
            f"violate the order by {amount:.3g}); {what} is undefined"
        )


# --------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Counterexample:
    """One violation of monotonicity: raising ``agent``'s bid from ``bids[agent]`` to
    ``new_bid`` moves token ``token`` from ``q_before[token]`` to ``q_after[token]``,
    outside the interval toward ``p_i_token``."""

    dists: np.ndarray
    bids: np.ndarray
    agent: int
    new_bid: float
    token: int
    q_before: np.ndarray
    q_after: np.ndarray
    p_i_token: float
    amount: float

    def __str__(self) -> str:
        return (
            f"agent {self.agent} raises its bid {self.bids[self.agent]:.6g} -> {self.new_bid:.6g}: "
            f"token {self.token} moves {self.q_before[self.token]:.6g} -> {self.q_after[self.token]:.6g}, "
            f"but p_i(t) = {self.p_i_token:.6g} (off the interval by {self.amount:.3g})"
        )


@dataclass(frozen=True)
class MonotonicityReport:
    """Result of :func:`check_monotonicity`.

    ``is_monotone``: no violation larger than ``atol`` found; ``n_checked``: random
    instances evaluated; ``n_violations``: how many of them violate; ``n_adversarial``:
    extra rule evaluations of the adversarial search; ``worst_violation``: the largest
    violation amount found (0 if none); ``counterexample``: the worst one (or ``None``).
    """

    is_monotone: bool
    n_checked: int
    n_violations: int
    worst_violation: float
    counterexample: Counterexample | None
    n_adversarial: int = 0
    atol: float = 1e-9
    rule: str = "rule"

    def __str__(self) -> str:
        head = (
            f"{self.rule}: {'monotone (no violation found)' if self.is_monotone else 'NOT monotone'}; "
            f"{self.n_checked} random instances ({self.n_violations} violating), "
            f"{self.n_adversarial} adversarial evaluations, worst violation {self.worst_violation:.3g}"
        )
        return head if self.counterexample is None else f"{head}\n  counterexample: {self.counterexample}"


@dataclass(frozen=True)
class BidPathReport:
    """Result of :func:`check_bid_path` along ``bid_grid`` for ``agent``.

    ``violations[k]`` is how far ``q(grid[k+1])`` lies outside the intervals between
    ``q(grid[k])`` and ``p_i``; ``first_violation`` / ``worst_index`` are indices ``k``
    of the offending step ``grid[k] -> grid[k+1]`` (``None`` if monotone), ``token``
    the worst token of the worst step.
    """

    is_monotone: bool
    n_checked: int
    first_violation: int | None
    worst_index: int | None
    worst_violation: float
    token: int | None
    bid_grid: np.ndarray
    qs: np.ndarray = field(repr=False)
    violations: np.ndarray = field(repr=False)
    atol: float = 1e-9

    def __str__(self) -> str:
        if self.worst_index is None or self.token is None:
            return f"monotone along {len(self.bid_grid)} bids (worst excess {self.worst_violation:.3g})"
        k, t = self.worst_index, self.token
        return (
            f"NOT monotone: first violation at step {self.first_violation}; worst at bids "
            f"{self.bid_grid[k]:.6g} -> {self.bid_grid[k + 1]:.6g}, token {t}: "
            f"{self.qs[k, t]:.6g} -> {self.qs[k + 1, t]:.6g} (violation {self.worst_violation:.3g})"
        )


# --------------------------------------------------------------------------
# one instance along a bid path
# --------------------------------------------------------------------------
def check_bid_path(
    dists: ArrayLike,
    bids: ArrayLike,
    agent: int,
    rule: RuleLike,
    bid_grid: ArrayLike,
    *,
    atol: float | None = None,
) -> BidPathReport:
    """Check monotonicity for one instance ``dists (n, V)``, ``bids (n,)`` along a bid grid.

    Successive points must satisfy ``q(grid[k+1]) >=_i q(grid[k])`` within ``atol``
    (default :func:`~.validation.order_atol` of ``dists``); returns the first and the
    worst violation.
    """
    d = as_distributions(dists)
    if d.ndim != 2:
        raise ValueError(f"check_bid_path takes one instance dists (n, V), got shape {tuple(d.shape)}")
    agent = check_agent(agent, d.shape[0])
    atol = order_atol(d) if atol is None else atol
    g = as_bid_grid(bid_grid)
    if len(g) < 2:
        raise ValueError("bid_grid needs at least 2 bids")
    qs = to_float64(bid_path(d, bids, agent, rule, g))
    p_i = to_float64(d[agent])
    ex = token_excess(qs[1:], qs[:-1], p_i[None, :])
    viol = ex.max(axis=-1)
    bad = viol > atol
    worst = int(viol.argmax())
    return BidPathReport(
        is_monotone=not bool(bad.any()),
        n_checked=len(g) - 1,
        first_violation=int(np.argmax(bad)) if bad.any() else None,
        worst_index=worst if bad.any() else None,
        worst_violation=float(viol[worst]),
        token=int(ex[worst].argmax()) if bad.any() else None,
        bid_grid=g,
        qs=qs,
        violations=viol,
        atol=atol,
    )


# --------------------------------------------------------------------------
# random and adversarial search
# --------------------------------------------------------------------------
def random_instances(
    rng: np.random.Generator,
    n_instances: int,
    n_agents: int,
    vocab_size: int,
    *,
    sparse_fraction: float = 0.3,
    zero_bid_fraction: float = 0.2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random test instances ``(dists (N, n, V), bids (N, n), agent (N,), new_bid (N,))``.

    Distributions are Dirichlet with a concentration drawn per instance from
    ``{0.05, 0.2, 1, 5}``; a ``sparse_fraction`` of instances zero out about half of
    the entries, always keeping one common token so every rule stays defined.  Bids are
    Exp(1) (the raised agent's bid is 0 in ``zero_bid_fraction`` of instances), and the
    raise is ``new_bid = bid + Exp(1) * 10**U(-2, 1)``.
    """
    N, n, V = n_instances, n_agents, vocab_size
    alpha = rng.choice(np.array([0.05, 0.2, 1.0, 5.0]), size=N)
    g = rng.gamma(alpha[:, None, None], size=(N, n, V))
    common = rng.integers(0, V, size=N)
    sparse = rng.random(N) < sparse_fraction
    keep = (rng.random((N, n, V)) < 0.5) | ~sparse[:, None, None]
    keep[np.arange(N), :, common] = True
    g = g * keep
    g[np.arange(N), :, common] += 1e-3 * sparse[:, None]  # the common token never underflows to 0
    s = g.sum(-1, keepdims=True)
    empty = s[..., 0] == 0
    if empty.any():
        g[empty] = 1.0 / V
        s = g.sum(-1, keepdims=True)
    dists = g / s
    bids = rng.exponential(1.0, size=(N, n))
    agent = rng.integers(0, n, size=N)
    if n > 1:
        zero = rng.random(N) < zero_bid_fraction
        bids[np.arange(N)[zero], agent[zero]] = 0.0
    new_bid = bids[np.arange(N), agent] + rng.exponential(1.0, size=N) * 10.0 ** rng.uniform(-2, 1, size=N)
    return dists, bids, agent, new_bid


@dataclass
class _Search:
    """What the search knows: the worst violation so far and the seeds of the adversarial phase."""

    amount: float = -np.inf
    instance: tuple[Any, ...] | None = None  # (dists, bids, agent, new_bid, q0, q1, token)
    seeds: list[tuple[float, np.ndarray, np.ndarray, int, float]] = field(default_factory=list)

    def offer(self, ex: np.ndarray, dists: np.ndarray, bids: np.ndarray, agent: np.ndarray, new_bid: np.ndarray,
              q0: np.ndarray, q1: np.ndarray) -> None:
        amount = ex.max(axis=-1)
        k = int(amount.argmax())
        if amount[k] > self.amount:
            self.amount = float(amount[k])
            self.instance = (dists[k], bids[k], int(agent[k]), float(new_bid[k]), q0[k], q1[k], int(ex[k].argmax()))


def _evaluate(
    A: Callable[..., Any], dists: np.ndarray, bids: np.ndarray, agent: np.ndarray, new_bid: np.ndarray, batched: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(excess (N, V), signed margin (N,), q_before, q_after)`` for a batch of raises."""
    N = len(agent)
    bids_new = bids.copy()
    bids_new[np.arange(N), agent] = new_bid
    if batched:
        q0, q1 = to_float64(A(dists, bids)), to_float64(A(dists, bids_new))
    else:
        q0 = np.stack([to_float64(A(dists[k], bids[k])) for k in range(N)])
        q1 = np.stack([to_float64(A(dists[k], bids_new[k])) for k in range(N)])
    if q0.shape != (N, dists.shape[-1]) or q1.shape != q0.shape:
        raise ValueError(f"rule returned shape {q0.shape}, expected {(N, dists.shape[-1])} (does it broadcast over batches?)")
    if not (np.isfinite(q0).all() and np.isfinite(q1).all()):
        raise ValueError("rule returned NaN or inf")
    p_i = dists[np.arange(N), agent]
    signed = np.maximum(np.minimum(q0, p_i) - q1, q1 - np.maximum(q0, p_i))  # > 0 outside the interval
    return np.maximum(signed, 0.0), signed.max(axis=-1), q0, q1


def _random_phase(A: Callable[..., Any], rng: np.random.Generator, search: _Search, n_instances: int, n: int, V: int,
                  *, sparse_fraction: float, zero_bid_fraction: float, batch_size: int, batched: bool, atol: float,
                  n_seeds: int) -> tuple[int, int]:
    """Evaluate ``n_instances`` random raises; returns ``(instances checked, violating instances)``."""
    done = n_viol = 0
    while done < n_instances:
        m = min(batch_size, n_instances - done)
        dists, bids, agent, new_bid = random_instances(rng, m, n, V, sparse_fraction=sparse_fraction,
                                                       zero_bid_fraction=zero_bid_fraction)
        ex, signed, q0, q1 = _evaluate(A, dists, bids, agent, new_bid, batched)
        n_viol += int((ex.max(axis=-1) > atol).sum())
        search.offer(ex, dists, bids, agent, new_bid, q0, q1)
        for j in np.argsort(-signed)[: max(1, n_seeds)]:  # the most critical instances seed the local search
            search.seeds.append((float(signed[j]), dists[j], bids[j], int(agent[j]), float(new_bid[j])))
        done += m
    return done, n_viol


def _adversarial_phase(A: Callable[..., Any], rng: np.random.Generator, search: _Search, n: int, V: int,
                       *, n_restarts: int, n_steps: int, batched: bool) -> int:
    """Random local search (adaptive step sizes) over softmax logits, log-bids and the log-raise,
    maximizing the signed margin; returns the number of rule evaluations."""
    K = n_restarts
    d0, b0, ag, nb0 = random_instances(rng, K, n, V, sparse_fraction=0.0, zero_bid_fraction=0.0)
    search.seeds.sort(key=lambda r: -r[0])
    for j, (_, ds, bs, a, nb) in enumerate(search.seeds[: K // 2]):
        d0[j], b0[j], ag[j], nb0[j] = ds, bs, a, nb
    logits = np.log(np.maximum(d0, 1e-12))
    logb = np.log(np.maximum(b0, 1e-6))
    logr = np.log(np.maximum(nb0 - b0[np.arange(K), ag], 1e-6))

    def score(lg: np.ndarray, lb: np.ndarray, lr: np.ndarray) -> tuple[np.ndarray, tuple[Any, ...]]:
        ds, bs = softmax(lg, axis=-1), np.exp(lb)
        nb = bs[np.arange(K), ag] + np.exp(lr)
        ex, signed, q0, q1 = _evaluate(A, ds, bs, ag, nb, batched)
        return signed, (ds, bs, nb, ex, q0, q1)

    cur, extra = score(logits, logb, logr)
    sigma = np.full(K, 0.5)
    for _ in range(n_steps):
        lg = logits + sigma[:, None, None] * rng.standard_normal(logits.shape)
        lb = np.clip(logb + sigma[:, None] * rng.standard_normal(logb.shape), -12, 12)
        lr = np.clip(logr + sigma * rng.standard_normal(K), -12, 12)
        new, new_extra = score(lg, lb, lr)
        acc = new > cur
        logits[acc], logb[acc], logr[acc], cur[acc] = lg[acc], lb[acc], lr[acc], new[acc]
        extra = tuple(np.where(acc.reshape((-1,) + (1,) * (e.ndim - 1)), ne, e) for e, ne in zip(extra, new_extra))
        sigma = np.clip(np.where(acc, sigma * 1.3, sigma * 0.93), 1e-3, 2.0)
    ds, bs, nb, ex, q0, q1 = extra
    search.offer(ex, ds, bs, ag, nb, q0, q1)
    return 2 * K * (n_steps + 1)


def _round_dists(d: np.ndarray, decimals: int) -> np.ndarray | None:
    """Each row rounded to ``decimals`` with every entry at least one unit, summing to 1 exactly
    (the largest entry absorbs the rounding); ``None`` when the vocabulary is too large for it."""
    unit = 10.0 ** -decimals
    r = np.maximum(np.round(d, decimals), unit)
    r[np.arange(len(r)), r.argmax(-1)] += 1.0 - r.sum(-1)
    return np.round(r, decimals) if (r >= unit - 1e-12).all() else None


def _readable(A: Callable[..., Any], cex: Counterexample, atol: float, batched: bool) -> Counterexample | None:
    """The counterexample with round numbers, if a rounding of it still violates the order."""
    sig2 = lambda x: float(f"{x:.2g}")  # noqa: E731
    a = cex.agent
    bids = np.array([sig2(b) for b in cex.bids])
    new_bid = sig2(cex.new_bid)
    if new_bid <= bids[a]:
        return None
    for decimals in (1, 2, 3):
        d = _round_dists(cex.dists, decimals)
        if d is None:
            continue
        try:
            ex, _, q0, q1 = _evaluate(A, d[None], bids[None], np.array([a]), np.array([new_bid]), batched)
        except ValueError:
            continue
        amount = float(ex[0].max())
        if amount > atol:
            t = int(ex[0].argmax())
            return Counterexample(dists=d, bids=bids, agent=a, new_bid=new_bid, token=t, q_before=q0[0],
                                  q_after=q1[0], p_i_token=float(d[a, t]), amount=amount)
    return None


def check_monotonicity(
    rule: RuleLike,
    *,
    n_agents: int = 3,
    vocab_size: int = 5,
    n_instances: int = 2000,
    seed: int | None = 0,
    adversarial: bool = True,
    n_restarts: int = 32,
    n_steps: int = 200,
    atol: float = 1e-9,
    sparse_fraction: float = 0.3,
    zero_bid_fraction: float = 0.2,
    batch_size: int = 8192,
    batched: bool = True,
    readable: bool = True,
) -> MonotonicityReport:
    """Search for monotonicity violations of ``rule`` (notebooks/theory.md §3).

    1. ``n_instances`` random instances (see :func:`random_instances`) in batches of
       ``batch_size``: ``q_before = A(p; b)``, ``q_after = A(p; b')`` with one agent's bid
       raised; the violation amount is ``max_t`` distance of ``q_after(t)`` outside
       ``[q_before(t), p_i(t)]``.
    2. If ``adversarial``: a batched random local search (``n_restarts`` chains,
       ``n_steps`` steps, adaptive step sizes) maximizing the signed margin, started from
       the most critical random instances.

    ``batched=False`` calls a rule that does not broadcast once per instance.  A
    violation counts when it exceeds ``atol``.  With ``readable`` the worst counterexample is
    restated with probabilities rounded to 1, 2 or 3 decimals (no zeros) and bids to 2
    significant digits, the coarsest rounding that still violates the order; ``worst_violation``
    stays the largest amount found.
    """
    A = get_rule(rule)
    name = rule_name(A) or getattr(A, "__name__", "rule")
    if n_agents < 1 or vocab_size < 1 or n_instances < 0:
        raise ValueError("n_agents and vocab_size must be >= 1 and n_instances >= 0")
    rng = np.random.default_rng(seed)
    search = _Search()
    n_checked, n_viol = _random_phase(
        A, rng, search, n_instances, n_agents, vocab_size, sparse_fraction=sparse_fraction,
        zero_bid_fraction=zero_bid_fraction, batch_size=batch_size, batched=batched, atol=atol,
        n_seeds=n_restarts // 2 if adversarial else 0,
    )
    n_adv = 0
    if adversarial and n_restarts > 0:
        n_adv = _adversarial_phase(A, rng, search, n_agents, vocab_size, n_restarts=n_restarts, n_steps=n_steps,
                                   batched=batched)
    worst = max(search.amount, 0.0)
    cex = None
    if search.instance is not None and worst > atol:
        ds, bs, a, nb, q0, q1, t = search.instance
        cex = Counterexample(dists=ds, bids=bs, agent=a, new_bid=nb, token=t, q_before=q0, q_after=q1,
                             p_i_token=float(ds[a, t]), amount=worst)
        if readable:
            cex = _readable(A, cex, atol, batched) or cex
    return MonotonicityReport(is_monotone=cex is None, n_checked=n_checked, n_violations=n_viol,
                              worst_violation=worst, counterexample=cex, n_adversarial=n_adv, atol=atol, rule=name)
