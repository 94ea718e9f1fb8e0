"""Shared input validation and small backend helpers (numpy or torch).

Every public function of the theory core validates its inputs here, so bad
input gets the same clear :class:`ValueError` everywhere, e.g.

- ``"dists row 2 sums to 0.93, expected 1 (atol=1e-4)"``
- ``"bids contain NaN"``
- ``"bid of agent 1 is negative (-0.5)"``
- ``"all bids are zero"``
- ``"dists has 3 agents but bids has 2"``

Backend convention: a :class:`torch.Tensor` input gives a tensor output (same
device, floating dtype kept); anything else (lists, numpy arrays, scalars) is
turned into a ``float64`` :class:`numpy.ndarray`.  The helpers below (``xsum``,
``xlog``, ``xwhere``, ...) let the math be written once for both backends.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np
import torch

Array = Union[np.ndarray, torch.Tensor]
"""A numpy array or a torch tensor; functions return the type they are given."""

ArrayLike = Union[Array, "list[Any]", "tuple[Any, ...]", float, int]

__all__ = [
    "Array",
    "ArrayLike",
    "as_array",
    "as_bids",
    "as_distributions",
    "as_bid_grid",
    "check_agent",
    "is_torch",
    "like",
    "to_numpy",
    "xabs",
    "xclip_min",
    "xexp",
    "xlog",
    "xlogsumexp",
    "xmax",
    "xsum",
    "xwhere",
    "xzeros_like",
]


# --------------------------------------------------------------------------
# backend helpers
# --------------------------------------------------------------------------
def is_torch(x: Any) -> bool:
    """True when ``x`` is a :class:`torch.Tensor`."""
    return isinstance(x, torch.Tensor)


def as_array(x: ArrayLike, *, name: str = "input") -> Array:
    """Return ``x`` as a floating array: torch tensors keep device (and a
    floating dtype; integer/bool tensors become the default float dtype),
    everything else becomes a ``float64`` numpy array."""
    if is_torch(x):
        t = x.detach()
        if not torch.is_floating_point(t):
            t = t.to(torch.get_default_dtype())
        return t
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric array-like, got {type(x).__name__}: {exc}") from None
    return a


def like(x: ArrayLike, ref: Array) -> Array:
    """Convert ``x`` to the backend (and, for torch, device/dtype) of ``ref``."""
    if is_torch(ref):
        if is_torch(x):
            return x.to(device=ref.device, dtype=ref.dtype)
        return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=ref.dtype, device=ref.device)
    if is_torch(x):
        return x.detach().cpu().numpy().astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def to_numpy(x: ArrayLike) -> np.ndarray:
    """A numpy copy/view of ``x`` (tensors are moved to the CPU)."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def xsum(x: Array, axis: int = -1, keepdims: bool = False) -> Array:
    if is_torch(x):
        return x.sum(dim=axis, keepdim=keepdims)
    return x.sum(axis=axis, keepdims=keepdims)


def xmax(x: Array, axis: int = -1, keepdims: bool = False) -> Array:
    if is_torch(x):
        return x.amax(dim=axis, keepdim=keepdims)
    return x.max(axis=axis, keepdims=keepdims)


def xabs(x: Array) -> Array:
    return x.abs() if is_torch(x) else np.abs(x)


def xexp(x: Array) -> Array:
    return torch.exp(x) if is_torch(x) else np.exp(x)


def xlog(x: Array) -> Array:
    """Natural log with ``log(0) = -inf`` and no warning."""
    if is_torch(x):
        return torch.log(x)
    with np.errstate(divide="ignore"):
        return np.log(x)


def xwhere(cond: Array, a: Any, b: Any) -> Array:
    if is_torch(cond):
        return torch.where(cond, a, b)
    return np.where(cond, a, b)


def xzeros_like(x: Array) -> Array:
    return torch.zeros_like(x) if is_torch(x) else np.zeros_like(x)


def xclip_min(x: Array, lo: float) -> Array:
    return x.clamp_min(lo) if is_torch(x) else np.maximum(x, lo)


def xlogsumexp(x: Array, axis: int = -1, keepdims: bool = False) -> Array:
    """``log sum exp`` along ``axis``; a row of all ``-inf`` gives ``-inf``."""
    if is_torch(x):
        return torch.logsumexp(x, dim=axis, keepdim=keepdims)
    m = np.max(x, axis=axis, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m_safe), axis=axis, keepdims=True)) + m_safe
    return out if keepdims else np.squeeze(out, axis=axis)


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _fmt_tol(t: float) -> str:
    """``1e-4`` rather than ``0.0001`` for small tolerances."""
    if t != 0 and abs(t) < 1e-3:
        mant, exp = f"{t:.0e}".split("e")
        return f"{mant}e{int(exp)}"
    return f"{t:g}"


def _index(flat: int, shape: tuple[int, ...]) -> str:
    if len(shape) <= 1:
        return str(flat)
    return str(tuple(int(i) for i in np.unravel_index(flat, shape)))


# --------------------------------------------------------------------------
# validators
# --------------------------------------------------------------------------
def _check_finite_nonneg(a: Array, name: str, what: str) -> None:
    # fast path in the array's own backend (no host copy of a large tensor)
    if is_torch(a):
        ok = bool(torch.isfinite(a).all()) and not bool((a < 0).any())
    else:
        ok = bool(np.isfinite(a).all()) and not bool((a < 0).any())
    if ok:
        return
    an = to_numpy(a)
    if np.isnan(an).any():
        raise ValueError(f"{name} contain NaN")
    if np.isinf(an).any():
        raise ValueError(f"{name} contain inf")
    flat = int(np.argmax((an < 0).ravel()))
    raise ValueError(
        f"{name} has a negative {what} at index {_index(flat, an.shape)} ({_fmt(float(an.ravel()[flat]))})"
    )


def as_distributions(
    dists: ArrayLike,
    *,
    atol: float = 1e-4,
    name: str = "dists",
    min_ndim: int = 2,
) -> Array:
    """Validate probability vectors along the last axis and return them as an array.

    Checks: ``ndim >= min_ndim`` (2 for agents' distributions ``(..., n, V)``),
    a non-empty last axis, finite and non-negative entries, and every row summing
    to 1 within ``atol``.  Raises :class:`ValueError` naming the problem, e.g.
    ``"dists row 2 sums to 0.93, expected 1 (atol=1e-4)"``.
    """
    a = as_array(dists, name=name)
    if a.ndim < min_ndim:
        shape_hint = "(n_agents, vocab_size)" if min_ndim >= 2 else "(vocab_size,)"
        raise ValueError(f"{name} must have at least {min_ndim} dimensions {shape_hint}, got shape {tuple(a.shape)}")
    if a.shape[-1] == 0:
        raise ValueError(f"{name} has an empty vocabulary axis (shape {tuple(a.shape)})")
    if (a.numel() if is_torch(a) else a.size) == 0:
        return a
    # One cheap pass in the array's own backend (no host copy of a large tensor):
    # row sums are finite iff all entries are (entries being checked >= 0 too).
    sums_native = a.sum(-1) if is_torch(a) else a.sum(axis=-1)
    if is_torch(a):
        ok = bool(torch.stack([
            torch.isfinite(sums_native).all(),
            ((sums_native - 1.0).abs() <= atol).all(),
            a.amin() >= 0,
        ]).all())
    else:
        ok = bool(np.isfinite(sums_native).all() and (np.abs(sums_native - 1.0) <= atol).all() and a.min() >= 0)
    if ok:
        return a
    _check_finite_nonneg(a, name, "probability")
    sums = to_numpy(a).sum(axis=-1, dtype=np.float64)
    bad = np.abs(sums - 1.0) > atol
    if bad.any():
        flat = int(np.argmax(bad.ravel()))
        raise ValueError(
            f"{name} row {_index(flat, sums.shape)} sums to {_fmt(float(sums.ravel()[flat]))}, "
            f"expected 1 (atol={_fmt_tol(atol)})"
        )
    return a


def as_bids(bids: ArrayLike, n: int | None = None, *, name: str = "bids", allow_all_zero: bool = False) -> Array:
    """Validate bids ``(..., n)`` and return them as an array.

    Checks: at least one dimension, last axis of length ``n`` (when given; the
    message reads ``"dists has 3 agents but bids has 2"``), finite (``"bids contain
    NaN"``), non-negative (``"bid of agent 1 is negative (-0.5)"``) and, unless
    ``allow_all_zero``, not all zero along the agent axis (``"all bids are zero"``).
    """
    b = as_array(bids, name=name)
    if b.ndim == 0:
        raise ValueError(f"{name} must be a vector of one bid per agent, got a scalar")
    if n is not None and b.shape[-1] != n:
        raise ValueError(f"dists has {n} agents but {name} has {b.shape[-1]}")
    bn = to_numpy(b)
    if np.isnan(bn).any():
        raise ValueError(f"{name} contain NaN")
    if np.isinf(bn).any():
        raise ValueError(f"{name} contain inf")
    if (bn < 0).any():
        flat = int(np.argmax((bn < 0).ravel()))
        idx = np.unravel_index(flat, bn.shape)
        agent = int(idx[-1])
        where = "" if bn.ndim == 1 else f" in batch item {tuple(int(i) for i in idx[:-1])}"
        raise ValueError(f"bid of agent {agent} is negative ({_fmt(float(bn.ravel()[flat]))}){where}")
    if not allow_all_zero:
        allzero = (bn == 0).all(axis=-1)
        if np.any(allzero):
            if bn.ndim == 1:
                raise ValueError(f"all {name} are zero")
            flat = int(np.argmax(np.ravel(allzero)))
            raise ValueError(f"all {name} are zero in batch item {_index(flat, allzero.shape)}")
    return b


def as_bid_grid(bid_grid: ArrayLike, *, name: str = "bid_grid") -> np.ndarray:
    """Validate a 1-D, finite, non-negative, non-decreasing grid of bids (numpy)."""
    g = np.asarray(to_numpy(bid_grid), dtype=np.float64)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of bids, got shape {g.shape}")
    if not np.isfinite(g).all():
        raise ValueError(f"{name} contains NaN or inf")
    if (g < 0).any():
        raise ValueError(f"{name} contains a negative bid ({_fmt(float(g[g < 0][0]))})")
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


def dists_and_bids(dists: ArrayLike, bids: ArrayLike, *, atol: float = 1e-4, allow_all_zero: bool = False) -> tuple[Array, Array]:
    """Validate ``dists (..., n, V)`` and ``bids (..., n)`` together; bids are put
    on the backend/device/dtype of ``dists``."""
    d = as_distributions(dists, atol=atol)
    b = as_bids(bids, d.shape[-2], allow_all_zero=allow_all_zero)
    return d, like(b, d)
