"""Rows and contexts of the CTR model, read from the store as of an instant.

Only facts dated before ``until`` are read, so a model trained "as of" an hour never sees a later
one. A variant's DNA is its stored fingerprint of the current DNA version, else the DNA derived
from the features and text it came with (as loop 4 does).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from adflywheel.loops.compound.features import (
    CreativeContext,
    CtrRow,
    HourCount,
    rows_for_variant,
)
from adflywheel.loops.dna.fingerprint import DNA_VERSION
from adflywheel.services.dna.service import variant_dna
from adflywheel.store.dna import CreativeDnaRow
from adflywheel.store.models import Account, HourlyActualRow, Variant


@dataclass(frozen=True, slots=True)
class AccountFacts:
    account_id: int
    niche: str | None
    timezone: str
    synthetic: bool


def account_facts(session: Session, account_id: int) -> AccountFacts | None:
    account = session.get(Account, account_id)
    if account is None:
        return None
    return AccountFacts(
        account.id, account.category, account.timezone, account.platform == "simulated"
    )


def dna_vectors(
    session: Session, account_id: int, variant_ids: Iterable[int] | None = None
) -> dict[int, tuple[float, ...]]:
    """Current-version DNA vectors of the account's variants (all, or those listed)."""
    wanted = None if variant_ids is None else set(variant_ids)
    out: dict[int, tuple[float, ...]] = {}
    stored = session.execute(
        select(CreativeDnaRow.variant_id, CreativeDnaRow.vector).where(
            CreativeDnaRow.account_id == account_id, CreativeDnaRow.dna_version == DNA_VERSION
        )
    )
    for variant_id, vector in stored:
        if wanted is None or variant_id in wanted:
            out[variant_id] = tuple(float(v) for v in vector)
    query = select(Variant).where(Variant.account_id == account_id)
    if wanted is not None:
        todo = wanted - set(out)
        if not todo:
            return out
        query = query.where(Variant.id.in_(todo))
    for variant in session.scalars(query):
        if variant.id not in out:
            out[variant.id] = variant_dna(session, variant).vector
    return out


def _history_before(
    session: Session, account_id: int, before: datetime
) -> dict[int, tuple[datetime | None, int]]:
    """Per variant: its first hour with impressions and its impressions before ``before``."""
    served = HourlyActualRow.impressions > 0
    rows = session.execute(
        select(
            HourlyActualRow.variant_id,
            func.min(case((served, HourlyActualRow.hour_start), else_=None)),
            func.coalesce(func.sum(HourlyActualRow.impressions), 0),
        )
        .where(HourlyActualRow.account_id == account_id, HourlyActualRow.hour_start < before)
        .group_by(HourlyActualRow.variant_id)
    )
    return {v: (first, int(total)) for v, first, total in rows}


def account_rows(
    session: Session, account_id: int, *, since: datetime | None, until: datetime
) -> list[CtrRow]:
    """Every (variant, hour) row of the account in ``[since, until)`` with its features; the
    age and cumulative impressions count the whole history before each hour."""
    facts = account_facts(session, account_id)
    if facts is None:
        raise LookupError(f"account {account_id} does not exist")
    query = select(
        HourlyActualRow.variant_id,
        HourlyActualRow.hour_start,
        HourlyActualRow.impressions,
        HourlyActualRow.clicks,
    ).where(HourlyActualRow.account_id == account_id, HourlyActualRow.hour_start < until)
    prior: dict[int, tuple[datetime | None, int]] = {}
    if since is not None:
        query = query.where(HourlyActualRow.hour_start >= since)
        prior = _history_before(session, account_id, since)
    hours: dict[int, list[HourCount]] = defaultdict(list)
    for variant_id, hour, impressions, clicks in session.execute(query):
        hours[variant_id].append(HourCount(hour, int(impressions), int(clicks)))
    vectors = dna_vectors(session, account_id, hours.keys())
    out: list[CtrRow] = []
    for variant_id in sorted(hours):
        first, before = prior.get(variant_id, (None, 0))
        out.extend(
            rows_for_variant(
                variant_id,
                account_id,
                vectors[variant_id],
                hours[variant_id],
                niche=facts.niche,
                timezone=facts.timezone,
                first_served=first,
                prior_impressions=before,
            )
        )
    return out


def current_contexts(
    session: Session, account_id: int, at: datetime, variant_ids: Iterable[int] | None = None
) -> dict[int, CreativeContext]:
    """The context of each variant (all, or those listed, of this account) for the hour starting
    at ``at``: its DNA, age since first served and impressions served before ``at``. A variant
    that has not served yet gets age 0 and no impressions (cold start)."""
    facts = account_facts(session, account_id)
    if facts is None:
        raise LookupError(f"account {account_id} does not exist")
    vectors = dna_vectors(session, account_id, variant_ids)
    history = _history_before(session, account_id, at)
    out: dict[int, CreativeContext] = {}
    for variant_id, vector in vectors.items():
        first, impressions = history.get(variant_id, (None, 0))
        age = 0.0 if first is None else max(0.0, (at - first).total_seconds() / 3600.0)
        out[variant_id] = CreativeContext(
            variant_id,
            account_id,
            at,
            vector,
            niche=facts.niche,
            timezone=facts.timezone,
            age_hours=age,
            cumulative_impressions=impressions,
        )
    return out
