"""Loop 5 feeding loop 2: the compound prediction as the Thompson prior of a variant (the
"contextual boost"), for ``ThompsonPolicy(prior_provider=...)``.

The prior must not contain the evidence it is added to, so it is the *pre-launch* part of the
compound learner: XGBoost (the registry's champion) and the DNA patterns, blended with the
account's learnt weights renormalised over those two, never the Thompson posterior itself. Its
strength is the number of pseudo-impressions whose Beta spread matches the prediction's interval
(``compound_service.prior_strength``), capped by the allocator's ``max_prior_impressions``: a
confident prediction is worth at most a few hours of delivery, an unsure one little.

Every ``refresh_hours`` the provider trains a challenger through the registry's gate, relearns
the ensemble weights on the latest holdout, and recomputes the priors of the account's variants;
between refreshes it serves the cached priors (models change daily, not hourly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel import compound_service as cs
from adflywheel.budgets import CampaignState
from adflywheel.loops.bandit import RatePrior
from adflywheel.loops.compound.ensemble import BasePrediction, combine
from adflywheel.registry_service import TrainOptions, load_champion, train_challenger_and_gate
from adflywheel.settings import Settings
from adflywheel.store.models import Campaign, Variant
from adflywheel.store.queries import variant_totals


@dataclass(slots=True)
class CompoundPriors:
    """A ``PriorProvider``: call ``bind`` with the store before the first cycle."""

    refresh_hours: int = 24
    seed: int = 0
    settings: cs.CompoundSettings = cs.DEFAULT
    factory: sessionmaker[Session] | None = None
    app_settings: Settings | None = None
    refreshed: dict[int, datetime] = field(default_factory=dict)
    priors: dict[int, dict[int, RatePrior]] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)

    def bind(self, factory: sessionmaker[Session], data_dir: Path) -> None:
        self.factory = factory
        self.app_settings = Settings(data_dir=data_dir)

    def __call__(self, campaign: CampaignState, hour: datetime) -> dict[int, RatePrior]:
        if self.factory is None:
            raise RuntimeError("CompoundPriors.bind(factory, data_dir) was not called")
        with self.factory() as session:
            account_id = session.scalar(
                select(Campaign.account_id).where(Campaign.id == campaign.campaign_id)
            )
        if account_id is None:
            return {}
        last = self.refreshed.get(account_id)
        if last is None or hour - last >= timedelta(hours=self.refresh_hours):
            self.refresh(account_id, hour)
        cached = self.priors.get(account_id, {})
        return {
            v.variant_id: cached[v.variant_id] for v in campaign.variants if v.variant_id in cached
        }

    def refresh(self, account_id: int, hour: datetime) -> None:
        """Retrain through the gate, relearn weights, recompute every variant's prior."""
        assert self.factory is not None and self.app_settings is not None
        self.refreshed[account_id] = hour
        with self.factory() as session:
            served = any(t.impressions > 0 for t in variant_totals(session, account_id, until=hour))
        if not served:
            return  # nothing to learn from yet: the allocator keeps its own prior
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
        self.priors[account_id] = self._compute(account_id, hour)
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

    def _compute(self, account_id: int, hour: datetime) -> dict[int, RatePrior]:
        assert self.factory is not None
        cap = self.settings.allocation.max_prior_impressions
        with self.factory() as session:
            ids = list(session.scalars(select(Variant.id).where(Variant.account_id == account_id)))
            champion = load_champion(session, account_id)
            preds = cs.base_predictions(
                session,
                account_id,
                hour,
                ids,
                xgb=champion.model if champion else None,
                settings=self.settings,
            )
            learnt, _ = cs.current_weights(session, account_id, hour)
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
