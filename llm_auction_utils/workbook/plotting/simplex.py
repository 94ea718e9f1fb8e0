"""Plotting helpers shared by the notebooks: the 3-token simplex in barycentric coordinates.

A distribution ``q = (q(a), q(b), q(c))`` over three tokens is drawn at
``q(a) A + q(b) B + q(c) C`` with the corners ``A`` (left), ``B`` (top), ``C`` (right)
of an equilateral triangle (theory chapter §2 pictures).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["SIMPLEX_CORNERS", "draw_simplex", "simplex_xy"]

SIMPLEX_CORNERS = np.array([[0.0, 0.0], [0.5, np.sqrt(3) / 2], [1.0, 0.0]])
"""Plane coordinates of the point masses on tokens a (left), b (top), c (right)."""


def simplex_xy(points: Any) -> np.ndarray:
    """Map distributions over 3 tokens, shape ``(..., 3)``, to plane coordinates ``(..., 2)``."""
    array = np.asarray(points, dtype=float)
    if array.shape[-1:] != (3,):
        raise ValueError(f"simplex_xy needs distributions over 3 tokens (last axis 3), got shape {array.shape}")
    return array @ SIMPLEX_CORNERS


def draw_simplex(ax: Any, title: str | None = None, labels: Sequence[str] = ("token a", "token b", "token c")) -> Any:
    """Draw the triangle with its corner labels on ``ax`` (equal aspect, no axes); return ``ax``."""
    from matplotlib.patches import Polygon

    if len(labels) != 3:
        raise ValueError(f"draw_simplex needs 3 corner labels, got {len(labels)}")
    ax.add_patch(Polygon(SIMPLEX_CORNERS, closed=True, fill=False, edgecolor="black", lw=1.2))
    offsets = [(-4, -12), (0, 7), (4, -12)]
    aligns = ["right", "center", "left"]
    for (x, y), name, offset, align in zip(SIMPLEX_CORNERS, labels, offsets, aligns):
        ax.annotate(name, (x, y), xytext=offset, textcoords="offset points", fontsize=10, ha=align)
    ax.set(xlim=(-0.2, 1.2), ylim=(-0.1, 0.98), aspect="equal")
    if title is not None:
        ax.set_title(title)
    ax.axis("off")
    return ax
