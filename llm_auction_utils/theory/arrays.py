"""Backend helpers: write the mathematics once for numpy arrays and torch tensors.

Convention of the whole theory layer: a :class:`torch.Tensor` input gives a
tensor output (same device, floating dtype kept); anything else (lists, numpy
arrays, scalars) becomes a ``float64`` :class:`numpy.ndarray`.  The ``x*``
helpers dispatch on the backend of their first argument.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np
import torch

__all__ = [
    "Array",
    "ArrayLike",
    "as_array",
    "is_torch",
    "like",
    "to_float64",
    "to_numpy",
    "xabs",
    "xexp",
    "xlog",
    "xmax",
    "xsum",
    "xwhere",
    "xzeros_like",
]

Array = Union[np.ndarray, torch.Tensor]
"""A numpy array or a torch tensor; functions return the type they are given."""

ArrayLike = Union[Array, "list[Any]", "tuple[Any, ...]", float, int]


def is_torch(x: Any) -> bool:
    """True when ``x`` is a :class:`torch.Tensor`."""
    return isinstance(x, torch.Tensor)


def as_array(x: ArrayLike, *, name: str = "input") -> Array:
    """``x`` as a floating array: tensors keep their device (integer/bool tensors become the
    default float dtype); anything else becomes a ``float64`` numpy array.

    Raises :class:`TypeError` naming ``name`` when ``x`` is not numeric.
    """
    if is_torch(x):
        t = x.detach()
        return t if torch.is_floating_point(t) else t.to(torch.get_default_dtype())
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be numeric array-like, got {type(x).__name__} {x!r}")
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric array-like, got {type(x).__name__}: {exc}") from None


def like(x: ArrayLike, ref: Array) -> Array:
    """``x`` on the backend (and, for torch, the device and dtype) of ``ref``."""
    if is_torch(ref):
        if is_torch(x):
            return x.to(device=ref.device, dtype=ref.dtype)
        a = np.ascontiguousarray(x, dtype=np.float64)
        if not a.flags.writeable:  # torch warns on read-only arrays (e.g. a pandas column's values)
            a = a.copy()
        return torch.as_tensor(a, dtype=ref.dtype, device=ref.device)
    if is_torch(x):
        return x.detach().cpu().numpy().astype(np.float64)
    return np.asarray(x, dtype=np.float64)


_HALF = (torch.float16, torch.bfloat16)


def to_numpy(x: ArrayLike) -> np.ndarray:
    """A numpy view or copy of ``x`` (tensors are moved to the CPU; bfloat16, which numpy lacks, as float32)."""
    if is_torch(x):
        t = x.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    return np.asarray(x)


def is_half(x: ArrayLike) -> bool:
    """``x`` is a float16 or bfloat16 tensor: the theory layer computes such inputs in float32."""
    return is_torch(x) and x.dtype in _HALF


def to_float64(x: ArrayLike) -> np.ndarray:
    """``x`` as a ``float64`` numpy array (tensors are moved to the CPU)."""
    return np.asarray(to_numpy(x), dtype=np.float64)


def xsum(x: Array, axis: int | tuple[int, ...] = -1, keepdims: bool = False) -> Array:
    return x.sum(dim=axis, keepdim=keepdims) if is_torch(x) else x.sum(axis=axis, keepdims=keepdims)


def xmax(x: Array, axis: int | tuple[int, ...] = -1, keepdims: bool = False) -> Array:
    return x.amax(dim=axis, keepdim=keepdims) if is_torch(x) else x.max(axis=axis, keepdims=keepdims)


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
    return torch.where(cond, a, b) if is_torch(cond) else np.where(cond, a, b)


def xzeros_like(x: Array) -> Array:
    return torch.zeros_like(x) if is_torch(x) else np.zeros_like(x)
