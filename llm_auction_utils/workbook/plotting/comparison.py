"""Figures of mechanisms compared on real queries (notebook 09)."""

from __future__ import annotations

__all__: list[str] = []
