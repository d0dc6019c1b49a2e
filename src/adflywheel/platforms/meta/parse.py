"""Meta's insight rows to exact numbers: pure functions, no I/O.

Every number arrives as a string. Counts become ``int`` (refused when not whole), money becomes
integer minor units of the account currency (Meta's "offset": JPY and friends have none), CTR
arrives as a percentage and becomes a fraction, and the hour of the advertiser-time-zone
breakdown becomes the UTC start of that hour (DST included).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from adflywheel.platforms.base import PlatformRefusedError, minor_unit_exponent
from adflywheel.platforms.meta.errors import scrub

HOURLY_BREAKDOWN = "hourly_stats_aggregated_by_advertiser_time_zone"
# Three-second video views: Meta reports them as an action, not as a field of their own.
VIDEO_VIEW_ACTION = "video_view"
# Purchase action types in order of preference. They overlap (omni ⊇ website), so one is taken,
# never their sum.
DEFAULT_CONVERSION_ACTIONS: tuple[str, ...] = (
    "omni_purchase",
    "purchase",
    "offsite_conversion.fb_pixel_purchase",
)
_ZERO = Decimal(0)
_HOUR = re.compile(r"^(\d{2}):00:00 - (\d{2}):59:59$")


class MetaDataError(PlatformRefusedError):
    """Meta sent a value the service cannot read exactly; names the field and the value (with
    anything secret-like masked: the value may be a whole Graph answer)."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


def currency_exponent(currency: str) -> int:
    """Digits of the minor unit: 2 for USD (cents), 0 for JPY (Meta's offset 1)."""
    code = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise MetaDataError(f"not a currency code: {currency!r}")
    return minor_unit_exponent(code)


def decimal(raw: object, name: str) -> Decimal:
    """A non-negative exact number from Meta's string (numbers may also come bare)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise MetaDataError(f"{name}: expected a number as a string, got {raw!r}")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation as exc:
        raise MetaDataError(f"{name}: not a number: {raw!r}") from exc
    if not value.is_finite() or value < 0:
        raise MetaDataError(f"{name}: not a finite non-negative number: {raw!r}")
    return value


def count(raw: object, name: str) -> int:
    if type(raw) is str and raw.isascii() and raw.isdigit():
        return int(raw)  # the common case, exact without a Decimal
    value = decimal(raw, name)
    if value != value.to_integral_value():
        raise MetaDataError(f"{name}: not a whole number: {raw!r}")
    return int(value)


def money_minor(raw: object, exponent: int, name: str) -> int:
    """Major units ("3.14") to minor units (314), half-even on sub-minor digits."""
    scaled = decimal(raw, name).scaleb(exponent)
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def percent_to_fraction(raw: object, name: str) -> Decimal:
    """Meta's ``ctr`` ("1.25", meaning 1.25%) as a fraction (0.0125)."""
    value = decimal(raw, name) / 100
    if value > 1:
        raise MetaDataError(f"{name}: {raw!r}% exceeds 100%")
    return value


def action_values(raw: object, name: str) -> dict[str, Decimal]:
    """``[{"action_type": t, "value": "9"}, ...]`` as ``{t: Decimal}``; absent means empty."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise MetaDataError(f"{name}: expected a list of actions, got {type(raw).__name__}")
    out: dict[str, Decimal] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("action_type"), str):
            raise MetaDataError(f"{name}: malformed action {item!r}")
        kind = item["action_type"]
        if kind in out:
            raise MetaDataError(f"{name}: action type {kind!r} appears twice")
        out[kind] = decimal(item.get("value"), f"{name}[{kind}]")
    return out


def _whole(value: Decimal) -> int:
    """Action counts can be modelled (fractional); rounded half-even to whole events."""
    if value == value.to_integral_value():
        return int(value)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@functools.lru_cache(maxsize=4096)
def local_hour_to_utc(day: dt.date, hour_label: str, tz: ZoneInfo) -> dt.datetime:
    """UTC start of the account-local hour ``"08:00:00 - 08:59:59"`` of ``day``.

    Meta gives one row per local hour label. On the autumn DST change the repeated label is one
    row; it is placed at the first occurrence. A label inside the spring gap maps (zoneinfo's
    rule) onto the next real hour, whose row it is then added to. Zones off the whole hour
    (+05:30) start at the UTC hour below, as the CSV import does.
    """
    m = _HOUR.match(hour_label.strip())
    if not m or m[1] != m[2] or int(m[1]) > 23:
        raise MetaDataError(f"{HOURLY_BREAKDOWN}: not an hour: {hour_label!r}")
    local = dt.datetime.combine(day, dt.time(int(m[1])), tzinfo=tz)
    return local.astimezone(dt.UTC).replace(minute=0)


@dataclass(frozen=True, slots=True)
class InsightRow:
    """One ad's insights for one local day, or one local hour of it: every field exact."""

    ad_id: str
    date_start: dt.date
    hour_start: dt.datetime | None  # UTC; None on daily rows
    impressions: int
    clicks: int  # all clicks (Meta's ``clicks``)
    link_clicks: int  # ``inline_link_clicks``
    spend_minor: int
    ctr: Decimal | None  # fraction of all clicks per impression, as Meta computed it
    cpm_minor: Decimal | None  # minor units per 1,000 impressions (not whole)
    frequency: Decimal | None  # unusable on hourly rows (reach is per day)
    reach: int | None
    video_views: int  # 3-second plays: actions[video_view]
    video_plays: int  # video_play_actions
    thruplays: int  # video_thruplay_watched_actions
    conversions: int
    revenue_minor: int
    actions: Mapping[str, Decimal] = field(default_factory=dict)
    action_values_minor: Mapping[str, int] = field(default_factory=dict)


class ImplausibleRowError(MetaDataError):
    """A row read exactly whose counts contradict each other: clicks above impressions (Meta's
    ``clicks`` counts all clicks, which on a tiny hourly row can exceed its impressions) or link
    clicks above clicks. Not fatal: ``MetaPlatform`` quarantines the row (skips it and keeps it
    for the fetch job to count, alert and show the data-health breaker)."""

    def __init__(self, message: str, row: InsightRow) -> None:
        super().__init__(message)
        self.row = row


def parse_row(
    row: Mapping[str, Any],
    *,
    exponent: int,
    tz: ZoneInfo,
    conversion_actions: Sequence[str] = DEFAULT_CONVERSION_ACTIONS,
) -> InsightRow:
    """One ``data`` element of an insights response; raises ``MetaDataError`` naming the field."""
    ad_id = row.get("ad_id")
    if not isinstance(ad_id, str) or not ad_id:
        raise MetaDataError(f"insights row without an ad_id: {dict(row)!r}")
    try:
        return _parse(row, ad_id, exponent, tz, conversion_actions)
    except ImplausibleRowError:
        raise  # already names the ad; carries the parsed row
    except MetaDataError as error:
        raise MetaDataError(f"ad {ad_id}: {error}") from error


def _parse(
    row: Mapping[str, Any],
    ad_id: str,
    exponent: int,
    tz: ZoneInfo,
    conversion_actions: Sequence[str],
) -> InsightRow:
    try:
        day = dt.date.fromisoformat(str(row.get("date_start")))
    except ValueError as exc:
        raise MetaDataError(f"bad date_start {row.get('date_start')!r}") from exc
    stop = row.get("date_stop")
    if stop is not None and stop != row.get("date_start"):
        raise MetaDataError(f"row spans {day}..{stop}; ask with time_increment=1")
    label = row.get(HOURLY_BREAKDOWN)
    hour = local_hour_to_utc(day, str(label), tz) if label is not None else None
    actions = action_values(row.get("actions"), "actions")
    values = action_values(row.get("action_values"), "action_values")
    values_minor = {k: _whole(v.scaleb(exponent)) for k, v in values.items()}
    chosen = next((a for a in conversion_actions if a in actions), None)
    valued = next((a for a in conversion_actions if a in values_minor), None)
    plays = action_values(row.get("video_play_actions"), "video_play_actions")
    thru = action_values(
        row.get("video_thruplay_watched_actions"), "video_thruplay_watched_actions"
    )
    ctr, cpm, frequency, reach = (
        row.get("ctr"),
        row.get("cpm"),
        row.get("frequency"),
        row.get("reach"),
    )
    parsed = InsightRow(
        ad_id=ad_id,
        date_start=day,
        hour_start=hour,
        impressions=count(row.get("impressions", "0"), "impressions"),
        clicks=count(row.get("clicks", "0"), "clicks"),
        link_clicks=count(row.get("inline_link_clicks", "0"), "inline_link_clicks"),
        spend_minor=money_minor(row.get("spend", "0"), exponent, "spend"),
        ctr=percent_to_fraction(ctr, "ctr") if ctr not in (None, "") else None,
        cpm_minor=decimal(cpm, "cpm").scaleb(exponent) if cpm not in (None, "") else None,
        frequency=decimal(frequency, "frequency") if frequency not in (None, "") else None,
        reach=count(reach, "reach") if reach not in (None, "") else None,
        video_views=_whole(actions.get(VIDEO_VIEW_ACTION, _ZERO)),
        video_plays=_whole(plays.get(VIDEO_VIEW_ACTION, sum(plays.values(), _ZERO))),
        thruplays=_whole(thru.get(VIDEO_VIEW_ACTION, sum(thru.values(), _ZERO))),
        conversions=_whole(actions[chosen]) if chosen else 0,
        revenue_minor=values_minor[valued] if valued else 0,
        actions=actions,
        action_values_minor=values_minor,
    )
    if parsed.clicks > parsed.impressions or parsed.link_clicks > parsed.clicks:
        when = hour.isoformat() if hour is not None else day.isoformat()
        raise ImplausibleRowError(
            f"ad {ad_id}: at {when}: impressions {parsed.impressions}, clicks {parsed.clicks}, "
            f"link clicks {parsed.link_clicks} are inconsistent",
            parsed,
        )
    return parsed
