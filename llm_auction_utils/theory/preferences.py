"""The robust (coordinatewise) preference order of an agent (notebooks/theory.md §2, [project]).

Agent ``i`` with distribution ``p_i`` weakly prefers ``q'`` to ``q``
(``q' >=_i q``) iff for every token ``t``, ``q'(t)`` lies in the closed interval
between ``q(t)`` and ``p_i(t)``; strictly (``q' >_i q``) when in addition
``q' != q``.  Moving part of the way toward ``p_i`` on the segment is a special
case; the order is partial (some pairs are incomparable).

All functions take ``(..., V)`` arrays (numpy or torch, broadcast against each
other) and return boolean arrays over the leading dimensions (0-d for single
vectors).  ``atol`` is the numerical slack allowed outside each interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .arrays import Array, ArrayLike, is_torch, like, to_numpy
from .validation import as_distributions, order_atol

__all__ = [
    "PreferenceViolation",
    "comparable",
    "preference_violation",
    "preferred_region_vertices",
    "strictly_prefers",
    "token_excess",
    "violation_amount",
    "weakly_prefers",
]

def _three(q_new: ArrayLike, q_old: ArrayLike, p_i: ArrayLike) -> tuple[Array, Array, Array]:
    a = as_distributions(q_new, name="q_new", min_ndim=1)
    b = like(as_distributions(q_old, name="q_old", min_ndim=1), a)
    p = like(as_distributions(p_i, name="p_i", min_ndim=1), a)
    if not (a.shape[-1] == b.shape[-1] == p.shape[-1]):
        raise ValueError(
            f"vocabulary sizes differ: q_new has {a.shape[-1]}, q_old has {b.shape[-1]}, p_i has {p.shape[-1]}"
        )
    return a, b, p


def token_excess(q_new: Array, q_old: Array, p_i: Array) -> Array:
    """Per-token distance of ``q_new(t)`` outside ``[min(q_old, p_i), max(q_old, p_i)]`` (>= 0)."""
    if is_torch(q_new):
        lo = torch.minimum(q_old, p_i)
        hi = torch.maximum(q_old, p_i)
        return torch.clamp_min(torch.maximum(lo - q_new, q_new - hi), 0.0)
    lo = np.minimum(q_old, p_i)
    hi = np.maximum(q_old, p_i)
    return np.maximum(np.maximum(lo - q_new, q_new - hi), 0.0)


def violation_amount(q_new: ArrayLike, q_old: ArrayLike, p_i: ArrayLike) -> Array:
    """``max_t`` distance of ``q_new(t)`` outside the interval between ``q_old(t)`` and ``p_i(t)``.

    Zero iff ``q_new >=_i q_old`` exactly; shape = leading dimensions.
    """
    a, b, p = _three(q_new, q_old, p_i)
    ex = token_excess(a, b, p)
    return ex.amax(dim=-1) if is_torch(ex) else ex.max(axis=-1)


def weakly_prefers(q_new: ArrayLike, q_old: ArrayLike, p_i: ArrayLike, *, atol: float | None = None) -> Array:
    """``q_new >=_i q_old``: every ``q_new(t)`` within ``atol`` of the closed interval
    between ``q_old(t)`` and ``p_i(t)`` (notebooks/theory.md §2).  ``atol=None``: :func:`~.validation.order_atol`."""
    v = violation_amount(q_new, q_old, p_i)
    return v <= (order_atol(v) if atol is None else atol)


def strictly_prefers(q_new: ArrayLike, q_old: ArrayLike, p_i: ArrayLike, *, atol: float | None = None) -> Array:
    """``q_new >_i q_old``: weakly preferred and ``max_t |q_new(t) - q_old(t)| > atol``."""
    a, b, p = _three(q_new, q_old, p_i)
    atol = order_atol(a) if atol is None else atol
    ex = token_excess(a, b, p)
    d = (a - b).abs() if is_torch(a) else np.abs(a - b)
    if is_torch(ex):
        return (ex.amax(dim=-1) <= atol) & (d.amax(dim=-1) > atol)
    return (ex.max(axis=-1) <= atol) & (d.max(axis=-1) > atol)


def comparable(q_a: ArrayLike, q_b: ArrayLike, p_i: ArrayLike, *, atol: float | None = None) -> Array:
    """True where agent ``i`` ranks the pair: ``q_a >=_i q_b`` or ``q_b >=_i q_a``."""
    return weakly_prefers(q_a, q_b, p_i, atol=atol) | weakly_prefers(q_b, q_a, p_i, atol=atol)


@dataclass(frozen=True)
class PreferenceViolation:
    """The worst token for ``q_new >=_i q_old`` (diagnostics).

    ``token``: index of the token farthest outside its interval (per leading
    index); ``amount``: that distance (0 when ``q_new >=_i q_old``);
    ``q_new``, ``q_old``, ``p_i``: the three probabilities of that token.
    """

    token: np.ndarray
    amount: np.ndarray
    q_new: np.ndarray
    q_old: np.ndarray
    p_i: np.ndarray

    @property
    def holds(self) -> np.ndarray:
        """True where there is no violation at all (``amount == 0``)."""
        return self.amount == 0


def preference_violation(q_new: ArrayLike, q_old: ArrayLike, p_i: ArrayLike) -> PreferenceViolation:
    """Report the worst violating token of ``q_new >=_i q_old`` and by how much (numpy output)."""
    a, b, p = _three(q_new, q_old, p_i)
    an, bn, pn = (np.asarray(to_numpy(x), dtype=np.float64) for x in (a, b, p))
    an, bn, pn = np.broadcast_arrays(an, bn, pn)
    ex = token_excess(an, bn, pn)
    tok = ex.argmax(axis=-1)
    take = lambda x: np.take_along_axis(x, tok[..., None], axis=-1)[..., 0]  # noqa: E731
    return PreferenceViolation(token=tok, amount=take(ex), q_new=take(an), q_old=take(bn), p_i=take(pn))


def preferred_region_vertices(q: ArrayLike, p_i: ArrayLike, *, atol: float = 1e-12) -> np.ndarray:
    """Vertices, in angular order, of ``{q' in simplex : q' >=_i q}`` for 3 tokens (notebooks/theory.md §2).

    The region is the coordinatewise box between ``q`` and ``p_i`` intersected with
    the simplex, a polygon with corners ``q`` and ``p_i``.  Each vertex has two
    coordinates on a box bound and the third fixed by summing to 1; the candidates
    are enumerated and those that are distributions in the box are kept.
    """
    import itertools

    q_arr = to_numpy(as_distributions(q, name="q", min_ndim=1)).astype(float)
    p_arr = to_numpy(as_distributions(p_i, name="p_i", min_ndim=1)).astype(float)
    if q_arr.shape != (3,) or p_arr.shape != (3,):
        raise ValueError(f"preferred_region_vertices needs two distributions over 3 tokens, got {q_arr.shape} and {p_arr.shape}")
    low, high = np.minimum(q_arr, p_arr), np.maximum(q_arr, p_arr)
    candidates = np.array([
        np.insert(np.array(bounds), free, 1.0 - sum(bounds))
        for free in range(3)
        for bounds in itertools.product(*[(low[t], high[t]) for t in range(3) if t != free])
    ])
    candidates = np.clip(candidates[(candidates >= -atol).all(-1)], 0.0, 1.0)
    kept = candidates[np.asarray(weakly_prefers(candidates, q_arr, p_arr, atol=atol))]
    vertices = np.unique(kept.round(12), axis=0)
    centred = vertices - vertices.mean(0)
    # angular order in the plane of the simplex (any fixed 2-d projection works)
    angle = np.arctan2(centred[:, 1] - centred[:, 2], centred[:, 0] - 0.5 * (centred[:, 1] + centred[:, 2]))
    return vertices[np.argsort(angle)]
