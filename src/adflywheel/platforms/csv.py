"""A read-only ad platform over Meta Ads Manager CSV exports.

Why: a team can run the learning loops on its history before granting API access. The file is
validated whole on load, and any problem raises ``CsvImportError`` naming the row and the column, so
the service never learns from a half-read export. The column mapping and every rule for ambiguous
input (time zones, DST, empty cells, daily rows) are in ``docs/csv-import.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import IO, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adflywheel.core.clock import ensure_utc
from adflywheel.core.domain import Creative, DailyActual, HourlyActual, Status
from adflywheel.core.errors import InvalidInputError
from adflywheel.platforms.base import (
    PlatformAccount,
    PlatformAd,
    PlatformAdSet,
    PlatformCampaign,
    ReadOnlyPlatformError,
    minor_unit_exponent,
)

# Field -> accepted headers, matched case-insensitively after stripping a "(XXX)" currency suffix.
# The first header present wins, so "Clicks (all)" beats "Clicks" and "Purchases" beats "Results".
COLUMNS: dict[str, tuple[str, ...]] = {
    "ad_id": ("Ad ID",),
    "ad_name": ("Ad name",),
    "ad_set_id": ("Ad set ID",),
    "ad_set_name": ("Ad set name",),
    "campaign_id": ("Campaign ID",),
    "campaign_name": ("Campaign name",),
    "account_id": ("Account ID",),
    "day": ("Day", "Date"),
    "starts": ("Reporting starts",),
    "ends": ("Reporting ends",),
    "hour": ("Time of day (ad account time zone)",),
    "impressions": ("Impressions",),
    "clicks": ("Clicks (all)", "Clicks"),
    "link_clicks": ("Link clicks",),
    "ctr": ("CTR (all)",),
    "spend": ("Amount spent",),
    "conversions": ("Purchases", "Website purchases", "Results"),
    "revenue": ("Purchases conversion value", "Website purchases conversion value"),
    "video_views": ("3-second video plays", "Video plays"),
    "budget": ("Ad set budget",),
    "budget_type": ("Ad set budget type",),
    "campaign_budget": ("Campaign budget",),
    "campaign_budget_type": ("Campaign budget type",),
    "delivery": ("Delivery", "Ad delivery"),
    "headline": ("Headline",),
    "body": ("Body", "Primary text"),
}
_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("ad_id",),
    ("day", "starts"),
    ("impressions",),
    ("spend",),
    ("clicks", "ctr"),
    ("ad_set_id", "ad_set_name"),
    ("campaign_id", "campaign_name"),
)
_ACTIVE_DELIVERY = frozenset({"active", "learning", "learning limited"})
# The budget levels an export can show, by the (amount, type) columns that show them; with
# neither, the file cannot tell where the money is set (the budget structure is unknown).
BUDGET_COLUMNS: dict[str, tuple[str, str]] = {
    "campaign": ("campaign_budget", "campaign_budget_type"),
    "ad_set": ("budget", "budget_type"),
}
_CURRENCY_SUFFIX = re.compile(r"^(?P<base>.*?)\s*\((?P<code>[A-Z]{3})\)$")
_NUMBER = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HOUR = re.compile(r"^(\d{2}):00:00\s*-\s*(\d{2}):59:59$")
_SCIENTIFIC = re.compile(r"^\d+(\.\d+)?[eE]\+?\d+$")


def _norm(header: str) -> str:
    return " ".join(header.replace("\u2019", "'").split()).casefold()


_ALIAS = {_norm(h): (f, rank) for f, heads in COLUMNS.items() for rank, h in enumerate(heads)}


class CsvImportError(InvalidInputError):
    """The export cannot be trusted as a whole; says where (row 1 is the header) and why."""

    def __init__(self, source: str, row: int | None, column: str | None, reason: str) -> None:
        self.source, self.row, self.column, self.reason = source, row, column, reason
        where = "".join(
            [f", row {row}" if row is not None else "", f", column {column!r}" if column else ""]
        )
        super().__init__(f"{source}{where}: {reason}")


class _Counts(NamedTuple):
    impressions: int
    clicks: int
    link_clicks: int
    spend_minor: int
    conversions: int
    revenue_minor: int
    video_views: int


_Key = tuple[dt.date, int]  # (report date, row): the latest row wins for names, status, budget


@dataclass(slots=True)
class _Row:
    """One CSV record with typed accessors that fail with the row number and column header."""

    source: str
    num: int
    cells: list[str]
    cols: dict[str, int]  # field -> cell index
    header: dict[str, str]  # field -> header text, for messages

    def error(self, field: str, reason: str) -> CsvImportError:
        return CsvImportError(
            self.source, self.num, self.header.get(field, COLUMNS[field][0]), reason
        )

    def text(self, field: str) -> str:
        idx = self.cols.get(field)
        return self.cells[idx].strip() if idx is not None else ""

    def number(self, field: str, percent: bool = False) -> Decimal:
        raw = self.text(field)
        value = raw[:-1].rstrip() if percent and raw.endswith("%") else raw
        if value in ("", "-"):
            return Decimal(0)
        if value.startswith("-") and _NUMBER.match(value[1:]):
            raise self.error(field, f"negative number {raw!r}")
        if not _NUMBER.match(value):
            raise self.error(field, f"not a number: {raw!r} (expected e.g. 1,234.56)")
        return Decimal(value.replace(",", ""))

    def count(self, field: str) -> int:
        value = self.number(field)
        if value != value.to_integral_value():
            raise self.error(field, f"not a whole number: {self.text(field)!r}")
        return int(value)

    def money(self, field: str, exponent: int) -> int:
        scaled = self.number(field).scaleb(exponent)
        return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

    def date(self, field: str) -> dt.date:
        raw = self.text(field)
        try:
            if _DATE.match(raw):
                return dt.date.fromisoformat(raw)
        except ValueError:
            pass
        raise self.error(field, f"not a date: {raw!r} (expected YYYY-MM-DD)")

    def ident(self, field: str) -> str:
        value = self.text(field)
        if _SCIENTIFIC.match(value):
            raise self.error(field, f"id {value!r} was mangled by a spreadsheet; re-export the CSV")
        return value


def _budget_cell(row: _Row, amount: str, of_type: str, exponent: int) -> str:
    """A budget as ``"daily:<minor>"`` or ``"lifetime:<minor>"``; any other type (an ad set
    "Using campaign budget") as ``"none"``: that level holds no budget of its own."""
    period = _norm(row.text(of_type))
    if period not in ("daily", "lifetime"):
        return "none"
    return f"{period}:{row.money(amount, exponent)}"


def _local_to_utc(
    naive: dt.datetime, tz: ZoneInfo, second: bool
) -> tuple[dt.datetime | None, bool]:
    """UTC start of a local hour (None in a DST gap) and whether the local time is ambiguous."""
    early, late = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early.astimezone(dt.UTC), False
    if early.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None, False
    return (late if second else early).astimezone(dt.UTC), True


class CsvPlatform:
    """One ad account as seen through one export; every write raises ``ReadOnlyPlatformError``."""

    name = "csv"

    def __init__(
        self,
        text: str,
        *,
        account_external_id: str,
        account_name: str | None = None,
        timezone: str = "UTC",
        currency: str | None = None,
        source: str = "<csv>",
    ) -> None:
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {timezone!r}") from exc
        self._source, self._timezone = source, timezone
        self._account_id, self._account_name = account_external_id, account_name
        self._hourly: dict[tuple[str, dt.datetime], tuple[int, HourlyActual]] = {}
        self._local_seen: set[tuple[str, dt.datetime]] = set()  # (ad, local hour): DST fold
        self._daily: dict[tuple[str, dt.date], tuple[int, DailyActual]] = {}
        self._parents: dict[tuple[str, str], tuple[str, int]] = {}  # (kind, id) -> (parent, row)
        self._latest: dict[tuple[str, str, str], tuple[_Key, str]] = {}
        self._columns: frozenset[str] = frozenset()  # the fields the header has
        self._load(text.removeprefix("\ufeff"), currency)

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        account_external_id: str,
        account_name: str | None = None,
        timezone: str = "UTC",
        currency: str | None = None,
    ) -> CsvPlatform:
        """Read an export from disk: UTF-8, with or without the BOM that Ads Manager writes."""
        source = os.fspath(path)
        data = Path(source).read_bytes()
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise CsvImportError(source, None, None, "file is UTF-16; export as CSV (UTF-8)")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CsvImportError(source, None, None, f"not UTF-8 (byte {exc.start})") from exc
        return cls(
            text,
            account_external_id=account_external_id,
            account_name=account_name,
            timezone=timezone,
            currency=currency,
            source=source,
        )

    @classmethod
    def from_stream(
        cls,
        stream: IO[str],
        *,
        account_external_id: str,
        account_name: str | None = None,
        timezone: str = "UTC",
        currency: str | None = None,
        source: str = "<stream>",
    ) -> CsvPlatform:
        """Read an open text stream (uploads, tests); a leading BOM is dropped."""
        return cls(
            stream.read(),
            account_external_id=account_external_id,
            account_name=account_name,
            timezone=timezone,
            currency=currency,
            source=source,
        )

    # -- loading --------------------------------------------------------------------------------

    def _load(self, text: str, currency: str | None) -> None:
        try:
            records = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            raise CsvImportError(self._source, None, None, f"malformed CSV: {exc}") from exc
        if not records:
            raise CsvImportError(self._source, 1, None, "empty file: no header row")
        cols, header = self._resolve_header(records[0], currency)
        self._columns = frozenset(cols)
        for num, cells in enumerate(records[1:], start=2):
            if not any(c.strip() for c in cells):
                continue  # blank line, e.g. at the end of the file
            if len(cells) != len(records[0]):
                raise CsvImportError(
                    self._source, num, None, f"{len(cells)} cells, header has {len(records[0])}"
                )
            self._load_row(_Row(self._source, num, cells, cols, header))

    def _resolve_header(
        self, cells: list[str], currency: str | None
    ) -> tuple[dict[str, int], dict[str, str]]:
        cols: dict[str, int] = {}
        header: dict[str, str] = {}
        ranks: dict[str, int] = {}
        codes: dict[str, str] = {}
        for idx, raw in enumerate(cells):
            raw = raw.strip()
            m = _CURRENCY_SUFFIX.match(raw)
            if m:
                codes.setdefault(m["code"], raw)
            match = _ALIAS.get(_norm(m["base"] if m else raw))
            if match is None:
                continue  # unknown columns are ignored
            field, rank = match
            if ranks.get(field) == rank:
                raise CsvImportError(self._source, 1, raw, "column appears twice")
            if field not in ranks or rank < ranks[field]:
                cols[field], header[field], ranks[field] = idx, raw, rank
        if len(codes) > 1:
            raise CsvImportError(
                self._source, 1, None, f"conflicting currencies: {', '.join(codes.values())}"
            )
        code = next(iter(codes), None)
        if currency is not None and code is not None and currency.upper() != code:
            raise CsvImportError(
                self._source, 1, codes[code], f"file is in {code}, expected {currency.upper()}"
            )
        self._currency = code or (currency.upper() if currency else "")
        if not self._currency:
            raise CsvImportError(
                self._source, 1, header.get("spend"), "no currency in the header; pass currency="
            )
        self._exp = minor_unit_exponent(self._currency)
        for options in _REQUIRED:
            if not any(f in cols for f in options):
                names = " or ".join(repr(COLUMNS[f][0]) for f in options)
                raise CsvImportError(self._source, 1, None, f"missing required column {names}")
        if "hour" not in cols and any("viewer's time zone" in _norm(c) for c in cells):
            raise CsvImportError(
                self._source,
                1,
                None,
                "hours in the viewer's time zone cannot be placed in UTC; "
                "export 'Time of day (ad account time zone)'",
            )
        return cols, header

    def _load_row(self, row: _Row) -> None:
        ad_id = row.ident("ad_id")
        if not ad_id:
            raise row.error("ad_id", "empty Ad ID (export without the summary row)")
        account = row.ident("account_id").removeprefix("act_")
        if account and account != self._account_id.removeprefix("act_"):
            raise row.error("account_id", f"row belongs to account {account}")
        day = row.date("day" if "day" in row.cols else "starts")
        if "day" not in row.cols and row.text("ends") and row.date("ends") != day:
            raise row.error("ends", "row spans several days; export with a 'Day' breakdown")
        impressions = row.count("impressions")
        link_clicks = row.count("link_clicks")
        if "clicks" in row.header:
            clicks = row.count("clicks")
        else:  # CTR is rounded in exports, so the derived count never undercuts link clicks
            ctr = row.number("ctr", percent=True)
            if ctr > 100:
                raise row.error("ctr", f"CTR {ctr}% exceeds 100%")
            derived = (ctr / 100 * impressions).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
            clicks = min(max(int(derived), link_clicks), impressions)
        if clicks > impressions:
            raise row.error("clicks", f"clicks ({clicks}) exceed impressions ({impressions})")
        if link_clicks > clicks:
            raise row.error("link_clicks", f"link clicks ({link_clicks}) exceed clicks ({clicks})")
        counts = _Counts(
            impressions=impressions,
            clicks=clicks,
            link_clicks=link_clicks,
            spend_minor=row.money("spend", self._exp),
            conversions=row.count("conversions"),
            revenue_minor=row.money("revenue", self._exp),
            video_views=row.count("video_views"),
        )
        if row.text("hour"):
            self._add_hourly(row, ad_id, day, counts)
        else:
            self._add_daily(row, ad_id, day, counts)
        self._add_catalogue(row, ad_id, (day, row.num))

    def _add_hourly(self, row: _Row, ad_id: str, day: dt.date, counts: _Counts) -> None:
        m = _HOUR.match(row.text("hour"))
        if not m or m[1] != m[2] or int(m[1]) > 23:
            raise row.error("hour", f"not an hour: {row.text('hour')!r} (e.g. 08:00:00 - 08:59:59)")
        local = dt.datetime.combine(day, dt.time(int(m[1])))
        utc, _ = _local_to_utc(local, self._tz, second=(ad_id, local) in self._local_seen)
        self._local_seen.add((ad_id, local))
        if utc is None:
            raise row.error("hour", f"{local} does not exist in {self._timezone} (DST gap)")
        # Whole-hour zones give aligned hours; +05:30 and the like start at the UTC hour below.
        utc = utc.replace(minute=0)
        try:
            actual = HourlyActual(ad_id=ad_id, hour_start=utc, **counts._asdict())
        except ValueError as exc:
            raise row.error("hour", str(exc)) from exc
        first = self._hourly.setdefault((ad_id, utc), (row.num, actual))
        if first[0] != row.num:
            same = "identical" if first[1] == actual else "different"
            raise row.error(
                "hour",
                f"duplicate row ({same} values) for ad {ad_id} at {local}: see row {first[0]}",
            )

    def _add_daily(self, row: _Row, ad_id: str, day: dt.date, counts: _Counts) -> None:
        actual = DailyActual(date=day, ad_id=ad_id, **counts._asdict())
        first = self._daily.setdefault((ad_id, day), (row.num, actual))
        if first[0] != row.num:
            same = "identical" if first[1] == actual else "different"
            raise row.error(
                "day" if "day" in row.cols else "starts",
                f"duplicate row ({same} values) for ad {ad_id} on {day}: see row {first[0]}",
            )

    def _add_catalogue(self, row: _Row, ad_id: str, key: _Key) -> None:
        ad_set = row.ident("ad_set_id") or row.text("ad_set_name")
        campaign = row.ident("campaign_id") or row.text("campaign_name")
        for kind, ident, parent, field in (
            ("ad", ad_id, ad_set, "ad_set_id"),
            ("ad set", ad_set, campaign, "campaign_id"),
        ):
            if not parent:
                raise row.error(field, f"empty {'ad set' if kind == 'ad' else 'campaign'}")
            seen = self._parents.setdefault((kind, ident), (parent, row.num))
            if seen[0] != parent:
                raise row.error(
                    field, f"{kind} {ident} is under {parent} here but {seen[0]} at row {seen[1]}"
                )
        self._offer(("ad", ad_id, "name"), key, row.text("ad_name"))
        self._offer(("ad", ad_id, "headline"), key, row.text("headline"))
        self._offer(("ad", ad_id, "body"), key, row.text("body"))
        self._offer(("ad set", ad_set, "name"), key, row.text("ad_set_name"))
        self._offer(("campaign", campaign, "name"), key, row.text("campaign_name"))
        delivery = _norm(row.text("delivery").replace("_", " "))
        if delivery:
            status = Status.ACTIVE if delivery in _ACTIVE_DELIVERY else Status.PAUSED
            self._offer(("ad", ad_id, "status"), key, status.value)
        for kind, ident, (amount, of_type) in (
            ("campaign", campaign, BUDGET_COLUMNS["campaign"]),
            ("ad set", ad_set, BUDGET_COLUMNS["ad_set"]),
        ):
            if row.text(of_type) and row.text(amount) not in ("", "-"):
                self._offer(
                    (kind, ident, "budget"), key, _budget_cell(row, amount, of_type, self._exp)
                )

    def _offer(self, slot: tuple[str, str, str], key: _Key, value: str) -> None:
        """Keep the value from the latest-dated row; empty cells never overwrite."""
        if value and (slot not in self._latest or key >= self._latest[slot][0]):
            self._latest[slot] = (key, value)

    def _get(self, kind: str, ident: str, attr: str) -> str:
        return self._latest.get((kind, ident, attr), ((dt.date.min, 0), ""))[1]

    def _budgets(self, kind: str, ident: str) -> tuple[int | None, int | None]:
        """The (daily, lifetime) budget the latest row gave, in minor units."""
        found = self._get(kind, ident, "budget")
        period, _, amount = found.partition(":")
        if not amount.isdigit():
            return None, None
        return (int(amount), None) if period == "daily" else (None, int(amount))

    def budget_levels(self) -> frozenset[str]:
        """Which budget levels the export has columns for (``"campaign"``, ``"ad_set"``): with
        none, where the money is set (the budget structure) cannot be told from the file."""
        return frozenset(
            level
            for level, columns in BUDGET_COLUMNS.items()
            if all(c in self._columns for c in columns)
        )

    # -- the AdPlatform interface ----------------------------------------------------------------

    def account(self) -> PlatformAccount:
        return PlatformAccount(
            external_id=self._account_id,
            name=self._account_name or self._account_id,
            currency=self._currency,
            timezone=self._timezone,
        )

    def list_ads(self) -> list[PlatformAd]:
        out = []
        for (kind, ad_id), (ad_set, _) in sorted(self._parents.items()):
            if kind != "ad":
                continue
            status = self._get("ad", ad_id, "status") or Status.ACTIVE.value
            out.append(
                PlatformAd(
                    external_id=ad_id,
                    ad_set_id=ad_set,
                    campaign_id=self._parents[("ad set", ad_set)][0],
                    name=self._get("ad", ad_id, "name") or ad_id,
                    status=Status(status),
                    creative=Creative(
                        headline=self._get("ad", ad_id, "headline"),
                        primary_text=self._get("ad", ad_id, "body"),
                    ),
                )
            )
        return out

    def list_ad_sets(self) -> list[PlatformAdSet]:
        active = {a.ad_set_id for a in self.list_ads() if a.status is Status.ACTIVE}
        out = []
        for (kind, ad_set), (campaign, _) in sorted(self._parents.items()):
            if kind == "ad set":
                daily, lifetime = self._budgets("ad set", ad_set)
                out.append(
                    PlatformAdSet(
                        external_id=ad_set,
                        campaign_id=campaign,
                        name=self._get("ad set", ad_set, "name") or ad_set,
                        status=Status.ACTIVE if ad_set in active else Status.PAUSED,
                        daily_budget_minor=daily,
                        lifetime_budget_minor=lifetime,
                    )
                )
        return out

    def list_campaigns(self) -> list[PlatformCampaign]:
        ad_sets = self.list_ad_sets()
        active = {s.campaign_id for s in ad_sets if s.status is Status.ACTIVE}
        out = []
        for c in sorted({s.campaign_id for s in ad_sets}):
            daily, lifetime = self._budgets("campaign", c)
            out.append(
                PlatformCampaign(
                    external_id=c,
                    name=self._get("campaign", c, "name") or c,
                    status=Status.ACTIVE if c in active else Status.PAUSED,
                    daily_budget_minor=daily,
                    lifetime_budget_minor=lifetime,
                )
            )
        return out

    def fetch_insights(self, start: dt.datetime, end: dt.datetime) -> list[HourlyActual]:
        """Hourly rows starting in ``[start, end)``; a daily-only file gives ``[]``."""
        start, end = ensure_utc(start), ensure_utc(end)
        rows = [a for _, a in self._hourly.values() if start <= a.hour_start < end]
        return sorted(rows, key=lambda a: (a.hour_start, a.ad_id))

    def fetch_daily(self, start_date: dt.date, end_date: dt.date) -> list[DailyActual]:
        """Daily rows (no hour column) with local dates in ``[start_date, end_date)``."""
        rows = [a for _, a in self._daily.values() if start_date <= a.date < end_date]
        return sorted(rows, key=lambda a: (a.date, a.ad_id))

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        raise ReadOnlyPlatformError(
            f"cannot set the budget of ad set {ad_set_id}: a CSV export is read-only; "
            "change it in Ads Manager or connect the Meta API"
        )

    def set_ad_status(self, ad_id: str, status: Status) -> None:
        raise ReadOnlyPlatformError(
            f"cannot set ad {ad_id} to {status.value}: a CSV export is read-only; "
            "change it in Ads Manager or connect the Meta API"
        )
