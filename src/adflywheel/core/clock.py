"""The one source of "now". No other module reads the wall clock.

Every part that needs the time (which hour a cycle works on, which platform hours are final,
cooldowns) takes a ``Clock``. The harness, the tests and replays drive a ``ManualClock``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock, for production."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ShiftedClock:
    """The wall clock moved to start at ``start``, then running at its own pace: to serve a
    replay (the demo's simulated days) as if it were happening now."""

    def __init__(self, start: datetime, base: Clock | None = None) -> None:
        self._base = base or SystemClock()
        self._offset = ensure_utc(start) - self._base.now()

    def now(self) -> datetime:
        return self._base.now() + self._offset


class ManualClock:
    """A clock that moves only when told to: for the harness, tests and replays."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("a clock does not run backwards")
        self._now += delta
        return self._now

    def set(self, instant: datetime) -> None:
        instant = ensure_utc(instant)
        if instant < self._now:
            raise ValueError("a clock does not run backwards")
        self._now = instant


def ensure_utc(instant: datetime) -> datetime:
    """Return ``instant`` in UTC; naive datetimes are refused because their zone is a guess."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"datetime {instant.isoformat()} has no timezone; give it in UTC")
    return instant.astimezone(UTC)


def floor_hour(instant: datetime) -> datetime:
    """The start of the UTC hour containing ``instant``."""
    return ensure_utc(instant).replace(minute=0, second=0, microsecond=0)


def is_hour_aligned(instant: datetime) -> bool:
    return instant.minute == 0 and instant.second == 0 and instant.microsecond == 0
