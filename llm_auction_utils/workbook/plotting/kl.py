"""Figures of KL-derived rules (notebook 05)."""

from __future__ import annotations

__all__: list[str] = []
