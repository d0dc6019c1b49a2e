"""The token expiry warning: a platform token that expires soon reaches a human before the
fetches start failing.

At most once a day per account (after a successful fetch, so the check never delays or perturbs
the fetch itself) the platform is asked about its token (Meta: Graph's ``debug_token``). What it
says is kept on the account's connection (``token_expires_at``, ``token_valid``,
``token_checked_at``: ``accounts list`` shows it), and a token that is invalid or expires within
the platform's ``token_warn_days`` raises one ``token_expiring`` alert through the alert sink
(logged, stored, posted to the webhook). The daily claim is one atomic update, so concurrent
fetches never warn twice; a check that fails is logged and retried at the next fetch. The alert
names the token by its fingerprint only, never the token.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import Clock
from adflywheel.platforms.base import AdPlatform, ExpiringToken, TokenStatus
from adflywheel.services.alerts import AlertFn
from adflywheel.store.engine import transaction
from adflywheel.store.fetching import (
    claim_token_check,
    meta_connection,
    record_token_check,
    unclaim_token_check,
)

log = logging.getLogger(__name__)
CHECK_EVERY = dt.timedelta(days=1)
ALERT_KIND = "token_expiring"


def token_warning(status: TokenStatus, now: dt.datetime, warn_days: int) -> str | None:
    """Why the token needs a person (invalid, or expiring within ``warn_days``), or None."""
    if not status.valid:
        return "is no longer valid: fetches and writes will fail until it is replaced"
    if status.expires_at is not None and status.expires_within(now, warn_days):
        left = status.expires_at - now
        if left <= dt.timedelta(0):
            return f"expired at {status.expires_at.isoformat()}"
        days = left.total_seconds() / 86_400
        return f"expires at {status.expires_at.isoformat()} (in {days:.1f} days): replace it"
    return None


def check_token(
    factory: sessionmaker[Session],
    platform: AdPlatform,
    account_id: int,
    clock: Clock,
    alerts: AlertFn,
    *,
    every: dt.timedelta = CHECK_EVERY,
) -> dict[str, Any] | None:
    """Ask about the platform's token if due, keep the answer, warn if needed; None when not
    due (or the platform's tokens do not expire, or the account has no stored connection)."""
    if not isinstance(platform, ExpiringToken):
        return None
    now = clock.now()
    with transaction(factory) as session:
        claimed, previous = claim_token_check(session, account_id, now, every)
    if not claimed:
        return None
    try:
        status = platform.token_status()
    except Exception as error:  # a failed check must not fail the fetch: next fetch retries
        with transaction(factory) as session:
            unclaim_token_check(session, account_id, previous)
        log.warning(
            "account %s: token check failed: %s: %s", account_id, type(error).__name__, error
        )
        return None
    with transaction(factory) as session:
        row = record_token_check(
            session, account_id, now, valid=status.valid, expires_at=status.expires_at
        )
        fingerprint = row.token_fingerprint if row is not None else None
    warning = token_warning(status, now, platform.token_warn_days)
    if warning is not None:
        details = {
            "account_id": account_id,
            "platform": platform.name,
            "token": "account" if fingerprint else "environment",
            "fingerprint": fingerprint,
            "warn_days": platform.token_warn_days,
            **status.as_dict(),
        }
        try:
            alerts(ALERT_KIND, f"the {platform.name} access token {warning}", details)
        except Exception:  # the warning is kept on the connection all the same
            log.exception("alert %s could not be sent", ALERT_KIND)
    return {**status.as_dict(), "warning": warning}


def token_summary(
    session: Session, account_id: int, now: dt.datetime, warn_days: int
) -> dict[str, Any] | None:
    """The account's token as listings show it (never the token): which one is used, its
    fingerprint, what the last check said and whether it needs a person."""
    row = meta_connection(session, account_id)
    if row is None:
        return None
    status = (
        TokenStatus(bool(row.token_valid), row.token_expires_at)
        if row.token_checked_at is not None
        else None
    )
    source = "account" if row.token_ciphertext else ("env" if row.token_env else "deployment")
    return {
        "source": source,
        "fingerprint": row.token_fingerprint,
        "token_env": row.token_env,
        "checked_at": row.token_checked_at.isoformat() if row.token_checked_at else None,
        "valid": row.token_valid,
        "expires_at": row.token_expires_at.isoformat() if row.token_expires_at else None,
        "warning": token_warning(status, now, warn_days) if status is not None else None,
    }
