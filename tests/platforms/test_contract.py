"""Every ad platform against the promises of ``platforms/base.py``, in the manner of
scikit-learn's estimator checks: one list of checks, each run on every platform.

The platforms: one account of the simulated market (synthetic data), the Ads Manager CSV
fixture, Meta through the real client against the fake Graph server on loopback, and a
``SnapshotPlatform`` captured from the simulated account. Each case names a window in which the
platform has delivery, so that the checks on insights look at real rows. A platform that
breaks a promise fails its check; the check is never bent to fit it. A break already known is
listed in ``KNOWN_BREAKS``: the check still runs there and must still fail (strict xfail).
"""

from __future__ import annotations

import datetime as dt
import pickle
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from adflywheel.core.domain import (
    ACTUAL_METRICS,
    Creative,
    DailyActual,
    HourlyActual,
    Objective,
    Status,
)
from adflywheel.platforms.base import (
    AdPlatform,
    DailyInsights,
    MinimumBudget,
    PlatformAccount,
    PlatformAd,
    PlatformAdSet,
    PlatformCampaign,
    PlatformError,
    Quarantining,
    ReadOnlyPlatformError,
    minor_unit_exponent,
)
from adflywheel.platforms.csv import CsvPlatform
from adflywheel.platforms.meta import GraphClient, MetaPlatform, ThrottlePolicy
from adflywheel.platforms.snapshot import SnapshotPlatform, apply_writes
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from tests.factories.fake_graph import TOKEN, FakeGraph, FakeTime, fixture_account

UTC = dt.UTC
FIXTURES = Path(__file__).parents[1] / "fixtures"
UNKNOWN_ID = "999999999999"  # well formed on every platform, and no object's id
MALFORMED_ID = "no such-id"  # no platform's id could look like this
SIM = MarketConfig(seed=5, n_accounts=2, campaigns_per_account=2, variants_per_campaign=3)
SIM_HOURS = 6


@dataclass
class Case:
    """One platform with what the checks need to know about its account."""

    kind: str
    platform: AdPlatform
    window: tuple[dt.datetime, dt.datetime]  # hours in which the account delivered
    days: tuple[dt.date, dt.date]  # local days of that delivery, for ``fetch_daily``
    read_only: bool = False
    picklable: bool = False


def _simulated() -> tuple[SimulatedMarket, AdPlatform, tuple[dt.datetime, dt.datetime]]:
    market = SimulatedMarket(SIM)
    market.run(SIM_HOURS)
    live = market.platform(market.accounts()[0])
    return market, live, (SIM.start, market.current_hour)


def _days(window: tuple[dt.datetime, dt.datetime]) -> tuple[dt.date, dt.date]:
    return window[0].date(), window[1].date() + dt.timedelta(days=1)


@pytest.fixture(params=["simulated", "csv", "meta", "snapshot"])
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    """A fresh platform per check: some checks write."""
    if request.param == "simulated":
        _, live, window = _simulated()
        yield Case(request.param, live, window, _days(window))
    elif request.param == "snapshot":
        _, live, window = _simulated()
        snap = SnapshotPlatform.capture(live, *window)
        yield Case(request.param, snap, window, _days(window), picklable=True)
    elif request.param == "csv":
        csv = CsvPlatform.from_path(
            FIXTURES / "ads_manager_hourly.csv", account_external_id="act_42", timezone="UTC"
        )
        window = (dt.datetime(2026, 1, 15, tzinfo=UTC), dt.datetime(2026, 1, 16, tzinfo=UTC))
        days = (dt.date(2026, 1, 15), dt.date(2026, 1, 16))
        yield Case(request.param, csv, window, days, read_only=True)
    else:
        with FakeGraph(clock=FakeTime()) as graph:
            graph.add(fixture_account())  # America/New_York: 24 and 25 November 2026
            client = GraphClient(
                TOKEN,
                base_url=graph.base_url,
                policy=ThrottlePolicy(backoff_base_s=2.0, max_retries=3),
                timer=graph.clock,
                rng=random.Random(3),
            )
            window = (
                dt.datetime(2026, 11, 24, 5, tzinfo=UTC),
                dt.datetime(2026, 11, 26, 5, tzinfo=UTC),
            )
            yield Case(
                request.param,
                MetaPlatform(client, "act_1001"),
                window,
                (dt.date(2026, 11, 24), dt.date(2026, 11, 26)),
            )


def _sorted(rows: list[HourlyActual]) -> list[HourlyActual]:
    return sorted(rows, key=lambda r: (r.hour_start, r.ad_id))


def _is_int(value: object) -> bool:
    """An exact ``int``: not a bool, not numpy's integer, not a float that happens to be whole."""
    return type(value) is int


# -- the account ---------------------------------------------------------------------------------


def check_name(case: Case) -> None:
    name = case.platform.name
    assert isinstance(name, str) and name, "name is the actuals' source: a non-empty string"


def check_account(case: Case) -> None:
    account = case.platform.account()
    assert isinstance(account, PlatformAccount)
    assert isinstance(account.external_id, str) and account.external_id
    assert isinstance(account.name, str)
    assert re.fullmatch(r"[A-Z]{3}", account.currency), account.currency
    assert minor_unit_exponent(account.currency) in (0, 2)
    ZoneInfo(account.timezone)  # an IANA name, or this raises
    assert case.platform.account() == account, "the account does not change under it"


# -- the catalogue -------------------------------------------------------------------------------


def check_catalogue_types(case: Case) -> None:
    p = case.platform
    for campaign in p.list_campaigns():
        assert isinstance(campaign, PlatformCampaign)
        assert isinstance(campaign.status, Status) and isinstance(campaign.objective, Objective)
        budget = campaign.daily_budget_minor
        assert budget is None or (_is_int(budget) and budget >= 0), budget
    for ad_set in p.list_ad_sets():
        assert isinstance(ad_set, PlatformAdSet) and isinstance(ad_set.status, Status)
        budget = ad_set.daily_budget_minor
        assert budget is None or (_is_int(budget) and budget >= 0), budget
    for ad in p.list_ads():
        assert isinstance(ad, PlatformAd) and isinstance(ad.status, Status)
        assert isinstance(ad.creative, Creative) and isinstance(ad.is_control, bool)
        for key, value in ad.observed_features.items():
            assert isinstance(key, str) and type(value) in (float, str), (key, value)


def check_ids_unique(case: Case) -> None:
    p = case.platform
    for kind, ids in (
        ("campaign", [c.external_id for c in p.list_campaigns()]),
        ("ad set", [s.external_id for s in p.list_ad_sets()]),
        ("ad", [a.external_id for a in p.list_ads()]),
    ):
        assert ids, f"the case's account has no {kind}"
        assert all(isinstance(i, str) and i for i in ids), f"{kind} ids are non-empty strings"
        repeated = [i for i, n in Counter(ids).items() if n > 1]
        assert not repeated, f"{kind} ids listed twice: {repeated}"


def check_ad_sets_under_listed_campaigns(case: Case) -> None:
    campaigns = {c.external_id for c in case.platform.list_campaigns()}
    orphans = [
        s.external_id for s in case.platform.list_ad_sets() if s.campaign_id not in campaigns
    ]
    assert not orphans, f"ad sets under campaigns that are not listed: {orphans}"


def check_ads_under_listed_ad_sets(case: Case) -> None:
    ad_sets = {s.external_id: s for s in case.platform.list_ad_sets()}
    for ad in case.platform.list_ads():
        assert ad.ad_set_id in ad_sets, f"ad {ad.external_id} under an unlisted ad set"
        assert ad.campaign_id == ad_sets[ad.ad_set_id].campaign_id, (
            f"ad {ad.external_id} names campaign {ad.campaign_id}, its ad set "
            f"{ad.ad_set_id} is under {ad_sets[ad.ad_set_id].campaign_id}"
        )


def check_reads_change_nothing(case: Case) -> None:
    p = case.platform
    before = (p.list_campaigns(), p.list_ad_sets(), p.list_ads())
    p.fetch_insights(*case.window)
    assert (p.list_campaigns(), p.list_ad_sets(), p.list_ads()) == before


# -- insights ------------------------------------------------------------------------------------


def check_insights_in_window(case: Case) -> None:
    start, end = case.window
    rows = case.platform.fetch_insights(start, end)
    assert rows, "the case's window has delivery: the checks must see rows"
    for row in rows:
        assert isinstance(row, HourlyActual)
        assert start <= row.hour_start < end, row.hour_start
        assert row.hour_start.utcoffset() == dt.timedelta(0), "hour starts are UTC"
        assert row.hour_start == row.hour_start.replace(minute=0, second=0, microsecond=0)


def check_insights_counts(case: Case) -> None:
    for row in case.platform.fetch_insights(*case.window):
        for metric in ACTUAL_METRICS:  # spend and revenue in integer minor units
            value = getattr(row, metric)
            assert _is_int(value) and value >= 0, (metric, value)
        assert row.clicks <= row.impressions, row
        assert row.link_clicks <= row.clicks, row


def check_insights_one_row_per_ad_and_hour(case: Case) -> None:
    keys = Counter((r.ad_id, r.hour_start) for r in case.platform.fetch_insights(*case.window))
    assert not [k for k, n in keys.items() if n > 1]


def check_insights_refetch_is_identical(case: Case) -> None:
    first = _sorted(case.platform.fetch_insights(*case.window))
    assert _sorted(case.platform.fetch_insights(*case.window)) == first


def check_insights_split_window(case: Case) -> None:
    """A window's rows are exactly the wider window's rows that start in it."""
    start, end = case.window
    whole = _sorted(case.platform.fetch_insights(start, end))
    middle = start + (end - start) // 2
    middle = middle.replace(minute=0, second=0, microsecond=0)
    first = case.platform.fetch_insights(start, middle)
    second = case.platform.fetch_insights(middle, end)
    assert _sorted(first) == [r for r in whole if r.hour_start < middle]
    assert _sorted(second) == [r for r in whole if r.hour_start >= middle]


def check_insights_any_time_zone(case: Case) -> None:
    """The window is a pair of instants: the zone they are written in changes nothing."""
    start, end = case.window
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30, off the whole hour
    shifted = case.platform.fetch_insights(start.astimezone(kolkata), end.astimezone(kolkata))
    assert _sorted(shifted) == _sorted(case.platform.fetch_insights(start, end))


def check_insights_refuse_naive_times(case: Case) -> None:
    start, end = case.window
    with pytest.raises(ValueError, match="timezone"):
        case.platform.fetch_insights(start.replace(tzinfo=None), end.replace(tzinfo=None))


def check_insights_empty_window(case: Case) -> None:
    start, _ = case.window
    assert case.platform.fetch_insights(start, start) == []


# -- writes --------------------------------------------------------------------------------------


def _first_ad_set(p: AdPlatform) -> PlatformAdSet:
    return p.list_ad_sets()[0]


def check_budget_write(case: Case) -> None:
    p = case.platform
    ad_set = _first_ad_set(p)
    new = (ad_set.daily_budget_minor or 1_000) + 100
    if case.read_only:
        before = p.list_ad_sets()
        with pytest.raises(ReadOnlyPlatformError):
            p.set_ad_set_budget(ad_set.external_id, new)
        assert p.list_ad_sets() == before
        return
    p.set_ad_set_budget(ad_set.external_id, new)
    listed = {s.external_id: s.daily_budget_minor for s in p.list_ad_sets()}
    assert listed[ad_set.external_id] == new, "the catalogue lists the new budget"
    p.set_ad_set_budget(ad_set.external_id, new)  # absolute: twice is harmless
    assert {s.external_id: s.daily_budget_minor for s in p.list_ad_sets()} == listed


NOT_MINOR_UNITS: list[object] = [1000.0, 12.5, True, Decimal("1000"), np.float64(1000.0), "1000"]


def check_budget_refuses_anything_but_int(case: Case) -> None:
    p = case.platform
    ad_set = _first_ad_set(p)
    before = p.list_ad_sets()
    expected: type[Exception] = ReadOnlyPlatformError if case.read_only else TypeError
    for amount in NOT_MINOR_UNITS:
        with pytest.raises(expected):
            p.set_ad_set_budget(ad_set.external_id, amount)  # type: ignore[arg-type]
    assert p.list_ad_sets() == before, "a refused write changes nothing"


def check_status_write(case: Case) -> None:
    p = case.platform
    ad = next(a for a in p.list_ads() if a.status is Status.ACTIVE)
    if case.read_only:
        before = p.list_ads()
        with pytest.raises(ReadOnlyPlatformError):
            p.set_ad_status(ad.external_id, Status.PAUSED)
        assert p.list_ads() == before
        return
    for status in (Status.PAUSED, Status.PAUSED, Status.ACTIVE):
        p.set_ad_status(ad.external_id, status)
        listed = {a.external_id: a.status for a in p.list_ads()}
        assert listed[ad.external_id] is status, "the catalogue lists the new status"


def check_unknown_objects_refused(case: Case) -> None:
    p = case.platform
    with pytest.raises(PlatformError):
        p.set_ad_set_budget(UNKNOWN_ID, 1_000)
    with pytest.raises(PlatformError):
        p.set_ad_status(UNKNOWN_ID, Status.PAUSED)


def check_malformed_ids_refused(case: Case) -> None:
    """An id no object of the account could have is an object the account does not have."""
    p = case.platform
    with pytest.raises(PlatformError):
        p.set_ad_set_budget(MALFORMED_ID, 1_000)
    with pytest.raises(PlatformError):
        p.set_ad_status(MALFORMED_ID, Status.PAUSED)


# -- optional capabilities -----------------------------------------------------------------------


def check_daily_rows(case: Case) -> None:
    if not isinstance(case.platform, DailyInsights):
        return
    first, last = case.days
    rows = case.platform.fetch_daily(first, last)
    for row in rows:
        assert isinstance(row, DailyActual) and first <= row.date < last
        for metric in ACTUAL_METRICS:
            value = getattr(row, metric)
            assert _is_int(value) and value >= 0, (metric, value)
    assert sorted(case.platform.fetch_daily(first, last), key=repr) == sorted(rows, key=repr)
    assert case.platform.fetch_daily(first, first) == []


def check_quarantine_handed_over_once(case: Case) -> None:
    if not isinstance(case.platform, Quarantining):
        return
    case.platform.fetch_insights(*case.window)
    if isinstance(case.platform, DailyInsights):
        case.platform.fetch_daily(*case.days)
    held = list(case.platform.take_quarantined())
    for row in held:
        assert isinstance(row.ad_id, str) and isinstance(row.date_start, dt.date)
        assert row.hour_start is None or case.window[0] <= row.hour_start < case.window[1]
        assert all(_is_int(v) for v in (row.impressions, row.clicks, row.link_clicks))
    assert list(case.platform.take_quarantined()) == []


def check_minimum_budget(case: Case) -> None:
    if not isinstance(case.platform, MinimumBudget):
        return
    value = case.platform.min_daily_budget_minor()
    assert value is None or (_is_int(value) and value > 0), value
    assert case.platform.min_daily_budget_minor() == value, "the minimum does not change"


def check_pickles_when_promised(case: Case) -> None:
    if not case.picklable:
        return
    copy: AdPlatform = pickle.loads(pickle.dumps(case.platform))
    assert copy.account() == case.platform.account()
    assert copy.list_ads() == case.platform.list_ads()
    assert copy.fetch_insights(*case.window) == case.platform.fetch_insights(*case.window)
    if isinstance(case.platform, MinimumBudget):
        assert isinstance(copy, MinimumBudget)
        assert copy.min_daily_budget_minor() == case.platform.min_daily_budget_minor()


CHECKS: list[Callable[[Case], None]] = [
    check_name,
    check_account,
    check_catalogue_types,
    check_ids_unique,
    check_ad_sets_under_listed_campaigns,
    check_ads_under_listed_ad_sets,
    check_reads_change_nothing,
    check_insights_in_window,
    check_insights_counts,
    check_insights_one_row_per_ad_and_hour,
    check_insights_refetch_is_identical,
    check_insights_split_window,
    check_insights_any_time_zone,
    check_insights_refuse_naive_times,
    check_insights_empty_window,
    check_budget_write,
    check_budget_refuses_anything_but_int,
    check_status_write,
    check_unknown_objects_refused,
    check_malformed_ids_refused,
    check_daily_rows,
    check_quarantine_handed_over_once,
    check_minimum_budget,
    check_pickles_when_promised,
]


# Promises a platform is known to break: the check still runs and must fail (strict), so the
# entry has to go when the platform is fixed.
KNOWN_BREAKS: dict[tuple[str, str], str] = {
    ("meta", "check_malformed_ids_refused"): (
        "MetaPlatform raises ValueError (not a PlatformError) for an id that is not digits, "
        "which callers catching PlatformError around writes do not expect"
    ),
}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_platform_keeps_the_contract(
    request: pytest.FixtureRequest, case: Case, check: Callable[[Case], None]
) -> None:
    reason = KNOWN_BREAKS.get((case.kind, check.__name__))
    if reason is not None:
        request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    check(case)


# -- the snapshot's own promises -----------------------------------------------------------------


def test_a_snapshot_reads_like_its_live_platform_at_capture() -> None:
    _, live, window = _simulated()
    snap = SnapshotPlatform.capture(live, *window)
    assert snap.name == live.name and snap.account() == live.account()
    assert (snap.list_campaigns(), snap.list_ad_sets(), snap.list_ads()) == (
        live.list_campaigns(),
        live.list_ad_sets(),
        live.list_ads(),
    )
    assert snap.fetch_insights(*window) == live.fetch_insights(*window)


def test_a_snapshot_refuses_hours_it_did_not_capture() -> None:
    _, live, (start, end) = _simulated()
    snap = SnapshotPlatform.capture(live, start + dt.timedelta(hours=1), end)
    with pytest.raises(PlatformError, match="snapshot holds insights"):
        snap.fetch_insights(start, end)
    with pytest.raises(PlatformError, match="snapshot holds insights"):
        snap.fetch_insights(start + dt.timedelta(hours=1), end + dt.timedelta(hours=1))


def test_a_snapshot_records_its_writes_and_replays_them_on_the_live_platform() -> None:
    market, live, window = _simulated()
    snap = SnapshotPlatform.capture(live, *window)
    ad_set, ad = snap.list_ad_sets()[1], snap.list_ads()[2]
    snap.set_ad_set_budget(ad_set.external_id, 4_321)
    snap.set_ad_status(ad.external_id, Status.PAUSED)
    assert [(w.kind, w.object_id, w.value) for w in snap.writes] == [
        ("budget", ad_set.external_id, 4_321),
        ("status", ad.external_id, "PAUSED"),
    ]
    assert {s.external_id: s.daily_budget_minor for s in live.list_ad_sets()}[
        ad_set.external_id
    ] == ad_set.daily_budget_minor, "the live platform is untouched until the replay"
    assert apply_writes(market.platform, snap.writes) == 2
    assert live.list_ad_sets() == snap.list_ad_sets() and live.list_ads() == snap.list_ads()
