"""Divergences and the KL objectives behind the aggregation rules (notebooks/theory.md §2 and §5).

- :func:`kl_divergence` ``KL(p || q) = sum_t p log(p / q)`` (``0 log 0 = 0``; ``inf`` when ``q = 0 < p``);
- :func:`generalized_kl` the KL of unnormalized measures
  ``sum_t [a log(a / b) - a + b]`` (section 2: both orders respect the robust order);
- :func:`tv_distance` total variation ``(1/2) sum_t |p - q|``;
- :func:`linear_objective` ``sum_i b_i KL(p_i || q)`` (minimized by the linear rule);
- :func:`log_linear_objective` ``sum_i b_i KL(q || p_i)`` (minimized by the log-linear rule);
- :func:`argmin_on_simplex` a numerical minimizer over the simplex (softmax
  parameters, scipy) used to verify those identities;
- :func:`rlhf_policy` ``p_ref exp(r / kappa) / Z``, the maximizer of
  ``E_q[r] - kappa KL(q || p_ref)`` (``kappa``: the KL weight, argument ``kl_weight``).

Inputs are ``(..., V)`` (numpy or torch); outputs have the leading shape.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import rel_entr

from .arrays import Array, ArrayLike, as_array, is_torch, like, to_numpy, xabs, xexp, xlog, xmax, xsum, xwhere
from .validation import as_distributions, dists_and_bids

__all__ = [
    "argmin_on_simplex",
    "generalized_kl",
    "kl_divergence",
    "linear_objective",
    "log_linear_objective",
    "rlhf_policy",
    "tv_distance",
]


def _xlogy_ratio(a: Array, b: Array) -> Array:
    """Per-token ``a log(a / b)`` with ``0 log(0/b) = 0`` and ``a log(a/0) = inf`` for ``a > 0``
    (:func:`scipy.special.rel_entr`; for tensors ``xlogy(a, a) - xlogy(a, b)``)."""
    if is_torch(a):
        return torch.special.xlogy(a, a) - torch.special.xlogy(a, b)
    return rel_entr(a, b)


def _pair(p: ArrayLike, q: ArrayLike, names: tuple[str, str], measures: bool = False) -> tuple[Array, Array]:
    if measures:
        a = as_array(p, name=names[0])
        b = like(as_array(q, name=names[1]), a) if is_torch(a) else as_array(q, name=names[1])
        for x, nm in ((a, names[0]), (b, names[1])):
            xn = to_numpy(x)
            if xn.ndim < 1:
                raise ValueError(f"{nm} must have at least 1 dimension")
            if not np.isfinite(xn).all():
                raise ValueError(f"{nm} contain NaN or inf")
            if (xn < 0).any():
                raise ValueError(f"{nm} has a negative entry")
    else:
        a = as_distributions(p, name=names[0], min_ndim=1)
        b = like(as_distributions(q, name=names[1], min_ndim=1), a)
    if is_torch(b) and not is_torch(a):
        a = like(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"vocabulary sizes differ: {names[0]} has {a.shape[-1]}, {names[1]} has {b.shape[-1]}")
    return a, b


def kl_divergence(p: ArrayLike, q: ArrayLike) -> Array:
    """``KL(p || q) = sum_t p(t) log(p(t) / q(t))`` over the last axis.

    ``0 log 0 = 0``; ``inf`` when some ``q(t) = 0 < p(t)``.  Never NaN.
    """
    a, b = _pair(p, q, ("p", "q"))
    return xsum(_xlogy_ratio(a, b), axis=-1)


def generalized_kl(a: ArrayLike, b: ArrayLike) -> Array:
    """KL for unnormalized measures, ``sum_t [a log(a / b) - a + b]`` (notebooks/theory.md §2).

    Non-negative, zero iff ``a = b``; per-token terms are minimized at ``b(t) = a(t)``
    and quasi-convex, so it respects the robust order with ``a = p_i``, ``b = q``
    (and in the other order with ``a = q``, ``b = p_i``).
    """
    x, y = _pair(a, b, ("a", "b"), measures=True)
    return xsum(_xlogy_ratio(x, y) - x + y, axis=-1)


def tv_distance(p: ArrayLike, q: ArrayLike, *, validate: bool = True) -> Array:
    """Total variation ``TV(p, q) = (1/2) sum_t |p(t) - q(t)|`` over the last axis (broadcasting).

    The package's one implementation of TV; ``validate=False`` skips the checks for
    callers that hold validated arrays of one backend.
    """
    a, b = _pair(p, q, ("p", "q")) if validate else (p, q)
    return 0.5 * xsum(xabs(a - b), axis=-1)


def _weighted(terms: Array, b: Array) -> Array:
    """``sum_i b_i terms_i`` with ``0 * inf = 0`` (agents with zero bid do not count)."""
    with np.errstate(invalid="ignore"):  # 0 * inf in the branch not taken
        safe = xwhere(b > 0, b * terms, 0.0 * b)
    return xsum(safe, axis=-1)


def linear_objective(q: ArrayLike, dists: ArrayLike, bids: ArrayLike) -> Array:
    """``sum_i b_i KL(p_i || q)``; its minimizer over the simplex is the linear rule (notebooks/theory.md §5).

    ``q (..., V)``, ``dists (..., n, V)``, ``bids (..., n)``; ``inf`` when ``q``
    misses a token of an agent with a positive bid.
    """
    d, b = dists_and_bids(dists, bids)
    qq = like(as_distributions(q, name="q", min_ndim=1), d)
    kl = xsum(_xlogy_ratio(d, qq[..., None, :]), axis=-1)  # (..., n)
    return _weighted(kl, b)


def log_linear_objective(q: ArrayLike, dists: ArrayLike, bids: ArrayLike) -> Array:
    """``sum_i b_i KL(q || p_i)``; its minimizer over the simplex is the log-linear rule (notebooks/theory.md §5)."""
    d, b = dists_and_bids(dists, bids)
    qq = like(as_distributions(q, name="q", min_ndim=1), d)
    kl = xsum(_xlogy_ratio(qq[..., None, :], d), axis=-1)
    return _weighted(kl, b)


def argmin_on_simplex(
    objective: Callable[[np.ndarray], float],
    vocab_size: int,
    *,
    support: ArrayLike | None = None,
    x0: ArrayLike | None = None,
    seed: int | None = 0,
    n_starts: int = 3,
    tol: float = 1e-12,
) -> np.ndarray:
    """Numerically minimize ``objective(q)`` over the probability simplex.

    Parametrizes ``q = softmax(theta)`` on ``support`` (a boolean mask; tokens
    outside get probability 0) and runs :func:`scipy.optimize.minimize` (BFGS)
    from ``n_starts`` starts (``x0`` first, if given), keeping the best.  Used to
    verify that the linear and log-linear rules are the argmins of their KL
    objectives; not for large vocabularies.
    """
    V = int(vocab_size)
    if V < 1:
        raise ValueError(f"vocab_size must be >= 1, got {V}")
    mask = np.ones(V, dtype=bool) if support is None else np.asarray(to_numpy(support), dtype=bool)
    if mask.shape != (V,) or not mask.any():
        raise ValueError("support must be a boolean mask of length vocab_size with at least one True")
    k = int(mask.sum())
    rng = np.random.default_rng(seed)

    def to_q(theta: np.ndarray) -> np.ndarray:
        z = theta - theta.max()
        e = np.exp(z)
        q = np.zeros(V)
        q[mask] = e / e.sum()
        return q

    def f(theta: np.ndarray) -> float:
        val = float(np.asarray(to_numpy(objective(to_q(theta)))))
        return val if np.isfinite(val) else 1e300

    starts = []
    if x0 is not None:
        q0 = np.asarray(to_numpy(x0), dtype=np.float64)[mask]
        starts.append(np.log(np.maximum(q0, 1e-12)))
    while len(starts) < max(n_starts, 1):
        starts.append(rng.normal(size=k))
    results = [minimize(f, s, method="BFGS", options={"gtol": tol, "maxiter": 2000}) for s in starts]
    return to_q(min(results, key=lambda res: res.fun).x)


def rlhf_policy(p_ref: ArrayLike, reward: ArrayLike, kl_weight: float) -> Array:
    """RLHF-optimal policy ``p_ref exp(r / kappa) / Z`` = ``argmax_q E_q[r] - kappa KL(q || p_ref)``
    (notebooks/theory.md §5; ``kappa`` is the KL weight, often written beta in the RLHF literature),
    computed in log space; tokens with ``p_ref = 0`` stay 0.

    ``p_ref (..., V)``, ``reward`` broadcastable to it (finite), ``kl_weight > 0``.
    """
    p = as_distributions(p_ref, name="p_ref", min_ndim=1)
    r = like(as_array(reward, name="reward"), p)
    if not np.isfinite(to_numpy(r)).all():
        raise ValueError("reward contains NaN or inf")
    kappa = float(kl_weight)
    if not np.isfinite(kappa) or kappa <= 0:
        raise ValueError(f"kl_weight must be positive and finite, got {kappa}")
    logits = xlog(p) + r / kappa
    m = xmax(logits, axis=-1, keepdims=True)
    e = xexp(logits - m)
    return e / xsum(e, axis=-1, keepdims=True)
