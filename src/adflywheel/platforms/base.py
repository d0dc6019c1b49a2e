"""The ad-platform interface: what the service needs from an ad platform, and nothing more.

One platform object is bound to one ad account. Budgets live on ad sets, as on Meta
(``daily_budget`` in minor units); the flywheel runs one variant per ad set so that an ad set's
budget is its variant's budget. Insights come back as hourly rows keyed by UTC hour start.

Every platform keeps the promises in ``AdPlatform``'s docstrings; ``tests/platforms/
test_contract.py`` checks each platform against them.

Optional capabilities are found with ``isinstance`` against the runtime-checkable protocols
below, never by the platform's name, so a new platform gains a behaviour by having the method:

- ``DailyInsights``: whole days of the account's time zone, where Meta's conversions and revenue
  live (its hourly breakdown has none); the fetch job stores them when the platform has them.
- ``Quarantining``: rows whose counts contradict each other are held back from
  ``fetch_insights`` and handed over afterwards, so the fetch job alerts them instead of
  storing them or failing the account.
- Read-only platforms (a CSV export) list and report like any other, and every write raises
  ``ReadOnlyPlatformError``. It is a ``PlatformError``, so the code that applies budgets and
  promotions records the write as not applied (or answers 409/502) — never as done.
"""

from __future__ import annotations

import datetime as dt
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from adflywheel.core.domain import Creative, DailyActual, HourlyActual, Objective, Status
from adflywheel.core.errors import UpstreamError

# ISO 4217 codes whose money Meta counts in whole units (its "offset" 1: JPY and friends); every
# other currency has cents, two digits of minor unit (marketing-api/currencies).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"CLP", "COP", "CRC", "HUF", "IDR", "ISK", "JPY", "KRW", "PYG", "TWD", "VND"}
)


def minor_unit_exponent(currency: str) -> int:
    """Digits of the minor unit of an upper-case ISO 4217 ``currency``: 2 (USD) or 0 (JPY)."""
    return 0 if currency in ZERO_DECIMAL_CURRENCIES else 2


class PlatformError(UpstreamError):
    """The platform refused or failed a request."""

    def alert_details(self) -> dict[str, Any]:
        """Fields of the failure worth putting in an alert (a platform's error code or trace
        id), for support; none unless the platform's error carries some."""
        return {}


class PlatformRefusedError(PlatformError):
    """The platform answered but refused (token, permission, unknown account) or sent data the
    service cannot read: retrying will not help until someone acts."""


class PlatformUnavailableError(PlatformError):
    """The platform is throttling or temporarily down; ``retry_after`` (seconds, when the
    platform said) is when to come back."""

    retry_after: float | None = None


class ReadOnlyPlatformError(PlatformError):
    """The platform cannot write (a CSV export cannot change a budget)."""


def check_budget(value: object) -> int:
    """A daily budget must be a non-negative integer of minor units (money never goes through a
    float; a bool is not a number of cents). Any integer type counts (numpy's too)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"budget must be an int of minor units, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"budget must be >= 0, got {value}")
    return int(value)


@dataclass(frozen=True, slots=True)
class PlatformAccount:
    external_id: str
    name: str
    currency: str = "USD"  # ISO 4217, upper case; money of this account is in its minor units
    timezone: str = "UTC"  # IANA name: the account's days (and Meta's hour labels) are local
    category: str | None = None


@dataclass(frozen=True, slots=True)
class PlatformCampaign:
    external_id: str
    name: str
    status: Status = Status.ACTIVE
    objective: Objective = Objective.CLICKS_PER_DOLLAR
    daily_budget_minor: int | None = None


@dataclass(frozen=True, slots=True)
class PlatformAdSet:
    external_id: str
    campaign_id: str
    name: str
    status: Status = Status.ACTIVE
    daily_budget_minor: int | None = None


@dataclass(frozen=True, slots=True)
class PlatformAd:
    external_id: str
    ad_set_id: str
    campaign_id: str
    name: str
    status: Status = Status.ACTIVE
    creative: Creative = field(default_factory=Creative)
    is_control: bool = False
    # Features a DNA extractor would see (pre-extracted tags), when the platform has them.
    observed_features: Mapping[str, float | str] = field(default_factory=dict)


class AdPlatform(Protocol):
    """One ad account on one platform."""

    name: str  # the platform's kind ("simulated", "csv", "meta"): stored as the actuals' source

    def account(self) -> PlatformAccount:
        """The account: its currency (ISO 4217, upper case) and IANA time zone, which do not
        change under an account."""
        ...

    def list_campaigns(self) -> list[PlatformCampaign]:
        """Every campaign of the account, each once; a budget is ``None`` or minor units."""
        ...

    def list_ad_sets(self) -> list[PlatformAdSet]:
        """Every ad set, each once, under a campaign that ``list_campaigns`` lists."""
        ...

    def list_ads(self) -> list[PlatformAd]:
        """Every ad, each once, under an ad set that ``list_ad_sets`` lists (and that ad set's
        campaign)."""
        ...

    def fetch_insights(self, start: datetime, end: datetime) -> list[HourlyActual]:
        """Hourly rows with hour start in ``[start, end)`` (UTC), as the platform knows them now.

        ``start`` and ``end`` must be timezone-aware (a naive time is a ``ValueError``: its zone
        would be a guess). At most one row per ad and hour; money in minor units of the account
        currency. Asking again gives the same rows unless the platform restated them.
        """
        ...

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        """Set an ad set's daily budget, an ``int`` of minor units (a float or a bool is a
        ``TypeError``). Absolute, so writing it twice is harmless; the catalogue lists the new
        budget afterwards. An ad set the account does not have is a ``PlatformError``."""
        ...

    def set_ad_status(self, ad_id: str, status: Status) -> None:
        """Pause or resume an ad; the catalogue lists the new status afterwards. An ad the
        account does not have is a ``PlatformError``."""
        ...


@runtime_checkable
class DailyInsights(Protocol):
    """A platform that also reports whole days of the account's time zone."""

    def fetch_daily(self, start_date: dt.date, end_date: dt.date) -> list[DailyActual]:
        """Daily rows with local dates in ``[start_date, end_date)``."""
        ...


class QuarantinedRow(Protocol):
    """What the fetch job reads of a held-back row (to alert it, and count it once)."""

    @property
    def ad_id(self) -> str: ...

    @property
    def date_start(self) -> dt.date: ...

    @property
    def hour_start(self) -> datetime | None:  # UTC; None on a daily row
        ...

    @property
    def impressions(self) -> int: ...

    @property
    def clicks(self) -> int: ...

    @property
    def link_clicks(self) -> int: ...


@runtime_checkable
class Quarantining(Protocol):
    """A platform that skips implausible rows and hands them over afterwards."""

    def take_quarantined(self) -> Sequence[QuarantinedRow]:
        """The rows held back since the last call, then forgotten."""
        ...
