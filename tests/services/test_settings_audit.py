"""The settings audit (issue #18): every change of an account's mode, guardrails or loop
switches says who, what, from what to what and when; a refused or empty change records
nothing; one account never sees another's events. And the promoter's dismiss."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from adflywheel.core.domain import AccountMode
from adflywheel.core.errors import ConflictError, InvalidInputError, NotFoundError
from adflywheel.services.account_settings import (
    audit_log,
    replace_guardrails,
    set_loops,
    set_mode,
    update_guardrails,
)
from adflywheel.services.promoter.actions import awaiting_approval, dismiss, history
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, BudgetChange
from tests.factories.clock import T0
from tests.factories.helpers import new_account

pytestmark = pytest.mark.db
LATER = T0 + timedelta(minutes=30)


def test_each_change_is_recorded_with_who_what_old_and_new(engine: Engine) -> None:
    account, _ = new_account(engine, "acme", T0, guardrails=None)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        update_guardrails(
            session, account, {"max_account_budget_minor": 50_000}, actor="cli:ana", now=T0
        )
        set_mode(session, account, AccountMode.AUTOPILOT, actor="user:ana@x.io", now=LATER)
        update_guardrails(session, account, {"kill_switch": True}, actor="api:acme", now=LATER)
        set_loops(session, account, [2, 7, 2], actor="user:bo@x.io", now=LATER)
    with factory() as session:
        events = audit_log(session, account)
    assert [(e["what"], e["actor"]) for e in events] == [
        ("power", "user:bo@x.io"),
        ("guardrails", "api:acme"),
        ("mode", "user:ana@x.io"),
        ("guardrails", "cli:ana"),
    ]
    power, kill, mode, ceiling = events
    assert power["old"] == {"loops": None} and power["new"] == {"loops": [2, 7]}
    assert kill["old"] == {"kill_switch": False} and kill["new"] == {"kill_switch": True}
    assert mode["old"] == {"mode": "recommend"} and mode["new"] == {"mode": "autopilot"}
    assert ceiling["new"] == {"max_account_budget_minor": 50_000}
    assert ceiling["at"] == T0.isoformat() and mode["at"] == LATER.isoformat()
    with factory() as session:
        assert [e["what"] for e in audit_log(session, account, what="mode")] == ["mode"]
        assert len(audit_log(session, account, since=LATER)) == 3
        assert len(audit_log(session, account, limit=1)) == 1


def test_refused_and_empty_changes_record_nothing(engine: Engine) -> None:
    account, _ = new_account(engine, "acme", T0, guardrails=None)
    other, _ = new_account(engine, "other", T0, guardrails=None)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        with pytest.raises(ConflictError, match="ceiling"):
            set_mode(session, account, AccountMode.AUTOPILOT, actor="x", now=T0)
        with pytest.raises(InvalidInputError):
            update_guardrails(session, account, {"edit_dead_band": 2.0}, actor="x", now=T0)
        with pytest.raises(InvalidInputError):
            set_loops(session, account, [9], actor="x", now=T0)
        set_mode(session, account, AccountMode.RECOMMEND, actor="x", now=T0)  # no change
        update_guardrails(session, other, {"kill_switch": True}, actor="api:other", now=T0)
    with factory() as session:
        assert audit_log(session, account) == []
        assert [e["actor"] for e in audit_log(session, other)] == ["api:other"]


def test_replacing_guardrails_keeps_the_mode_and_autopilot_keeps_its_ceiling(
    engine: Engine,
) -> None:
    account, _ = new_account(engine, "acme", T0, guardrails=None)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        replace_guardrails(session, account, {"max_account_budget_minor": 9}, actor="a", now=T0)
        set_mode(session, account, AccountMode.AUTOPILOT, actor="a", now=T0)
        with pytest.raises(ConflictError, match="recommend first"):
            replace_guardrails(session, account, {}, actor="a", now=T0)
        kept = replace_guardrails(
            session, account, {"max_account_budget_minor": 10}, actor="a", now=T0
        )
    assert kept.guardrails.mode is AccountMode.AUTOPILOT


def _awaiting(engine: Engine, account_id: int, key: str) -> int:
    with transaction(make_session_factory(engine)) as session:
        ad_set = session.scalars(select(AdSet).where(AdSet.account_id == account_id)).first()
        assert ad_set is not None
        action = BudgetChange(
            account_id=account_id,
            ad_set_id=ad_set.id,
            old_budget_minor=5_000,
            new_budget_minor=6_000,
            reason="promoter:promote",
            evidence={"variant_id": "a1"},
            mode="pending_approval",
            actor="promoter",
            cycle_hour=T0,
            idempotency_key=key,
            created_at=T0,
        )
        session.add(action)
        session.flush()
        return action.id


def test_a_promotion_awaiting_approval_can_be_dismissed_once(engine: Engine) -> None:
    from adflywheel.platforms.base import PlatformAd
    from tests.factories.catalog import store_single_ad_set

    account, _ = new_account(engine, "acme", T0)
    rival, _ = new_account(engine, "rival", T0)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        store_single_ad_set(session, account, [PlatformAd("a1", "s1", "c1", "A")], T0)
    action = _awaiting(engine, account, "awaiting-1")
    with factory() as session:
        assert [a["action_id"] for a in awaiting_approval(session, account, now=LATER)] == [action]
    with pytest.raises(NotFoundError):
        dismiss(factory, None, rival, action, now=LATER, actor="x")
    first = dismiss(factory, None, account, action, now=LATER, actor="user:ana@x.io")
    assert first["mode"] == "dismissed" and first["already"] is False
    assert first["evidence"]["dismissed_by"] == "user:ana@x.io"
    assert dismiss(factory, None, account, action, now=LATER, actor="y")["already"] is True
    with factory() as session:
        assert awaiting_approval(session, account, now=LATER) == []
        assert history(session, account)[0]["mode"] == "dismissed"
    applied = _awaiting(engine, account, "awaiting-2")
    with transaction(factory) as session:
        record = session.get(BudgetChange, applied)
        assert record is not None
        record.mode = "applied"
    with pytest.raises(ConflictError, match="not awaiting approval"):
        dismiss(factory, None, account, applied, now=LATER, actor="x")
