"""Per-account loop switches (power levels) and the cycle's crash-recovery lease.

One row per account that has chosen its loops; no row means the deployment's default
(``Settings.loops``). The loops are stored as a sorted list of loop numbers (1–7).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from adflywheel.store.models import Base
from adflywheel.store.types import UTCDateTime


class AccountLoops(Base):
    __tablename__ = "account_loops"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    loops: Mapped[list[int]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))


def load_loops(session: Session, account_id: int) -> list[int] | None:
    row = session.get(AccountLoops, account_id)
    return sorted(row.loops) if row is not None else None


def save_loops(
    session: Session, account_id: int, loops: list[int], *, now: datetime, actor: str
) -> None:
    row = session.get(AccountLoops, account_id)
    if row is None:
        session.add(
            AccountLoops(
                account_id=account_id, loops=sorted(loops), updated_at=now, updated_by=actor
            )
        )
    else:
        row.loops, row.updated_at, row.updated_by = sorted(loops), now, actor
