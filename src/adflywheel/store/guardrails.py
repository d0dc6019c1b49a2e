"""Per-account settings of the auto-promoter: the statistics and the guardrails, as one JSON
document (validated by the service before it is stored), with who changed them and when.

One row per account; no row means the defaults. JSON rather than columns because the set of
guardrails grows with experience and every reader validates the whole document anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from adflywheel.store.models import Base
from adflywheel.store.types import UTCDateTime


class AccountGuardrails(Base):
    __tablename__ = "account_guardrails"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))


def load_guardrails(session: Session, account_id: int) -> dict[str, Any] | None:
    row = session.get(AccountGuardrails, account_id)
    return dict(row.settings) if row is not None else None


def save_guardrails(
    session: Session, account_id: int, settings: dict[str, Any], *, now: datetime, actor: str
) -> None:
    row = session.get(AccountGuardrails, account_id)
    if row is None:
        session.add(
            AccountGuardrails(
                account_id=account_id, settings=settings, updated_at=now, updated_by=actor
            )
        )
    else:
        row.settings, row.updated_at, row.updated_by = settings, now, actor
