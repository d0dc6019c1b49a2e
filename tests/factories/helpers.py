"""Small builders shared by tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.store.accounts import create_account, issue_key
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import Account


def new_account(
    engine: Engine, name: str, now: datetime, *, guardrails: str | None = "legacy", **fields: Any
) -> tuple[int, str]:
    """Create an account (``fields`` as ``create_account`` takes them); return its id and a
    fresh API key. ``guardrails`` as ``set_guardrails`` takes them."""
    with transaction(make_session_factory(engine)) as session:
        account = create_account(session, name, now, **fields)
        set_guardrails(session, account.id, now, guardrails)
        key = issue_key(session, account, now)
    return key.account_id, key.key


def set_guardrails(session: Session, account_id: int, now: datetime, kind: str | None) -> None:
    """Put a test account on autopilot, explicitly. ``"legacy"``: the guardrails of the service
    before its money-safety rules (no ceiling, promotions x2 growing campaigns, no edit rules),
    for tests of mechanics that do not depend on those rules (idempotency, crash safety, the
    statistics); ``"safe"``: the defaults on autopilot with a ceiling; None: a new account's
    defaults (recommend mode), as the money-safety tests want."""
    if kind is None:
        return
    from adflywheel.services.promoter.settings import PromoterSettings, store_settings
    from adflywheel.sim.harness import simulated_guardrails

    g = simulated_guardrails(kind, 2**53 - 1 if kind == "legacy" else 10**9)
    store_settings(session, account_id, PromoterSettings(guardrails=g), now=now, actor="test")


def key_for(factory: sessionmaker[Session], account_id: int, now: datetime) -> str:
    """A fresh API key for an account that exists already."""
    with transaction(factory) as session:
        account = session.get(Account, account_id)
        assert account is not None
        return issue_key(session, account, now).key


def count_rows(engine: Engine, model: type) -> int:
    """How many rows ``model``'s table holds."""
    with make_session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def small_catalog(prefix: str = "") -> dict[str, Any]:
    return {
        "campaigns": [{"id": f"{prefix}c1", "name": "Spring", "daily_budget_minor": 10_000}],
        "ad_sets": [
            {"id": f"{prefix}s{i}", "campaign_id": f"{prefix}c1", "daily_budget_minor": 5_000}
            for i in (1, 2)
        ],
        "ads": [
            {
                "id": f"{prefix}a{i}",
                "ad_set_id": f"{prefix}s{i}",
                "campaign_id": f"{prefix}c1",
                "headline": f"Ad {i}",
                "is_control": i == 1,
            }
            for i in (1, 2)
        ],
    }


def row(ad_id: str, hour: str, **values: int) -> dict[str, Any]:
    base = {"impressions": 1000, "clicks": 20, "link_clicks": 12, "spend_minor": 800}
    return {"ad_id": ad_id, "hour_start": hour, **base, **values}
