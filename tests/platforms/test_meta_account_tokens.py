"""An account's own Meta token, end to end on both stores (issue #17): stored only as ciphertext,
used by the registry in place of the deployment's token, a change rebuilds the platform, a wrong
key is a clear per-account error, and the hourly fetch warns (once a day at most) before the
token expires — without the token reaching the database in clear, the alerts or the logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import PlatformError
from adflywheel.platforms.meta import MetaPlatform
from adflywheel.platforms.meta.connection import MetaConnectionKind
from adflywheel.platforms.meta.tokens import TokenCipher, TokenKeyError, fingerprint
from adflywheel.platforms.registry import connected_platforms
from adflywheel.services.alerts import AlertSink
from adflywheel.services.monitor.fetch import fetch_account_actuals, fetch_accounts
from adflywheel.store.accounts import issue_key
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.fetching import connect_meta, meta_connection, store_meta_token
from adflywheel.store.models import Account
from adflywheel.store.monitoring import Alert
from tests.factories.fake_graph import FakeGraph, FakeTime, fixture_account
from tests.factories.helpers import new_account
from tests.factories.webhook import Webhook

pytestmark = pytest.mark.db

AS_OF = dt.datetime(2026, 11, 25, 12, 20, tzinfo=dt.UTC)
DEPLOYMENT = "deployment-token-1"  # the fake refuses it: only the account's own token works
OWN = "agency-own-token-Zq81xW"
OTHER = "agency-own-token-Yp22vK"
KEY = Fernet.generate_key().decode()
WEBHOOK = "http://127.0.0.1:9/alerts"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(clock=FakeTime(), token="nobody-uses-this") as fake:
        fake.add(fixture_account())
        fake.allow(OWN)
        fake.allow(OTHER)
        yield fake


def _settings(engine: Engine, graph: FakeGraph, keys: str | None = KEY) -> Settings:
    return Settings(
        database_url=str(engine.url),
        meta_graph_url=graph.base_url,
        meta_access_token=DEPLOYMENT,
        token_encryption_keys=keys,
    )


def _connected(engine: Engine, token: str | None = OWN) -> int:
    """An account connected to act_1001 with its own token (encrypted with ``KEY``)."""
    account_id, _ = new_account(engine, "agency-client", AS_OF)
    with transaction(make_session_factory(engine)) as session:
        connect_meta(session, account_id, "act_1001", AS_OF, None)
        if token is not None:
            ciphertext = TokenCipher(KEY).encrypt(token)
            store_meta_token(session, account_id, ciphertext, fingerprint(token))
    return account_id


def _set_token(engine: Engine, account_id: int, token: str) -> None:
    with transaction(make_session_factory(engine)) as session:
        store_meta_token(session, account_id, TokenCipher(KEY).encrypt(token), fingerprint(token))


def _raw_rows(engine: Engine) -> str:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM meta_connections")).all()
    return json.dumps([list(r) for r in rows], default=str)


def test_the_database_holds_only_ciphertext_and_the_registry_uses_it(
    engine: Engine, graph: FakeGraph
) -> None:
    account_id = _connected(engine)
    stored = _raw_rows(engine)
    assert OWN not in stored and fingerprint(OWN) in stored
    factory = make_session_factory(engine)
    with factory() as session:
        connection = MetaConnectionKind().connection(session, account_id)
    assert connection is not None and OWN not in repr(connection)  # what the registry keeps
    resolve = connected_platforms(_settings(engine, graph), factory)
    platform = resolve(account_id)
    assert isinstance(platform, MetaPlatform)
    assert platform.account().currency == "USD"  # only OWN is accepted by the fake
    assert OWN not in repr(platform) and OWN not in repr(platform.client)
    assert resolve(account_id) is platform  # unchanged connection: the same platform
    _set_token(engine, account_id, OTHER)
    again = resolve(account_id)
    assert again is not platform  # a changed token rebuilds the platform
    assert again.account().currency == "USD"
    with transaction(factory) as session:
        store_meta_token(session, account_id, None, None)  # cleared: the deployment's token
    fallback = resolve(account_id)
    assert fallback is not again
    with pytest.raises(PlatformError, match=r"code 190"):
        fallback.account()  # the fake refuses the deployment's token: it was used


def test_a_wrong_or_missing_key_is_a_clear_per_account_error(
    engine: Engine, graph: FakeGraph
) -> None:
    account_id = _connected(engine)
    factory = make_session_factory(engine)
    wrong = connected_platforms(_settings(engine, graph, Fernet.generate_key().decode()), factory)
    with pytest.raises(TokenKeyError, match="token for act_1001 cannot be decrypted"):
        wrong(account_id)
    missing = connected_platforms(_settings(engine, graph, None), factory)
    with pytest.raises(TokenKeyError, match="ADFLYWHEEL_TOKEN_ENCRYPTION_KEYS"):
        missing(account_id)
    clock = ManualClock(AS_OF)
    results = fetch_accounts(factory, wrong, [account_id], AS_OF, clock)
    assert results[account_id]["status"] == "no_platform"
    assert "cannot be decrypted" in results[account_id]["error"]
    assert OWN not in json.dumps(results)


def _token_alerts(engine: Engine, account_id: int) -> list[Alert]:
    with make_session_factory(engine)() as session:
        query = select(Alert).where(Alert.account_id == account_id, Alert.kind == "token_expiring")
        return list(session.scalars(query.order_by(Alert.id)))


def _debug_calls(graph: FakeGraph) -> int:
    return sum(1 for r in graph.requests if r.path.endswith("/debug_token"))


def _fetch(engine: Engine, graph: FakeGraph, account_id: int, clock: ManualClock) -> None:
    factory = make_session_factory(engine)
    platform = connected_platforms(_settings(engine, graph), factory)(account_id)
    sink = AlertSink(factory, clock, webhook_url=WEBHOOK)
    fetch_account_actuals(
        factory, platform, account_id, clock.now(), clock, sync_catalogue=True, alerts=sink
    )


def test_a_token_expiring_in_six_days_is_warned_once_a_day_without_leaking(
    engine: Engine,
    graph: FakeGraph,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook = Webhook()
    monkeypatch.setattr("adflywheel.services.alerts.httpx.post", webhook)
    expires = AS_OF + dt.timedelta(days=6)
    graph.allow(OWN, expires_at=int(expires.timestamp()))
    account_id = _connected(engine)
    clock = ManualClock(AS_OF)
    _fetch(engine, graph, account_id, clock)
    [alert] = _token_alerts(engine, account_id)
    assert alert.payload["expires_at"] == expires.isoformat()
    assert alert.payload["fingerprint"] == fingerprint(OWN) and alert.payload["token"] == "account"
    assert "in 6.0 days" in alert.message
    with make_session_factory(engine)() as session:
        row = meta_connection(session, account_id)
        assert row is not None and row.token_expires_at == expires and row.token_valid is True
        assert row.token_checked_at == AS_OF
    clock.advance(dt.timedelta(hours=23))  # the next hours of the same day: no second check
    _fetch(engine, graph, account_id, clock)
    assert len(_token_alerts(engine, account_id)) == 1 and _debug_calls(graph) == 1
    clock.advance(dt.timedelta(hours=1))  # a day later: checked and warned again
    _fetch(engine, graph, account_id, clock)
    assert len(_token_alerts(engine, account_id)) == 2 and _debug_calls(graph) == 2
    sinks = caplog.text + json.dumps(webhook.sent, default=str) + _raw_rows(engine)
    sinks += json.dumps([(a.message, a.payload) for a in _token_alerts(engine, account_id)])
    assert webhook.sent and "token_expiring" in caplog.text
    assert OWN not in sinks


def test_a_token_expiring_in_thirty_days_or_never_is_not_warned(
    engine: Engine, graph: FakeGraph
) -> None:
    graph.allow(OWN, expires_at=int((AS_OF + dt.timedelta(days=30)).timestamp()))
    account_id = _connected(engine)
    clock = ManualClock(AS_OF)
    _fetch(engine, graph, account_id, clock)
    assert _token_alerts(engine, account_id) == [] and _debug_calls(graph) == 1
    with make_session_factory(engine)() as session:
        row = meta_connection(session, account_id)
        assert row is not None and row.token_checked_at == AS_OF
        assert row.token_expires_at == AS_OF + dt.timedelta(days=30)
    graph.allow(OWN, expires_at=0)
    clock.advance(dt.timedelta(days=1))
    _fetch(engine, graph, account_id, clock)
    assert _token_alerts(engine, account_id) == [] and _debug_calls(graph) == 2
    with make_session_factory(engine)() as session:
        row = meta_connection(session, account_id)
        assert row is not None and row.token_expires_at is None  # never expires


def test_the_deployment_token_is_checked_too_and_a_failed_check_never_fails_the_fetch(
    engine: Engine, graph: FakeGraph
) -> None:
    graph.allow(DEPLOYMENT, expires_at=int((AS_OF + dt.timedelta(days=2)).timestamp()))
    account_id = _connected(engine, token=None)
    clock = ManualClock(AS_OF)
    graph.fail("GET", r"^debug_token$", "bad_token", times=1)
    _fetch(engine, graph, account_id, clock)  # the check failed; the fetch did not
    assert _token_alerts(engine, account_id) == []
    with make_session_factory(engine)() as session:
        row = meta_connection(session, account_id)
        assert row is not None and row.token_checked_at is None  # retried at the next fetch
    clock.advance(dt.timedelta(hours=1))
    _fetch(engine, graph, account_id, clock)
    [alert] = _token_alerts(engine, account_id)
    assert alert.payload["token"] == "environment" and alert.payload["fingerprint"] is None


def test_the_freshness_route_shows_the_warning_and_never_the_token(
    engine: Engine, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adflywheel.services.alerts.httpx.post", Webhook())
    expires = AS_OF + dt.timedelta(days=3)
    graph.allow(OWN, expires_at=int(expires.timestamp()))
    account_id = _connected(engine)
    with transaction(make_session_factory(engine)) as session:
        key = issue_key(session, session.get(Account, account_id), AS_OF).key
    clock = ManualClock(AS_OF)
    _fetch(engine, graph, account_id, clock)
    client = TestClient(create_app(_settings(engine, graph), clock=clock))
    answer = client.get("/api/ml/actuals/freshness", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    token = answer.json()["meta_token"]
    assert token["source"] == "account" and token["fingerprint"] == fingerprint(OWN)
    assert token["expires_at"] == expires.isoformat() and token["valid"] is True
    assert "3.0 days" in token["warning"]
    assert OWN not in answer.text
