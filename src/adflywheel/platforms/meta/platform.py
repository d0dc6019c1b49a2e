"""``MetaPlatform``: one Meta ad account behind the ``AdPlatform`` interface.

Reads the account (currency, IANA time zone) once and its minimum daily budget once, lists
campaigns, ad sets and ads with their budgets (daily and lifetime) and effective status, reads
hourly delivery (advertiser-time-zone breakdown, placed in UTC) and daily conversions, and writes
``daily_budget`` (minor units) and ad status.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adflywheel.core.clock import ensure_utc
from adflywheel.core.domain import Creative, DailyActual, HourlyActual, Objective, Status
from adflywheel.platforms.base import (
    PlatformAccount,
    PlatformAd,
    PlatformAdSet,
    PlatformCampaign,
    TokenStatus,
)
from adflywheel.platforms.meta.client import GraphClient
from adflywheel.platforms.meta.errors import MetaApiError
from adflywheel.platforms.meta.insights import InsightsOptions, InsightsReader
from adflywheel.platforms.meta.parse import (
    ImplausibleRowError,
    InsightRow,
    MetaDataError,
    count,
    currency_exponent,
    parse_row,
)
from adflywheel.platforms.meta.tokens import parse_debug_token

_SALES_OBJECTIVES = frozenset({"OUTCOME_SALES", "CONVERSIONS", "PRODUCT_CATALOG_SALES"})
_ACCOUNT_FIELDS = "name,currency,timezone_name,account_status"


def ad_account_path(ad_account_id: str) -> str:
    """``"123"`` or ``"act_123"`` → ``"act_123"`` (digits only)."""
    digits = ad_account_id.strip().removeprefix("act_")
    if not digits.isdigit():
        raise ValueError(f"not a Meta ad account id: {ad_account_id!r} (expected act_<digits>)")
    return f"act_{digits}"


def _status(item: dict[str, Any]) -> Status:
    """ACTIVE only when Meta delivers it: a paused parent shows only in ``effective_status``."""
    effective = item.get("effective_status") or item.get("status")
    return Status.ACTIVE if effective == "ACTIVE" else Status.PAUSED


def _ref(item: dict[str, Any], key: str, kind: str) -> str:
    value = item.get(key)
    if not isinstance(value, str | int) or not str(value):
        raise MetaDataError(f"{kind} without {key}: {item!r}")
    return str(value)


def _min_daily_budget(raw: object) -> int | None:
    """The ad account's ``min_daily_budget`` (an unsigned int of minor units, as a number or a
    digit string); ``None`` when absent, zero or unreadable: the platform cannot say."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit():
        value = int(raw)
    else:
        return None
    return value if value > 0 else None


# Where Meta keeps an object's money: a daily or a lifetime budget, on the campaign (Advantage
# campaign budget, CBO) or on each ad set, never both. The budget structure follows from which.
_CAMPAIGN_FIELDS = "id,name,status,effective_status,objective,daily_budget,lifetime_budget"
_AD_SET_FIELDS = "id,name,campaign_id,status,effective_status,daily_budget,lifetime_budget"


def _budget(item: dict[str, Any], field: str, where: str) -> int | None:
    """``daily_budget`` or ``lifetime_budget`` in minor units; ``None`` when Meta leaves it out
    or sends 0 (the other kind of budget is set, or the campaign holds it)."""
    raw = item.get(field)
    if raw in (None, "", "0", 0):
        return None
    return count(raw, f"{where}: {field}")


class MetaPlatform:
    """One ad account through the Graph API. ``client`` is owned by the caller."""

    name = "meta"

    def __init__(
        self,
        client: GraphClient,
        ad_account_id: str,
        *,
        options: InsightsOptions | None = None,
        is_control: Callable[[str], bool] | None = None,
        token_warn_days: int = 7,
    ) -> None:
        self.client = client
        self.token_warn_days = token_warn_days
        self.path = ad_account_path(ad_account_id)
        self.options = options or InsightsOptions()
        self.reader = InsightsReader(client, self.path, self.options)
        self._is_control = is_control or (lambda name: "[control]" in name.lower())
        self._account: PlatformAccount | None = None
        self._min_daily_budget: int | None = None
        self._min_daily_budget_read = False  # ``None`` is an answer too: read it once
        self._quarantined: list[InsightRow] = []
        self._lock = threading.Lock()

    def token_status(self) -> TokenStatus:
        """Graph's ``debug_token`` on this platform's token: valid, and when it expires."""
        return parse_debug_token(self.client.debug_token())

    # -- catalogue --------------------------------------------------------------------------

    def account(self) -> PlatformAccount:
        """The account's currency and time zone, read once (they do not change under an
        account)."""
        if self._account is None:
            body = self.client.get(self.path, {"fields": _ACCOUNT_FIELDS})
            currency, tz = body.get("currency"), body.get("timezone_name")
            if not isinstance(currency, str) or not isinstance(tz, str):
                raise MetaDataError(f"{self.path}: no currency/timezone_name in {body!r}")
            currency_exponent(currency)
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise MetaDataError(f"{self.path}: unknown time zone {tz!r}") from exc
            self._account = PlatformAccount(
                external_id=self.path,
                name=str(body.get("name") or self.path),
                currency=currency.upper(),
                timezone=tz,
            )
        return self._account

    def min_daily_budget_minor(self) -> int | None:
        """The ad account's ``min_daily_budget``: Meta's minimum daily budget for an ad set of
        this account, in minor units of its currency; read once and kept. ``None`` when Meta
        leaves the field out or sends something unreadable. Graph errors raise as elsewhere."""
        if not self._min_daily_budget_read:
            body = self.client.get(self.path, {"fields": "min_daily_budget"})
            self._min_daily_budget = _min_daily_budget(body.get("min_daily_budget"))
            self._min_daily_budget_read = True
        return self._min_daily_budget

    def _list(self, edge: str, fields: str) -> Iterable[dict[str, Any]]:
        params = {"fields": fields, "limit": self.options.page_size}
        return self.client.paginate(f"{self.path}/{edge}", params)

    def list_campaigns(self) -> list[PlatformCampaign]:
        out = []
        for c in self._list("campaigns", _CAMPAIGN_FIELDS):
            where = f"campaign {c.get('id')}"
            out.append(
                PlatformCampaign(
                    external_id=_ref(c, "id", "campaign"),
                    name=str(c.get("name", "")),
                    status=_status(c),
                    objective=Objective.CONVERSIONS_PER_DOLLAR
                    if c.get("objective") in _SALES_OBJECTIVES
                    else Objective.CLICKS_PER_DOLLAR,
                    daily_budget_minor=_budget(c, "daily_budget", where),
                    lifetime_budget_minor=_budget(c, "lifetime_budget", where),
                )
            )
        return out

    def list_ad_sets(self) -> list[PlatformAdSet]:
        return [
            PlatformAdSet(
                external_id=_ref(s, "id", "ad set"),
                campaign_id=_ref(s, "campaign_id", "ad set"),
                name=str(s.get("name", "")),
                status=_status(s),
                daily_budget_minor=_budget(s, "daily_budget", f"ad set {s.get('id')}"),
                lifetime_budget_minor=_budget(s, "lifetime_budget", f"ad set {s.get('id')}"),
            )
            for s in self._list("adsets", _AD_SET_FIELDS)
        ]

    def list_ads(self) -> list[PlatformAd]:
        fields = (
            "id,name,adset_id,campaign_id,status,effective_status,"
            "creative{title,body,call_to_action_type,video_id}"
        )
        out = []
        for ad in self._list("ads", fields):
            raw = ad.get("creative")
            creative: dict[str, Any] = raw if isinstance(raw, dict) else {}
            video = creative.get("video_id")
            out.append(
                PlatformAd(
                    external_id=_ref(ad, "id", "ad"),
                    ad_set_id=_ref(ad, "adset_id", "ad"),
                    campaign_id=_ref(ad, "campaign_id", "ad"),
                    name=str(ad.get("name", "")),
                    status=_status(ad),
                    creative=Creative(
                        headline=str(creative.get("title", "")),
                        primary_text=str(creative.get("body", "")),
                        call_to_action=str(creative.get("call_to_action_type", "")),
                        video_uri=f"meta-video:{video}" if video else None,
                    ),
                    is_control=self._is_control(str(ad.get("name", ""))),
                )
            )
        return out

    # -- insights ---------------------------------------------------------------------------

    def _rows(self, since: dt.date, until: dt.date, *, hourly: bool) -> list[InsightRow]:
        """Parsed rows; a row whose counts contradict each other is quarantined (kept aside for
        ``take_quarantined``), never returned, and never fails the rest."""
        account = self.account()
        tz, exponent = ZoneInfo(account.timezone), currency_exponent(account.currency)
        out: list[InsightRow] = []
        for raw in self.reader.rows(since, until, hourly=hourly):
            try:
                out.append(
                    parse_row(
                        raw,
                        exponent=exponent,
                        tz=tz,
                        conversion_actions=self.options.conversion_actions,
                    )
                )
            except ImplausibleRowError as error:
                with self._lock:
                    self._quarantined.append(error.row)
        return out

    def take_quarantined(self) -> list[InsightRow]:
        """The rows quarantined since the last call (hourly rows have ``hour_start``), emptied."""
        with self._lock:
            rows, self._quarantined = self._quarantined, []
        return rows

    def hourly_rows(self, start: dt.datetime, end: dt.datetime) -> list[InsightRow]:
        """Every parsed hourly row whose UTC hour starts in ``[start, end)``."""
        start, end = ensure_utc(start), ensure_utc(end)
        if end <= start:
            return []
        tz = ZoneInfo(self.account().timezone)
        since = start.astimezone(tz).date()
        until = (end - dt.timedelta(microseconds=1)).astimezone(tz).date()
        rows = self._rows(since, until, hourly=True)
        return [r for r in rows if r.hour_start is not None and start <= r.hour_start < end]

    def fetch_insights(self, start: dt.datetime, end: dt.datetime) -> list[HourlyActual]:
        """Hourly delivery, clicks and 3-second views per ad and UTC hour in ``[start, end)``.

        Conversions are 0 here: Meta does not return them with hourly breakdowns (see
        ``fetch_daily``). Two local labels landing on one UTC hour (a spring-forward gap) add up.
        """
        merged: dict[tuple[str, dt.datetime], HourlyActual] = {}
        for r in self.hourly_rows(start, end):
            assert r.hour_start is not None
            row = HourlyActual(
                ad_id=r.ad_id,
                hour_start=r.hour_start,
                impressions=r.impressions,
                clicks=r.clicks,
                link_clicks=r.link_clicks,
                spend_minor=r.spend_minor,
                video_views=r.video_views,
            )
            key = (r.ad_id, r.hour_start)
            if key in merged:
                old = merged[key]
                row = replace(
                    old,
                    impressions=old.impressions + row.impressions,
                    clicks=old.clicks + row.clicks,
                    link_clicks=old.link_clicks + row.link_clicks,
                    spend_minor=old.spend_minor + row.spend_minor,
                    video_views=old.video_views + row.video_views,
                )
            merged[key] = row
        return sorted(merged.values(), key=lambda a: (a.hour_start, a.ad_id))

    def fetch_daily(self, start_date: dt.date, end_date: dt.date) -> list[DailyActual]:
        """Daily rows (account-local dates in ``[start_date, end_date)``) with conversions and
        revenue from ``actions``/``action_values``."""
        if end_date <= start_date:
            return []
        rows = self._rows(start_date, end_date - dt.timedelta(days=1), hourly=False)
        return sorted(
            (
                DailyActual(
                    date=r.date_start,
                    ad_id=r.ad_id,
                    impressions=r.impressions,
                    clicks=r.clicks,
                    link_clicks=r.link_clicks,
                    spend_minor=r.spend_minor,
                    conversions=r.conversions,
                    revenue_minor=r.revenue_minor,
                    video_views=r.video_views,
                )
                for r in rows
            ),
            key=lambda a: (a.date, a.ad_id),
        )

    # -- writes -----------------------------------------------------------------------------

    def _update(self, object_id: str, data: dict[str, Any]) -> None:
        if not object_id.isdigit():
            raise ValueError(f"not a Meta object id: {object_id!r}")
        body = self.client.post(object_id, data)
        if body.get("success") is not True:
            raise MetaApiError(f"update of {object_id} with {data} was not confirmed: {body!r}")

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        """``daily_budget`` in the account currency's minor units (2000 = $20.00)."""
        if isinstance(daily_budget_minor, bool) or not isinstance(daily_budget_minor, int):
            raise TypeError("daily_budget_minor must be an int of minor units")
        if daily_budget_minor <= 0:
            raise ValueError(f"daily_budget_minor must be positive, got {daily_budget_minor}")
        self._update(ad_set_id, {"daily_budget": daily_budget_minor})

    def set_campaign_budget(self, campaign_id: str, daily_budget_minor: int) -> None:
        """For campaign budget optimisation (CBO), where the budget lives on the campaign."""
        if isinstance(daily_budget_minor, bool) or not isinstance(daily_budget_minor, int):
            raise TypeError("daily_budget_minor must be an int of minor units")
        if daily_budget_minor <= 0:
            raise ValueError(f"daily_budget_minor must be positive, got {daily_budget_minor}")
        self._update(campaign_id, {"daily_budget": daily_budget_minor})

    def set_ad_status(self, ad_id: str, status: Status) -> None:
        self._update(ad_id, {"status": Status(status).value})
