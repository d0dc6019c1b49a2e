"""Loop 5 feeding loop 2 inside the hourly cycle: Thompson priors from the serving models only.

``CompoundPriors`` (the harness's ``thompson+compound``) retrains through the gate when it
refreshes; in the cycle, training belongs to loop 5's step and loop 6's triggers, so the cycle's
provider only reads the champion and the learnt weights that are serving this hour.

The cycle builds a new provider every hour, so a prior frozen at a variant's launch cannot live in
memory. It is recomputed instead, exactly as the provider computed it in the cycle of the
variant's first delivered hour ``L`` (when the variant had not delivered yet): data before ``L``,
the champion that served at ``L`` (the registry's alias history), the weights learnt as of ``L``.
A variant gets it only if loop 5 saw it before it delivered (a recorded loop-5 prediction of it
for a window starting at or before ``L``); a variant already delivering when loop 5 first saw it
gets no compound prior.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adflywheel.loops.bandit import RatePrior
from adflywheel.loops.compound.ensemble import MODELS
from adflywheel.loops.compound.features import FEATURE_SCHEMA
from adflywheel.services.compound.priors import CompoundPriors, pre_launch_priors
from adflywheel.services.compound.registry import CHAMPION, MODEL_NAME, LoadedModel, load_version
from adflywheel.store.models import HourlyActualRow, ModelVersion, Prediction
from adflywheel.store.registry import ModelEvent

LOOP5_MODELS = (*MODELS, "ensemble")  # the names loop 5's recorded predictions carry


def champion_at(
    session: Session, account_id: int, at: datetime, name: str = MODEL_NAME
) -> LoadedModel | None:
    """The champion that served at ``at``: the alias after the last move recorded at or before
    it (None when there was none, or when its features are not the ones this code builds)."""
    event = session.scalar(
        select(ModelEvent)
        .where(
            ModelEvent.account_id == account_id,
            ModelEvent.name == name,
            ModelEvent.alias == CHAMPION,
            ModelEvent.created_at <= at,
        )
        .order_by(ModelEvent.created_at.desc(), ModelEvent.id.desc())
    )
    if event is None or event.to_version_id is None:
        return None
    version = session.get(ModelVersion, event.to_version_id)
    if version is None or version.feature_schema.get("version") != FEATURE_SCHEMA.version:
        return None
    return load_version(session, version.id)


@dataclass(slots=True)
class ServingPriors(CompoundPriors):
    def refresh(self, account_id: int, hour: datetime) -> None:
        self.refreshed[account_id] = hour
        self.admit(account_id, hour)

    def launched(
        self, session: Session, account_id: int, hour: datetime, variant_ids: list[int]
    ) -> dict[int, RatePrior]:
        """The prior each variant had in the cycle of its first delivered hour, if loop 5 had
        seen it by then."""
        first: dict[int, datetime] = {
            int(v): h
            for v, h in session.execute(
                select(HourlyActualRow.variant_id, func.min(HourlyActualRow.hour_start))
                .where(
                    HourlyActualRow.account_id == account_id,
                    HourlyActualRow.variant_id.in_(variant_ids),
                    HourlyActualRow.impressions > 0,
                    HourlyActualRow.hour_start < hour,
                )
                .group_by(HourlyActualRow.variant_id)
            )
        }
        seen: dict[int, datetime] = {
            int(v): h
            for v, h in session.execute(
                select(Prediction.variant_id, func.min(Prediction.window_start))
                .where(
                    Prediction.account_id == account_id,
                    Prediction.variant_id.in_(variant_ids),
                    Prediction.model_name.in_(LOOP5_MODELS),
                )
                .group_by(Prediction.variant_id)
            )
        }
        by_launch: dict[datetime, list[int]] = defaultdict(list)
        for variant_id, launch in first.items():
            if variant_id in seen and seen[variant_id] <= launch:
                by_launch[launch].append(variant_id)
        out: dict[int, RatePrior] = {}
        for launch, ids in sorted(by_launch.items()):
            champion = champion_at(session, account_id, launch)
            out.update(pre_launch_priors(session, account_id, launch, ids, champion, self.settings))
        return out
