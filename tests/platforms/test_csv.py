"""The CSV platform: exact numbers, time zones and DST, and a clear error for every bad input."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from adflywheel.core.domain import Status
from adflywheel.platforms.base import AdPlatform, ReadOnlyPlatformError
from adflywheel.platforms.csv import CsvImportError, CsvPlatform, DailyActual

FIXTURES = Path(__file__).parents[1] / "fixtures"
HEADER = (
    "Campaign ID,Ad set ID,Ad ID,Day,Time of day (ad account time zone),"
    "Impressions,Clicks (all),Link clicks,Amount spent (USD)"
)
ALL_TIME = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def load(*rows: str, header: str = HEADER, timezone: str = "UTC") -> CsvPlatform:
    text = "\n".join([header, *rows]) + "\n"
    return CsvPlatform(text, account_external_id="act_1", timezone=timezone, source="t.csv")


def row(
    hour: str = "08", ad: str = "a1", day: str = "2026-01-15", nums: str = "100,5,3,1.00"
) -> str:
    return f"c1,s1,{ad},{day},{hour}:00:00 - {hour}:59:59,{nums}"


def utc(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_hourly_fixture_parses_to_exact_numbers() -> None:
    p = CsvPlatform.from_path(
        FIXTURES / "ads_manager_hourly.csv", account_external_id="act_42", account_name="Mugs"
    )
    platform: AdPlatform = p  # the protocol is satisfied (checked by mypy)
    assert platform.name == "csv"
    assert p.account().currency == "USD" and p.account().name == "Mugs"
    rows = p.fetch_insights(*ALL_TIME)
    assert len(rows) == 6
    first = rows[0]
    assert (first.ad_id, first.hour_start) == ("120210000000001001", utc(2026, 1, 15, 8))
    assert (first.impressions, first.clicks, first.link_clicks) == (1234, 40, 22)
    assert (first.spend_minor, first.conversions, first.video_views) == (314, 0, 512)
    assert rows[-1].spend_minor == 0  # "-" and empty cells are 0
    assert p.fetch_daily(date(2000, 1, 1), date(2100, 1, 1)) == []


def test_catalogue_comes_from_the_distinct_ids() -> None:
    p = CsvPlatform.from_path(FIXTURES / "ads_manager_hourly.csv", account_external_id="42")
    ads = {a.external_id: a for a in p.list_ads()}
    q = ads["120210000000001001"]
    assert (q.name, q.ad_set_id, q.campaign_id) == (
        "Q hook v1",
        "120210000000000101",
        "120210000000000001",
    )
    assert q.creative.headline == "Tired of cold coffee?"
    assert q.creative.primary_text.endswith("\nShips free.")  # a quoted newline is one cell
    assert ads["120210000000001003"].status is Status.PAUSED
    sets = {s.external_id: s for s in p.list_ad_sets()}
    assert sets["120210000000000101"].daily_budget_minor == 2000
    assert sets["120210000000000102"].status is Status.ACTIVE  # one of its two ads is active
    (campaign,) = p.list_campaigns()
    assert campaign.name == "Spring launch - video"


def test_daily_only_file_serves_fetch_daily_and_no_hours() -> None:
    p = CsvPlatform.from_path(FIXTURES / "ads_manager_daily.csv", account_external_id="42")
    assert p.fetch_insights(*ALL_TIME) == []
    days = p.fetch_daily(date(2026, 1, 15), date(2026, 1, 16))  # [start, end)
    assert [d.ad_id for d in days] == ["120210000000001001", "120210000000001002"]
    assert days[0] == DailyActual(
        date=date(2026, 1, 15),
        ad_id="120210000000001001",
        impressions=30102,
        clicks=744,
        link_clicks=420,
        spend_minor=9231,
        conversions=7,
        revenue_minor=41965,
        video_views=7411,
    )
    assert len(p.fetch_daily(date(2026, 1, 14), date(2026, 1, 16))) == 4


def test_ctr_percent_gives_clicks_when_the_clicks_column_is_absent() -> None:
    header = "Campaign ID,Ad set ID,Ad ID,Day,Impressions,CTR (all),Link clicks,Amount spent (EUR)"
    p = load(
        "c1,s1,a1,2026-01-15,1200,1.25,9,3.14",
        "c1,s1,a2,2026-01-15,1000,0.10%,3,0",  # rounds to 1 click, lifted to the 3 link clicks
        header=header,
    )
    d = {a.ad_id: a for a in p.fetch_daily(date(2026, 1, 15), date(2026, 1, 16))}
    assert (d["a1"].clicks, d["a1"].spend_minor, d["a2"].clicks) == (15, 314, 3)
    assert p.account().currency == "EUR"


def test_zero_decimal_currency_and_aliases() -> None:
    header = (
        "Campaign name,Ad set name,Ad ID,Reporting starts,Impressions,Clicks,Amount spent (JPY)"
    )
    p = load('Camp,Set,a1,2026-01-15,"1,234",7,"1,500"', header=header)
    (d,) = p.fetch_daily(date(2026, 1, 1), date(2027, 1, 1))
    assert (d.impressions, d.clicks, d.spend_minor, d.link_clicks) == (1234, 7, 1500, 0)
    assert p.list_ads()[0].ad_set_id == "Set"  # names stand in for absent ids


@pytest.mark.parametrize(
    ("day", "expected"),
    [("2026-01-15", utc(2026, 1, 15, 13)), ("2026-07-15", utc(2026, 7, 15, 12))],
)
def test_account_time_zone_is_converted_to_utc(day: str, expected: datetime) -> None:
    p = load(row(day=day), timezone="America/New_York")
    assert [a.hour_start for a in p.fetch_insights(*ALL_TIME)] == [expected]


def test_ambiguous_fall_back_hour_takes_the_earlier_offset_then_the_later() -> None:
    p = load(row("01", day="2026-11-01"), row("01", day="2026-11-01"), timezone="America/New_York")
    hours = [a.hour_start for a in p.fetch_insights(*ALL_TIME)]
    assert hours == [utc(2026, 11, 1, 5), utc(2026, 11, 1, 6)]  # EDT first, then EST
    with pytest.raises(CsvImportError, match=r"row 4.*duplicate row"):
        load(*[row("01", day="2026-11-01")] * 3, timezone="America/New_York")


def test_nonexistent_spring_forward_hour_is_rejected() -> None:
    with pytest.raises(CsvImportError, match=r"row 2, column 'Time of day.*DST gap"):
        load(row("02", day="2026-03-08"), timezone="America/New_York")


def test_half_hour_zone_starts_at_the_utc_hour_below() -> None:
    p = load(row("08"), timezone="Asia/Kolkata")  # 08:00 IST = 02:30 UTC
    assert p.fetch_insights(*ALL_TIME)[0].hour_start == utc(2026, 1, 15, 2)


def test_bom_is_accepted_from_text_stream_and_path(tmp_path: Path) -> None:
    text = "\ufeff" + HEADER + "\n" + row() + "\n"
    p = CsvPlatform.from_stream(io.StringIO(text), account_external_id="1")
    assert len(p.fetch_insights(*ALL_TIME)) == 1
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode("utf-8"))
    assert len(CsvPlatform.from_path(path, account_external_id="1").fetch_insights(*ALL_TIME)) == 1


def test_fetch_insights_is_half_open() -> None:
    p = load(row("08"), row("09"), row("10"))
    got = p.fetch_insights(utc(2026, 1, 15, 9), utc(2026, 1, 15, 10))
    assert [a.hour_start.hour for a in got] == [9]


def test_writes_raise_read_only() -> None:
    p = load(row())
    with pytest.raises(ReadOnlyPlatformError, match="read-only"):
        p.set_ad_set_budget("s1", 2000)
    with pytest.raises(ReadOnlyPlatformError, match="read-only"):
        p.set_ad_status("a1", Status.PAUSED)


@pytest.mark.parametrize(
    ("rows", "header", "match"),
    [
        ([], HEADER.replace(",Ad ID", ""), r"row 1: missing required column 'Ad ID'"),
        ([], HEADER.replace(",Impressions", ""), "missing required column 'Impressions'"),
        ([], HEADER.replace(" (USD)", ""), "row 1, column 'Amount spent': no currency"),
        ([], HEADER.replace(",Day", ""), "missing required column 'Day' or 'Reporting starts'"),
        ([], HEADER.replace(",Clicks (all)", ""), "'Clicks \\(all\\)' or 'CTR \\(all\\)'"),
        ([], HEADER + ",CPC (EUR)", "row 1: conflicting currencies"),
        ([], HEADER + ",Impressions", "row 1, column 'Impressions': column appears twice"),
        ([row(nums="-100,5,3,1.00")], HEADER, "row 2, column 'Impressions': negative number"),
        ([row(nums="100,5,3,-1.00")], HEADER, "column 'Amount spent \\(USD\\)': negative"),
        ([row(nums="100,500,3,1.00")], HEADER, "row 2, column 'Clicks \\(all\\)': clicks \\(500"),
        ([row(nums="100,5,9,1.00")], HEADER, "column 'Link clicks': link clicks \\(9\\) exceed"),
        ([row(nums="1.5k,5,3,1.00")], HEADER, "row 2, column 'Impressions': not a number"),
        ([row(nums="100,5.5,3,1.00")], HEADER, "column 'Clicks \\(all\\)': not a whole number"),
        ([row(nums='100,5,3,"3,14"')], HEADER, "Amount spent \\(USD\\)': not a number"),
        ([row(day="15/01/2026")], HEADER, "row 2, column 'Day': not a date"),
        ([row(day="2026-02-30")], HEADER, "column 'Day': not a date"),
        ([row(hour="24")], HEADER, "column 'Time of day.*not an hour"),
        ([row(), row()], HEADER, "row 3, column 'Time of day.*duplicate row \\(identical"),
        ([row(), row(nums="100,6,3,1.00")], HEADER, "row 3.*duplicate row \\(different"),
        ([row(), "c1,s2,a1,2026-01-15,09:00:00 - 09:59:59,1,0,0,0"], HEADER, "row 3.*Ad set ID"),
        ([row(), "c2,s1,a2,2026-01-15,08:00:00 - 08:59:59,1,0,0,0"], HEADER, "row 3.*Campaign"),
        ([row(ad="1.2e+17")], HEADER, "row 2, column 'Ad ID'.*spreadsheet"),
        ([row(ad="")], HEADER, "row 2, column 'Ad ID': empty"),
        ([row() + ",extra"], HEADER, "row 2: 10 cells, header has 9"),
    ],
)
def test_bad_input_names_row_column_and_reason(rows: list[str], header: str, match: str) -> None:
    with pytest.raises(CsvImportError, match=match):
        load(*rows, header=header)


def test_error_carries_structured_location_and_loads_nothing() -> None:
    with pytest.raises(CsvImportError) as info:
        load(row("08"), row("09", nums="10,50,0,0"))
    err = info.value
    assert (err.source, err.row, err.column) == ("t.csv", 3, "Clicks (all)")
    assert isinstance(err, ValueError)


def test_daily_rows_checks() -> None:
    header = "Campaign ID,Ad set ID,Ad ID,Reporting starts,Reporting ends,Impressions,Clicks,"
    header += "Amount spent (USD)"
    with pytest.raises(CsvImportError, match="row 2, column 'Reporting ends': row spans"):
        load("c1,s1,a1,2026-01-01,2026-01-07,10,1,1", header=header)
    with pytest.raises(CsvImportError, match="row 3, column 'Reporting starts': duplicate row"):
        load(*["c1,s1,a1,2026-01-01,2026-01-01,10,1,1"] * 2, header=header)


def test_account_and_currency_mismatches_are_refused() -> None:
    with pytest.raises(CsvImportError, match=r"row 2, column 'Account ID'.*account 999"):
        load("999," + row(), header="Account ID," + HEADER)
    assert load("act_1," + row(), header="Account ID," + HEADER).account().external_id == "act_1"
    with pytest.raises(CsvImportError, match="file is in USD, expected EUR"):
        CsvPlatform(HEADER + "\n", account_external_id="1", currency="EUR")


def test_file_level_problems(tmp_path: Path) -> None:
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes((HEADER + "\n").encode("utf-16"))
    with pytest.raises(CsvImportError, match="UTF-16"):
        CsvPlatform.from_path(utf16, account_external_id="1")
    with pytest.raises(CsvImportError, match="row 1: empty file"):
        CsvPlatform("", account_external_id="1")
    with pytest.raises(CsvImportError, match="viewer's time zone"):
        load(header=HEADER.replace("ad account", "viewer's"))
    with pytest.raises(ValueError, match="unknown IANA"):
        load(row(), timezone="Mars/Olympus")
