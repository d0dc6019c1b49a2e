"""Cross-account learning (loop 3): niches, opt-ins, contributions, patterns, privacy budget.

Per-account rows (settings, niche, contributions) are only ever read for their own account; the
niche-level rows (patterns, budget ledger) hold nothing that names or counts an account. The
read helpers here need no other loop's code, so the DNA service can take priors from them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from adflywheel.loops.crosslearn.niche import NicheDetection, default_detector
from adflywheel.loops.crosslearn.prior import NichePrior, global_prior
from adflywheel.loops.crosslearn.sharing import PublishedEffect, PublishedPattern
from adflywheel.store.models import Account, Base, Variant
from adflywheel.store.types import UTCDateTime


class CrossLearnSettings(Base):
    """An account's choice: opted in to sharing (off by default) and its declared category."""

    __tablename__ = "crosslearn_settings"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    opted_in: Mapped[bool] = mapped_column(Boolean, default=False)
    declared_category: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccountNiche(Base):
    """The account's detected niche; re-detected when its creatives' text changes."""

    __tablename__ = "account_niches"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    niche: Mapped[str | None] = mapped_column(String(40))
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    margin: Mapped[float] = mapped_column(Float, default=0.0)
    category_match: Mapped[str | None] = mapped_column(String(40))
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    n_texts: Mapped[int] = mapped_column(Integer, default=0)
    texts_digest: Mapped[str] = mapped_column(String(64), default="")
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NicheContribution(Base):
    """One account's clipped summary for one period: one row per (account, period), so a re-run
    of the period replaces it and an account counts once."""

    __tablename__ = "niche_contributions"
    __table_args__ = (
        UniqueConstraint("account_id", "period_start"),
        Index("ix_niche_contributions_niche_period", "niche", "period_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    niche: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    log_base: Mapped[float] = mapped_column(Float)
    lifts: Mapped[list[float]] = mapped_column(JSON, default=list)
    n_ads: Mapped[int] = mapped_column(Integer)
    clipped: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NichePatternRow(Base):
    """A published, noised niche pattern for one period (nothing per account in it)."""

    __tablename__ = "niche_patterns"
    __table_args__ = (UniqueConstraint("niche", "period_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    niche: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    accounts: Mapped[str] = mapped_column(String(16))
    noisy_count: Mapped[float] = mapped_column(Float)
    epsilon: Mapped[float] = mapped_column(Float)
    base_ctr: Mapped[float] = mapped_column(Float)
    base_ctr_low: Mapped[float] = mapped_column(Float)
    base_ctr_high: Mapped[float] = mapped_column(Float)
    base_log_sd: Mapped[float] = mapped_column(Float)
    effects: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def pattern(self) -> PublishedPattern:
        return PublishedPattern(
            niche=self.niche,
            accounts=self.accounts,
            epsilon=self.epsilon,
            base_ctr=self.base_ctr,
            base_ctr_low=self.base_ctr_low,
            base_ctr_high=self.base_ctr_high,
            base_log_sd=self.base_log_sd,
            effects=tuple(PublishedEffect(**e) for e in self.effects),
            noisy_count=self.noisy_count,
        )


class PrivacyLedgerRow(Base):
    """ε spent by a niche: one row per publication (the budget is summed over a window)."""

    __tablename__ = "privacy_ledger"
    __table_args__ = (UniqueConstraint("niche", "period_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    niche: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float, default=0.0)
    mechanism: Mapped[str] = mapped_column(String(40))
    spent_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- reads every loop may use --------------------------------------------------------------------


def latest_pattern(session: Session, niche: str) -> NichePatternRow | None:
    return session.scalar(
        select(NichePatternRow)
        .where(NichePatternRow.niche == niche)
        .order_by(NichePatternRow.period_start.desc())
        .limit(1)
    )


def account_niche(session: Session, account_id: int) -> str | None:
    row = session.get(AccountNiche, account_id)
    return row.niche if row is not None else None


def declared_category(session: Session, account_id: int) -> str | None:
    """The category the account declared for cross-learning, else the platform's one."""
    settings = session.get(CrossLearnSettings, account_id)
    if settings is not None and settings.declared_category:
        return settings.declared_category
    account = session.get(Account, account_id)
    return account.category if account is not None else None


def prior_for_niche(session: Session, niche: str) -> NichePrior | None:
    row = latest_pattern(session, niche)
    return NichePrior.from_pattern(row.pattern(), row.period_start) if row is not None else None


def global_prior_now(session: Session) -> NichePrior | None:
    """The average of every niche's latest published pattern (post-processing only)."""
    niches = session.scalars(select(NichePatternRow.niche).distinct()).all()
    priors = [p for p in (prior_for_niche(session, n) for n in sorted(niches)) if p is not None]
    return global_prior(priors)


def niche_input(
    session: Session,
    account_id: int,
    *,
    category: str | None = None,
    extra_texts: Sequence[str] = (),
) -> tuple[str | None, list[str], str]:
    """What niche detection reads of an account: its declared category (``category`` overrides
    it), its ads' text (headline, primary text, description; plus ``extra_texts``), and a digest
    of both, so a stored detection is known to be current when the digest still matches."""
    declared = category if category is not None else declared_category(session, account_id)
    rows = session.execute(
        select(Variant.headline, Variant.primary_text, Variant.description)
        .where(Variant.account_id == account_id)
        .order_by(Variant.id)
    )
    texts = [*(" ".join(t for t in r if t) for r in rows), *extra_texts]
    digest = hashlib.sha256("\x1f".join([declared or "", *texts]).encode()).hexdigest()
    return declared, texts, digest


def stored_detection(row: AccountNiche) -> NicheDetection:
    return NicheDetection(
        row.niche, row.confidence, row.margin, dict(row.scores), row.category_match, row.n_texts
    )


def current_niche(session: Session, account_id: int) -> str | None:
    """The account's niche as of its current ads and category: the stored detection when its
    input is unchanged, else detected now (TF-IDF, milliseconds) without storing. Reads only the
    account's own rows, so it needs no opt-in."""
    declared, texts, digest = niche_input(session, account_id)
    row = session.get(AccountNiche, account_id)
    if row is not None and row.texts_digest == digest:
        return row.niche
    return default_detector().detect(declared, texts).niche


def prior_for_account(session: Session, account_id: int) -> tuple[NichePrior | None, str]:
    """The most specific published prior for an account and its level: its current niche's
    latest pattern ("niche"; see ``current_niche``), else the average of all published niches
    ("global"), else (None, "none")."""
    niche = current_niche(session, account_id)
    if niche is not None:
        prior = prior_for_niche(session, niche)
        if prior is not None:
            return prior, "niche"
    overall = global_prior_now(session)
    return (overall, "global") if overall is not None else (None, "none")
