"""Adaptive Gauss-Kronrod quadrature, vectorized over a batch of integrals (notebooks/theory.md §7).

Myerson payments are integrals of an allocation curve along one agent's bids.  Each
evaluation of the integrand is an aggregation over the whole vocabulary, so the
integrals of a decoding step (one per agent, or a batch) are computed *together*: all
integrals share one set of panels of a normalized variable ``tau in [0, 1]``, every
round evaluates the 15 Kronrod nodes of the new panels for every integral in one call
of the integrand, and the error estimate ``|K15 - G7|`` of each panel decides which
panels are halved next.

The rule stops at its panel or round limit even where the error estimate is still above the
tolerance; :class:`QuadratureResult` then says so (``converged``), and the payment functions of
:mod:`.payments` pass the flag on and warn with :class:`QuadratureWarning` (notebooks/theory.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .arrays import Array, is_torch, like, xabs, xsum

__all__ = ["QuadratureResult", "QuadratureWarning", "gauss_kronrod"]

# Kronrod 15-point nodes on [-1, 1] (non-negative half, descending) and weights; the Gauss 7-point
# rule uses every other node (QUADPACK's qk15 constants).
_XGK = np.array([
    0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
    0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
    0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
    0.207784955007898467600689403773245, 0.000000000000000000000000000000000,
])
_WGK = np.array([
    0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
    0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
    0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
    0.204432940075298892414161999234649, 0.209482141084727828012999174891714,
])
_WG = np.array([
    0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
    0.381830050505118944950369775488975, 0.417959183673469387755102040816327,
])
NODES = np.concatenate([-_XGK, _XGK[-2::-1]])  # 15 nodes, ascending
KRONROD_WEIGHTS = np.concatenate([_WGK, _WGK[-2::-1]])
GAUSS_WEIGHTS = np.zeros(15)
GAUSS_WEIGHTS[1:15:2] = np.concatenate([_WG[:3], _WG[3:4], _WG[2::-1]])


class QuadratureWarning(RuntimeWarning):
    """An adaptive integral stopped at its panel or round limit before its error estimate reached the
    tolerance: the value is returned, but it may be less accurate than asked (notebooks/theory.md §7)."""


@dataclass(frozen=True)
class QuadratureResult:
    """``value`` and ``error`` (the summed ``|K15 - G7|`` estimate), shape of the batch;
    ``n_evaluations`` nodes per integral; ``converged`` where ``error <= tolerance`` (False where the
    rule stopped at ``max_panels`` or ``max_rounds`` first)."""

    value: Array
    error: Array
    n_evaluations: int
    converged: Array


def gauss_kronrod(
    integrand: Callable[[Array], Array],
    lower: Array,
    upper: Array,
    *,
    rtol: float = 1e-8,
    atol: float = 0.0,
    initial_panels: int = 1,
    max_rounds: int = 40,
    max_panels: int = 256,
) -> QuadratureResult:
    """``int_lower^upper f(w) dw`` for a batch of integrals at once, adaptively.

    ``lower``, ``upper``: arrays ``(...,)`` (numpy or torch).  ``integrand(w)`` receives
    ``w (..., K)`` (nodes of the batch's own intervals, same backend) and returns
    ``f (..., K)``.  Panels of ``tau in [0, 1]``, mapped to ``w = lower + tau (upper - lower)``,
    are shared by the batch; a panel is halved while its error estimate exceeds its share
    of ``max(atol, rtol |value|)`` for any integral, for at most ``max_rounds`` rounds and
    ``max_panels`` panels.  Integrals with ``lower == upper`` are 0.  Reaching a limit does not
    raise: the result's ``converged`` is False for the integrals whose estimate is still too large.
    """
    if rtol <= 0 and atol <= 0:
        raise ValueError("rtol or atol must be positive")
    span = upper - lower
    nodes = (NODES + 1.0) / 2.0
    wk = like(KRONROD_WEIGHTS / 2.0, span)
    wg = like(GAUSS_WEIGHTS / 2.0, span)
    edges = np.linspace(0.0, 1.0, max(int(initial_panels), 1) + 1)
    panels = list(zip(edges[:-1], edges[1:]))
    done: dict[tuple[float, float], tuple[Array, Array]] = {}
    n_eval = 0
    for _ in range(max_rounds):
        new = [p for p in panels if p not in done]
        if new:
            tau = np.concatenate([a + (b - a) * nodes for a, b in new])
            w = lower[..., None] + span[..., None] * like(tau, span)
            f = integrand(w)
            n_eval += len(tau)
            for k, (a, b) in enumerate(new):
                fk = f[..., 15 * k: 15 * (k + 1)]
                scale = span * (b - a)
                done[(a, b)] = (scale * xsum(wk * fk, axis=-1), scale * xabs(xsum((wk - wg) * fk, axis=-1)))
        values = [done[p][0] for p in panels]
        errors = [done[p][1] for p in panels]
        total = sum(values[1:], values[0])
        err = sum(errors[1:], errors[0])
        tol = _tolerance(total, rtol, atol)
        if bool((err <= tol).all()) or len(panels) >= max_panels:
            break
        share = tol / len(panels)
        refined: list[tuple[float, float]] = []
        for p, e in zip(panels, errors):
            if bool((e > share).any()) and len(refined) + 2 <= max_panels:
                mid = 0.5 * (p[0] + p[1])
                refined += [(p[0], mid), (mid, p[1])]
            else:
                refined.append(p)
        if len(refined) == len(panels):
            break
        panels = refined
    return QuadratureResult(value=total, error=err, n_evaluations=n_eval, converged=err <= tol)


def _tolerance(total: Array, rtol: float, atol: float) -> Array:
    t = rtol * xabs(total)
    if is_torch(t):
        return t.clamp_min(atol)
    return np.maximum(t, atol)

