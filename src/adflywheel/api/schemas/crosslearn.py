"""Answers of the cross-learning routes (loop 3): the caller's own account, or a published,
noised, k-anonymous niche pattern (``accounts`` is only ever ">=k")."""

from __future__ import annotations

from adflywheel.api.schemas.base import Answer


class NicheDetectionOut(Answer):
    niche: str | None
    confidence: float
    margin: float
    scores: dict[str, float]
    category_match: str | None
    n_texts: int
    label: str | None
    stored: bool
    changed: bool


class PublishedPeriodOut(Answer):
    period_start: str
    accounts: str


class ContributionReportOut(Answer):
    """What contributing did: ``contributed`` with the niche and period, or the ``reason`` it
    did not; then whether the niche's last closed period was published, or why not."""

    contributed: bool
    reason: str | None = None
    niche: str | None = None
    period_start: str | None = None
    clipped: bool | None = None
    niche_redetected: bool | None = None
    published: PublishedPeriodOut | None = None
    not_published: str | None = None


class ContributionOut(Answer):
    opted_in: bool
    declared_category: str | None
    contribution: ContributionReportOut


class PublishedEffectOut(Answer):
    gene: str
    level: str
    log_lift: float
    se: float
    prior_sd: float
    lift: float
    lift_low: float
    lift_high: float


class NichePatternOut(Answer):
    niche: str
    accounts: str
    epsilon: float
    base_ctr: float
    base_ctr_interval: list[float]
    effects: list[PublishedEffectOut]
    period_start: str
    published_at: str


class NichePriorOut(Answer):
    base_ctr: float
    accounts: str
    epsilon: float
    period_start: str | None


class OwnEvidenceOut(Answer):
    n_ads: int
    ctr: float | None


class BlendedEffectOut(Answer):
    """A level's lift for the caller: the niche's, the caller's own, and their blend by
    precision (``own_weight``)."""

    gene: str
    level: str
    niche_lift: float
    own_lift: float | None
    own_weight: float
    lift: float
    log_lift: float
    sd: float


class InsightsOut(Answer):
    """The niche's suggestions next to the caller's evidence; only ``niche`` and ``reason``
    while there is no niche or nothing published for it."""

    niche: str | None
    reason: str | None = None
    prior: NichePriorOut | None = None
    own: OwnEvidenceOut | None = None
    effects: list[BlendedEffectOut] | None = None
    untried_levels_the_niche_favours: list[BlendedEffectOut] | None = None


class SharingStatusOut(Answer):
    opted_in: bool
    declared_category: str | None
    niche: str | None
    confidence: float | None
    detected_at: str | None
    contributions: int


class NicheBudgetOut(Answer):
    niche: str
    epsilon_left: float
    epsilon_budget: float
    window_days: int


class PrivacyOut(Answer):
    k_min: int
    epsilon_per_period: float
    delta: float
    mechanism: str
    period_hours: int


class PublicationsOut(Answer):
    niche: str
    publications: int
    latest_period: str


class CrossLearningStatsOut(Answer):
    account: SharingStatusOut
    niche_budget: NicheBudgetOut | None
    privacy: PrivacyOut
    published: list[PublicationsOut]
