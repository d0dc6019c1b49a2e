"""Restated conversions (issue #16, item 4): the attribution window's daily rows re-read once a
day, which days are final, and what the freshness endpoint says of them."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.api.app import create_app
from adflywheel.core.attribution import (
    Finality,
    finality,
    restatement_days,
    restatement_due,
)
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import AdPlatform
from adflywheel.services.monitor.fetch import fetch_account_actuals
from adflywheel.store.engine import make_session_factory
from adflywheel.store.models import Account, ActualRevision, DailyActualRow, Variant
from tests.factories.fake_graph import FakeGraph
from tests.factories.helpers import auth, new_account
from tests.services.test_monitor_fetch import platform_for

UTC = dt.UTC
AD = "6068839961943"
D = dt.date(2026, 11, 20)  # the day whose conversions Meta restates


def local_run(day: dt.date, hour: int = 7) -> dt.datetime:
    """``hour``:20 in New York (the fixture account's zone; EST, -5) on ``day``, in UTC."""
    return dt.datetime.combine(day, dt.time(hour + 5, 20), tzinfo=UTC)


# -- finality: a pure function of the day, the window and the account's today -------------------


def test_a_day_is_final_once_its_window_has_passed() -> None:
    today = dt.date(2026, 11, 28)
    seven = Finality(today, 7)
    # A click late on the 20th may convert until the end of the 27th: final from the 28th.
    assert seven.final_through == dt.date(2026, 11, 20)
    assert seven.is_final(D) and not seven.is_final(D + dt.timedelta(days=1))
    assert seven.provisional_days[0] == dt.date(2026, 11, 21)
    assert seven.provisional_days[-1] == today and len(seven.provisional_days) == 8
    one = Finality(today, 1)
    assert one.final_through == dt.date(2026, 11, 26)
    assert one.provisional_days == [dt.date(2026, 11, 27), today]
    assert not Finality(dt.date(2026, 11, 27), 7).is_final(D)
    assert Finality(dt.date(2026, 11, 22), 1).is_final(D)


def test_finality_follows_the_account_zone() -> None:
    now = dt.datetime(2026, 11, 28, 3, tzinfo=UTC)  # the 28th in UTC, still the 27th in New York
    assert finality(now, "UTC", 7).final_through == dt.date(2026, 11, 20)
    ny = finality(now, "America/New_York", 7)
    assert ny.final_through == dt.date(2026, 11, 19)
    # Hours before local midnight starting the 20th (05:00 UTC) are on final days.
    assert ny.final_before == dt.datetime(2026, 11, 20, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="attribution window"):
        finality(now, "UTC", 0)
    with pytest.raises(ValueError, match="attribution window"):
        finality(now, "UTC", 29)


def test_the_window_is_reread_once_a_local_day() -> None:
    zone = "America/New_York"
    last = local_run(D, 0)  # 00:20 on the 20th
    assert restatement_due(None, last, zone)
    assert not restatement_due(last, last + dt.timedelta(hours=23), zone)  # 23:20, same day
    assert restatement_due(last, last + dt.timedelta(hours=24), zone)  # the 21st
    late = local_run(D, 18)  # 18:20 on the 20th: the first run after midnight is due at 00:20
    assert restatement_due(late, late + dt.timedelta(hours=6), zone)
    assert not restatement_due(late, late + dt.timedelta(hours=5), zone)
    assert restatement_days(dt.date(2026, 11, 28), 7) == (D, dt.date(2026, 11, 26))
    assert restatement_days(dt.date(2026, 11, 28), 1) == (dt.date(2026, 11, 26),) * 2


# -- the fetch job: restated days picked up once a day ------------------------------------------


def daily_row(fake_graph: FakeGraph, day: dt.date, purchases: int) -> dict[str, Any]:
    """A daily row of the fixture's first ad on ``day`` with ``purchases`` omni purchases."""
    row = copy.deepcopy(fake_graph.accounts["act_1001"].daily[0])
    row["date_start"] = row["date_stop"] = day.isoformat()
    for action in row["actions"]:
        if action["action_type"] == "omni_purchase":
            action["value"] = str(purchases)
    return row


def stored_conversions(engine: Engine, account_id: int, day: dt.date) -> int:
    with make_session_factory(engine)() as session:
        value = session.scalar(
            select(DailyActualRow.conversions)
            .join(Variant, Variant.id == DailyActualRow.variant_id)
            .where(
                DailyActualRow.account_id == account_id,
                Variant.external_id == AD,
                DailyActualRow.day == day,
            )
        )
    assert value is not None
    return int(value)


@pytest.mark.db
def test_conversions_restated_on_day_plus_3_are_reread_once_a_day_with_a_revision(
    engine: Engine, fake_graph: FakeGraph
) -> None:
    factory = make_session_factory(engine)
    account_id, _ = new_account(engine, "shoes", local_run(D))
    daily = fake_graph.accounts["act_1001"].daily
    row = daily_row(fake_graph, D, purchases=1)
    daily.append(row)
    platform = platform_for(fake_graph)
    as_of = local_run(D + dt.timedelta(days=1))  # 07:20 on the 21st: D is yesterday
    clock = ManualClock(as_of)
    first = fetch_account_actuals(factory, platform, account_id, as_of, clock, sync_catalogue=True)
    # The first fetch re-reads the whole window (nothing read before): 7 days before yesterday.
    assert first["restatement"]["days"] == ["2026-11-13", "2026-11-19"]
    assert first["restatement"]["days_read"] == 7
    assert stored_conversions(engine, account_id, D) == 1

    def run(at: dt.datetime) -> dict[str, Any]:
        return fetch_account_actuals(factory, platform, account_id, at, ManualClock(at))

    # Hourly runs later on the 21st and the 22nd's first run: D is read by the two-day window
    # on the 21st, and by the once-a-day re-read on the 22nd (it is no longer yesterday).
    for hours in range(1, 6):
        assert run(as_of + dt.timedelta(hours=hours))["restatement"] is None
    day22 = run(local_run(D + dt.timedelta(days=2), 0))
    assert day22["restatement"]["days"] == ["2026-11-14", "2026-11-20"]
    assert day22["restatement"]["restated"] == 0 and day22["restatement"]["unchanged"] == 1

    # On D+3 Meta restates D: two more purchases attributed to it.
    row["actions"] = [
        {**a, "value": "3"} if a["action_type"] == "omni_purchase" else a for a in row["actions"]
    ]
    same_day = run(local_run(D + dt.timedelta(days=2), 9))
    assert same_day["restatement"] is None  # the 22nd was re-read already: not every hour
    assert stored_conversions(engine, account_id, D) == 1
    day23 = run(local_run(D + dt.timedelta(days=3), 0))
    assert day23["restatement"]["restated"] == 1 and day23["restatement"]["days_read"] == 7
    assert stored_conversions(engine, account_id, D) == 3
    with factory() as session:
        [revision] = session.scalars(
            select(ActualRevision).where(ActualRevision.account_id == account_id)
        ).all()
    assert revision.previous["conversions"] == 1 and revision.current["conversions"] == 3
    fresh = day23["freshness"]["daily_refetch"]
    assert fresh == {"at": local_run(D + dt.timedelta(days=3), 0).isoformat(), "days": 7,
                     "restated": 1}  # fmt: skip
    # The hours after keep the record of the day's re-read.
    later = run(local_run(D + dt.timedelta(days=3), 1))
    assert later["restatement"] is None and later["freshness"]["daily_refetch"] == fresh


@pytest.mark.db
def test_the_reread_goes_as_far_back_as_the_account_window(
    engine: Engine, fake_graph: FakeGraph
) -> None:
    factory = make_session_factory(engine)
    as_of = local_run(dt.date(2026, 11, 25))
    account_id, _ = new_account(engine, "shoes", as_of)
    with factory.begin() as session:
        account = session.get(Account, account_id)
        assert account is not None and account.attribution_window_days is None  # Meta's 7
        account.attribution_window_days = 1
    daily = fake_graph.accounts["act_1001"].daily
    daily += [daily_row(fake_graph, dt.date(2026, 11, d), 1) for d in (21, 22, 23)]
    out = fetch_account_actuals(
        factory, platform_for(fake_graph), account_id, as_of, ManualClock(as_of),
        sync_catalogue=True,
    )  # fmt: skip
    assert out["restatement"]["days"] == ["2026-11-23", "2026-11-23"]
    assert out["restatement"]["received"] == 1  # the 21st and 22nd are final: not read
    assert out["daily"]["received"] == 3  # yesterday and today as every hour


# -- the endpoints ------------------------------------------------------------------------------


@pytest.fixture
def api(
    engine: Engine, settings: Settings, fake_graph: FakeGraph
) -> Iterator[tuple[TestClient, str, ManualClock]]:
    as_of = local_run(dt.date(2026, 11, 25))
    _, key = new_account(engine, "shoes", as_of)
    platform = platform_for(fake_graph, retries=0)

    def resolve(account_id: int) -> AdPlatform:
        return platform

    clock = ManualClock(as_of)
    with TestClient(create_app(settings, clock=clock, platforms=resolve)) as client:
        yield client, key, clock


@pytest.mark.db
def test_freshness_says_which_days_are_final_and_the_window_can_be_set(
    api: tuple[TestClient, str, ManualClock],
) -> None:
    client, key, clock = api
    fetched = client.post("/api/ml/actuals/fetch", headers=auth(key))
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["restatement"]["days_read"] == 7
    fresh = client.get("/api/ml/actuals/freshness", headers=auth(key)).json()
    # Existing fields unchanged; the new ones beside them (the zone is New York: the 25th).
    assert fresh["complete_until"] == "2026-11-25T12:00:00+00:00" and fresh["status"] == "ok"
    assert fresh["attribution_window_days"] == 7
    assert fresh["conversions_final_through"] == "2026-11-17"
    assert fresh["provisional_days"][0] == "2026-11-18" and len(fresh["provisional_days"]) == 8
    assert fresh["daily_refetch"]["days"] == 7
    assert fresh["daily_refetch"]["at"] == "2026-11-25T12:20:00+00:00"

    put = client.put(
        "/api/ml/actuals/attribution", headers=auth(key), json={"attribution_window_days": 1}
    )
    assert put.status_code == 200, put.text
    assert put.json() == {
        "attribution_window_days": 1,
        "conversions_final_through": "2026-11-23",
        "provisional_days": ["2026-11-24", "2026-11-25"],
    }
    assert client.get("/api/ml/actuals/attribution", headers=auth(key)).json() == put.json()
    # A new window is re-read at the next fetch, whatever the hour.
    clock.advance(dt.timedelta(hours=1))
    again = client.post("/api/ml/actuals/fetch", headers=auth(key), json={"sync_catalog": False})
    assert again.json()["restatement"]["days"] == ["2026-11-23", "2026-11-23"]
    for bad in (0, 29, "7", 2.5, None):
        refused = client.put(
            "/api/ml/actuals/attribution", headers=auth(key), json={"attribution_window_days": bad}
        )
        assert refused.status_code == 422, bad
    assert client.get("/api/ml/actuals/attribution").status_code == 401
