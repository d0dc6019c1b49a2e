"""An account's attribution window and which of its days are final (``core/attribution.py``):
read by the freshness endpoint and the promoter, set per account (Meta's attribution setting of
the ad account: 7-day click unless the advertiser chose another)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from adflywheel.core.attribution import Finality, check_window, finality, window_of
from adflywheel.core.errors import NotFoundError
from adflywheel.store.fetching import freshness_of
from adflywheel.store.models import Account


def _account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFoundError(f"no account {account_id}")
    return account


def account_finality(session: Session, account_id: int, now: dt.datetime) -> Finality:
    """The account's final and provisional days as of ``now`` in its time zone."""
    account = _account(session, account_id)
    return finality(now, account.timezone, window_of(account.attribution_window_days))


def set_attribution_window(session: Session, account_id: int, days: int) -> None:
    """Change the account's window (1-28 days): finality follows at once, and the next fetch
    re-reads the new window whatever the hour (its last re-read covered the old one)."""
    account = _account(session, account_id)
    if window_of(account.attribution_window_days) != check_window(days):
        account.attribution_window_days = days
        record = freshness_of(session, account_id)
        if record is not None:
            record.daily_refetched_at = None
    session.flush()
