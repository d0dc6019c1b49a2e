"""Loop 3's API: niche detection, opt-in and contribution, published niche patterns, insights for
the caller, and status. Every answer is about the caller's own account or a published, noised,
k-anonymous niche pattern; nothing another account stored is ever read into a response.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from adflywheel.api.deps import CallerDep, ServicesDep, SessionDep
from adflywheel.api.schemas.crosslearn import (
    ContributionOut,
    ContributionReportOut,
    CrossLearningStatsOut,
    InsightsOut,
    NicheDetectionOut,
    NichePatternOut,
)
from adflywheel.api.schemas.types import AdText, Category
from adflywheel.loops.crosslearn.taxonomy import BY_KEY, NICHE_KEYS
from adflywheel.services.crosslearn import service as service
from adflywheel.store.engine import transaction

router = APIRouter(prefix="/api/ml/cross-learning", tags=["cross-learning"])

MAX_TEXTS = 500
MAX_TEXT_CHARS = 5_000


class DetectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category | None = None
    texts: list[AdText] = Field(default_factory=list, max_length=MAX_TEXTS)
    store: bool = True


class ContributeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opt_in: bool | None = None
    declared_category: Category | None = None
    contribute: bool = True


@router.post("/detect-niche")
def detect_niche(
    body: DetectBody, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> NicheDetectionOut:
    """The caller's niche from its declared category (or ``category``) and its ads' text (plus
    ``texts``); stored unless ``store`` is false or extra input was given."""
    store = body.store and body.category is None and not body.texts
    found, changed = service.detect_niche(
        session,
        caller.account_id,
        services.clock.now(),
        extra_texts=body.texts,
        category=body.category,
        store=store,
    )
    return NicheDetectionOut.model_validate(
        {
            **found.as_dict(),
            "label": BY_KEY[found.niche].label if found.niche else None,
            "stored": store,
            "changed": changed,
        }
    )


@router.post("/contribute", response_model_exclude_unset=True)
def contribute(body: ContributeBody, caller: CallerDep, services: ServicesDep) -> ContributionOut:
    """Set the caller's opt-in (off by default) and declared category, then, when opted in and
    ``contribute``, store its contribution for this period and publish its niche's last closed
    period if due. Opting out withdraws its unpublished contributions."""
    now = services.clock.now()
    with transaction(services.factory) as session:
        row = service.set_settings(
            session, caller.account_id, now, opted_in=body.opt_in, declared=body.declared_category
        )
        opted_in, declared = row.opted_in, row.declared_category
    if body.contribute and opted_in:
        report = service.contribute_and_publish(
            services.factory,
            caller.account_id,
            now,
            privacy=service.privacy_from_settings(services.settings),
        )
        contribution = ContributionReportOut.model_validate(report)
    else:
        reason = "not opted in" if not opted_in else "contribute was false"
        contribution = ContributionReportOut(contributed=False, reason=reason)
    return ContributionOut(opted_in=opted_in, declared_category=declared, contribution=contribution)


@router.get("/niches/{niche}/patterns")
def niche_patterns(
    niche: Annotated[str, Path(max_length=40)],
    caller: CallerDep,
    session: SessionDep,
) -> NichePatternOut:
    """The niche's latest published pattern: noised means with intervals; of the contributing
    accounts only ">=k" is said. Published only when at least k accounts contributed."""
    if niche not in NICHE_KEYS:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown niche {niche!r}; known: {', '.join(NICHE_KEYS)}"
        )
    view = service.pattern_view(session, niche)
    if view is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"nothing is published for niche {niche!r} yet"
        )
    return NichePatternOut.model_validate(view)


@router.get("/insights", response_model_exclude_unset=True)
def insights(caller: CallerDep, session: SessionDep) -> InsightsOut:
    """What the caller's niche suggests for the caller, against the caller's own evidence."""
    return InsightsOut.model_validate(service.insights(session, caller.account_id))


@router.get("/stats")
def stats(caller: CallerDep, services: ServicesDep, session: SessionDep) -> CrossLearningStatsOut:
    """The caller's sharing status and public facts about publications and budgets."""
    privacy = service.privacy_from_settings(services.settings)
    found = service.stats(session, caller.account_id, privacy, services.clock.now())
    return CrossLearningStatsOut.model_validate(found)
