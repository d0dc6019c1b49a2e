"""Loop 4's API: extract Creative DNA (from a video upload or a features dict), score a creative's
win probability with its reasons, explain why the account's ads win, store a variant's DNA.

Uploads are read into memory with a size cap, sniffed, and decoded from memory; a client never
names a path. Extraction runs in the thread pool so a slow video does not stall the server.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from adflywheel.api.deps import CallerDep, ServicesDep
from adflywheel.api.openapi import kinds
from adflywheel.api.schemas.dna import DnaPatternsOut, DnaScoreOut, ExtractedDnaOut, StoredDnaOut
from adflywheel.api.schemas.types import PathExternalId, unclean_string
from adflywheel.loops.dna.fingerprint import Dna
from adflywheel.services.dna import service as dna_service
from adflywheel.services.dna.thumbnails import Thumbnail
from adflywheel.store.catalog import variant_by_external

router = APIRouter(prefix="/api/ml", tags=["creative-dna"])

MAX_VIDEO_BYTES = 50_000_000
MAX_TEXT_CHARS = 5_000

# These routes read their body by hand (JSON features or a multipart upload), so FastAPI knows
# neither the body nor what refusing it answers: both are declared here.
READS_BODY = kinds(400, 413, 415, 422)
BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "Pre-extracted features, flat or as {features, text}",
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "video": {"type": "string", "format": "binary"},
                        "text": {"type": "string", "maxLength": MAX_TEXT_CHARS},
                    },
                    "required": ["video"],
                }
            },
        },
    }
}


def _limit(services: Any) -> int:
    return min(MAX_VIDEO_BYTES, int(services.settings.max_request_bytes))


async def _read_request(request: Request, limit: int) -> tuple[bytes | None, dict[str, Any], str]:
    """(video bytes or None, features, text) from a JSON or multipart body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10)
        try:
            upload = form.get("video")
            text = form.get("text") or ""
            if not isinstance(text, str):
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "'text' must be a form field")
            if not isinstance(upload, UploadFile):
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST, "send the video file in the form field 'video'"
                )
            data = await upload.read(limit + 1)
        finally:
            await form.close()
        if len(data) > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"the video exceeds {limit} bytes"
            )
        if not data:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "the uploaded video is empty")
        return data, {}, _text(text)
    if kind == "":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "no Content-Type: send application/json features (an empty object {} is fine) or "
            "multipart/form-data with the file in 'video' and the ad text in 'text'",
        )
    if kind == "application/json":
        try:
            body = await request.json()
        except ValueError as error:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, "the body is not valid JSON"
            ) from error
        if not isinstance(body, dict):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "send a JSON object")
        problem = unclean_string(body)
        if problem is not None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                [{"loc": ["body"], "msg": problem, "type": "value_error"}],
            )
        features: Any = body.get("features", body)
        text_in: Any = body.get("text", body.get("primary_text", ""))
        if not isinstance(features, dict) or not isinstance(text_in, str):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "'features' must be an object and 'text' a string",
            )
        features = {k: v for k, v in features.items() if k not in ("text", "primary_text")}
        return None, features, _text(text_in)
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "send application/json features or multipart/form-data with 'video' and 'text'",
    )


def _text(text: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"text exceeds {MAX_TEXT_CHARS} characters"
        )
    problem = unclean_string(text)
    if problem is not None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["body", "text"], "msg": problem, "type": "value_error"}],
        )
    return text


async def _extract(data: bytes | None, features: dict[str, Any], text: str) -> Dna:
    if data is not None:
        return await run_in_threadpool(dna_service.extract_from_video, data, text)
    return dna_service.extract_from_features(features, text)


@router.post(
    "/creative-dna/extract",
    response_model_exclude_unset=True,
    responses=READS_BODY,
    openapi_extra=BODY,
)
async def extract(request: Request, caller: CallerDep, services: ServicesDep) -> ExtractedDnaOut:
    """The DNA of a creative: JSON features (``{"features": {...}, "text": "..."}`` or a flat
    object), or multipart with the file in ``video`` and the ad text in ``text``. Includes the
    win probability from the caller's history (null, with the reason, when there is none)."""
    data, features, text = await _read_request(request, _limit(services))
    dna = await _extract(data, features, text)
    score = await run_in_threadpool(_score, services, caller.account_id, dna)
    return ExtractedDnaOut.model_validate({**dna.as_dict(), **score})


def _score(services: Any, account_id: int, dna: Dna) -> dict[str, Any]:
    with services.factory() as session:
        return dna_service.score(session, account_id, dna)


@router.post(
    "/creative-dna/score",
    response_model_exclude_unset=True,
    responses=READS_BODY | kinds(404),
    openapi_extra=BODY,
)
async def score(request: Request, caller: CallerDep, services: ServicesDep) -> DnaScoreOut:
    """Win probability and its reasons for a creative given as JSON features (and text), as a
    video upload, or as ``{"ad_id": ...}`` (an ad of this account, by its stored DNA)."""
    data, features, text = await _read_request(request, _limit(services))
    ad_id = features.pop("ad_id", None) if data is None else None
    if ad_id is not None:
        dna = await run_in_threadpool(_stored_dna, services, caller.account_id, str(ad_id))
    else:
        dna = await _extract(data, features, text)
    result = await run_in_threadpool(_score, services, caller.account_id, dna)
    return DnaScoreOut.model_validate(
        {"dna_version": dna.dna_version, "genes": dna.genes, **result}
    )


def _stored_dna(services: Any, account_id: int, ad_id: str) -> Dna:
    with services.factory() as session:
        variant = variant_by_external(session, account_id, ad_id)
        if variant is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ad {ad_id!r}")
        return dna_service.variant_dna(session, variant)


@router.get("/creative-dna/patterns")
def patterns(
    caller: CallerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 25,
) -> DnaPatternsOut:
    """Why this account's ads win: per-gene lifts on CTR (and CVR when there are conversions)
    against the account baseline, with 95% intervals, ads and impressions behind each, shrunk
    for small groups. Levels are sorted by ``assured`` (the lower 95% bound of the size of the
    effect, max(0, |effect| − 1.96·sd)), then by ``evidence``; genes by their best level's
    ``assured``."""
    with services.factory() as session:
        found = dna_service.account_patterns(session, caller.account_id, limit=limit)
    return DnaPatternsOut.model_validate(found)


@router.post("/variants/{ad_id}/dna", responses=READS_BODY, openapi_extra=BODY)
async def variant_dna(
    ad_id: PathExternalId, request: Request, caller: CallerDep, services: ServicesDep
) -> StoredDnaOut:
    """Extract and store an ad's DNA: from an uploaded video (multipart ``video``, optional
    ``text``), from JSON features, or, with an empty JSON object, from the features and text
    the ad already has. The ad's primary text is the default text. Nothing is stored on error."""
    # Whose ad it is comes first: another account's id is a 404 whatever the body.
    known = await run_in_threadpool(_variant_inputs, services, caller.account_id, ad_id)
    data, features, text = await _read_request(request, _limit(services))
    text = text or known["text"]
    source = "video" if data is not None else "features"
    if data is None and not features:
        features = known["features"]
    thumbnail = None
    if data is not None:  # the video's DNA and one frame of it, kept for the console
        extracted = await run_in_threadpool(dna_service.extract_video, data, text)
        dna, thumbnail = extracted.dna, extracted.thumbnail
    else:
        dna = dna_service.extract_from_features(features, text)
    stored = await run_in_threadpool(
        _store, services, caller.account_id, ad_id, dna, source, thumbnail
    )
    return StoredDnaOut.model_validate(stored)


def _variant_inputs(services: Any, account_id: int, ad_id: str) -> dict[str, Any]:
    with services.factory() as session:
        variant = variant_by_external(session, account_id, ad_id)
        if variant is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ad {ad_id!r}")
        return {"text": variant.primary_text, "features": dict(variant.observed_features or {})}


def _store(
    services: Any,
    account_id: int,
    ad_id: str,
    dna: Dna,
    source: str,
    thumbnail: Thumbnail | None = None,
) -> dict[str, Any]:
    with services.factory() as session, session.begin():
        variant = variant_by_external(session, account_id, ad_id)
        if variant is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ad {ad_id!r}")
        row = dna_service.store_dna(
            session,
            account_id,
            variant,
            dna,
            source,
            services.clock.now(),
            thumbnail=thumbnail,
            artifacts_url=services.settings.resolved_artifacts_url,
        )
        return {
            "ad_id": ad_id,
            "stored": True,
            "extracted_at": row.extracted_at.isoformat(),
            **dna.as_dict(),
        }
