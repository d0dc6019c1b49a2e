"""Loop 3's shell: opt-in, niche detection, contributions, publication, and the priors others use.

Order of one account's step (``contribute_and_publish``): re-detect its niche if its ads or
category changed (every account, opted in or not: detection reads only the account's own data and
shares nothing); nothing more unless the account opted in; store its clipped contribution for the
current period (one row per account and period, so re-running the period replaces it); then
publish its niche's most recent *closed* period if that is not published yet, has at least
``k_min`` distinct accounts that are still opted in, and the niche's privacy budget allows it. A
publication is final: its noise is drawn once by OpenDP (exact discrete sampling from a CSPRNG;
there is no seed, which would let anyone who knows it subtract the noise) and stored with its
ledger entry, the ε OpenDP's privacy map charges, in the same transaction. Two accounts of a
niche may publish the same period at once: the first insert wins (unique per niche and period),
the other's draw is discarded unseen and it returns the stored publication.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.settings import Settings
from adflywheel.loops.crosslearn.niche import NicheDetection, default_detector
from adflywheel.loops.crosslearn.prior import NichePrior, blend_effects
from adflywheel.loops.crosslearn.privacy import (
    PrivacySettings,
    budget_left,
    can_spend,
    opendp_laplace,
    period_start,
)
from adflywheel.loops.crosslearn.sharing import (
    Contribution,
    NotPublishable,
    contribution,
    publish,
)
from adflywheel.loops.dna import patterns
from adflywheel.services.dna.service import account_history
from adflywheel.store.crosslearn import (
    AccountNiche,
    CrossLearnSettings,
    NicheContribution,
    NichePatternRow,
    PrivacyLedgerRow,
    current_niche,
    global_prior_now,
    latest_pattern,
    niche_input,
    prior_for_niche,
    stored_detection,
)
from adflywheel.store.engine import transaction

T = TypeVar("T")

PERIOD_ORIGIN = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday: weekly periods start on Mondays
MECHANISM = "opendp-laplace"  # OpenDPLaplace.name: what the ledger and /stats report


def privacy_from_settings(settings: Settings) -> PrivacySettings:
    """The privacy parameters the service runs with (``ADFLYWHEEL_CROSSLEARN_*``)."""
    return PrivacySettings(
        k_min=settings.crosslearn_k_min,
        epsilon_per_period=settings.crosslearn_epsilon_per_period,
        epsilon_budget=max(
            settings.crosslearn_epsilon_budget, settings.crosslearn_epsilon_per_period
        ),
    )


def settings_of(session: Session, account_id: int) -> CrossLearnSettings | None:
    return session.get(CrossLearnSettings, account_id)


def set_settings(
    session: Session,
    account_id: int,
    now: datetime,
    *,
    opted_in: bool | None = None,
    declared: str | None = None,
) -> CrossLearnSettings:
    """Change the account's choice. Opting out deletes its contributions to periods that are not
    published yet, so they can never count toward a publication."""
    row = settings_of(session, account_id)
    if row is None:
        row = CrossLearnSettings(account_id=account_id, opted_in=False, updated_at=now)
        session.add(row)
    if opted_in is not None:
        row.opted_in = opted_in
        if not opted_in:
            _withdraw(session, account_id)
    if declared is not None:
        row.declared_category = declared.strip() or None
    row.updated_at = now
    session.flush()
    return row


def _withdraw(session: Session, account_id: int) -> int:
    published = select(NichePatternRow.id).where(
        NichePatternRow.niche == NicheContribution.niche,
        NichePatternRow.period_start == NicheContribution.period_start,
    )
    result = session.execute(
        delete(NicheContribution)
        .where(NicheContribution.account_id == account_id, ~published.exists())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def detect_niche(
    session: Session,
    account_id: int,
    now: datetime,
    *,
    extra_texts: Sequence[str] = (),
    category: str | None = None,
    store: bool = True,
) -> tuple[NicheDetection, bool]:
    """The account's niche from its declared category and its creatives' text (plus
    ``extra_texts``); re-detected only when that input changed. Returns (detection, changed)."""
    declared, texts, digest = niche_input(
        session, account_id, category=category, extra_texts=extra_texts
    )
    row = session.get(AccountNiche, account_id)
    if row is not None and row.texts_digest == digest:
        return stored_detection(row), False
    found = default_detector().detect(declared, texts)
    if store:
        if row is None:
            row = _insert_once(
                session,
                AccountNiche(account_id=account_id, detected_at=now),
                lambda: session.get(AccountNiche, account_id, populate_existing=True),
            )
        row.niche, row.confidence, row.margin = found.niche, found.confidence, found.margin
        row.category_match, row.scores, row.n_texts = (
            found.category_match,
            found.scores,
            found.n_texts,
        )
        row.texts_digest, row.detected_at = digest, now
        session.flush()
    return found, True


def _insert_once(session: Session, row: T, existing: Callable[[], T | None]) -> T:
    """Insert ``row`` in a savepoint; if a concurrent transaction inserted the same unique key
    first (IntegrityError), return its row instead (``existing``, read again)."""
    try:
        with session.begin_nested():
            session.add(row)
        return row
    except IntegrityError:
        found = existing()
        if found is None:
            raise
        return found


def own_patterns(session: Session, account_id: int) -> patterns.Patterns:
    history = account_history(session, account_id)
    return patterns.gene_patterns(
        [patterns.AdOutcome(h.dna.genes, h.impressions, h.clicks) for h in history]
    )


def contribute(
    session: Session, account_id: int, as_of: datetime, privacy: PrivacySettings
) -> dict[str, Any]:
    """Store the account's contribution for the period containing ``as_of`` (replacing any
    earlier one of the same period). Nothing happens unless the account opted in."""
    row = settings_of(session, account_id)
    if row is None or not row.opted_in:
        return {"contributed": False, "reason": "not opted in (sharing is off by default)"}
    found, _ = detect_niche(session, account_id, as_of)
    if found.niche is None:
        return {"contributed": False, "reason": "no niche detected (no category, no ad text)"}
    mine = contribution(own_patterns(session, account_id), privacy)
    if mine is None:
        reason = "fewer than 4 ads with clicks: nothing to share"
        return {"contributed": False, "niche": found.niche, "reason": reason}
    period = period_start(as_of, privacy.period_hours, PERIOD_ORIGIN)
    _upsert(session, account_id, found.niche, period, mine, as_of)
    return {
        "contributed": True,
        "niche": found.niche,
        "period_start": period.isoformat(),
        "clipped": mine.clipped,
    }


def _upsert(
    session: Session,
    account_id: int,
    niche: str,
    period: datetime,
    mine: Contribution,
    now: datetime,
) -> None:
    def stored() -> NicheContribution | None:
        return session.scalar(
            select(NicheContribution)
            .where(
                NicheContribution.account_id == account_id,
                NicheContribution.period_start == period,
            )
            .execution_options(populate_existing=True)
        )

    row = stored()
    if row is None:  # (a concurrent run of the same account may insert it first: then update it)
        fresh = NicheContribution(
            account_id=account_id, period_start=period, niche=niche, log_base=mine.log_base,
            lifts=list(mine.lifts), n_ads=mine.n_ads, clipped=mine.clipped, updated_at=now,
        )  # fmt: skip
        row = _insert_once(session, fresh, stored)
    row.niche, row.log_base, row.lifts = niche, mine.log_base, list(mine.lifts)
    row.n_ads, row.clipped, row.updated_at = mine.n_ads, mine.clipped, now
    session.flush()


def ledger(session: Session, niche: str) -> list[tuple[datetime, float]]:
    rows = session.execute(
        select(PrivacyLedgerRow.spent_at, PrivacyLedgerRow.epsilon).where(
            PrivacyLedgerRow.niche == niche
        )
    )
    return [(r[0], float(r[1])) for r in rows]


def publish_period(
    session: Session,
    niche: str,
    period: datetime,
    now: datetime,
    privacy: PrivacySettings,
) -> NichePatternRow:
    """Publish ``niche``'s pattern of ``period`` (a closed period), or raise ``NotPublishable``
    saying why. Only contributions of accounts still opted in count; each account once.

    Safe against a concurrent publication of the same niche and period (another account's cycle
    or ``/contribute`` at the same moment): both may pass the check below, but the pattern and
    its ledger entry are inserted in a savepoint, and the loser of the unique constraint rolls
    back to it and returns the winner's row — its own noisy draw is never stored nor shown, so it
    costs no budget and reveals nothing."""
    existing = _published(session, niche, period)
    if existing is not None:
        return existing
    if period + timedelta(hours=privacy.period_hours) > now:
        raise NotPublishable("the period is not over yet")
    rows = session.scalars(
        select(NicheContribution)
        .join(CrossLearnSettings, CrossLearnSettings.account_id == NicheContribution.account_id)
        .where(
            NicheContribution.niche == niche,
            NicheContribution.period_start == period,
            CrossLearnSettings.opted_in.is_(True),
        )
    ).all()
    distinct = {r.account_id: r for r in rows}
    if len(distinct) < privacy.k_min:
        raise NotPublishable(
            f"fewer than {privacy.k_min} opted-in accounts contributed to this niche and period"
        )
    mechanism = opendp_laplace(privacy)
    if not can_spend(ledger(session, niche), now, privacy, mechanism.epsilon):
        raise NotPublishable(
            f"the niche's privacy budget (ε={privacy.epsilon_budget:g} per "
            f"{privacy.window_days} days) is spent"
        )
    contributions = [
        Contribution(r.log_base, tuple(r.lifts), r.n_ads, r.clipped) for r in distinct.values()
    ]
    pattern = publish(niche, contributions, privacy, mechanism)
    row = NichePatternRow(
        niche=niche,
        period_start=period,
        accounts=pattern.accounts,
        noisy_count=pattern.noisy_count,
        epsilon=pattern.epsilon,
        base_ctr=pattern.base_ctr,
        base_ctr_low=pattern.base_ctr_low,
        base_ctr_high=pattern.base_ctr_high,
        base_log_sd=pattern.base_log_sd,
        effects=[e.as_dict() for e in pattern.effects],
        published_at=now,
    )
    spent = PrivacyLedgerRow(
        niche=niche,
        period_start=period,
        epsilon=pattern.epsilon,  # OpenDP's privacy map of this release
        delta=0.0,
        mechanism=pattern.mechanism,
        spent_at=now,
    )
    try:
        with session.begin_nested():
            session.add_all([row, spent])
    except IntegrityError:
        first = _published(session, niche, period)
        if first is None:
            raise
        return first
    return row


def _published(session: Session, niche: str, period: datetime) -> NichePatternRow | None:
    return session.scalar(
        select(NichePatternRow)
        .where(NichePatternRow.niche == niche, NichePatternRow.period_start == period)
        .execution_options(populate_existing=True)
    )


def contribute_and_publish(
    factory: sessionmaker[Session],
    account_id: int,
    as_of: datetime,
    *,
    privacy: PrivacySettings | None = None,
) -> dict[str, Any]:
    """The cycle step "contribute patterns": re-detect the account's niche when its ads or
    category changed (every account: its own data only, nothing is shared), then, if it opted
    in, contribute and publish the niche's last closed period when it is due. Says what it did,
    and why not when it did nothing."""
    privacy = privacy or PrivacySettings()
    with transaction(factory) as session:
        found, changed = detect_niche(session, account_id, as_of)
        report = contribute(session, account_id, as_of, privacy)
    report.setdefault("niche", found.niche)
    report["niche_redetected"] = changed
    niche = report.get("niche")
    if not report["contributed"] or niche is None:
        report["published"] = None
        return report
    previous = period_start(as_of, privacy.period_hours, PERIOD_ORIGIN) - timedelta(
        hours=privacy.period_hours
    )
    try:
        with transaction(factory) as session:
            published = publish_period(session, niche, previous, as_of, privacy)
            report["published"] = {
                "period_start": published.period_start.isoformat(),
                "accounts": published.accounts,
            }
    except NotPublishable as why:
        report["published"] = None
        report["not_published"] = str(why)
    return report


# -- priors and views ----------------------------------------------------------------------------


def niche_prior(session: Session, account_id: int) -> NichePrior | None:
    """The latest published prior of the account's current niche (``current_niche``: the stored
    detection, or detected now when the account's ads changed since; None: no niche, or nothing
    published for it yet). Reading a published pattern costs no privacy budget."""
    niche = current_niche(session, account_id)
    return prior_for_niche(session, niche) if niche is not None else None


def insights(session: Session, account_id: int) -> dict[str, Any]:
    """What the caller's niche suggests for the caller, next to its own evidence."""
    row = session.get(AccountNiche, account_id)
    if row is None or row.niche is None:
        return {"niche": None, "reason": "no niche detected yet: POST detect-niche first"}
    prior = prior_for_niche(session, row.niche)
    if prior is None:
        return {"niche": row.niche, "reason": "nothing published for this niche yet"}
    mine = own_patterns(session, account_id)
    blended = blend_effects(prior, mine if mine.n_ads else None)
    tried = {e.gene + "=" + e.level for e in mine.effects}
    suggestions = [
        b
        for b in sorted(blended, key=lambda b: -b["niche_lift"])
        if b["niche_lift"] > 0 and f"{b['gene']}={b['level']}" not in tried
    ][:5]
    return {
        "niche": row.niche,
        "prior": {
            "base_ctr": prior.base_ctr,
            "accounts": prior.accounts,
            "epsilon": prior.epsilon,
            "period_start": prior.period_start.isoformat() if prior.period_start else None,
        },
        "own": {"n_ads": mine.n_ads, "ctr": round(mine.baseline, 6) if mine.n_ads else None},
        "effects": blended,
        "untried_levels_the_niche_favours": suggestions,
    }


def stats(
    session: Session, account_id: int, privacy: PrivacySettings, now: datetime
) -> dict[str, Any]:
    """The caller's own status and public, niche-level facts (no account counts: those are
    exactly what the noise protects)."""
    setting = settings_of(session, account_id)
    row = session.get(AccountNiche, account_id)
    own = session.scalar(
        select(func.count())
        .select_from(NicheContribution)
        .where(NicheContribution.account_id == account_id)
    )
    niches = session.execute(
        select(NichePatternRow.niche, func.count(), func.max(NichePatternRow.period_start))
        .group_by(NichePatternRow.niche)
        .order_by(NichePatternRow.niche)
    ).all()
    mine = row.niche if row is not None else None
    return {
        "account": {
            "opted_in": bool(setting and setting.opted_in),
            "declared_category": setting.declared_category if setting else None,
            "niche": mine,
            "confidence": row.confidence if row is not None else None,
            "detected_at": row.detected_at.isoformat() if row is not None else None,
            "contributions": int(own or 0),
        },
        "niche_budget": (
            {
                "niche": mine,
                "epsilon_left": round(budget_left(ledger(session, mine), now, privacy), 6),
                "epsilon_budget": privacy.epsilon_budget,
                "window_days": privacy.window_days,
            }
            if mine
            else None
        ),
        "privacy": {
            "k_min": privacy.k_min,
            "epsilon_per_period": privacy.epsilon_per_period,
            "delta": 0.0,
            "mechanism": MECHANISM,
            "period_hours": privacy.period_hours,
        },
        "published": [
            {"niche": n, "publications": int(c), "latest_period": p.isoformat()}
            for n, c, p in niches
        ],
    }


def pattern_view(session: Session, niche: str) -> dict[str, Any] | None:
    row = latest_pattern(session, niche)
    if row is None:
        return None
    out = row.pattern().as_dict()
    out["period_start"] = row.period_start.isoformat()
    out["published_at"] = row.published_at.isoformat()
    return out


__all__ = [
    "contribute",
    "contribute_and_publish",
    "detect_niche",
    "global_prior_now",
    "insights",
    "niche_prior",
    "pattern_view",
    "privacy_from_settings",
    "publish_period",
    "set_settings",
    "stats",
]
