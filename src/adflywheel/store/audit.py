"""The settings audit: who changed an account's mode, guardrails or loop switches, from what to
what, and when (issue #18). Budget approvals and rollbacks keep their actor on their own
``budget_changes`` row, which is already the money's audit log.

One row per change that changed something; ``old`` and ``new`` hold only the fields that
changed (a whole guardrails document would bury the one value a person moved).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from adflywheel.store.models import Base
from adflywheel.store.types import UTCDateTime

# What a row records: the account's mode, its guardrails (the kill switch among them), or
# which loops run (the power switches).
WHATS = ("mode", "guardrails", "power")


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # ``api:<account>``, ``user:<email>``, ``cli:<command>``: whoever the caller says it is.
    actor: Mapped[str] = mapped_column(String(320))
    what: Mapped[str] = mapped_column(String(40))
    old: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    new: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def add_event(
    session: Session,
    account_id: int,
    *,
    actor: str,
    what: str,
    old: dict[str, Any],
    new: dict[str, Any],
    now: datetime,
) -> AuditEvent:
    """Record one change (in the caller's transaction, so it commits with the change)."""
    event = AuditEvent(
        account_id=account_id, actor=actor[:320], what=what, old=old, new=new, created_at=now
    )
    session.add(event)
    session.flush()
    return event


def events(
    session: Session,
    account_id: int,
    *,
    what: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """The account's events, newest first."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.account_id == account_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    if what is not None:
        query = query.where(AuditEvent.what == what)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    return list(session.scalars(query))
