"""Which days' conversions are final: Meta keeps attributing conversions to the day of the ad's
impression or click for the attribution window (7-day click by default), so a day's daily row is
restated until that window has passed (docs/meta.md, "Restated conversions").

A click late on local day D can still bring a conversion counted on D until the end of day
D + window, so D is *final* from local day D + window + 1 on; until then it is *provisional*.
Pure functions of the day, the window and the account's "today": nothing to store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from adflywheel.core.domain import Objective

DEFAULT_WINDOW_DAYS = 7  # Meta's default attribution setting: 7-day click
MAX_WINDOW_DAYS = 28  # Meta's longest click window (28-day click, from before 2021)
REFETCH_EVERY = dt.timedelta(hours=24)
# The objectives whose numbers grow while a day is in its window (clicks and CTR do not).
CONVERSION_OBJECTIVES = frozenset({Objective.CONVERSIONS_PER_DOLLAR, Objective.REVENUE_PER_DOLLAR})


def check_window(days: int) -> int:
    """``days`` as a valid attribution window, else ``ValueError``."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS:
        raise ValueError(
            f"attribution window must be a whole number of days in [1, {MAX_WINDOW_DAYS}]"
        )
    return days


def window_of(days: int | None) -> int:
    """An account's stored window (None: Meta's default, 7-day click)."""
    return DEFAULT_WINDOW_DAYS if days is None else check_window(days)


def local_today(now: dt.datetime, timezone: str) -> dt.date:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True, slots=True)
class Finality:
    """An account's final and provisional days as of its local ``today``."""

    today: dt.date
    window_days: int
    timezone: str = "UTC"

    @property
    def final_through(self) -> dt.date:
        """The newest final day: its window ended before today began."""
        return self.today - dt.timedelta(days=self.window_days + 1)

    def is_final(self, day: dt.date) -> bool:
        return day <= self.final_through

    @property
    def provisional_days(self) -> list[dt.date]:
        """The days still restated, oldest first (today included)."""
        first = self.final_through + dt.timedelta(days=1)
        return [first + dt.timedelta(days=i) for i in range((self.today - first).days + 1)]

    @property
    def final_before(self) -> dt.datetime:
        """UTC instant at which the first provisional day begins: hours before it are final."""
        midnight = dt.datetime.combine(
            self.final_through + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(self.timezone)
        )
        return midnight.astimezone(dt.UTC)

    def as_dict(self) -> dict[str, object]:
        return {
            "attribution_window_days": self.window_days,
            "conversions_final_through": self.final_through.isoformat(),
            "provisional_days": [d.isoformat() for d in self.provisional_days],
        }


def finality(now: dt.datetime, timezone: str, window_days: int) -> Finality:
    return Finality(local_today(now, timezone), check_window(window_days), timezone)


def restatement_days(today: dt.date, window_days: int) -> tuple[dt.date, dt.date]:
    """The days the daily re-read covers beyond yesterday and today (first, last inclusive):
    back to the day that becomes final today, so every day is read once more after its window
    closed."""
    check_window(window_days)
    return today - dt.timedelta(days=window_days + 1), today - dt.timedelta(days=2)


def restatement_due(last: dt.datetime | None, as_of: dt.datetime, timezone: str) -> bool:
    """Re-read the window once a day: on the first run of a new local day, or when the last
    re-read is 24 h old (or never happened)."""
    if last is None:
        return True
    return (
        local_today(as_of, timezone) > local_today(last, timezone) or as_of - last >= REFETCH_EVERY
    )
