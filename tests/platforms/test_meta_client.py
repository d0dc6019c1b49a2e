"""The Meta connector against the fake Graph server on loopback (real HTTP, real client code)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adflywheel.core.domain import Objective, Status
from adflywheel.platforms.meta import (
    GraphClient,
    InsightsOptions,
    MetaApiError,
    MetaAuthError,
    MetaDataError,
    MetaInvalidRequestError,
    MetaNotFoundError,
    MetaPermissionError,
    MetaPlatform,
    MetaReduceDataError,
    MetaReportFailedError,
    MetaThrottledError,
    MetaTransientError,
    ThrottlePolicy,
    parse_usage,
)
from adflywheel.platforms.meta.parse import (
    ImplausibleRowError,
    count,
    currency_exponent,
    local_hour_to_utc,
    money_minor,
    parse_row,
    percent_to_fraction,
)
from tests.factories.fake_graph import (
    TOKEN,
    FakeAccount,
    FakeGraph,
    FakeTime,
    load_fixture,
    synthetic_account,
)

UTC = dt.UTC
NY = ZoneInfo("America/New_York")
FAST = ThrottlePolicy(backoff_base_s=2.0, max_retries=3)


def make_platform(
    graph: FakeGraph,
    account: str = "act_1001",
    *,
    policy: ThrottlePolicy = FAST,
    token: str = TOKEN,
    **options: int,
) -> MetaPlatform:
    client = GraphClient(
        token, base_url=graph.base_url, policy=policy, timer=graph.clock, rng=random.Random(3)
    )
    return MetaPlatform(client, account, options=InsightsOptions(**options))  # type: ignore[arg-type]


def at(day: int, hour: int, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=UTC)


# -- pure parsing --------------------------------------------------------------------------------


def test_numbers_money_and_percent_are_exact() -> None:
    assert count("1200", "impressions") == 1200
    assert money_minor("3.14", 2, "spend") == 314
    assert money_minor("2.2", 2, "spend") == 220
    assert money_minor("0.005", 2, "spend") == 0  # half-even on sub-cent digits
    assert money_minor("0.015", 2, "spend") == 2
    assert money_minor("314", currency_exponent("JPY"), "spend") == 314
    assert currency_exponent("usd") == 2 and currency_exponent("KRW") == 0
    assert percent_to_fraction("1.25", "ctr") == Decimal("0.0125")
    for bad, call in [
        ("12.5", lambda v: count(v, "clicks")),
        ("-1", lambda v: count(v, "clicks")),
        ("1e400x", lambda v: money_minor(v, 2, "spend")),
        ("150", lambda v: percent_to_fraction(v, "ctr")),
        ("US$", currency_exponent),
    ]:
        with pytest.raises(MetaDataError):
            call(bad)


def test_local_hours_become_utc_across_dst_and_half_hour_zones() -> None:
    day = dt.date(2026, 11, 24)
    assert local_hour_to_utc(day, "08:00:00 - 08:59:59", NY) == at(24, 13)  # EST, -5
    assert local_hour_to_utc(dt.date(2026, 7, 5), "08:00:00 - 08:59:59", NY) == dt.datetime(
        2026, 7, 5, 12, tzinfo=UTC
    )  # EDT, -4
    # Autumn: the repeated 01:00 label is one row, placed at its first occurrence (EDT).
    fall = dt.date(2026, 11, 1)
    assert local_hour_to_utc(fall, "01:00:00 - 01:59:59", NY) == dt.datetime(
        2026, 11, 1, 5, tzinfo=UTC
    )
    assert local_hour_to_utc(fall, "02:00:00 - 02:59:59", NY) == dt.datetime(
        2026, 11, 1, 7, tzinfo=UTC
    )
    # Spring: the 02:00 label does not exist and lands on the next real hour (03:00 EDT).
    spring = dt.date(2026, 3, 8)
    gap = local_hour_to_utc(spring, "02:00:00 - 02:59:59", NY)
    assert gap == local_hour_to_utc(spring, "03:00:00 - 03:59:59", NY)
    kolkata = local_hour_to_utc(day, "08:00:00 - 08:59:59", ZoneInfo("Asia/Kolkata"))
    assert kolkata == at(24, 2)  # 02:30 UTC, floored to the UTC hour
    with pytest.raises(MetaDataError):
        local_hour_to_utc(day, "08:00 - 09:00", NY)


def test_every_field_of_a_daily_row_is_parsed() -> None:
    raw = load_fixture("account.json")["insights_daily"][0]
    row = parse_row(raw, exponent=2, tz=NY)
    assert (row.ad_id, row.date_start, row.hour_start) == (
        "6068839961943",
        dt.date(2026, 11, 24),
        None,
    )
    assert (row.impressions, row.clicks, row.link_clicks, row.spend_minor) == (2805, 37, 22, 742)
    assert row.ctr == Decimal("0.01319073")
    assert row.cpm_minor == Decimal("264.5276")
    assert (row.frequency, row.reach) == (Decimal("1.09"), 2573)
    assert (row.video_views, row.video_plays, row.thruplays) == (912, 2181, 271)
    # omni_purchase is preferred over the overlapping pixel/website purchase counts.
    assert (row.conversions, row.revenue_minor) == (3, 17985)
    assert row.actions["landing_page_view"] == Decimal(14)
    assert row.action_values_minor["offsite_conversion.fb_pixel_purchase"] == 11990
    only_pixel = parse_row(
        raw,
        exponent=2,
        tz=NY,
        conversion_actions=("offsite_conversion.fb_pixel_purchase",),
    )
    assert (only_pixel.conversions, only_pixel.revenue_minor) == (2, 11990)


def test_inconsistent_or_malformed_rows_are_refused_with_the_field() -> None:
    raw = load_fixture("account.json")["insights_hourly"][0]
    for change, field in [
        ({"clicks": "2000"}, "inconsistent"),
        ({"spend": "abc"}, "spend"),
        ({"date_stop": "2026-11-25"}, "spans"),
        ({"actions": [{"action_type": "video_view"}]}, "actions"),
        ({"ad_id": None}, "ad_id"),
    ]:
        with pytest.raises(MetaDataError, match=field):
            parse_row({**raw, **change}, exponent=2, tz=NY)


def test_rows_with_clicks_above_impressions_are_quarantined_not_fatal(
    fake_graph: FakeGraph,
) -> None:
    raw = load_fixture("account.json")["insights_hourly"][0]
    with pytest.raises(ImplausibleRowError, match="6068839961943") as caught:
        parse_row({**raw, "clicks": "1201"}, exponent=2, tz=NY)
    assert (caught.value.row.impressions, caught.value.row.clicks) == (1200, 1201)
    hourly = fake_graph.accounts["act_1001"].hourly
    hourly[0]["clicks"] = "1201"
    daily = fake_graph.accounts["act_1001"].daily
    daily[0]["inline_link_clicks"] = str(int(daily[0]["clicks"]) + 1)
    platform = make_platform(fake_graph)
    rows = platform.fetch_insights(at(24, 0), at(26, 0))
    assert len(rows) == 5 and all(r.clicks <= r.impressions for r in rows)
    days = platform.fetch_daily(dt.date(2026, 11, 24), dt.date(2026, 11, 26))
    assert len(days) == len(daily) - 1
    held = platform.take_quarantined()
    assert [(r.ad_id, r.hour_start, r.clicks) for r in held if r.hour_start] == [
        ("6068839961943", at(24, 13), 1201)
    ]
    assert [r.hour_start for r in held if r.hour_start is None] == [None]
    assert platform.take_quarantined() == []  # handed over once


def test_usage_headers_are_read_with_regain_minutes_as_seconds() -> None:
    usage = parse_usage(
        {
            "X-App-Usage": json.dumps({"call_count": 28, "total_time": 25, "total_cputime": 25}),
            "X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": 9.67, "reset_time_duration": 100}),
            "x-business-use-case-usage": json.dumps(
                {
                    "1001": [
                        {
                            "type": "ads_insights",
                            "call_count": 95,
                            "total_cputime": 20,
                            "total_time": 20,
                            "estimated_time_to_regain_access": 3,
                        }
                    ]
                }
            ),
            "x-fb-ads-insights-throttle": json.dumps({"app_id_util_pct": 40, "acc_id_util_pct": 7}),
        }
    )
    assert usage.max_pct == 95 and usage.regain_seconds == 180
    assert "ads_insights.call_count" in usage.source
    assert parse_usage({"X-App-Usage": "not json"}).max_pct == 0


# -- catalogue, insights, writes -------------------------------------------------------------------


def test_account_and_catalogue_with_budgets_and_effective_status(fake_graph: FakeGraph) -> None:
    platform = make_platform(fake_graph, page_size=1)
    account = platform.account()
    assert (account.currency, account.timezone, account.external_id) == (
        "USD",
        "America/New_York",
        "act_1001",
    )
    campaigns = {c.external_id: c for c in platform.list_campaigns()}
    assert campaigns["23850000000000001"].objective is Objective.CONVERSIONS_PER_DOLLAR
    assert campaigns["23850000000000002"].status is Status.PAUSED
    assert campaigns["23850000000000002"].daily_budget_minor == 5000
    ad_sets = {s.external_id: s for s in platform.list_ad_sets()}
    assert ad_sets["23851000000000002"].daily_budget_minor == 3500
    assert ad_sets["23851000000000003"].status is Status.PAUSED  # CAMPAIGN_PAUSED
    assert ad_sets["23851000000000003"].daily_budget_minor is None
    ads = platform.list_ads()
    assert [a.external_id for a in ads] == ["6068839961943", "6068839961944", "6068839961945"]
    assert ads[0].is_control and not ads[1].is_control
    assert ads[0].creative.headline == "Tired of sore feet?"
    assert ads[0].creative.video_uri == "meta-video:998877001"
    assert ads[2].status is Status.PAUSED
    ad_pages = [r for r in fake_graph.requests if r.path.endswith("/ads")]
    assert len(ad_pages) == 3  # one ad per page; stopped when paging.next was absent
    assert all(r.params.get("limit") == "1" for r in ad_pages)


def test_hourly_insights_land_in_utc_without_conversions(fake_graph: FakeGraph) -> None:
    platform = make_platform(fake_graph)
    rows = platform.fetch_insights(at(24, 5), at(25, 12))  # NY midnight 24th .. 07:00 on 25th
    got = {(r.ad_id, r.hour_start): r for r in rows}
    assert len(rows) == 6
    first = got[("6068839961943", at(24, 13))]
    assert (first.impressions, first.clicks, first.link_clicks, first.spend_minor) == (
        1200,
        15,
        9,
        314,
    )
    assert first.video_views == 410 and first.conversions == 0 and first.revenue_minor == 0
    assert got[("6068839961944", at(25, 4))].spend_minor == 26  # 23:00 NY on the 24th
    narrow = platform.fetch_insights(at(24, 13), at(24, 14))
    assert [(r.ad_id, r.hour_start) for r in narrow] == [
        ("6068839961943", at(24, 13)),
        ("6068839961944", at(24, 13)),
    ]
    assert platform.fetch_insights(at(24, 14), at(24, 14)) == []
    asked = [r for r in fake_graph.requests if r.path.endswith("/insights")]
    assert asked[0].params["breakdowns"] == "hourly_stats_aggregated_by_advertiser_time_zone"
    assert asked[0].params["level"] == "ad" and asked[0].params["time_increment"] == "1"
    assert json.loads(asked[0].params["time_range"]) == {
        "since": "2026-11-24",
        "until": "2026-11-25",
    }
    assert "action_values" not in asked[0].params["fields"].split(",")
    with pytest.raises(ValueError, match="timezone"):
        platform.fetch_insights(dt.datetime(2026, 11, 24), at(25, 0))


def test_daily_rows_carry_conversions_and_revenue(fake_graph: FakeGraph) -> None:
    rows = make_platform(fake_graph).fetch_daily(dt.date(2026, 11, 24), dt.date(2026, 11, 26))
    assert [(r.date.day, r.ad_id, r.conversions, r.revenue_minor) for r in rows] == [
        (24, "6068839961943", 3, 17985),
        (24, "6068839961944", 0, 0),
        (25, "6068839961943", 1, 5995),
    ]
    asked = next(r for r in fake_graph.requests if r.path.endswith("/insights"))
    assert "breakdowns" not in asked.params
    assert {"action_values", "reach", "frequency"} <= set(asked.params["fields"].split(","))


def test_zero_decimal_currency_and_half_hour_zone(fake_graph: FakeGraph) -> None:
    fake_graph.add(
        FakeAccount(
            "act_2002",
            "Tokyo",
            currency="JPY",
            timezone_name="Asia/Kolkata",
            hourly=[
                {
                    "ad_id": "1",
                    "date_start": "2026-11-24",
                    "date_stop": "2026-11-24",
                    "hourly_stats_aggregated_by_advertiser_time_zone": "08:00:00 - 08:59:59",
                    "impressions": "500",
                    "clicks": "5",
                    "inline_link_clicks": "4",
                    "spend": "314",
                    "ctr": "1",
                }
            ],
            adsets=[{"id": "55", "campaign_id": "5", "daily_budget": "3000"}],
        )
    )
    platform = make_platform(fake_graph, "2002")
    [row] = platform.fetch_insights(at(24, 0), at(25, 0))
    assert (row.hour_start, row.spend_minor) == (at(24, 2), 314)
    assert platform.list_ad_sets()[0].daily_budget_minor == 3000
    platform.set_ad_set_budget("55", 500)  # 500 yen, no minor unit
    assert fake_graph.writes[-1] == ("55", {"daily_budget": "500"})


def test_budget_and_status_writes(fake_graph: FakeGraph) -> None:
    platform = make_platform(fake_graph)
    platform.set_ad_set_budget("23851000000000001", 2400)
    platform.set_ad_status("6068839961944", Status.PAUSED)
    platform.set_campaign_budget("23850000000000002", 7000)
    assert fake_graph.writes == [
        ("23851000000000001", {"daily_budget": "2400"}),
        ("6068839961944", {"status": "PAUSED"}),
        ("23850000000000002", {"daily_budget": "7000"}),
    ]
    assert {s.external_id: s.daily_budget_minor for s in platform.list_ad_sets()}[
        "23851000000000001"
    ] == 2400
    assert {a.external_id: a.status for a in platform.list_ads()}["6068839961944"] is Status.PAUSED
    sent = len(fake_graph.requests)
    with pytest.raises(ValueError):
        platform.set_ad_set_budget("23851000000000001", 0)
    with pytest.raises(TypeError):
        platform.set_ad_set_budget("23851000000000001", 24.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        platform.set_ad_status("act_1001; DROP", Status.ACTIVE)
    for setter in (platform.set_ad_set_budget, platform.set_campaign_budget):
        for bad in (70.0, 24.5, True, False, "7000"):
            with pytest.raises(TypeError, match="int of minor units"):
                setter("23850000000000002", bad)  # type: ignore[arg-type]
        for bad_int in (0, -100):
            with pytest.raises(ValueError, match="positive"):
                setter("23850000000000002", bad_int)
    assert len(fake_graph.requests) == sent  # refused before anything was sent
    with pytest.raises(MetaInvalidRequestError, match="below the minimum"):
        platform.set_ad_set_budget("23851000000000001", 50)  # under $1.00
    with pytest.raises(MetaNotFoundError):
        platform.set_ad_status("424242", Status.PAUSED)


# -- pagination, errors, throttling ----------------------------------------------------------------


def test_pagination_follows_next_until_absent_and_stays_on_the_host(fake_graph: FakeGraph) -> None:
    fake_graph.add(synthetic_account("act_3003", 7))
    platform = make_platform(fake_graph, "act_3003", page_size=10)
    rows = platform.fetch_insights(at(24, 0), at(25, 0))
    assert len(rows) == 7 * 24 and len({(r.ad_id, r.hour_start) for r in rows}) == 7 * 24
    pages = [r for r in fake_graph.requests if "insights" in r.path]
    assert len(pages) == 17  # 168 rows at 10 a page: stops on the page without paging.next
    assert sum(1 for r in pages if "after" in r.params) == 16
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        evil = {"data": [], "paging": {"next": "https://evil.example/v26.0/act_1/insights"}}
        return httpx.Response(200, json=evil)

    hijacked = GraphClient(
        TOKEN,
        base_url=fake_graph.base_url,
        transport=httpx.MockTransport(answer),
        timer=fake_graph.clock,
    )
    with pytest.raises(MetaApiError, match="off the Graph host"):
        list(hijacked.paginate("act_1/insights", {}))
    assert seen == ["127.0.0.1"]  # the token never went to the other host


THROTTLES = [
    "app_limit",
    "user_limit",
    "pages_limit",
    "account_limit",
    "buc_insights",
    "buc_pages",
    "buc_instagram",
    "buc_audience",
    "buc_management",
    "buc_leadgen",
    "buc_messenger",
    "buc_80007",
    "buc_whatsapp",
    "http_429",  # a bare 429 without a Graph envelope
]


@pytest.mark.parametrize("name", THROTTLES)
def test_each_throttling_code_backs_off_then_succeeds_or_raises(
    fake_graph: FakeGraph, name: str
) -> None:
    fake_graph.fail("GET", r"^act_1001$", name, times=1)
    platform = make_platform(fake_graph)
    assert platform.account().currency == "USD"
    first, second = fake_graph.requests[0], fake_graph.requests[1]
    assert first.status == load_fixture("errors.json")[name]["status"] and second.status == 200
    assert second.at - first.at >= FAST.backoff_base_s / 2  # jittered, never straight back
    assert platform.client.stats.throttle_errors == 1
    code, trace = _code_and_trace(name)
    fake_graph.fail("GET", r"^act_1001/ads$", name, times=10)
    with pytest.raises(MetaThrottledError) as caught:
        platform.list_ads()
    assert caught.value.code == code and caught.value.retry_after is not None
    assert caught.value.fbtrace_id == trace
    assert trace is None or trace in str(caught.value)
    assert sum(r.path.endswith("/ads") for r in fake_graph.requests) == FAST.max_retries + 1


def _code_and_trace(name: str) -> tuple[int | None, str | None]:
    body = load_fixture("errors.json")[name]["body"]
    if not isinstance(body, dict):
        return None, None  # a bare HTTP status or a dropped connection
    return body["error"]["code"], body["error"]["fbtrace_id"]


def test_a_bare_429_waits_out_its_retry_after(fake_graph: FakeGraph) -> None:
    fake_graph.fail("GET", r"^act_1001$", "http_429")
    platform = make_platform(fake_graph)
    assert platform.account().currency == "USD"
    first, second = fake_graph.requests[0], fake_graph.requests[1]
    assert first.status == 429 and second.at - first.at >= 45  # Retry-After: 45, not 1-2 s
    fake_graph.fail("GET", r"^act_1001/ads$", "http_429", times=10)
    with pytest.raises(MetaThrottledError) as caught:
        platform.list_ads()
    assert caught.value.http_status == 429 and caught.value.retry_after is not None
    assert caught.value.retry_after >= 45
    tries = [r.at for r in fake_graph.requests if r.path.endswith("/ads")]
    assert all(b - a >= 45 for a, b in itertools.pairwise(tries))


TRANSIENTS = [
    "unknown_error",  # 1
    "transient",  # 2
    "unknown_99",  # 99
    "connection_reset",  # 104
    "batch_error",  # 960
    "async_failed",  # -2
    "http_503",  # a bare 5xx
    "dropped",  # a network error: the connection closes without an answer
]


@pytest.mark.parametrize("name", TRANSIENTS)
def test_each_transient_failure_is_retried_then_raises(fake_graph: FakeGraph, name: str) -> None:
    fake_graph.fail("GET", r"^act_1001$", name, times=1)
    platform = make_platform(fake_graph)
    assert platform.account().currency == "USD"
    first, second = fake_graph.requests[0], fake_graph.requests[1]
    assert second.at - first.at >= FAST.backoff_base_s / 2  # backed off, with jitter
    assert platform.client.stats.transient_errors == 1
    assert platform.client.stats.throttle_errors == 0
    code, trace = _code_and_trace(name)
    fake_graph.fail("GET", r"^act_1001/ads$", name, times=10)
    with pytest.raises(MetaTransientError) as caught:
        platform.list_ads()
    assert caught.value.code == code and caught.value.fbtrace_id == trace
    assert caught.value.retry_after is not None
    assert sum(r.path.endswith("/ads") for r in fake_graph.requests) == FAST.max_retries + 1


@pytest.mark.parametrize("name", ["reduce_data", "sync_timeout"])
def test_reduce_data_and_the_sync_timeout_shrink_the_window(
    fake_graph: FakeGraph, name: str
) -> None:
    """Code 1/99 and the sync timeout 100/1504018: not retried as asked, the window halves."""
    fake_graph.add(synthetic_account("act_3003", 2))
    fake_graph.fail("GET", r"insights", name, times=1)
    platform = make_platform(fake_graph, "act_3003", max_window_days=4, async_after_days=30)
    rows = platform.fetch_insights(at(1, 0), at(5, 0))
    assert len({(r.ad_id, r.hour_start) for r in rows}) == len(rows) == 2 * 24 * 4
    assert platform.reader.stats.shrinks == 1 and platform.reader.stats.async_runs == 0
    assert platform.client.stats.retries == 0
    spans = [
        json.loads(r.params["time_range"]) for r in fake_graph.requests if "insights" in r.path
    ]
    assert spans[0] == {"since": "2026-11-01", "until": "2026-11-04"}  # refused
    assert spans[1] == {"since": "2026-11-01", "until": "2026-11-02"}  # asked again, halved
    # Outside insights there is no window to shrink: raised at once, typed.
    fake_graph.fail("GET", r"^act_3003/ads$", name)
    sent = len(fake_graph.requests)
    with pytest.raises(MetaReduceDataError) as caught:
        platform.list_ads()
    assert len(fake_graph.requests) == sent + 1
    assert (caught.value.code, caught.value.subcode) == _code_and_subcode(name)


def _code_and_subcode(name: str) -> tuple[int, int]:
    error = load_fixture("errors.json")[name]["body"]["error"]
    return error["code"], error["error_subcode"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("bad_token", MetaAuthError),  # 190
        ("expired_token", MetaAuthError),  # 190/463
        ("invalid_token", MetaAuthError),  # 190/467
        ("session_key", MetaAuthError),  # 102
        ("http_401", MetaAuthError),  # a bare 401
        ("no_permission", MetaPermissionError),  # 200
        ("ads_permission", MetaPermissionError),  # 10
        ("http_403", MetaPermissionError),  # a bare 403
        ("unknown_object", MetaNotFoundError),  # 100/33
        ("unknown_alias", MetaNotFoundError),  # 803
        ("invalid_param", MetaInvalidRequestError),  # other 100
    ],
)
def test_refusals_raise_typed_errors_without_retrying(
    fake_graph: FakeGraph, name: str, kind: type[MetaApiError]
) -> None:
    fake_graph.fail("GET", r"^act_1001$", name)
    platform = make_platform(fake_graph)
    with pytest.raises(kind) as caught:
        platform.account()
    assert type(caught.value) is kind  # not a subclass picked by accident
    assert len(fake_graph.requests) == 1
    code, trace = _code_and_trace(name)
    assert caught.value.code == code and caught.value.fbtrace_id == trace
    assert caught.value.http_status == load_fixture("errors.json")[name]["status"]


def test_wrong_token_and_unknown_account_are_clear(fake_graph: FakeGraph) -> None:
    with pytest.raises(MetaAuthError, match="190"):
        make_platform(fake_graph, token="stolen").account()
    with pytest.raises(MetaNotFoundError, match="act_999"):
        make_platform(fake_graph, "act_999").account()
    with pytest.raises(ValueError):
        make_platform(fake_graph, "act_12x")


def test_transient_failures_mid_pagination_resume_at_the_failed_page(fake_graph: FakeGraph) -> None:
    fake_graph.add(synthetic_account("act_3003", 5))
    fake_graph.fail("GET", r"insights", "transient", after=2, times=2)  # third page fails twice
    platform = make_platform(fake_graph, "act_3003", page_size=20)
    rows = platform.fetch_insights(at(24, 0), at(25, 0))
    assert len({(r.ad_id, r.hour_start) for r in rows}) == len(rows) == 5 * 24
    assert platform.client.stats.transient_errors == 2
    html = {"status": 502, "body": "<html>Bad Gateway</html>"}
    fake_graph.fail("GET", r"^act_3003/ads$", html, times=10)
    with pytest.raises(MetaTransientError, match="502"):
        platform.list_ads()


def test_no_request_before_an_advertised_regain_time(fake_graph: FakeGraph) -> None:
    fake_graph.add(synthetic_account("act_3003", 4))
    # The third insights page is refused with "regain access in 2 minutes".
    fake_graph.fail("GET", r"insights", "buc_insights", after=2, regain_minutes=2)
    platform = make_platform(fake_graph, "act_3003", page_size=10)
    rows = platform.fetch_insights(at(24, 0), at(25, 0))
    assert len(rows) == 4 * 24
    refused = next(r for r in fake_graph.requests if r.status == 400)
    following = fake_graph.requests[fake_graph.requests.index(refused) + 1]
    assert following.at >= refused.at + 120
    assert fake_graph.early_requests == []


def test_slows_down_before_the_limit() -> None:
    graph = FakeGraph(clock=FakeTime(), quota_calls=20, quota_window_s=600)
    with graph:
        graph.add(synthetic_account("act_3003", 10))
        policy = ThrottlePolicy(soft_pct=50, soft_pause_s=30, hard_pct=90, hard_pause_s=300)
        platform = make_platform(graph, "act_3003", policy=policy, page_size=5)
        platform.fetch_insights(at(24, 0), at(25, 0))  # 48 pages against a quota of 20
        times = [r.at for r in graph.requests]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(r.status == 200 for r in graph.requests)  # never refused: paced in time
        assert max(gaps) >= 300 and sum(1 for g in gaps if g >= 30) > 5
        assert platform.client.stats.waited_s > 0 and graph.early_requests == []


def test_window_shrinks_when_meta_asks_for_less_data(fake_graph: FakeGraph) -> None:
    acc = fake_graph.add(synthetic_account("act_3003", 3))
    acc.max_sync_rows = 3 * 24 * 2  # at most two days of hourly rows per request
    platform = make_platform(fake_graph, "act_3003", max_window_days=7, async_after_days=30)
    rows = platform.fetch_insights(at(1, 0), at(8, 0))
    assert len({(r.ad_id, r.hour_start) for r in rows}) == len(rows) == 3 * 24 * 7
    assert platform.reader.stats.shrinks == 2  # 7 → 3 → 1 day windows
    assert platform.reader.stats.async_runs == 0
    refused = [r for r in fake_graph.requests if r.status == 500]
    assert len(refused) == 2
    acc.max_sync_rows = 10  # not even one day fits: that day goes through an async report
    small = make_platform(fake_graph, "act_3003", max_window_days=1)
    assert len(small.fetch_insights(at(3, 0), at(4, 0))) > 3 * 24 - 6
    assert small.reader.stats.async_runs >= 1


def test_async_report_run_for_large_ranges(fake_graph: FakeGraph) -> None:
    fake_graph.add(synthetic_account("act_3003", 2))
    platform = make_platform(fake_graph, "act_3003", async_after_days=3, page_size=50)
    daily = platform.fetch_daily(dt.date(2026, 11, 1), dt.date(2026, 11, 11))
    assert len(daily) == 2 * 10
    posts = [r for r in fake_graph.requests if r.method == "POST"]
    assert len(posts) == 1 and posts[0].path.endswith("act_3003/insights")
    polls = [r for r in fake_graph.requests if r.path.rstrip("/").split("/")[-1].isdigit()]
    assert len(polls) == fake_graph.async_polls
    assert platform.reader.stats.async_runs == 1
    run = next(iter(fake_graph.reports))
    assert any(r.path.endswith(f"{run}/insights") for r in fake_graph.requests)
    assert sum(fake_graph.clock.slept) >= InsightsOptions().poll_interval_s  # waited between polls


def test_failed_or_stuck_async_reports_raise(fake_graph: FakeGraph) -> None:
    fake_graph.add(synthetic_account("act_3003", 2))
    failed = {"status": 200, "body": {"id": "x", "async_status": "Job Failed"}}
    fake_graph.fail("GET", r"^9000\d\d$", failed)
    platform = make_platform(fake_graph, "act_3003", async_after_days=1)
    with pytest.raises(MetaReportFailedError, match="Job Failed"):
        platform.fetch_daily(dt.date(2026, 11, 1), dt.date(2026, 11, 5))
    stuck = FakeGraph(clock=FakeTime(), async_polls=10_000)
    with stuck:
        stuck.add(synthetic_account("act_3003", 2))
        client = GraphClient(TOKEN, base_url=stuck.base_url, timer=stuck.clock)
        slow = MetaPlatform(
            client, "act_3003", options=InsightsOptions(async_after_days=1, max_poll_s=60)
        )
        with pytest.raises(MetaReportFailedError, match="after 60 s"):
            slow.fetch_daily(dt.date(2026, 11, 1), dt.date(2026, 11, 5))


def test_appsecret_proof_is_sent_and_token_stays_out_of_urls(fake_graph: FakeGraph) -> None:
    client = GraphClient(
        TOKEN, base_url=fake_graph.base_url, app_secret="s3cret", timer=fake_graph.clock
    )
    MetaPlatform(client, "act_1001").account()
    [request] = fake_graph.requests
    assert len(request.params["appsecret_proof"]) == 64
    assert TOKEN not in json.dumps(request.params)


@given(cents=st.integers(min_value=0, max_value=10**12), jpy=st.booleans())
def test_money_strings_round_trip_to_minor_units(cents: int, jpy: bool) -> None:
    exponent = currency_exponent("JPY" if jpy else "EUR")
    text = str(Decimal(cents).scaleb(-exponent))  # "12.34" (EUR) or "1234" (JPY)
    assert money_minor(text, exponent, "spend") == cents
    assert (
        percent_to_fraction(str(Decimal(cents % 10001) / 100), "ctr") * 100
        == Decimal(cents % 10001) / 100
    )
