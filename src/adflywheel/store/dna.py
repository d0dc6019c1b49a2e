"""Stored Creative DNA: one row per variant and DNA version (the migration adds the table)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from adflywheel.store.models import Base
from adflywheel.store.types import UTCDateTime


class CreativeDnaRow(Base):
    """A variant's fingerprint: flat genes for queries, the full document, and the vector."""

    __tablename__ = "creative_dna"
    __table_args__ = (
        UniqueConstraint("variant_id", "dna_version"),
        Index("ix_creative_dna_account", "account_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    dna_version: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    genes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    vector: Mapped[list[float]] = mapped_column(JSON, default=list)
    extracted_at: Mapped[datetime] = mapped_column(UTCDateTime)
