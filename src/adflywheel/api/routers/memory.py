"""Winner memory endpoints (loop 1): search, index, stats.

Every call is scoped to the caller's account: the search runs on the caller's own index and the
hits are read back filtered by the caller's account id, so another account's winners (or ads)
can never appear; an ad id of another account is simply "no such ad" (404).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from adflywheel.api.deps import CallerDep, ServicesDep
from adflywheel.api.openapi import kinds
from adflywheel.api.schemas.memory import IndexedWinnerOut, MemoryStatsOut, WinnerSearchOut
from adflywheel.api.schemas.types import AdText, ExternalId
from adflywheel.loops.dna.fingerprint import DNA_VERSION, VECTOR_LENGTH
from adflywheel.services.dna import service as dna_service
from adflywheel.services.memory import service as memory_service
from adflywheel.services.memory.index import redis_for

router = APIRouter(prefix="/api/ml/rag", tags=["winner-memory"])

MAX_TEXT_CHARS = 5_000


class SearchRequest(BaseModel):
    """Exactly one query: ``ad_id`` (an ad of yours), ``vector`` (a DNA vector of the current
    version), ``features`` (genes/pre-extracted features, with optional ``text``), or ``text``
    alone (its DNA: the hook read from the opening line)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    k: int = Field(default=10, ge=1, le=memory_service.MAX_K)
    ad_id: ExternalId | None = None
    vector: list[float] | None = Field(
        default=None, min_length=VECTOR_LENGTH, max_length=VECTOR_LENGTH
    )
    features: dict[str, Any] | None = None
    text: AdText | None = None


class IndexWinnerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ad_id: ExternalId


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def _query_vector(body: SearchRequest) -> tuple[list[float] | None, dict[str, Any] | None]:
    """(vector, the genes it came from) for every query kind but ``ad_id``."""
    kinds = [
        name
        for name, given in (
            ("ad_id", body.ad_id is not None),
            ("vector", body.vector is not None),
            ("features", body.features is not None),
            ("text", body.text is not None and body.features is None),
        )
        if given
    ]
    if not kinds:
        raise _unprocessable("the query is empty: give one of ad_id, vector, features or text")
    if len(kinds) > 1:
        raise _unprocessable(f"give exactly one query, not {' and '.join(kinds)}")
    if body.vector is not None:
        # Checked here, not in the model: a validation error echoes its input, and NaN is not JSON.
        if not all(math.isfinite(v) for v in body.vector):
            raise _unprocessable("vector values must be finite numbers")
        return body.vector, None
    if body.ad_id is not None:
        return None, None
    text = body.text or ""
    if body.features is None and not text.strip():
        raise _unprocessable("the query text is empty")
    dna = dna_service.extract_from_features(body.features or {}, text)
    return list(dna.vector), dna.genes


@router.post("/search-winners", response_model_exclude_unset=True, responses=kinds(404))
def search_winners(
    body: SearchRequest, caller: CallerDep, services: ServicesDep
) -> WinnerSearchOut:
    """The k past winners of your account most similar (cosine over Creative DNA vectors) to
    the query, with their stats at qualification and now, their status and the similarity."""
    vector, genes = _query_vector(body)
    result = memory_service.search_winners(
        services.factory,
        services.settings,
        caller.account_id,
        k=body.k,
        vector=vector,
        ad_id=body.ad_id,
        redis=redis_for(services.settings),
    )
    return WinnerSearchOut.model_validate(
        {"dna_version": DNA_VERSION, "query_genes": genes, **result}
    )


@router.post("/index-winner", response_model_exclude_unset=True, responses=kinds(404))
def index_winner(
    body: IndexWinnerRequest, caller: CallerDep, services: ServicesDep
) -> IndexedWinnerOut:
    """Add one of your ads to the winner memory by hand (kept even if it never clears the bar;
    the cycle does not lapse hand-added winners)."""
    indexed = memory_service.index_winner(
        services.factory,
        services.settings,
        caller.account_id,
        body.ad_id,
        services.clock.now(),
        actor=f"api:{caller.account_name}",
        redis=redis_for(services.settings),
    )
    return IndexedWinnerOut.model_validate(indexed)


@router.get("/memory-stats")
def memory_stats(caller: CallerDep, services: ServicesDep) -> MemoryStatsOut:
    """Your winners by status and source, the winner bar, and the state of your index."""
    stats = memory_service.memory_stats(services.factory, services.settings, caller.account_id)
    return MemoryStatsOut.model_validate(stats)
