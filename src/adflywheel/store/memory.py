"""Winner memory (loop 1): winners, their history and the index manifests.

The database is the source of truth: every FAISS index file can be rebuilt from ``memory_winners``.
A manifest row per index scope (one per account, one ``shared``) carries a version that is
bumped in the same transaction as any change to the scope's vectors, and the content hash of
those vectors; an index file whose own manifest disagrees is stale and is rebuilt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from adflywheel.store.models import Base
from adflywheel.store.types import UTCDateTime

SHARED_SCOPE = "shared"


def account_scope(account_id: int) -> str:
    return f"account-{account_id}"


class WinnerRow(Base):
    """A winner, kept for good: its DNA vector and text, stats when it qualified and now."""

    __tablename__ = "memory_winners"
    __table_args__ = (Index("ix_memory_winners_account_status", "account_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), unique=True
    )
    dna_version: Mapped[str] = mapped_column(String(20))
    vector: Mapped[list[float]] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    threshold_ctr: Mapped[float] = mapped_column(Float)
    qualified_impressions: Mapped[int] = mapped_column(BigInteger)
    qualified_clicks: Mapped[int] = mapped_column(BigInteger)
    qualified_probability: Mapped[float] = mapped_column(Float)
    latest_impressions: Mapped[int] = mapped_column(BigInteger)
    latest_clicks: Mapped[int] = mapped_column(BigInteger)
    latest_probability: Mapped[float] = mapped_column(Float)
    qualified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WinnerEvent(Base):
    """Every change of a winner's status, with the evidence at that moment."""

    __tablename__ = "memory_winner_events"
    __table_args__ = (Index("ix_memory_winner_events_winner", "winner_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    winner_id: Mapped[int] = mapped_column(ForeignKey("memory_winners.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(20))
    impressions: Mapped[int] = mapped_column(BigInteger)
    clicks: Mapped[int] = mapped_column(BigInteger)
    probability: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemoryPolicyRow(Base):
    """An account's own winner bar, when it differs from the service defaults."""

    __tablename__ = "memory_policies"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    threshold_ctr: Mapped[float] = mapped_column(Float)
    min_impressions: Mapped[int] = mapped_column(BigInteger)
    min_probability: Mapped[float] = mapped_column(Float)
    lapse_probability: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IndexManifestRow(Base):
    """What the index of one scope must contain (version, content hash, count) and what was
    last written (file, its SHA-256, kind)."""

    __tablename__ = "memory_indexes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
    dim: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str | None] = mapped_column(String(16))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    built_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def winners_of(session: Session, account_id: int) -> list[WinnerRow]:
    return list(
        session.scalars(
            select(WinnerRow).where(WinnerRow.account_id == account_id).order_by(WinnerRow.id)
        )
    )


def winners_by_id(session: Session, account_id: int, ids: list[int]) -> dict[int, WinnerRow]:
    """Only the account's own rows: an id of another account is simply absent."""
    if not ids:
        return {}
    rows = session.scalars(
        select(WinnerRow).where(WinnerRow.account_id == account_id, WinnerRow.id.in_(ids))
    )
    return {row.id: row for row in rows}


def manifest(session: Session, scope: str) -> IndexManifestRow | None:
    return session.scalar(select(IndexManifestRow).where(IndexManifestRow.scope == scope))


def lock_manifest(session: Session, scope: str) -> IndexManifestRow | None:
    """The manifest row locked for update (PostgreSQL; SQLite serialises writers anyway)."""
    return session.scalar(
        select(IndexManifestRow).where(IndexManifestRow.scope == scope).with_for_update()
    )
