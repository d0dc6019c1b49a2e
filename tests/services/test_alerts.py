"""The alert sink: logged, stored, posted to a Slack-compatible webhook on loopback; a failing
webhook never raises."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, select

from adflywheel.core.clock import ManualClock
from adflywheel.services.alerts import AlertKind, AlertSink, recent_alerts
from adflywheel.store.engine import make_session_factory
from adflywheel.store.monitoring import Alert
from tests.factories.helpers import new_account


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(state.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_an_alert_is_logged_stored_and_posted(
    engine: Engine, clock: ManualClock, hook: tuple[Hook, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, url = hook
    account_id, _ = new_account(engine, "acme", clock.now())
    factory = make_session_factory(engine)
    sink = AlertSink(factory, clock, webhook_url=url)
    with caplog.at_level(logging.INFO, logger="adflywheel.services.alerts"):
        out = sink.emit(AlertKind.DRIFT, "drift on ensemble/loss", account_id=account_id)
    assert out["delivery"] == "webhook:200"
    assert state.bodies == [
        {"text": f"[adflywheel drift] account {account_id}: drift on ensemble/loss"}
    ]
    assert "drift on ensemble/loss" in caplog.text
    with factory() as session:
        rows = recent_alerts(session, account_id)
    assert [(r["kind"], r["delivery"]) for r in rows] == [("drift", "webhook:200")]
    # the cycle's calling convention, with another kind kept as given
    sink("cycle_step_failed", "fetch broke", {"account_id": account_id, "step": "fetch"})
    with factory() as session:
        kinds = [a.kind for a in session.scalars(select(Alert).order_by(Alert.id))]
    assert kinds == ["drift", "cycle_step_failed"]


def test_a_failing_webhook_is_recorded_and_never_raises(
    engine: Engine, clock: ManualClock, hook: tuple[Hook, str]
) -> None:
    state, url = hook
    factory = make_session_factory(engine)
    state.status = 500
    out = AlertSink(factory, clock, webhook_url=url).emit("breaker", "feed broken")
    assert out["delivery"] == "failed: HTTP 500"
    # nothing listens here: connection refused
    dead = AlertSink(factory, clock, webhook_url="http://127.0.0.1:9/none", timeout_s=0.5)
    assert dead.emit("fetch_failure", "Meta 613").get("delivery", "").startswith("failed:")
    assert AlertSink(factory, clock).emit("retrain", "ran")["delivery"] == "logged"
    with factory() as session:
        assert len(recent_alerts(session, None)) == 3
    with pytest.raises(ValueError):
        AlertSink(factory, clock).emit("", "no kind")
