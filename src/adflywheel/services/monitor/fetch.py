"""The actuals fetch job (loop 6): re-pull the hours that may still change, store them, say how
fresh each account's data is.

It sees the account's platform only through ``AdPlatform`` and the optional capabilities of
``platforms/base.py`` (daily rows, quarantined rows, an error's alert details); which platform
an account has is the registry's business (``platforms/registry.py``).

Meta restates recent numbers (late attribution, estimated breakdowns), so every run re-reads
today and yesterday in the account's time zone — from local midnight yesterday up to the start
of the current UTC hour (the running hour is incomplete and would read as a CTR dip) — and
upserts: a re-run or retry replaces rows, never adds to them. Daily rows (conversions, revenue)
are read for the same two local days when the platform has them. Conversions keep being
attributed to a day for the account's attribution window (7-day click by default), so once a day
(the first run of a local day, or 24 h after the last) the daily rows of the whole window are
read again, back to the day that becomes final today (``core/attribution.py``); a restated day
is an update with its revision, and the freshness record keeps when it was done. Each account's
rows and its freshness record commit together; a failure is recorded (with its error) in its own
transaction, alerted once (``fetch_failure``, with the account and the reason) and raised, and
``fetch_accounts`` carries on with the other accounts.

A row whose counts contradict each other (Meta's all-clicks above impressions on a tiny hourly
row) is quarantined by the platform: skipped, counted in the report, alerted once per row
(``actuals_quarantined``, whose payload is the record the data-health breaker reads as
implausible counts) — the rest of the account's fetch goes on.

After a successful fetch the platform's token is checked, at most daily (``token_check.py``):
one that expires soon raises a ``token_expiring`` alert.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.attribution import restatement_days, restatement_due, window_of
from adflywheel.core.clock import Clock, ensure_utc, floor_hour
from adflywheel.core.domain import DailyActual, HourlyActual
from adflywheel.platforms.base import (
    AdPlatform,
    DailyInsights,
    PlatformAccount,
    PlatformError,
    QuarantinedRow,
    Quarantining,
)
from adflywheel.platforms.registry import PlatformResolver
from adflywheel.services.alerts import AlertFn, AlertKind, AlertSink, quarantined_rows
from adflywheel.services.monitor.token_check import check_token
from adflywheel.services.observability.metrics import observe_fetch
from adflywheel.store.actuals import upsert_actuals, upsert_daily
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import transaction
from adflywheel.store.fetching import (
    freshness_dict,
    freshness_of,
    record_failure,
    record_success,
)
from adflywheel.store.models import Account

log = logging.getLogger(__name__)


class FetchError(PlatformError):
    """The fetch cannot be trusted (e.g. the platform account's currency is not the stored one)."""


@dataclass(frozen=True, slots=True)
class FetchWindow:
    start: dt.datetime  # UTC, local midnight of yesterday (floored to the UTC hour)
    end: dt.datetime  # UTC, start of the current hour: exclusive
    first_day: dt.date  # yesterday, local
    last_day: dt.date  # today, local


def open_window(as_of: dt.datetime, timezone: str) -> FetchWindow:
    """The hours not yet final as of ``as_of``: yesterday and today in the account's zone."""
    zone = ZoneInfo(timezone)
    today = ensure_utc(as_of).astimezone(zone).date()
    yesterday = today - dt.timedelta(days=1)
    midnight = dt.datetime.combine(yesterday, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    return FetchWindow(midnight.replace(minute=0), floor_hour(as_of), yesterday, today)


@dataclass(frozen=True, slots=True)
class _Pulled:
    """What one fetch read from the platform, before anything is written."""

    remote: PlatformAccount
    window: FetchWindow
    catalogue: dict[str, Any] | None
    hourly: list[HourlyActual]
    daily: list[DailyActual]
    held: list[QuarantinedRow]
    # The attribution window's older days, re-read once a day: (first, last) and their rows.
    restatement: tuple[dt.date, dt.date] | None = None
    restated: tuple[DailyActual, ...] = ()


def fetch_account_actuals(
    factory: sessionmaker[Session],
    platform: AdPlatform,
    account_id: int,
    as_of: dt.datetime,
    clock: Clock,
    *,
    sync_catalogue: bool = False,
    alerts: AlertFn | None = None,
) -> dict[str, Any]:
    """Fetch and upsert one account's open hours (and days); record its freshness.

    ``as_of`` is the cycle's hour (or now); ``clock`` stamps the records. Raises whatever went
    wrong after recording it as the account's failed attempt and alerting it (``fetch_failure``).
    ``alerts`` is the alert sink (the cycle's, or one with the deployment's webhook); without one
    alerts are logged and stored (``AlertSink`` without a webhook).
    """
    sink: AlertFn = alerts if alerts is not None else AlertSink(factory, clock)
    started = time.perf_counter()
    window: FetchWindow | None = None  # known once the platform has said its time zone
    quarantining = isinstance(platform, Quarantining)
    if isinstance(platform, Quarantining):
        platform.take_quarantined()  # left over from an earlier, failed fetch: read again below
    try:
        remote = platform.account()
        window = open_window(as_of, remote.timezone)
        pulled = _pull(factory, platform, account_id, clock, remote, window, sync_catalogue, as_of)
        stored, fresh_quarantine = _store(
            factory, platform, account_id, clock, pulled, started, as_of
        )
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        with transaction(factory) as session:
            failed = record_failure(
                session,
                account_id,
                platform=platform.name,
                now=clock.now(),
                window=(window.start, window.end) if window else None,
                error=reason,
                seconds=round(time.perf_counter() - started, 4),
            )
            failures = failed.consecutive_failures
        _alert_failure(sink, account_id, platform.name, reason, error, window, failures)
        observe_fetch(platform.name, None)
        raise
    if fresh_quarantine:
        _alert_quarantine(sink, account_id, platform.name, fresh_quarantine, len(pulled.held))
    check_token(factory, platform, account_id, clock, sink)  # at most daily; never fails this
    observe_fetch(platform.name, stored, quarantined=len(pulled.held))
    return {
        "account_id": account_id,
        "status": "ok",
        "window": {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "days": [window.first_day.isoformat(), window.last_day.isoformat()],
            "timezone": remote.timezone,
        },
        "catalogue": pulled.catalogue,
        "hourly": stored["hourly"],
        "daily": stored["daily"],
        "restatement": stored["restatement"],
        "quarantined": _quarantine_counts(pulled.held) if quarantining else None,
        "freshness": stored["freshness"],
    }


def _pull(
    factory: sessionmaker[Session],
    platform: AdPlatform,
    account_id: int,
    clock: Clock,
    remote: PlatformAccount,
    window: FetchWindow,
    sync_catalogue: bool,
    as_of: dt.datetime,
) -> _Pulled:
    """Read the open window (and the catalogue, when asked) from the platform; and, once a
    day, the daily rows of the attribution window's older days in the same request."""
    catalogue = _sync(factory, platform, account_id, clock) if sync_catalogue else None
    hourly = platform.fetch_insights(window.start, window.end)
    daily: list[DailyActual] = []
    older: tuple[dt.date, dt.date] | None = None
    restated: tuple[DailyActual, ...] = ()
    if isinstance(platform, DailyInsights):
        older = _restatement(factory, account_id, as_of, remote.timezone, window.last_day)
        first = older[0] if older is not None else window.first_day
        rows = platform.fetch_daily(first, window.last_day + dt.timedelta(days=1))
        daily = [r for r in rows if r.date >= window.first_day]
        restated = tuple(r for r in rows if r.date < window.first_day)
    held = _in_window(
        platform.take_quarantined() if isinstance(platform, Quarantining) else [], window
    )
    return _Pulled(remote, window, catalogue, list(hourly), daily, held, older, restated)


def _restatement(
    factory: sessionmaker[Session],
    account_id: int,
    as_of: dt.datetime,
    timezone: str,
    today: dt.date,
) -> tuple[dt.date, dt.date] | None:
    """The older days of the attribution window to read again now, or None when they were
    read today already (``restatement_due``)."""
    with factory() as session:
        account = session.get(Account, account_id)
        record = freshness_of(session, account_id)
        days = window_of(account.attribution_window_days) if account is not None else None
        last = record.daily_refetched_at if record is not None else None
    if days is None or not restatement_due(last, ensure_utc(as_of), timezone):
        return None
    return restatement_days(today, days)


def _store(
    factory: sessionmaker[Session],
    platform: AdPlatform,
    account_id: int,
    clock: Clock,
    pulled: _Pulled,
    started: float,
    as_of: dt.datetime,
) -> tuple[dict[str, Any], list[QuarantinedRow]]:
    """Upsert what was pulled and record the success, in one transaction; the answer's counts
    and freshness, and the quarantined rows not alerted before."""
    remote, window = pulled.remote, pulled.window
    with transaction(factory) as session:
        account = session.get(Account, account_id)
        if account is None:
            raise FetchError(f"account {account_id} does not exist")
        if account.currency.upper() != remote.currency.upper():
            raise FetchError(
                f"platform account {remote.external_id} reports in {remote.currency}, "
                f"account {account_id} is kept in {account.currency}: money would be misread"
            )
        account.timezone = remote.timezone
        now = clock.now()
        h = upsert_actuals(session, account_id, pulled.hourly, source=platform.name, now=now)
        d = upsert_daily(session, account_id, pulled.daily, source=platform.name, now=now)
        old = upsert_daily(session, account_id, pulled.restated, source=platform.name, now=now)
        restatement: dict[str, Any] | None = None
        reread: tuple[dt.datetime, int, int] | None = None
        if pulled.restatement is not None:
            first, last = pulled.restatement
            reread = (ensure_utc(as_of), (last - first).days + 1, old.updated)
            restatement = {
                "days": [first.isoformat(), last.isoformat()],
                "days_read": reread[1],
                "received": old.received,
                "inserted": old.inserted,  # days not stored before (a first fetch: the backfill)
                "restated": old.updated,  # changed since last read: each left a revision
                "unchanged": old.unchanged,
            }
        newest = max((r.hour_start for r in pulled.hourly), default=None)
        if newest is not None:
            fresh = newest + dt.timedelta(hours=1)
            if account.actuals_fresh_until is None or fresh > account.actuals_fresh_until:
                account.actuals_fresh_until = fresh
        row = record_success(
            session,
            account_id,
            platform=platform.name,
            now=now,
            window=(window.start, window.end),
            newest_hour=newest,
            hourly=h.as_dict(),
            daily_received=d.received,
            seconds=round(time.perf_counter() - started, 4),
            restatement=reread,
        )
        stored = {
            "hourly": h.as_dict(),
            "daily": d.as_dict(),
            "restatement": restatement,
            "freshness": freshness_dict(row),
        }
        return stored, _not_yet_alerted(session, account_id, pulled.held, window)


# -- alerts: fetch failures and quarantined rows ------------------------------------------------


def _send(sink: AlertFn, kind: str, message: str, details: dict[str, Any]) -> None:
    try:
        sink(kind, message, details)
    except Exception:  # an alert that cannot be sent must not hide what the fetch did
        log.exception("alert %s could not be sent", kind)


def _alert_failure(
    sink: AlertFn,
    account_id: int,
    platform: str,
    reason: str,
    error: BaseException,
    window: FetchWindow | None,
    consecutive_failures: int,
) -> None:
    details: dict[str, Any] = {
        "account_id": account_id,
        "platform": platform,
        "reason": reason,
        "error_type": type(error).__name__,
        "consecutive_failures": consecutive_failures,
        "window": [window.start.isoformat(), window.end.isoformat()] if window else None,
    }
    if isinstance(error, PlatformError):
        details.update(error.alert_details())
    _send(
        sink,
        AlertKind.FETCH_FAILURE.value,
        f"actuals fetch from {platform} failed: {reason}",
        details,
    )


def _in_window(rows: Sequence[QuarantinedRow], window: FetchWindow) -> list[QuarantinedRow]:
    """Hourly rows of the fetched hours and daily rows of the fetched days (no duplicates)."""
    out: dict[tuple[str, str], QuarantinedRow] = {}
    for r in rows:
        if r.hour_start is not None and not window.start <= r.hour_start < window.end:
            continue
        out.setdefault(_quarantine_key(r), r)
    return list(out.values())


def _quarantine_key(r: QuarantinedRow) -> tuple[str, str]:
    return r.ad_id, r.hour_start.isoformat() if r.hour_start else f"day:{r.date_start}"


def _quarantine_out(r: QuarantinedRow) -> dict[str, Any]:
    return {
        "ad_id": r.ad_id,
        "hour_start": r.hour_start.isoformat() if r.hour_start else None,
        "date": r.date_start.isoformat(),
        "impressions": r.impressions,
        "clicks": r.clicks,
        "link_clicks": r.link_clicks,
    }


def _quarantine_counts(rows: Sequence[QuarantinedRow]) -> dict[str, Any]:
    hourly = [r for r in rows if r.hour_start is not None]
    return {
        "rows": len(rows),
        "hourly": len(hourly),
        "daily": len(rows) - len(hourly),
        "hours": sorted({r.hour_start.isoformat() for r in hourly if r.hour_start}),
    }


def _not_yet_alerted(
    session: Session, account_id: int, rows: Sequence[QuarantinedRow], window: FetchWindow
) -> list[QuarantinedRow]:
    """The quarantined rows no earlier fetch alerted (every fetch re-reads two days)."""
    if not rows:
        return []
    # An alert about a row of this window was raised after the row's hour began.
    since = window.start - dt.timedelta(days=1)
    seen = {
        (str(r["ad_id"]), str(r["hour_start"]) if r.get("hour_start") else f"day:{r.get('date')}")
        for r in quarantined_rows(session, account_id, since=since)
    }
    return [r for r in rows if _quarantine_key(r) not in seen]


def _alert_quarantine(
    sink: AlertFn, account_id: int, platform: str, rows: Sequence[QuarantinedRow], total: int
) -> None:
    hours = _quarantine_counts(rows)["hours"]
    _send(
        sink,
        AlertKind.QUARANTINE.value,
        f"{len(rows)} {platform} insight row(s) with clicks above impressions (or link clicks "
        f"above clicks) were quarantined: not stored, the data-health breaker sees them",
        {
            "account_id": account_id,
            "platform": platform,
            "count": len(rows),
            "quarantined_this_fetch": total,
            "hours": hours,
            "rows": [_quarantine_out(r) for r in rows],
        },
    )


def _sync(
    factory: sessionmaker[Session], platform: AdPlatform, account_id: int, clock: Clock
) -> dict[str, int]:
    campaigns, ad_sets, ads = (
        platform.list_campaigns(),
        platform.list_ad_sets(),
        platform.list_ads(),
    )
    with transaction(factory) as session:
        counts = sync_catalog(
            session, account_id, campaigns, ad_sets, ads, clock.now(), complete=True
        )
    return {"campaigns": counts.campaigns, "ad_sets": counts.ad_sets, "ads": counts.ads}


def fetch_accounts(
    factory: sessionmaker[Session],
    platforms: PlatformResolver,
    account_ids: Iterable[int],
    as_of: dt.datetime,
    clock: Clock,
    *,
    sync_catalogue: bool = True,
    alerts: AlertFn | None = None,
) -> dict[int, dict[str, Any]]:
    """Fetch every account in turn; one account's failure is reported (and alerted) and the
    rest go on."""
    results: dict[int, dict[str, Any]] = {}
    for account_id in account_ids:
        try:
            platform = platforms(account_id)
        except PlatformError as error:
            results[account_id] = {
                "account_id": account_id,
                "status": "no_platform",
                "error": str(error),
            }
            continue
        try:
            results[account_id] = fetch_account_actuals(
                factory,
                platform,
                account_id,
                as_of,
                clock,
                sync_catalogue=sync_catalogue,
                alerts=alerts,
            )
        except Exception as error:  # isolated per account; recorded in fetch_freshness
            results[account_id] = {
                "account_id": account_id,
                "status": "failed",
                "error": f"{type(error).__name__}: {error}",
            }
    return results


def freshness(factory: sessionmaker[Session], account_id: int) -> dict[str, object] | None:
    with factory() as session:
        return freshness_dict(freshness_of(session, account_id))
