"""Actuals fetch runs and per-account data freshness (loop 6)."""

from __future__ import annotations
