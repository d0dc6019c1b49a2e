"""Loop 5's compound-learner endpoints: the blended CTR prediction of an ad (or of a creative
before launch) with its interval, confidence, weights and each base model's own answer; the
learnt weights and their history.

Ads are named by their platform id (``variant_id``/``ad_id``); an id of another account is
simply unknown here (404). With no data and no model the answer is ``prediction: null`` with the
reason, never a made-up number.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, model_validator

from adflywheel.api.deps import CallerDep, ServicesDep
from adflywheel.api.openapi import kinds
from adflywheel.api.schemas.compound import CompoundPredictionOut, WeightsHistoryOut
from adflywheel.api.schemas.types import AdText, ExternalId
from adflywheel.core.clock import floor_hour
from adflywheel.loops.dna.fingerprint import DNA_VERSION, Dna
from adflywheel.services.compound import service as compound_service
from adflywheel.services.compound import serving
from adflywheel.services.compound.ctr_data import account_facts
from adflywheel.services.dna.service import extract_from_features

router = APIRouter(prefix="/api/ml/compound", tags=["compound-learner"])


class PredictIn(BaseModel):
    """Either an ad of this account (``variant_id`` or its synonym ``ad_id``: the platform id),
    or a creative not launched yet: its ``dna`` (a DNA document or its genes) or ``features``
    (as for ``/creative-dna/extract``), with its ad ``text``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    variant_id: ExternalId | None = None
    ad_id: ExternalId | None = None
    dna: dict[str, Any] | None = None
    features: dict[str, Any] | None = None
    text: AdText = ""

    @model_validator(mode="after")
    def _one_subject(self) -> PredictIn:
        ads = [x for x in (self.variant_id, self.ad_id) if x is not None]
        creatives = [x for x in (self.dna, self.features) if x is not None]
        if len(ads) + len(creatives) != 1:
            raise ValueError(
                "give exactly one of: 'variant_id' (or 'ad_id'), 'dna', 'features' (+ 'text')"
            )
        return self


def _dna(body: PredictIn) -> Dna:
    """The creative's DNA from the request, validated by loop 4's own parser (422 otherwise)."""
    source: dict[str, Any] = body.features if body.features is not None else dict(body.dna or {})
    if body.dna is not None and "genes" in body.dna:
        version = body.dna.get("dna_version", DNA_VERSION)
        if version != DNA_VERSION:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"dna_version {version!r} is not the current {DNA_VERSION!r}; re-extract it",
            )
        genes = body.dna["genes"]
        if not isinstance(genes, dict):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "'dna.genes' must be an object"
            )
        source = dict(genes)
    return extract_from_features(source, body.text)


def _no_model(reason: str) -> dict[str, Any]:
    return {
        "prediction": None,
        "interval": None,
        "confidence": None,
        "models_used": [],
        "weights": {},
        "predictions": {},
        "method": "none",
        "reason": reason,
    }


@router.post("/predict", response_model_exclude_unset=True, responses=kinds(404))
def predict(body: PredictIn, caller: CallerDep, services: ServicesDep) -> CompoundPredictionOut:
    """The compound CTR prediction over the next 24 hours: ``prediction``, a 90% ``interval``,
    ``confidence`` (share of the account's between-ad uncertainty removed, 0–1), ``models_used``,
    their ``weights``, each model's own answer (``predictions``) and the ``method`` that chose
    them (``blend``, ``best_single`` when the guard refused a worse blend, ``single``,
    ``fallback`` before any weights were learnt)."""
    at = floor_hour(services.clock.now())
    ad = body.variant_id or body.ad_id
    dna = None if ad is not None else _dna(body)
    found, hit = None, None
    if ad is not None:
        # An ad: one query (the account, the ad, the champion) outside a transaction (no BEGIN
        # and ROLLBACK round trips), then the hour's cached answer (services/compound/serving.py).
        with services.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            found = serving.look_up(c, caller.account_id, ad)
        if found is None or found.variant_id is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ad {ad!r}")
        answers = serving.answers_for(services.settings, services.engine)
        hit = serving.cached(
            answers, caller.account_id, found.variant_id, at, found.version, services.clock.now()
        )
    subject: dict[str, Any] = {
        "variant_id": ad,
        "dna_version": None if dna is None else dna.dna_version,
        "synthetic": found.synthetic if found is not None else False,
        "as_of": at.isoformat(),
    }
    if hit is not None:
        return CompoundPredictionOut.model_validate({**subject, **hit})
    with services.factory() as session:
        try:
            if found is None:
                assert dna is not None
                facts = account_facts(session, caller.account_id)
                subject["synthetic"] = bool(facts and facts.synthetic)
                result = compound_service.predict_creative(session, caller.account_id, dna, at)
            else:
                assert found.variant_id is not None
                result = serving.serve_variant(
                    session,
                    serving.answers_for(services.settings, services.engine),
                    caller.account_id,
                    found.variant_id,
                    at,
                    services.clock.now(),
                    version=found.version,
                )
        except compound_service.NoModelError as error:
            result = _no_model(str(error))
    return CompoundPredictionOut.model_validate({**subject, **result})


@router.get("/weights")
def weights(
    caller: CallerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> WeightsHistoryOut:
    """The account's current ensemble weights (with the recalibration, the holdout they were
    learnt on and each model's measured accuracy there) and their history, newest first."""
    with services.factory() as session:
        found = compound_service.weights_history(session, caller.account_id, limit=limit)
    return WeightsHistoryOut.model_validate(found)
