"""A small alert sink: drift, breaker trips, retrains and fetch failures reach a human.

Every alert is logged (stdlib ``logging``), counted (``adflywheel_alerts_total``), stored in the
``alerts`` table, and, when a webhook URL is configured, POSTed: as Slack-compatible JSON
(``{"text": ...}``) by default, or as the generic JSON object of ``webhook_payload`` with
``webhook_format="json"`` (docs/monitoring.md). A webhook that fails or times out never breaks
the caller (the cycle): the failure is logged and recorded on the row.
Call it outside any open write transaction (it commits its own row).

``AlertSink`` is also the cycle's ``alert`` callable ``(kind, message, details)``; kinds other
than the ones below (e.g. the cycle's ``cycle_step_failed``) are kept as given.

An ``actuals_quarantined`` alert is also the record of the rows a fetch quarantined (its payload
lists them, ``quarantined_rows``): the data-health breaker reads it as implausible counts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import Clock
from adflywheel.core.settings import Settings
from adflywheel.services.observability.metrics import observe_alert
from adflywheel.store.engine import transaction
from adflywheel.store.monitoring import Alert

# What sends an alert: ``(kind, message, details)``; details may name ``account_id``. The
# ``AlertSink`` in production, a recorder in tests.
AlertFn = Callable[[str, str, dict[str, Any]], None]

log = logging.getLogger("adflywheel.services.alerts")


class AlertKind(StrEnum):
    DRIFT = "drift"
    BREAKER = "breaker"
    RETRAIN = "retrain"
    FETCH_FAILURE = "fetch_failure"
    QUARANTINE = "actuals_quarantined"


_LEVEL = {
    AlertKind.DRIFT.value: logging.WARNING,
    AlertKind.BREAKER.value: logging.ERROR,
    AlertKind.RETRAIN.value: logging.INFO,
    AlertKind.FETCH_FAILURE.value: logging.ERROR,
    AlertKind.QUARANTINE.value: logging.WARNING,
}


class AlertSink:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        *,
        webhook_url: str | None = None,
        webhook_format: Literal["slack", "json"] = "slack",
        timeout_s: float = 5.0,
    ) -> None:
        self._factory = factory
        self._clock = clock
        self._webhook_url = webhook_url
        self._webhook_format = webhook_format
        self._timeout = timeout_s

    @classmethod
    def from_settings(
        cls, factory: sessionmaker[Session], clock: Clock, settings: Settings
    ) -> AlertSink:
        """The deployment's sink: its webhook URL and format."""
        return cls(
            factory,
            clock,
            webhook_url=settings.alert_webhook_url,
            webhook_format=settings.alert_webhook_format,
        )

    def emit(
        self,
        kind: AlertKind | str,
        message: str,
        *,
        account_id: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Log, store and (optionally) post one alert; return what was recorded."""
        kind = str(kind.value if isinstance(kind, AlertKind) else kind)
        if not kind or len(kind) > 30:
            raise ValueError("an alert kind is a short non-empty name")
        payload = _jsonable(payload or {})
        now = self._clock.now()
        prefix = f"[adflywheel {kind}]" + (f" account {account_id}" if account_id else "")
        level = _LEVEL.get(kind, logging.WARNING)
        log.log(level, "%s %s", prefix, message, extra={"alert_payload": payload})
        observe_alert(kind)
        body = (
            webhook_payload(kind, message, account_id, payload, now)
            if self._webhook_format == "json"
            else {"text": f"{prefix}: {message}"}
        )
        delivery = self._post(body) if self._webhook_url else "logged"
        with transaction(self._factory) as session:
            row = Alert(
                account_id=account_id,
                kind=kind,
                message=message,
                payload=payload,
                delivery=delivery[:200],
                created_at=now,
            )
            session.add(row)
            session.flush()
            alert_id = row.id
        return {"id": alert_id, "kind": kind, "message": message, "delivery": delivery}

    def __call__(self, kind: str, message: str, details: dict[str, Any]) -> None:
        """The cycle's alert callable: ``details["account_id"]``, when given, names the account."""
        account = details.get("account_id")
        self.emit(
            kind,
            message,
            account_id=int(account) if account is not None else None,
            payload=details,
        )

    def _post(self, body: dict[str, Any]) -> str:
        assert self._webhook_url is not None
        try:
            response = httpx.post(self._webhook_url, json=body, timeout=self._timeout)
        except httpx.HTTPError as error:
            log.warning("alert webhook failed: %s", error)
            return f"failed: {type(error).__name__}: {error}"
        if response.is_success:
            return f"webhook:{response.status_code}"
        log.warning("alert webhook answered %s: %s", response.status_code, response.text[:200])
        return f"failed: HTTP {response.status_code}"


WEBHOOK_SCHEMA = "adflywheel.alert/v1"


def webhook_payload(
    kind: str, message: str, account_id: int | None, details: dict[str, Any], at: datetime
) -> dict[str, Any]:
    """The generic webhook's body (``alert_webhook_format=json``); its fields are documented in
    docs/monitoring.md and only ever grow."""
    return {
        "schema": WEBHOOK_SCHEMA,
        "kind": kind,
        "level": logging.getLevelName(_LEVEL.get(kind, logging.WARNING)).lower(),
        "message": message,
        "account_id": account_id,
        "created_at": at.isoformat(),
        "details": details,
    }


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return out


def recent_alerts(
    session: Session,
    account_id: int | None,
    *,
    since: datetime | None = None,
    limit: int = 100,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """The alerts raised for an account (None: every account's), newest first: ``{id, kind,
    message, payload, delivery, created_at}`` (UTC). Alerts have no open/acknowledged state:
    each is one event; ``since`` bounds how far back a page looks."""
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)
    if account_id is not None:
        query = query.where(Alert.account_id == account_id)
    if kind is not None:
        query = query.where(Alert.kind == kind)
    if since is not None:
        query = query.where(Alert.created_at >= since)
    return [
        {
            "id": a.id,
            "kind": a.kind,
            "message": a.message,
            "payload": a.payload,
            "delivery": a.delivery,
            "created_at": a.created_at.isoformat(),
        }
        for a in session.scalars(query)
    ]


def quarantined_rows(session: Session, account_id: int, *, since: datetime) -> list[dict[str, Any]]:
    """The rows fetches quarantined, as recorded by ``actuals_quarantined`` alerts raised at or
    after ``since``: ``{"ad_id", "hour_start" (ISO, None on daily rows), "date", "impressions",
    "clicks", "link_clicks"}``, oldest alert first."""
    query = (
        select(Alert.payload)
        .where(
            Alert.account_id == account_id,
            Alert.kind == AlertKind.QUARANTINE.value,
            Alert.created_at >= since,
        )
        .order_by(Alert.created_at, Alert.id)
    )
    out: list[dict[str, Any]] = []
    for payload in session.scalars(query):
        rows = payload.get("rows") if isinstance(payload, dict) else None
        out.extend(r for r in rows or [] if isinstance(r, dict) and isinstance(r.get("ad_id"), str))
    return out
