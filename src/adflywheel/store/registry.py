"""The model registry (loop 5): the champion alias and the append-only record of its moves.

Versions themselves live in ``ModelVersion`` (store/models.py). An alias is a mutable pointer from
(account, model name, alias) to a version, as in MLflow's aliases; the registry keeps what MLflow
does not: every promotion, rollback and refused challenger as an append-only row with its evidence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from adflywheel.store.models import Base
from adflywheel.store.types import UTCDateTime


class ModelAlias(Base):
    """Which version answers to ``alias`` (e.g. "champion") for one account's model."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("account_id", "name", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    alias: Mapped[str] = mapped_column(String(40))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModelEvent(Base):
    """One move of an alias, or a challenger the gate refused: never updated, never deleted.

    ``action`` is ``promote``, ``rollback`` or ``refuse``; ``from_version_id`` is the alias before,
    ``to_version_id`` after (equal to before for a refusal; None when there was or is no champion);
    ``candidate_version_id`` the version judged.
    """

    __tablename__ = "model_events"
    __table_args__ = (Index("ix_model_events_account_name", "account_id", "name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    alias: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(20))
    from_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    to_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    candidate_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
