"""Loop 5 feeding loop 2: the compound prediction as the Thompson prior of a variant (the
"contextual boost"), for ``ThompsonPolicy(prior_provider=...)``.

The prior must not contain the evidence it is added to. So it is the *pre-launch* part of the
compound learner — XGBoost (the registry's champion) and the DNA patterns, blended with the
account's learnt weights renormalised over those two, never the Thompson posterior — and it is
computed only for variants that have **not delivered yet** as of the refresh hour: the patterns and
the champion were then fitted on data without a single impression of theirs. Once a variant
delivers, the last prior computed before its launch is kept for it (frozen), so its posterior does
not jump when it starts delivering, and no later model (fitted on its own clicks) replaces it.
A variant already delivering when the provider first sees it gets no compound prior.

Its strength is the number of pseudo-impressions whose Beta spread matches the prediction's
interval (``service.prior_strength``), capped by the allocator's
``max_prior_impressions``: a confident prediction is worth at most a few hours of delivery, an
unsure one little.

Every ``refresh_hours`` the provider trains a challenger through the registry's gate, relearns
the ensemble weights on the latest holdout, and recomputes the priors of the account's undelivered
variants; between refreshes it serves the cached priors (models change daily, not hourly), and a
variant it has not seen yet gets its prior from the current models at once if it has not
delivered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.settings import Settings
from adflywheel.loops.bandit import RatePrior
from adflywheel.loops.compound.ensemble import BasePrediction, combine
from adflywheel.services.bandit.budgets import CampaignState
from adflywheel.services.compound import service as cs
from adflywheel.services.compound.registry import LoadedModel
from adflywheel.services.compound.training import (
    TrainOptions,
    load_champion,
    train_challenger_and_gate,
)
from adflywheel.store.models import Variant
from adflywheel.store.queries import campaign_account_id


def pre_launch_priors(
    session: Session,
    account_id: int,
    at: datetime,
    variant_ids: Iterable[int],
    champion: LoadedModel | None,
    settings: cs.CompoundSettings = cs.DEFAULT,
) -> dict[int, RatePrior]:
    """The pre-launch compound prior of each variant as of ``at`` (XGBoost ``champion`` and the
    DNA patterns, weights learnt as of ``at``), for those the two can answer. The caller makes sure
    the variants had not delivered before ``at``."""
    ids = list(variant_ids)
    if not ids:
        return {}
    cap = settings.allocation.max_prior_impressions
    preds = cs.base_predictions(
        session, account_id, at, ids, xgb=champion.model if champion else None, settings=settings
    )
    learnt, _ = cs.current_weights(session, account_id, at)
    out: dict[int, RatePrior] = {}
    for variant_id, members in preds.items():
        # A prior's spread is at least the predictor's error measured on the holdout.
        pre_launch = {
            m: BasePrediction(
                p.ctr, max(p.sd_logit or 0.0, learnt.spreads.get(m, learnt.between_ad_sd))
            )
            for m, p in members.items()
            if m != "thompson"
        }
        result = combine(pre_launch, learnt, order=cs.PRE_LAUNCH_ORDER)
        if result is None:
            continue
        strength = cs.prior_strength(result.sd_logit, result.prediction, cap)
        out[variant_id] = RatePrior(result.prediction, strength)
    return out


@dataclass(slots=True)
class CompoundPriors:
    """A ``PriorProvider``: call ``bind`` with the store before the first cycle.

    ``priors[account]`` holds every prior served: recomputed while a variant is undelivered,
    frozen once it delivers. ``seen[account]`` the variants the provider has looked at."""

    refresh_hours: int = 24
    seed: int = 0
    settings: cs.CompoundSettings = cs.DEFAULT
    factory: sessionmaker[Session] | None = None
    app_settings: Settings | None = None
    refreshed: dict[int, datetime] = field(default_factory=dict)
    priors: dict[int, dict[int, RatePrior]] = field(default_factory=dict)
    seen: dict[int, set[int]] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)

    def bind(self, factory: sessionmaker[Session], data_dir: Path) -> None:
        self.factory = factory
        self.app_settings = Settings(data_dir=data_dir)

    def __call__(self, campaign: CampaignState, hour: datetime) -> dict[int, RatePrior]:
        if self.factory is None:
            raise RuntimeError("CompoundPriors.bind(factory, data_dir) was not called")
        with self.factory() as session:
            account_id = campaign_account_id(session, campaign.campaign_id)
        if account_id is None:
            return {}
        last = self.refreshed.get(account_id)
        if last is None or hour - last >= timedelta(hours=self.refresh_hours):
            self.refresh(account_id, hour)
        else:
            known = self.seen.get(account_id, set())
            new = [v.variant_id for v in campaign.variants if v.variant_id not in known]
            if new:
                self.admit(account_id, hour, new)
        cached = self.priors.get(account_id, {})
        return {
            v.variant_id: cached[v.variant_id] for v in campaign.variants if v.variant_id in cached
        }

    def refresh(self, account_id: int, hour: datetime) -> None:
        """Retrain through the gate, relearn weights, recompute the undelivered variants' priors."""
        assert self.factory is not None and self.app_settings is not None
        self.refreshed[account_id] = hour
        with self.factory() as session:
            served = cs.account_state(session, account_id, hour, self.settings).served
        if not served:
            self.admit(account_id, hour)
            return  # nothing to learn from yet: only the DNA patterns or nothing can answer
        decision = train_challenger_and_gate(
            self.factory,
            self.app_settings,
            account_id,
            hour,
            "compound prior refresh",
            options=TrainOptions(holdout_hours=24, valid_hours=24, seed=self.seed),
            actor="harness/compound",
        )
        weights = cs.update_weights(self.factory, account_id, hour, self.settings)
        self.admit(account_id, hour)
        self.log.append(
            {
                "account_id": account_id,
                "hour": hour.isoformat(),
                "gate": decision.status,
                "method": weights["method"],
                "weights": weights["weights"],
                "priors": len(self.priors[account_id]),
            }
        )

    def admit(
        self, account_id: int, hour: datetime, variant_ids: Iterable[int] | None = None
    ) -> None:
        """Priors as of ``hour`` for the variants (default: all of the account's) that have not
        delivered yet; a delivered variant keeps the prior frozen before its launch, if any."""
        assert self.factory is not None
        with self.factory() as session:
            if variant_ids is None:
                query = select(Variant.id).where(Variant.account_id == account_id)
                ids = list(session.scalars(query))
            else:
                ids = list(variant_ids)
            served = cs.account_state(session, account_id, hour, self.settings).served
            fresh = [v for v in ids if v not in served]
            computed = pre_launch_priors(
                session,
                account_id,
                hour,
                fresh,
                load_champion(session, account_id) if fresh else None,
                self.settings,
            )
            known = self.priors.setdefault(account_id, {})
            seen = self.seen.setdefault(account_id, set())
            known.update(computed)
            unknown = [v for v in ids if v in served and v not in known and v not in seen]
            if unknown:
                known.update(self.launched(session, account_id, hour, unknown))
            seen.update(ids)

    def launched(
        self, session: Session, account_id: int, hour: datetime, variant_ids: list[int]
    ) -> dict[int, RatePrior]:
        """Priors of variants first seen already delivering: none (their evidence is in every
        model the provider could ask now)."""
        return {}
