"""Ensemble weights of the compound learner and their history (loop 5).

Every learning of the weights is a new row (append-only): the newest row of an account is the
current weights, the older ones their history, each with the holdout it was learnt on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adflywheel.store.models import Base
from adflywheel.store.types import UTCDateTime


class EnsembleWeightsRow(Base):
    """One learning of the meta-learner for an account, as of ``as_of`` (the holdout's end)."""

    __tablename__ = "ensemble_weights"
    __table_args__ = (Index("ix_ensemble_weights_account_asof", "account_id", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(20))
    weights: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    intercept: Mapped[float] = mapped_column(Float, default=0.0)
    slope: Mapped[float] = mapped_column(Float, default=1.0)
    # The whole learnt state (spreads, scales, per-model holdout measures) to rebuild the model.
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    holdout_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    holdout_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    xgb_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
