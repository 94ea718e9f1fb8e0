"""Figures of payments on a real model's distributions (notebook 07)."""

from __future__ import annotations

__all__: list[str] = []
