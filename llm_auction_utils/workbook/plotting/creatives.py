"""Figures of ad creatives over the bidders' balance (notebook 06)."""

from __future__ import annotations

__all__: list[str] = []
