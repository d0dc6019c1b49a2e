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
- ``MinimumBudget``: the platform's own minimum daily budget for an ad set of the account
  (Meta's ad-account field ``min_daily_budget``); ``min_daily_budget_floor_minor`` asks it and
  falls back on ``fallback_min_daily_budget_minor``, an assumed table, when it cannot say.
- Read-only platforms (a CSV export) list and report like any other, and every write raises
  ``ReadOnlyPlatformError``. It is a ``PlatformError``, so the code that applies budgets and
  promotions records the write as not applied (or answers 409/502) — never as done.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
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


# -- the fallback minimum daily budget ----------------------------------------------------------
#
# ASSUMPTION, not a table Meta publishes for the API. Source of the dollar figures: Meta's Business
# Help Center article "About minimum budgets" (facebook.com/business/help/203183363050448), as
# reproduced by third parties (support.thenextad.com/minimum-budgets; brandee.edu.vn's copy dated
# 2019-11-30): for a budget in USD, AUD, CAD, SGD, JPY, NZD, TWD, EUR, CHF, SEK, HKD, GBP, ILS, NOK,
# KRW or DKK an ad set's daily budget must be at least $1 when charged for impressions, $5 when
# charged for clicks, likes, video views or post engagement, and $40 when charged for low-frequency
# events such as offer claims or app installs ("the minimums are listed in USD: convert them to
# your currency"); other currencies have half those figures. The Marketing API's
# ``/act_X/minimum_budgets`` edge has the same three classes (``min_daily_budget_imp``,
# ``_high_freq``, ``_low_freq``). The page is old and Meta may have changed the figures since.

_MIN_DAILY_BUDGET_USD: Mapping[str, Decimal] = {
    "impressions": Decimal(1),
    "high_frequency": Decimal(5),
    "low_frequency": Decimal(40),
}

# What an ad set is charged for (Meta's ``billing_event``, or the ``optimization_goal`` that
# implies it), upper case, → the class of minimum. Anything else, ``None`` included, is taken as
# high frequency: it covers ad sets charged per impression (the usual case) five times over and
# those charged per click, but not the rare ones charged per app install or offer claim.
_CHARGE_CLASS: Mapping[str, str] = {
    "IMPRESSIONS": "impressions",
    "REACH": "impressions",
    "CLICKS": "high_frequency",
    "LINK_CLICKS": "high_frequency",
    "PAGE_LIKES": "high_frequency",
    "POST_ENGAGEMENT": "high_frequency",
    "VIDEO_VIEWS": "high_frequency",
    "THRUPLAY": "high_frequency",
    "APP_INSTALLS": "low_frequency",
    "OFFER_CLAIMS": "low_frequency",
}

# Units of each currency per US dollar, rounded UP from the 2024-2025 range (an ASSUMPTION, not a
# live rate): a floor converted too high is merely cautious, one converted too low gets refused.
# Only the currencies the help page lists with the full dollar figures.
_UNITS_PER_USD: Mapping[str, Decimal] = {
    "USD": Decimal(1),
    "EUR": Decimal(1),
    "GBP": Decimal(1),
    "CHF": Decimal(1),
    "CAD": Decimal("1.5"),
    "AUD": Decimal("1.7"),
    "NZD": Decimal("1.8"),
    "SGD": Decimal("1.4"),
    "HKD": Decimal(8),
    "ILS": Decimal(4),
    "DKK": Decimal("7.5"),
    "SEK": Decimal(12),
    "NOK": Decimal(12),
    "TWD": Decimal(34),
    "JPY": Decimal(165),
    "KRW": Decimal(1500),
}


def fallback_min_daily_budget_minor(currency: str, objective: str | None = None) -> int:
    """An ASSUMED minimum daily budget of an ad set, in minor units of ``currency`` (ISO 4217),
    for when the platform cannot say (see ``MinimumBudget``). Not a table Meta publishes.

    The dollar figure comes from Meta's help page on minimum budgets (the comment above the
    table): $1 a day when charged for impressions, $5 for clicks and other frequent events, $40
    for app installs and offer claims. ``objective`` is what the ad set is charged for, as Meta's
    ``billing_event`` or ``optimization_goal`` (``"IMPRESSIONS"``, ``"LINK_CLICKS"``,
    ``"APP_INSTALLS"``, …, any case); ``None`` or any other value gives the $5 figure.

    The figure is converted at an assumed rate rounded up (USD, EUR, GBP, CHF 1; CAD 1.5; AUD 1.7;
    NZD 1.8; SGD 1.4; HKD 8; ILS 4; DKK 7.5; SEK and NOK 12; TWD 34; JPY 165; KRW 1500 per dollar)
    and rounded up to a whole minor unit. A currency outside that table has no rate here: the
    dollar figure is read as that many major units of the currency (5 → 500 minor units, or 5 for
    a zero-decimal currency). That is positive but, for a currency weaker than the dollar, below
    Meta's real minimum: Meta then refuses the write, which is a ``PlatformError`` and recorded as
    not applied, never as done.
    """
    code = currency.strip().upper()
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
    charge = _CHARGE_CLASS.get((objective or "").strip().upper(), "high_frequency")
    major = _MIN_DAILY_BUDGET_USD[charge] * _UNITS_PER_USD.get(code, Decimal(1))
    return math.ceil(major.scaleb(minor_unit_exponent(code)))


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
    # A budget for the whole run (Meta's ``lifetime_budget``): never moved as a daily one.
    lifetime_budget_minor: int | None = None


@dataclass(frozen=True, slots=True)
class PlatformAdSet:
    external_id: str
    campaign_id: str
    name: str
    status: Status = Status.ACTIVE
    daily_budget_minor: int | None = None
    # The ad set has a budget of its own, but for its whole run: not one to move as a daily one.
    lifetime_budget_minor: int | None = None


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


@runtime_checkable
class MinimumBudget(Protocol):
    """A platform that knows the smallest daily budget it accepts for an ad set of the account
    (Meta: the ad account's ``min_daily_budget``). Budget writes below it are refused there."""

    def min_daily_budget_minor(self) -> int | None:
        """The platform's minimum daily budget for an ad set of this account, in minor units of
        the account currency (a positive ``int``); ``None`` when the platform cannot say."""
        ...


@dataclass(frozen=True, slots=True)
class TokenStatus:
    """What the platform says of its access token: valid, and when it expires (None: never)."""

    valid: bool
    expires_at: datetime | None

    def expires_within(self, now: datetime, days: int) -> bool:
        return self.expires_at is not None and self.expires_at - now <= dt.timedelta(days=days)

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


@runtime_checkable
class ExpiringToken(Protocol):
    """A platform whose access token expires (Meta): the fetch job asks at most daily and warns
    ``token_warn_days`` ahead."""

    token_warn_days: int

    def token_status(self) -> TokenStatus:
        """The token's validity and expiry, asked of the platform."""
        ...


def min_daily_budget_floor_minor(
    platform: object | None, currency: str, objective: str | None = None
) -> int:
    """The absolute floor of an ad set's daily budget, in minor units of ``currency``: the
    platform's own minimum when it has ``MinimumBudget`` and answers a positive ``int``, else
    ``fallback_min_daily_budget_minor(currency, objective)`` (an assumed table).

    ``currency`` must be the platform account's currency. A platform's error (Meta refusing or
    throttling the read) propagates: a floor is not guessed over a failing platform.
    """
    if isinstance(platform, MinimumBudget):
        answer = platform.min_daily_budget_minor()
        if isinstance(answer, numbers.Integral) and not isinstance(answer, bool) and answer > 0:
            return int(answer)
    return fallback_min_daily_budget_minor(currency, objective)
