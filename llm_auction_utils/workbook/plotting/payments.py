"""Figures of payments (notebooks 04 and 07)."""

from __future__ import annotations

__all__: list[str] = []
