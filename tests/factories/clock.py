"""The instant the tests' clock starts at."""

from __future__ import annotations

from datetime import UTC, datetime

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)
