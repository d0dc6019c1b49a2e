"""Loop 3 feeding loop 2: a new variant's Thompson prior from its niche's published pattern, for
``ThompsonPolicy(prior_provider=NichePriors(...))``.

A new variant has little evidence of its own; the allocator would start it from the campaign's
pooled rate. ``NichePriors`` starts it instead from what the account's niche published (loop 3):
the niche's base CTR times its genes' lifts (``prior.predict_ctr``), scaled by how the account runs
against its niche (``prior.account_ratio``, from the account's *other* delivered ads), as a
``RatePrior`` worth n0 ≈ 1/(sd²·rate) impressions (the allocator caps it at
``max_prior_impressions``). The prior must not contain the evidence it is added to, so a
variant's own clicks never enter its ratio. It is kept while the variant is young (below
``PRIOR_HORIZON_IMPRESSIONS``), so that it leads the variant's budget through the evidence gate
and its weight fades as the variant's own impressions come in, instead of vanishing at the first
impression (issue #15: the prior then never reached a budget). A seasoned variant gets none; by
then its own evidence is ten times the strongest prior, and the published pattern may hold its
own (noised, pooled) clicks. No published pattern for the account's niche (or no niche) → ``{}``.
Reading a published pattern is post-processing: it costs no privacy budget, and only the
account's own rows and the public niche pattern are read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.loops.bandit import RatePrior
from adflywheel.loops.crosslearn.prior import (
    NichePrior,
    account_ratio,
    predict_ctr,
    predict_log_ctr,
)
from adflywheel.loops.dna.fingerprint import DNA_VERSION, dna_from_document
from adflywheel.services.bandit.budgets import CampaignState
from adflywheel.services.dna.service import variant_dna
from adflywheel.store.crosslearn import current_niche, prior_for_niche
from adflywheel.store.dna import CreativeDnaRow
from adflywheel.store.models import Variant
from adflywheel.store.queries import VariantTotals, campaign_account_id, variant_totals

MIN_RATE = 1e-6  # a RatePrior's rate is strictly inside (0, 1)
MAX_RATE = 0.5
# A variant keeps its niche prior until it has this many impressions of its own: ten times the
# allocator's cap on a prior's strength, so the prior's weight has faded to a tenth by then.
PRIOR_HORIZON_IMPRESSIONS = 20_000.0


@dataclass(frozen=True, slots=True)
class NicheView:
    """What the provider needs of an account at an hour: its niche's prior, the genes of its
    variants (at least the young ones), and its delivered ads as variant id -> (genes,
    impressions, clicks) so far, for the account's observed/expected ratio."""

    prior: NichePrior | None
    genes: Mapping[int, Mapping[str, Any]]
    delivered: Mapping[int, tuple[Mapping[str, Any], float, float]] = field(default_factory=dict)


NicheSource = Callable[[CampaignState, datetime], NicheView | None]


def own_impressions(campaign: CampaignState, variant: VariantTotals) -> float:
    """The variant's impressions so far (the totals or, if more, the hourly series)."""
    series = campaign.hourly.get(variant.variant_id)
    return float(max(variant.impressions, sum(series.impressions) if series is not None else 0))


def young(campaign: CampaignState, variant: VariantTotals) -> bool:
    """Below ``PRIOR_HORIZON_IMPRESSIONS`` of its own: the niche prior still leads it."""
    return own_impressions(campaign, variant) < PRIOR_HORIZON_IMPRESSIONS


def new_variant_priors(
    prior: NichePrior,
    campaign: CampaignState,
    view: NicheView,
    *,
    max_strength: float = 2000.0,
) -> dict[int, RatePrior]:
    """Priors for the campaign's young variants whose genes are known (pure); each one's account
    ratio leaves its own delivery out."""
    new = [v for v in campaign.variants if young(campaign, v) and v.variant_id in view.genes]
    if not new:
        return {}
    expected = {
        vid: i * math.exp(predict_log_ctr(prior, g)[0]) for vid, (g, i, _) in view.delivered.items()
    }
    clicks_all = sum(c for _, _, c in view.delivered.values())
    expected_all = sum(expected.values())
    out: dict[int, RatePrior] = {}
    for v in new:
        own = view.delivered.get(v.variant_id)
        clicks = clicks_all - (own[2] if own is not None else 0.0)
        ratio = account_ratio(
            prior, float(clicks), float(expected_all - expected.get(v.variant_id, 0.0))
        )
        rate, n0 = predict_ctr(
            prior, view.genes[v.variant_id], account_ratio=ratio, max_strength=max_strength
        )
        out[v.variant_id] = RatePrior(min(MAX_RATE, max(MIN_RATE, rate)), n0)
    return out


@dataclass(slots=True)
class NichePriors:
    """A ``PriorProvider`` (``policies.PriorProvider``): ``NichePriors()`` then ``bind(factory)``
    with the store's session factory before the first cycle (or ``NichePriors(factory)``).
    ``source`` replaces the store (the benchmark's simulated market passes its own view)."""

    factory: sessionmaker[Session] | None = None
    source: NicheSource | None = None
    max_strength: float = 2000.0
    # The account's view is read once per (account, hour), not once per campaign.
    _cache: dict[int, tuple[datetime, NicheView | None]] = field(
        default_factory=dict, init=False, repr=False
    )

    def bind(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def __call__(self, campaign: CampaignState, hour: datetime) -> dict[int, RatePrior]:
        if not any(young(campaign, v) for v in campaign.variants):
            return {}  # every variant has its own evidence: nothing to add, nothing to read
        view = (
            self.source(campaign, hour) if self.source is not None else self._stored(campaign, hour)
        )
        if view is None or view.prior is None:
            return {}
        return new_variant_priors(view.prior, campaign, view, max_strength=self.max_strength)

    def _stored(self, campaign: CampaignState, hour: datetime) -> NicheView | None:
        if self.factory is None:
            raise RuntimeError("NichePriors.bind(factory) was not called")
        with self.factory() as session:
            account_id = campaign_account_id(session, campaign.campaign_id)
            if account_id is None:
                return None
            cached = self._cache.get(account_id)
            if cached is not None and cached[0] == hour:
                return cached[1]
            view = account_view(session, account_id, hour)
        self._cache[account_id] = (hour, view)
        return view


def account_view(session: Session, account_id: int, hour: datetime) -> NicheView | None:
    """The account's ``NicheView`` from the store as of ``hour`` (actuals before it); None when
    its current niche has no published pattern (or it has no niche)."""
    niche = current_niche(session, account_id)
    prior = prior_for_niche(session, niche) if niche is not None else None
    if prior is None:
        return None
    totals = variant_totals(session, account_id, until=hour)
    variants = {
        v.id: v for v in session.scalars(select(Variant).where(Variant.account_id == account_id))
    }
    rows = session.execute(
        select(CreativeDnaRow.variant_id, CreativeDnaRow.document).where(
            CreativeDnaRow.account_id == account_id, CreativeDnaRow.dna_version == DNA_VERSION
        )
    )
    stored: dict[int, dict[str, Any]] = {variant_id: doc for variant_id, doc in rows}

    def genes(variant: Variant) -> Mapping[str, Any]:
        doc = stored.get(variant.id)
        return (dna_from_document(doc) if doc is not None else variant_dna(session, variant)).genes

    needed = [t for t in totals if t.variant_id in variants]
    by_id = {t.variant_id: genes(variants[t.variant_id]) for t in needed}
    delivered = {
        t.variant_id: (by_id[t.variant_id], float(t.impressions), float(t.clicks))
        for t in needed
        if t.impressions > 0
    }
    return NicheView(prior, by_id, delivered)


__all__ = ["NichePriors", "NicheSource", "NicheView", "account_view", "new_variant_priors"]
