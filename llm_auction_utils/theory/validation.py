"""Input validation shared by the whole package: bad input gets one clear error everywhere.

Examples of messages:

- ``"dists row 2 sums to 0.93, expected 1 (atol=1e-4)"``
- ``"bids contain NaN"``
- ``"bid of agent 1 is negative (-0.5)"``
- ``"all bids are zero"``
- ``"dists has 3 agents but bids has 2"``

:class:`ValueError` for bad values, :class:`TypeError` for bad types.  Agents are
indexed from 0 in code; messages say "agent 0" for the first agent (the theory
chapter numbers agents from 1: agent ``i`` of the text is index ``i - 1``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .arrays import Array, ArrayLike, as_array, is_torch, like, to_float64, to_numpy

__all__ = [
    "DISTRIBUTION_ATOL",
    "as_bid_grid",
    "as_bids",
    "as_distributions",
    "cast_bids",
    "check_agent",
    "check_bid",
    "dists_and_bids",
    "dists_and_scaled_bids",
    "scale_bids",
    "format_number",
    "format_tolerance",
    "order_atol",
]

DISTRIBUTION_ATOL = 1e-4
"""How far from 1 a row of probabilities may sum (float32 softmax over 262,144 tokens sums to 1 +- 1e-6)."""


def order_atol(x: Array | None = None) -> float:
    """Default slack of the robust order's comparisons for the dtype of ``x``.

    ``1e-9`` for float64 (and numpy / lists), ``1e-7`` for float32 tensors (their
    probabilities carry round-off of a few ``1e-8``), ``1e-3`` for half precision.
    Every function that compares distributions with the order defaults to this.
    """
    if is_torch(x):
        if x.dtype in (torch.float16, torch.bfloat16):
            return 1e-3
        if x.dtype == torch.float32:
            return 1e-7
    elif isinstance(x, np.ndarray) and x.dtype == np.float32:
        return 1e-7
    return 1e-9


def format_number(v: float) -> str:
    """``v`` with 6 significant digits, for error messages."""
    return f"{v:.6g}"


def format_tolerance(t: float) -> str:
    """``1e-4`` rather than ``0.0001`` for small tolerances."""
    if t != 0 and abs(t) < 1e-3:
        mant, exp = f"{t:.0e}".split("e")
        return f"{mant}e{int(exp)}"
    return f"{t:g}"


def _index(flat: int, shape: tuple[int, ...]) -> str:
    if len(shape) <= 1:
        return str(flat)
    return str(tuple(int(i) for i in np.unravel_index(flat, shape)))


def _check_finite_nonneg(a: Array, name: str, what: str) -> None:
    an = to_numpy(a)
    if np.isnan(an).any():
        raise ValueError(f"{name} contain NaN")
    if np.isinf(an).any():
        raise ValueError(f"{name} contain inf")
    flat = int(np.argmax((an < 0).ravel()))
    raise ValueError(
        f"{name} has a negative {what} at index {_index(flat, an.shape)} ({format_number(float(an.ravel()[flat]))})"
    )


def as_distributions(
    dists: ArrayLike,
    *,
    atol: float = DISTRIBUTION_ATOL,
    name: str = "dists",
    min_ndim: int = 2,
) -> Array:
    """Validate probability vectors along the last axis and return them as an array.

    Checks: ``ndim >= min_ndim`` (2 for agents' distributions ``(..., n, V)``), a
    non-empty last axis, finite and non-negative entries, and every row summing to 1
    within ``atol`` (at least ``1e-2`` for half-precision tensors, whose entries are rounded to
    about three significant digits).  The check runs in the array's own backend (no host copy
    of a large tensor) unless it fails.
    """
    a = as_array(dists, name=name)
    if is_torch(a) and a.dtype in (torch.float16, torch.bfloat16):
        atol = max(atol, 1e-2)
    if a.ndim < min_ndim:
        shape_hint = "(n_agents, vocab_size)" if min_ndim >= 2 else "(vocab_size,)"
        raise ValueError(f"{name} must have at least {min_ndim} dimensions {shape_hint}, got shape {tuple(a.shape)}")
    if a.shape[-1] == 0:
        raise ValueError(f"{name} has an empty vocabulary axis (shape {tuple(a.shape)})")
    if (a.numel() if is_torch(a) else a.size) == 0:
        return a
    # row sums are finite iff all entries are (entries being checked >= 0 too)
    if is_torch(a):
        sums = a.sum(-1, dtype=torch.float32) if a.dtype in (torch.float16, torch.bfloat16) else a.sum(-1)
        ok = bool(torch.stack([torch.isfinite(sums).all(), ((sums - 1.0).abs() <= atol).all(), a.amin() >= 0]).all())
    else:
        sums = a.sum(axis=-1)
        ok = bool(np.isfinite(sums).all() and (np.abs(sums - 1.0) <= atol).all() and a.min() >= 0)
    if ok:
        return a
    if not (np.isfinite(to_numpy(a)).all() and (to_numpy(a) >= 0).all()):
        _check_finite_nonneg(a, name, "probability")
    sums64 = to_numpy(a).sum(axis=-1, dtype=np.float64)
    flat = int(np.argmax((np.abs(sums64 - 1.0) > atol).ravel()))
    raise ValueError(
        f"{name} row {_index(flat, sums64.shape)} sums to {format_number(float(sums64.ravel()[flat]))}, "
        f"expected 1 (atol={format_tolerance(atol)})"
    )


def check_bid(value: Any, name: str = "bid") -> float:
    """One bid: a finite real number ``>= 0`` (not a bool); returns it as ``float``.

    :class:`TypeError` for a non-number, :class:`ValueError` naming ``name`` for NaN,
    inf or a negative value.  The engine, the scenario files, the command line and
    the notebook parameters all check bids with it.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    b = float(value)
    if math.isnan(b):
        raise ValueError(f"{name} is NaN")
    if math.isinf(b):
        raise ValueError(f"{name} is infinite")
    if b < 0:
        raise ValueError(f"{name} is negative ({format_number(b)})")
    return b


def as_bids(bids: ArrayLike, n: int | None = None, *, name: str = "bids", allow_all_zero: bool = False) -> Array:
    """Validate bids ``(..., n)`` and return them as an array.

    Checks: at least one dimension; a last axis of length ``n`` when given (the
    message reads ``"dists has 3 agents but bids has 2"``); finite; non-negative
    (``"bid of agent 1 is negative (-0.5)"``); and, unless ``allow_all_zero``, not
    all zero along the agent axis (``"all bids are zero"``).
    """
    b = as_array(bids, name=name)
    if b.ndim == 0:
        raise ValueError(f"{name} must be a vector of one bid per agent, got a scalar")
    if n is not None and b.shape[-1] != n:
        raise ValueError(f"dists has {n} agents but {name} has {b.shape[-1]}")
    bn = to_float64(b)
    if np.isnan(bn).any():
        raise ValueError(f"{name} contain NaN")
    if np.isinf(bn).any():
        raise ValueError(f"{name} contain inf")
    if (bn < 0).any():
        flat = int(np.argmax((bn < 0).ravel()))
        idx = np.unravel_index(flat, bn.shape)
        where = "" if bn.ndim == 1 else f" in batch item {tuple(int(i) for i in idx[:-1])}"
        raise ValueError(f"bid of agent {int(idx[-1])} is negative ({format_number(float(bn.ravel()[flat]))}){where}")
    if not allow_all_zero:
        allzero = (bn == 0).all(axis=-1)
        if np.any(allzero):
            if bn.ndim == 1:
                raise ValueError(f"all {name} are zero")
            raise ValueError(f"all {name} are zero in batch item {_index(int(np.argmax(np.ravel(allzero))), allzero.shape)}")
    return b


def as_bid_grid(bid_grid: ArrayLike, *, name: str = "bid_grid") -> np.ndarray:
    """Validate a 1-D, finite, non-negative, non-decreasing grid of bids (numpy float64)."""
    g = to_float64(as_array(bid_grid, name=name))
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of bids, got shape {g.shape}")
    if not np.isfinite(g).all():
        raise ValueError(f"{name} contains NaN or inf")
    if (g < 0).any():
        raise ValueError(f"{name} contains a negative bid ({format_number(float(g[g < 0][0]))})")
    if (np.diff(g) < 0).any():
        raise ValueError(f"{name} must be non-decreasing")
    return g


def check_agent(agent: int, n: int) -> int:
    """Validate an agent index ``0 <= agent < n`` and return it as ``int``."""
    if isinstance(agent, bool) or not isinstance(agent, (int, np.integer)):
        raise TypeError(f"agent must be an integer index, got {type(agent).__name__}")
    if not 0 <= int(agent) < n:
        raise ValueError(f"agent {int(agent)} out of range for {n} agents")
    return int(agent)


def cast_bids(b64: np.ndarray, ref: Array, name: str = "bids", *, strict: bool = False) -> Array:
    """``b64`` (float64) on the backend and dtype of ``ref``, checked after the cast: no bid may
    overflow to inf, and no instance's positive bids may all underflow to 0 -- with ``strict``,
    no positive bid at all (payments depend on every bid, aggregation only on the large ones)."""
    b = like(b64, ref)
    bn = to_float64(b)
    if not np.isfinite(bn).all():
        big = float(np.max(b64))
        raise ValueError(
            f"{name} do not fit the dtype of dists ({ref.dtype}): the largest bid {format_number(big)} overflows; "
            "bids only matter relative to each other, so divide them by a common factor"
        )
    lost = (bn == 0).all(axis=-1) & (b64 > 0).any(axis=-1)
    if np.any(lost):
        raise ValueError(f"{name} underflow to zero in the dtype of dists ({ref.dtype}); multiply them by a common factor")
    if strict and np.any((bn == 0) & (b64 > 0)):
        raise ValueError(f"{name} span more orders of magnitude than the dtype of dists ({ref.dtype}) holds: a positive "
                         "bid rounds to 0; pass float64 dists")
    return b


def dists_and_bids(
    dists: ArrayLike, bids: ArrayLike, *, atol: float = DISTRIBUTION_ATOL, allow_all_zero: bool = False
) -> tuple[Array, Array]:
    """Validate ``dists (..., n, V)`` and ``bids (..., n)`` together; the bids are put on the
    backend, device and dtype of ``dists`` and checked after the cast (bids that overflow the
    dtype give a clear error).  Functions that depend on the bids only relative to each other
    use :func:`dists_and_scaled_bids` instead."""
    d = as_distributions(dists, atol=atol)
    b = as_bids(bids, d.shape[-2], allow_all_zero=allow_all_zero)
    return d, cast_bids(to_float64(b), d)


def scale_bids(bids: Array) -> tuple[np.ndarray, np.ndarray]:
    """``(bids / max_j bids_j, max_j bids_j)`` in float64 along the agent axis (scale 1 where all are 0).

    Aggregation depends on the bids only through their ratios, and payments are homogeneous of
    degree 1, so the mathematics works with bids in ``[0, 1]`` and multiplies payments back by
    the scale: sums of huge bids never overflow, and tiny ones never underflow.
    """
    b64 = to_float64(bids)
    scale = np.max(b64, axis=-1, keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    return b64 / scale, scale


def dists_and_scaled_bids(
    dists: ArrayLike, bids: ArrayLike, *, atol: float = DISTRIBUTION_ATOL, allow_all_zero: bool = False
) -> tuple[Array, Array, np.ndarray]:
    """Validate ``dists (..., n, V)`` and ``bids (..., n)``; return ``(dists, bids / scale, scale)``
    with the scaled bids (largest 1) on the backend, device and dtype of ``dists`` and the
    float64 ``scale (..., 1)`` (see :func:`scale_bids`)."""
    d = as_distributions(dists, atol=atol)
    b = as_bids(bids, d.shape[-2], allow_all_zero=allow_all_zero)
    scaled, scale = scale_bids(b)
    return d, cast_bids(scaled, d), scale
