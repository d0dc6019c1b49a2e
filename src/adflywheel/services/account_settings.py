"""Changing what an account lets the service do, with a record of who did it (issue #18).

The account's mode (recommend / autopilot), its guardrails (the kill switch among them) and its
loop switches (power) are changed here and only here, by the API, the CLI and the console alike:
each change that changes something writes an ``audit_events`` row (actor, what, the old and new
values of the fields that changed, when) in the same transaction as the change. The functions
take an open session and leave committing to the caller, so a refused change records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from adflywheel.core.domain import AccountMode
from adflywheel.core.errors import ConflictError, InvalidInputError
from adflywheel.core.loops import validate_loops
from adflywheel.services.promoter.settings import PromoterSettings, load_settings, store_settings
from adflywheel.store.audit import AuditEvent, add_event, events
from adflywheel.store.power import load_loops, save_loops


def set_mode(
    session: Session, account_id: int, mode: AccountMode, *, actor: str, now: datetime
) -> PromoterSettings:
    """Switch the account to ``mode``. Autopilot needs what ``autopilot_problem`` names (an
    account-wide ceiling): without it a ``ConflictError`` (409); recommend is always allowed."""
    settings = load_settings(session, account_id)
    g = settings.guardrails
    if mode is AccountMode.AUTOPILOT and g.autopilot_problem() is not None:
        raise ConflictError(str(g.autopilot_problem()))
    changed = PromoterSettings(settings.test, replace(g, mode=mode), settings.history_hours)
    _store(session, account_id, settings, changed, actor=actor, now=now)
    return changed


def replace_guardrails(
    session: Session, account_id: int, values: dict[str, Any], *, actor: str, now: datetime
) -> PromoterSettings:
    """Replace every guardrail and test setting by ``values`` (absent ones take their defaults),
    keeping the mode, which is switched on its own (``set_mode``): what ``PUT
    /accounts/me/guardrails`` does. Bad values: ``InvalidInputError``; taking away what an
    account on autopilot needs: ``ConflictError``."""
    current = load_settings(session, account_id)
    mode = current.guardrails.mode
    changed = _validated({**values, "mode": mode.value}, mode)
    _store(session, account_id, current, changed, actor=actor, now=now)
    return changed


def update_guardrails(
    session: Session, account_id: int, changes: dict[str, Any], *, actor: str, now: datetime
) -> PromoterSettings:
    """Change only the settings named in ``changes`` (the others are kept), all or nothing:
    the CLI's ``accounts guardrails`` and the console's kill switch. A ``mode`` among them is
    switched as ``set_mode`` would (and recorded as a mode change)."""
    current = load_settings(session, account_id)
    mode = current.guardrails.mode
    wanted = {**current.to_dict(), **changes}
    if "mode" in changes:
        try:
            target = AccountMode(changes["mode"])
        except ValueError as error:
            raise InvalidInputError(f"mode must be recommend or autopilot: {error}") from error
        wanted["mode"] = target.value
    changed = _validated(wanted, mode)
    _store(session, account_id, current, changed, actor=actor, now=now)
    return changed


def _validated(document: dict[str, Any], mode: AccountMode) -> PromoterSettings:
    """The settings ``document`` describes; refusing autopilot without what it needs is a
    conflict with the account's state (409), any other bad value the caller's (422)."""
    autopilot = AccountMode.AUTOPILOT in (mode, document.get("mode"))
    try:
        return PromoterSettings.from_dict(document)
    except ValueError as error:  # the values are the caller's
        if autopilot and "autopilot" in str(error):
            raise ConflictError(f"{error}; or switch the account to recommend first") from error
        raise InvalidInputError(str(error)) from error


def set_loops(
    session: Session, account_id: int, loops: Iterable[int], *, actor: str, now: datetime
) -> list[int]:
    """Choose which of the seven loops run for the account (its power switches); an unknown
    loop number is an ``InvalidInputError``. Returns the stored choice, sorted."""
    wanted = sorted(set(loops))
    try:
        validate_loops(wanted)
    except ValueError as error:  # the loop numbers are the caller's
        raise InvalidInputError(str(error)) from error
    before = load_loops(session, account_id)
    save_loops(session, account_id, wanted, now=now, actor=actor[:100])
    if before != wanted:
        add_event(
            session,
            account_id,
            actor=actor,
            what="power",
            old={"loops": before},  # None: the deployment's default
            new={"loops": wanted},
            now=now,
        )
    session.flush()
    return wanted


def _store(
    session: Session,
    account_id: int,
    before: PromoterSettings,
    after: PromoterSettings,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Store the settings and record what changed: the mode as a ``mode`` event, every other
    field as one ``guardrails`` event. Nothing changed: stored again, nothing recorded."""
    store_settings(session, account_id, after, now=now, actor=actor[:100])
    old, new = _plain(before.to_dict()), _plain(after.to_dict())
    changed = sorted(k for k in new if old.get(k) != new[k])
    if "mode" in changed:
        add_event(
            session,
            account_id,
            actor=actor,
            what="mode",
            old={"mode": old.get("mode")},
            new={"mode": new["mode"]},
            now=now,
        )
    rest = [k for k in changed if k != "mode"]
    if rest:
        add_event(
            session,
            account_id,
            actor=actor,
            what="guardrails",
            old={k: old.get(k) for k in rest},
            new={k: new[k] for k in rest},
            now=now,
        )


def _plain(document: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(document, default=str))
    return out


def audit_log(
    session: Session,
    account_id: int,
    *,
    what: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Who changed the account's mode, guardrails or loops, newest first: ``{event_id, at,
    actor, what, old, new}`` (``old``/``new``: only the fields that changed; times UTC)."""
    return [event_out(e) for e in events(session, account_id, what=what, since=since, limit=limit)]


def event_out(event: AuditEvent) -> dict[str, Any]:
    """One audit row as the API, the CLI and the console show it."""
    return {
        "event_id": event.id,
        "at": event.created_at.isoformat(),
        "actor": event.actor,
        "what": event.what,
        "old": event.old,
        "new": event.new,
    }
