"""Figures of the token auction model (notebooks 00 and 01)."""

from __future__ import annotations

__all__: list[str] = []
