"""The actuals fetch job and its endpoint, against the fake Graph server and both databases."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.platforms.meta import (
    GraphClient,
    MetaAuthError,
    MetaPermissionError,
    MetaPlatform,
    ThrottlePolicy,
)
from adflywheel.platforms.meta.connection import connect_meta_account
from adflywheel.platforms.registry import connected_platforms
from adflywheel.services.alerts import AlertSink
from adflywheel.services.monitor.fetch import (
    FetchError,
    fetch_account_actuals,
    fetch_accounts,
    open_window,
)
from adflywheel.store.engine import make_session_factory
from adflywheel.store.fetching import FetchFreshness
from adflywheel.store.models import (
    Account,
    ActualRevision,
    AdSet,
    DailyActualRow,
    HourlyActualRow,
    Variant,
)
from adflywheel.store.monitoring import Alert
from tests.factories.fake_graph import (
    TOKEN,
    FakeGraph,
    synthetic_account,
)
from tests.factories.helpers import auth, new_account

pytestmark = pytest.mark.db

UTC = dt.UTC
AS_OF = dt.datetime(2026, 11, 25, 12, 20, tzinfo=UTC)  # 07:20 in New York


def platform_for(
    graph: FakeGraph, account: str = "act_1001", *, retries: int = 2, token: str = TOKEN
) -> MetaPlatform:
    policy = ThrottlePolicy(backoff_base_s=1.0, max_retries=retries)
    client = GraphClient(
        token, base_url=graph.base_url, policy=policy, timer=graph.clock, rng=random.Random(0)
    )
    return MetaPlatform(client, account)


def totals(engine: Engine, account_id: int) -> tuple[int, int, int]:
    with make_session_factory(engine)() as session:
        hourly = session.execute(
            select(func.count(), func.sum(HourlyActualRow.impressions)).where(
                HourlyActualRow.account_id == account_id
            )
        ).one()
        daily = session.scalar(select(func.count()).where(DailyActualRow.account_id == account_id))
    return int(hourly[0]), int(hourly[1] or 0), int(daily or 0)


def test_window_is_yesterday_and_today_in_the_account_zone() -> None:
    w = open_window(AS_OF, "America/New_York")
    assert (w.first_day, w.last_day) == (dt.date(2026, 11, 24), dt.date(2026, 11, 25))
    assert (w.start, w.end) == (
        dt.datetime(2026, 11, 24, 5, tzinfo=UTC),
        dt.datetime(2026, 11, 25, 12, tzinfo=UTC),
    )
    tokyo = open_window(AS_OF, "Asia/Tokyo")  # 21:20 on the 25th in Tokyo
    assert tokyo.start == dt.datetime(2026, 11, 23, 15, tzinfo=UTC)
    kolkata = open_window(AS_OF, "Asia/Kolkata")  # midnight is 18:30 UTC: floored
    assert kolkata.start == dt.datetime(2026, 11, 23, 18, tzinfo=UTC)
    # The day after the autumn change: yesterday's midnight is still EDT (-4).
    autumn = open_window(dt.datetime(2026, 11, 2, 15, tzinfo=UTC), "America/New_York")
    assert autumn.start == dt.datetime(2026, 11, 1, 4, tzinfo=UTC)


def test_fetch_stores_hours_and_days_idempotently_and_records_freshness(
    engine: Engine, fake_graph: FakeGraph
) -> None:
    factory = make_session_factory(engine)
    account_id, _ = new_account(engine, "shoes", AS_OF)
    clock = ManualClock(AS_OF)
    platform = platform_for(fake_graph)
    first = fetch_account_actuals(factory, platform, account_id, AS_OF, clock, sync_catalogue=True)
    assert first["catalogue"] == {"campaigns": 2, "ad_sets": 3, "ads": 3}
    assert first["hourly"] == {"received": 6, "inserted": 6, "updated": 0, "unchanged": 0}
    assert first["daily"]["inserted"] == 3
    assert first["window"]["timezone"] == "America/New_York"
    assert totals(engine, account_id) == (6, 1200 + 1510 + 860 + 95 + 310 + 640, 3)
    fresh = first["freshness"]
    assert fresh["status"] == "ok" and fresh["newest_hour"] == "2026-11-25T11:00:00+00:00"
    assert fresh["complete_until"] == "2026-11-25T12:00:00+00:00"

    clock.advance(dt.timedelta(minutes=5))
    again = fetch_account_actuals(factory, platform, account_id, AS_OF, clock)
    assert again["hourly"] == {"received": 6, "inserted": 0, "updated": 0, "unchanged": 6}
    assert totals(engine, account_id)[:2] == (6, 4615)  # a retry never double-counts

    fake_graph.accounts["act_1001"].hourly[0]["impressions"] = "1300"  # Meta restates an hour
    restated = fetch_account_actuals(factory, platform, account_id, AS_OF, clock)
    assert restated["hourly"]["updated"] == 1
    with factory() as session:
        revision = session.scalars(select(ActualRevision)).one()
        assert revision.previous["impressions"] == 1200
        assert revision.current["impressions"] == 1300
        account = session.get(Account, account_id)
        assert account is not None
        assert account.timezone == "America/New_York"
        assert account.actuals_fresh_until == dt.datetime(2026, 11, 25, 12, tzinfo=UTC)
        budgets = dict(session.execute(select(AdSet.external_id, AdSet.daily_budget_minor)).all())
        assert budgets["23851000000000002"] == 3500
        control = session.scalar(
            select(Variant.is_control).where(Variant.name.contains("[control]"))
        )
        assert control is True


def test_failure_is_recorded_keeps_the_last_success_and_raises(
    engine: Engine, fake_graph: FakeGraph
) -> None:
    factory = make_session_factory(engine)
    account_id, _ = new_account(engine, "shoes", AS_OF)
    clock = ManualClock(AS_OF)
    platform = platform_for(fake_graph)
    fetch_account_actuals(factory, platform, account_id, AS_OF, clock, sync_catalogue=True)
    clock.advance(dt.timedelta(hours=1))
    fake_graph.fail("GET", r"insights", "expired_token")
    with pytest.raises(MetaAuthError):
        fetch_account_actuals(factory, platform, account_id, clock.now(), clock)
    with factory() as session:
        row = session.get(FetchFreshness, account_id)
        assert row is not None
        assert row.status == "failed" and row.consecutive_failures == 1
        assert row.error is not None and "MetaAuthError" in row.error and "463" in row.error
        assert row.last_success_at == AS_OF and row.last_attempt_at == clock.now()
        assert row.complete_until == dt.datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert totals(engine, account_id)[0] == 6  # nothing half-written or removed
    again = fetch_account_actuals(factory, platform, account_id, clock.now(), clock)
    assert again["freshness"]["consecutive_failures"] == 0


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, kind: str, message: str, details: dict[str, Any]) -> None:
        self.sent.append((kind, message, details))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.sent]


def stored_alerts(engine: Engine, kind: str) -> list[Alert]:
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(Alert).where(Alert.kind == kind).order_by(Alert.id)))


def test_a_failed_fetch_is_alerted_once_with_the_account_and_reason(
    engine: Engine, fake_graph: FakeGraph
) -> None:
    factory = make_session_factory(engine)
    account_id, _ = new_account(engine, "shoes", AS_OF)
    clock = ManualClock(AS_OF)
    platform = platform_for(fake_graph)
    alerts = Recorder()
    fetch_account_actuals(
        factory, platform, account_id, AS_OF, clock, sync_catalogue=True, alerts=alerts
    )
    assert alerts.sent == []  # a good fetch raises nothing
    fake_graph.fail("GET", r"insights", "expired_token")
    with pytest.raises(MetaAuthError):
        fetch_account_actuals(factory, platform, account_id, AS_OF, clock, alerts=alerts)
    [(kind, message, details)] = alerts.sent
    assert kind == "fetch_failure" and "MetaAuthError" in message
    assert details["account_id"] == account_id and details["platform"] == "meta"
    assert "MetaAuthError" in details["reason"] and "Session has expired" in details["reason"]
    assert (details["code"], details["subcode"]) == (190, 463)
    assert details["fbtrace_id"] == "AbCdE19463" and details["consecutive_failures"] == 1
    assert details["window"] == ["2026-11-24T05:00:00+00:00", "2026-11-25T12:00:00+00:00"]
    # Without a sink of the caller's, the alert is still logged and stored.
    fake_graph.fail("GET", r"insights", "no_permission")
    with pytest.raises(MetaPermissionError):
        fetch_account_actuals(factory, platform, account_id, AS_OF, clock)
    [row] = stored_alerts(engine, "fetch_failure")
    assert row.account_id == account_id and "#200" in row.message
    assert row.payload["consecutive_failures"] == 2 and row.delivery == "logged"

    # A sink that fails never hides the fetch's own error.
    def broken(kind: str, message: str, details: dict[str, Any]) -> None:
        raise RuntimeError("webhook down")

    fake_graph.fail("GET", r"insights", "bad_token")
    with pytest.raises(MetaAuthError):
        fetch_account_actuals(factory, platform, account_id, AS_OF, clock, alerts=broken)


def test_a_row_with_clicks_above_impressions_is_quarantined_not_fatal(
    engine: Engine, fake_graph: FakeGraph
) -> None:
    from adflywheel.services.monitor.service import validate_and_maybe_retrain

    factory = make_session_factory(engine)
    account_id, _ = new_account(engine, "shoes", AS_OF)
    clock = ManualClock(AS_OF)
    platform = platform_for(fake_graph)
    sink = AlertSink(factory, clock)
    hourly = fake_graph.accounts["act_1001"].hourly
    hourly[0]["clicks"] = "1300"  # Meta's all-clicks above the hour's 1,200 impressions
    hourly[5]["inline_link_clicks"] = "10"  # link clicks above the hour's 9 clicks
    first = fetch_account_actuals(
        factory, platform, account_id, AS_OF, clock, sync_catalogue=True, alerts=sink
    )
    assert first["status"] == "ok" and first["hourly"]["inserted"] == 4  # the other rows
    assert first["daily"]["inserted"] == 3
    bad_hours = ["2026-11-24T13:00:00+00:00", "2026-11-25T11:00:00+00:00"]
    assert first["quarantined"] == {"rows": 2, "hourly": 2, "daily": 0, "hours": bad_hours}
    assert totals(engine, account_id)[:2] == (4, 1510 + 860 + 95 + 310)
    [alert] = stored_alerts(engine, "actuals_quarantined")
    assert alert.account_id == account_id and alert.payload["count"] == 2
    assert {(r["ad_id"], r["hour_start"], r["clicks"]) for r in alert.payload["rows"]} == {
        ("6068839961943", bad_hours[0], 1300),
        ("6068839961944", bad_hours[1], 9),
    }
    # Every fetch re-reads two days: the same rows are counted again, not alerted again.
    clock.advance(dt.timedelta(minutes=5))
    again = fetch_account_actuals(factory, platform, account_id, AS_OF, clock, alerts=sink)
    assert again["quarantined"]["rows"] == 2 and again["hourly"]["unchanged"] == 4
    assert len(stored_alerts(engine, "actuals_quarantined")) == 1
    # The data-health breaker sees them as implausible counts.
    out = validate_and_maybe_retrain(factory, account_id, AS_OF, retrain=None, alerts=None)
    assert out["breaker"]["open"] and "implausible_counts" in out["breaker"]["reasons"]
    assert set(bad_hours) <= set(out["breaker"]["evidence"]["implausible_hours"])
    # Restated to plausible numbers, the row is stored like any other.
    hourly[0]["clicks"] = "15"
    fixed = fetch_account_actuals(factory, platform, account_id, AS_OF, clock, alerts=sink)
    assert fixed["hourly"]["inserted"] == 1 and fixed["quarantined"]["rows"] == 1


def test_data_that_cannot_be_stored_is_refused_whole(engine: Engine, fake_graph: FakeGraph) -> None:
    factory = make_session_factory(engine)
    account_id, _ = new_account(engine, "shoes", AS_OF)
    with pytest.raises(ValueError, match="unknown ad_id"):  # no catalogue sync: unknown ads
        fetch_account_actuals(
            factory, platform_for(fake_graph), account_id, AS_OF, ManualClock(AS_OF)
        )
    assert totals(engine, account_id) == (0, 0, 0)
    yen, _ = new_account(engine, "yen", AS_OF, currency="JPY")
    with pytest.raises(FetchError, match="USD"):  # money in the wrong currency
        fetch_account_actuals(
            factory, platform_for(fake_graph), yen, AS_OF, ManualClock(AS_OF), sync_catalogue=True
        )
    assert totals(engine, yen) == (0, 0, 0)


def test_one_failing_account_does_not_stop_the_others(
    engine: Engine, fake_graph: FakeGraph
) -> None:
    factory = make_session_factory(engine)
    good, _ = new_account(engine, "good", AS_OF)
    bad, _ = new_account(engine, "bad", AS_OF)
    unconnected, _ = new_account(engine, "none", AS_OF)
    fake_graph.add(synthetic_account("act_5005", 4, timezone="America/New_York"))
    platforms: dict[int, AdPlatform] = {
        bad: platform_for(fake_graph, "act_1001", token="revoked"),
        good: platform_for(fake_graph, "act_5005"),
    }

    def resolve(account_id: int) -> AdPlatform:
        if account_id not in platforms:
            raise PlatformError("not connected")
        return platforms[account_id]

    alerts = Recorder()
    results = fetch_accounts(
        factory, resolve, [bad, unconnected, good], AS_OF, ManualClock(AS_OF), alerts=alerts
    )
    assert results[bad]["status"] == "failed" and "MetaAuthError" in results[bad]["error"]
    assert alerts.kinds() == ["fetch_failure"]  # the failed account only, once
    assert alerts.sent[0][2]["account_id"] == bad and "190" in alerts.sent[0][2]["reason"]
    assert results[unconnected]["status"] == "no_platform"
    assert results[good]["status"] == "ok"
    assert results[good]["hourly"]["inserted"] == 4 * 31  # 00:00 NY on the 24th .. 07:00 25th
    assert totals(engine, good)[0] == 4 * 31 and totals(engine, bad)[0] == 0
    rerun = fetch_accounts(factory, resolve, [good], AS_OF, ManualClock(AS_OF))
    assert rerun[good]["hourly"]["inserted"] == 0 and totals(engine, good)[0] == 4 * 31


def test_connect_and_resolve_a_meta_account(engine: Engine, fake_graph: FakeGraph) -> None:
    factory = make_session_factory(engine)
    account_id, _ = new_account(engine, "shoes", AS_OF, currency="EUR")
    clock = ManualClock(AS_OF)
    info = connect_meta_account(factory, account_id, platform_for(fake_graph, "1001"), clock)
    assert info["ad_account_id"] == "act_1001" and info["currency"] == "USD"
    settings = Settings(
        database_url=str(engine.url), meta_graph_url=fake_graph.base_url, meta_access_token=TOKEN
    )
    resolve = connected_platforms(settings, factory)
    platform = resolve(account_id)
    assert isinstance(platform, MetaPlatform) and platform.path == "act_1001"
    assert resolve(account_id) is platform  # kept: its governor remembers Meta's usage
    assert platform.account().timezone == "America/New_York"
    other, _ = new_account(engine, "other", AS_OF)
    with pytest.raises(PlatformError):
        resolve(other)
    no_token = connected_platforms(Settings(database_url=str(engine.url)), factory)
    with pytest.raises(PlatformError, match="ADFLYWHEEL_META_ACCESS_TOKEN"):
        no_token(account_id)


# -- the endpoint ---------------------------------------------------------------------------------


@pytest.fixture
def api(
    engine: Engine, settings: Settings, fake_graph: FakeGraph
) -> Iterator[tuple[TestClient, dict[str, int | str]]]:
    connected, key = new_account(engine, "shoes", AS_OF)
    _, lonely_key = new_account(engine, "lonely", AS_OF)
    platforms: dict[int, AdPlatform] = {connected: platform_for(fake_graph, retries=0)}

    def resolve(account_id: int) -> AdPlatform:
        if account_id not in platforms:
            raise PlatformError(f"account {account_id} has no connected ad platform")
        return platforms[account_id]

    clock = ManualClock(AS_OF)
    with TestClient(create_app(settings, clock=clock, platforms=resolve)) as client:
        yield client, {"id": connected, "key": key, "lonely_key": lonely_key}


def test_endpoint_fetches_for_the_caller_with_auth_and_checks(
    api: tuple[TestClient, dict[str, int | str]],
) -> None:
    client, ids = api
    key = str(ids["key"])
    assert client.get("/api/ml/actuals/freshness", headers=auth(key)).status_code == 404
    response = client.post("/api/ml/actuals/fetch", headers=auth(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account_id"] == ids["id"] and body["hourly"]["inserted"] == 6
    assert body["daily"]["inserted"] == 3 and body["freshness"]["status"] == "ok"
    again = client.post("/api/ml/actuals/fetch", headers=auth(key), json={"sync_catalog": False})
    assert again.status_code == 200 and again.json()["hourly"]["unchanged"] == 6
    assert again.json()["catalogue"] is None
    fresh = client.get("/api/ml/actuals/freshness", headers=auth(key)).json()
    assert fresh["status"] == "ok" and fresh["account_id"] == ids["id"]
    assert fresh["complete_until"] == "2026-11-25T12:00:00+00:00"
    assert client.post("/api/ml/actuals/fetch").status_code == 401
    assert client.post("/api/ml/actuals/fetch", headers=auth("afw_nope")).status_code == 401
    bad = client.post("/api/ml/actuals/fetch", headers=auth(key), json={"since": "2020-01-01"})
    assert bad.status_code == 422
    lonely = client.post("/api/ml/actuals/fetch", headers=auth(str(ids["lonely_key"])))
    assert lonely.status_code == 409 and "no ad platform" in lonely.json()["detail"]


def test_endpoint_maps_platform_failures(
    api: tuple[TestClient, dict[str, int | str]], fake_graph: FakeGraph, engine: Engine
) -> None:
    client, ids = api
    headers = auth(str(ids["key"]))
    fake_graph.fail("GET", r"^act_1001$", "buc_insights", regain_minutes=3)
    throttled = client.post("/api/ml/actuals/fetch", headers=headers)
    assert throttled.status_code == 503
    assert int(throttled.headers["Retry-After"]) >= 180
    fake_graph.blocked_until = 0.0
    fake_graph.fail("GET", r"^act_1001$", "no_permission")
    refused = client.post("/api/ml/actuals/fetch", headers=headers)
    assert refused.status_code == 502 and "#200" in refused.json()["detail"]
    fake_graph.fail("GET", r"^act_1001/ads$", "bad_token")
    assert client.post("/api/ml/actuals/fetch", headers=headers).status_code == 502
    fresh = client.get("/api/ml/actuals/freshness", headers=headers).json()
    assert fresh["status"] == "failed" and fresh["consecutive_failures"] == 3
    failures = stored_alerts(engine, "fetch_failure")  # one per failed request
    assert [a.account_id for a in failures] == [ids["id"]] * 3
    assert "MetaThrottledError" in failures[0].payload["reason"]
    assert failures[1].payload["code"] == 200 and failures[2].payload["code"] == 190


def test_cli_connects_and_fetches(tmp_path: Path, fake_graph: FakeGraph) -> None:
    from typer.testing import CliRunner

    from adflywheel.cli.app import app
    from adflywheel.store.engine import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    new_account(engine, "shop", AS_OF)
    new_account(engine, "offline", AS_OF)
    fake_graph.add(synthetic_account("act_6006", 3, timezone="UTC"))
    env = {
        "ADFLYWHEEL_DATABASE_URL": url,
        "ADFLYWHEEL_META_GRAPH_URL": fake_graph.base_url,
        "ADFLYWHEEL_META_ACCESS_TOKEN": TOKEN,
    }
    runner = CliRunner()
    connected = runner.invoke(app, ["meta", "connect", "act_6006", "--account", "shop"], env=env)
    assert connected.exit_code == 0, connected.output
    assert json.loads(connected.stdout)["timezone"] == "UTC"
    fetched = runner.invoke(app, ["meta", "fetch"], env=env)
    assert fetched.exit_code == 0, fetched.output
    [line] = fetched.stdout.strip().splitlines()  # only the connected account
    result = json.loads(line)
    assert result["account"] == "shop" and result["status"] == "ok"
    assert result["hourly"]["inserted"] >= 3 * 24  # yesterday at least, whole
    fake_graph.fail("GET", r"insights", "bad_token", times=10)
    failed = runner.invoke(app, ["meta", "fetch"], env=env)
    assert failed.exit_code == 1 and json.loads(failed.stdout)["status"] == "failed"
    [alert] = stored_alerts(engine, "fetch_failure")
    assert alert.payload["code"] == 190 and "MetaAuthError" in alert.message
    fake_graph.faults.clear()
    unknown = runner.invoke(app, ["meta", "fetch", "--account", "offline"], env=env)
    assert unknown.exit_code == 2 and "not connected" in unknown.output
    revoked = runner.invoke(
        app,
        ["meta", "connect", "act_6006", "--account", "offline"],
        env={**env, "ADFLYWHEEL_META_ACCESS_TOKEN": "revoked"},
    )
    assert revoked.exit_code == 2 and "190" in revoked.output
    engine.dispose()
