"""Per-account loop switches (power levels) for the cycle."""

from __future__ import annotations
