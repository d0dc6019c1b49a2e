"""A Meta token never reaches error text (issue #17, finding 6).

The fake Graph puts the token into ``paging.next`` URLs, as Meta does, and each failure path is
scripted on such a page or echoes the token: an error answer, a dropped connection, a timeout, a
Graph error envelope quoting the token. Every sink is then searched for the token and the
``appsecret_proof``: the error's ``str``/``repr``/traceback, the fetch-failure record, the stored
alerts, the webhook's payloads, the HTTP answer of ``POST /api/ml/actuals/fetch`` and the logs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.platforms.meta import GraphClient, InsightsOptions, MetaPlatform, ThrottlePolicy
from adflywheel.platforms.meta.errors import MetaApiError, scrub
from adflywheel.services.alerts import AlertSink
from adflywheel.services.monitor.fetch import fetch_account_actuals
from adflywheel.store.engine import make_session_factory
from adflywheel.store.fetching import FetchFreshness
from adflywheel.store.monitoring import Alert
from tests.factories.fake_graph import FakeGraph, FakeTime, fixture_account
from tests.factories.helpers import auth, new_account
from tests.factories.webhook import Webhook

SECRET = "EAAB-SECRET-TOKEN-123"
APP_SECRET = "app-secret-456"
PROOF = hmac.new(APP_SECRET.encode(), SECRET.encode(), hashlib.sha256).hexdigest()
LEAKS = (SECRET, PROOF, APP_SECRET)
AS_OF = dt.datetime(2026, 11, 25, 12, 20, tzinfo=dt.UTC)
WEBHOOK = "http://127.0.0.1:9/alerts"
ADS = r"^act_1001/ads$"  # one ad a page: its second request follows a ``paging.next`` URL


def _envelope(message: str, code: int, status: int = 400) -> dict[str, Any]:
    return {
        "status": status,
        "body": {
            "error": {"message": message, "type": "OAuthException", "code": code},
            "fbtrace_id": "Trace1",
        },
    }


# name → how the fake fails (method, path, spec, keyword arguments of ``FakeGraph.fail``)
FAILURES: dict[str, tuple[str, str, Any, dict[str, Any]]] = {
    # (a) an error answer on a ``paging.next`` page, echoing the URL it was asked for
    "error_on_next_page": (
        "GET",
        ADS,
        _envelope(f"(#100) bad cursor in /v26.0/act_1001/ads?after=x&access_token={SECRET}", 100),
        {"after": 1, "times": 10},
    ),
    # (b) the connection dropped on a ``paging.next`` page (a transport error)
    "dropped_on_next_page": ("GET", ADS, {"status": 0, "body": None}, {"after": 1, "times": 10}),
    # (b') no answer within the client's timeout on a ``paging.next`` page
    "timeout_on_next_page": ("GET", ADS, {"status": -1, "body": 1.0}, {"after": 1, "times": 10}),
    # (c) a Graph error envelope quoting the token
    "graph_envelope": (
        "GET",
        r"^act_1001$",
        _envelope(f"Invalid OAuth access token: {SECRET} (appsecret_proof={PROOF})", 190),
        {"times": 10},
    ),
}


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(clock=FakeTime(), token=SECRET, token_in_paging=True) as fake:
        fake.add(fixture_account())
        yield fake


def _platform(graph: FakeGraph) -> MetaPlatform:
    client = GraphClient(
        SECRET,
        base_url=graph.base_url,
        app_secret=APP_SECRET,
        policy=ThrottlePolicy(backoff_base_s=1.0, max_retries=1),
        timer=graph.clock,
        rng=random.Random(0),
        timeout_s=0.3,
    )
    return MetaPlatform(client, "act_1001", options=InsightsOptions(page_size=1))


def _assert_clean(where: str, text: str) -> None:
    for secret in LEAKS:
        assert secret not in text, f"{where} leaks {secret[:8]}...: {text[:600]}"


def _stored(engine: Engine, account_id: int) -> str:
    with make_session_factory(engine)() as session:
        freshness = session.get(FetchFreshness, account_id)
        alerts = session.scalars(select(Alert).where(Alert.account_id == account_id)).all()
        assert freshness is not None and freshness.status == "failed"
        assert alerts, "the failure was not alerted"
        return json.dumps(
            {
                "freshness": freshness.error,
                "alerts": [{"message": a.message, "payload": a.payload} for a in alerts],
            },
            default=str,
        )


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_no_sink_sees_the_token_when_a_fetch_fails(
    failure: str,
    engine: Engine,
    graph: FakeGraph,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook = Webhook()
    monkeypatch.setattr("adflywheel.services.alerts.httpx.post", webhook)
    method, path, spec, options = FAILURES[failure]
    graph.fail(method, path, spec, **options)
    factory = make_session_factory(engine)
    account_id, _ = new_account(engine, "shoes", AS_OF)
    clock = ManualClock(AS_OF)
    sink = AlertSink(factory, clock, webhook_url=WEBHOOK)
    with pytest.raises(PlatformError) as caught:
        fetch_account_actuals(
            factory, _platform(graph), account_id, AS_OF, clock, sync_catalogue=True, alerts=sink
        )
    error = caught.value
    if failure != "graph_envelope":  # the failure happened on a followed ``paging.next`` page
        assert any("after" in r.params for r in graph.requests if r.path.endswith("/ads"))
    assert not any("access_token" in r.params for r in graph.requests)  # the header suffices
    _assert_clean("str(error)", str(error))
    _assert_clean("repr(error)", repr(error))
    _assert_clean("the traceback", "".join(traceback.format_exception(error)))
    _assert_clean("the stored failure and alerts", _stored(engine, account_id))
    assert webhook.sent, "the webhook was not called"
    _assert_clean("the webhook", json.dumps(webhook.sent, default=str))
    _assert_clean("the logs", caplog.text)
    if failure == "graph_envelope":
        assert "Invalid OAuth access token: ***" in str(error)  # the message itself is kept


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_the_fetch_endpoint_answers_without_the_token(
    failure: str,
    engine: Engine,
    settings: Settings,
    graph: FakeGraph,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook = Webhook()
    monkeypatch.setattr("adflywheel.services.alerts.httpx.post", webhook)
    method, path, spec, options = FAILURES[failure]
    graph.fail(method, path, spec, **options)
    account_id, key = new_account(engine, "shoes", AS_OF)
    platform = _platform(graph)

    def resolve(wanted: int) -> AdPlatform:
        if wanted != account_id:
            raise PlatformError(f"account {wanted} has no connected ad platform")
        return platform

    app = create_app(
        settings.model_copy(update={"alert_webhook_url": WEBHOOK}),
        clock=ManualClock(AS_OF),
        platforms=resolve,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/api/ml/actuals/fetch", headers=auth(key))
    assert response.status_code in (502, 503), response.text
    _assert_clean("the HTTP answer", response.text + json.dumps(dict(response.headers)))
    _assert_clean("the stored failure and alerts", _stored(engine, account_id))
    assert webhook.sent, "the webhook was not called"
    _assert_clean("the webhook", json.dumps(webhook.sent, default=str))
    _assert_clean("the logs", caplog.text)


def test_a_paging_url_off_the_graph_host_is_refused_without_its_token() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        evil = f"https://evil.example/v26.0/act_1/ads?access_token={SECRET}&api_key=k3y"
        return httpx.Response(200, json={"data": [], "paging": {"next": evil}})

    client = GraphClient(SECRET, transport=httpx.MockTransport(answer), timer=FakeTime())
    with pytest.raises(MetaApiError, match=r"evil\.example") as caught:
        list(client.paginate("act_1/ads", {}))
    _assert_clean("str(error)", str(caught.value))
    assert "k3y" not in str(caught.value)


def test_scrub_masks_token_like_values_and_keeps_the_rest() -> None:
    text = (
        "GET https://graph.facebook.com/v26.0/act_1/ads?limit=5&access_token=EAAxyz123456"
        "&appsecret_proof=abc123&api_key=zzz&after=Q1 "
        '{"client_secret": "s3cr3t"} Authorization: Bearer tok.en '
        "Error validating access token: Session has expired"
    )
    cleaned = scrub(text, ["Q1x"])
    for secret in ("EAAxyz123456", "abc123", "zzz", "s3cr3t", "tok.en"):
        assert secret not in cleaned
    assert "limit=5" in cleaned and "after=Q1" in cleaned
    assert "Error validating access token: Session has expired" in cleaned
    assert scrub("my own fake-token-1 here", ["fake-token-1"]) == "my own *** here"
