"""The console's creatives page (loop 4), one ad's creative, its thumbnail, scoring a clip before
launch, and the winner memory's gallery (loop 1) with "find similar"."""

from __future__ import annotations

import hashlib
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from starlette.datastructures import UploadFile

from adflywheel.api.deps import ServicesDep
from adflywheel.api.errors import status_of
from adflywheel.console.charts import IntervalRow, interval_chart
from adflywheel.console.deps import (
    ApproverDep,
    ConsoleRefusal,
    ViewerDep,
    check_csrf,
    not_found,
)
from adflywheel.console.templating import render, see_other
from adflywheel.console.views import creative_detail, creatives, memory
from adflywheel.core.errors import AdflywheelError, NotFoundError
from adflywheel.core.loops import Loop, unavailable
from adflywheel.services.dna.thumbnails import ThumbnailStore
from adflywheel.store.catalog import variant_by_external

router = APIRouter(include_in_schema=False)

MAX_CLIP_BYTES = 50_000_000
MAX_TEXT_CHARS = 5_000
THUMBNAIL_CACHE = "private, max-age=86400"
PageQuery = Annotated[int, Query(ge=1, le=100_000)]


def effects_chart(effects: tuple[creatives.Effect, ...]) -> Markup:
    """ "Why ads win": each gene level's lift on CTR with its 95% interval, around no effect."""
    return interval_chart(
        [IntervalRow(e.label, e.lift, e.low, e.high) for e in effects],
        title="Why ads win: effect of each gene on CTR, with 95% intervals",
        empty_message="Not enough delivery yet to say which genes matter",
    )


def reasons_chart(reasons: tuple[creative_detail.Reason, ...]) -> Markup:
    return interval_chart(
        [IntervalRow(r.label, r.logit, r.logit, r.logit) for r in reasons],
        title="What pushes this creative's win probability up or down (log-odds)",
        x_format=lambda v: f"{v:+.1f}",
        empty_message="No win model yet",
    )


def _clip_limit(services: ServicesDep) -> int:
    return min(MAX_CLIP_BYTES, int(services.settings.max_request_bytes))


@router.get("/accounts/{account_id}/creatives", response_class=HTMLResponse)
def creatives_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    page: PageQuery = 1,
    campaign: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    with services.factory() as session:
        view = creatives.build(session, viewer.account_id, page=page, campaign=campaign)
    return render(
        request,
        viewer,
        "creatives/index.html",
        {
            "view": view,
            "effects_chart": effects_chart(view.effects),
            "campaign": campaign,
            "max_mb": _clip_limit(services) // 1_000_000,
        },
    )


@router.get("/accounts/{account_id}/creatives/{ad_id}", response_class=HTMLResponse)
def ad_page(request: Request, ad_id: str, viewer: ViewerDep, services: ServicesDep) -> HTMLResponse:
    try:
        view = creative_detail.ad_detail(
            services.factory, services.settings, viewer.account_id, ad_id
        )
    except NotFoundError as error:
        raise not_found() from error
    return render(
        request,
        viewer,
        "creatives/ad.html",
        {
            "view": view,
            "reasons_chart": reasons_chart(view.panel.reasons),
            "video_off": unavailable(Loop.DNA),
        },
    )


@router.get("/accounts/{account_id}/creatives/{ad_id}/prediction", response_class=HTMLResponse)
def ad_prediction(
    request: Request, ad_id: str, viewer: ViewerDep, services: ServicesDep
) -> HTMLResponse:
    """The ad's predicted CTR as a fragment: the ad's page loads it after itself (htmx)."""
    with services.factory() as session:
        try:
            predicted = creative_detail.ad_prediction(
                session, viewer.account_id, ad_id, services.clock.now()
            )
        except NotFoundError as error:
            raise not_found() from error
    return render(request, viewer, "creatives/_predicted.html", {"predicted": predicted})


@router.get("/accounts/{account_id}/creatives/{ad_id}/thumbnail.jpg")
def thumbnail(request: Request, ad_id: str, viewer: ViewerDep, services: ServicesDep) -> Response:
    """The ad's stored frame; 404 for an ad of another account or one without a frame."""
    with services.factory() as session:
        variant = variant_by_external(session, viewer.account_id, ad_id)
        variant_id = variant.id if variant is not None else None
    if variant_id is None:
        raise not_found()
    data = ThumbnailStore(services.settings.resolved_artifacts_url).read(
        viewer.account_id, variant_id
    )
    if data is None:
        raise not_found("This ad has no stored frame.")
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {
        "Cache-Control": THUMBNAIL_CACHE,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/jpeg", headers=headers)


async def _read_clip(request: Request, limit: int) -> tuple[bytes, str, str]:
    """(bytes, file name, ad text) of the upload form; a 4xx page for anything else."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ConsoleRefusal(415, "Unsupported form", "Send the clip with the upload form.")
    form = await request.form(max_files=1, max_fields=5)
    upload = form.get("video")
    text = form.get("text") or ""
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise ConsoleRefusal(400, "No clip", "Choose a video file to score.")
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        raise ConsoleRefusal(422, "Ad text too long", f"At most {MAX_TEXT_CHARS} characters.")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ConsoleRefusal(413, "Too large", f"The clip is over {limit // 1_000_000} MB.")
    if not data:
        raise ConsoleRefusal(400, "Empty file", "The chosen file is empty.")
    return data, upload.filename[:200], text


@router.post("/accounts/{account_id}/creatives/score", response_class=HTMLResponse)
async def score_clip(request: Request, viewer: ViewerDep, services: ServicesDep) -> HTMLResponse:
    """Score a clip before launch: its DNA, frame, win probability and predicted CTR. Reads
    only (nothing is stored), so any role may; the form still carries the CSRF token."""
    await check_csrf(request, viewer.csrf_token)
    data, name, text = await _read_clip(request, _clip_limit(services))
    try:
        scored = await run_in_threadpool(
            creative_detail.score_clip,
            services.factory,
            services.settings,
            viewer.account_id,
            data,
            text,
            name,
            services.clock.now(),
        )
    except AdflywheelError as error:
        code = status_of(error) or 422
        raise ConsoleRefusal(code, "Cannot score this file", str(error)) from error
    return render(
        request,
        viewer,
        "creatives/score.html",
        {"scored": scored, "reasons_chart": reasons_chart(scored.panel.reasons)},
    )


@router.get("/accounts/{account_id}/memory", response_class=HTMLResponse)
def memory_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    page: PageQuery = 1,
    like: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    try:
        view = memory.build(
            services.factory, services.settings, viewer.account_id, page=page, like=like or None
        )
    except NotFoundError as error:
        raise not_found() from error
    return render(request, viewer, "creatives/memory.html", {"view": view})


@router.post("/accounts/{account_id}/creatives/{ad_id}/video")
async def ad_video(
    request: Request, ad_id: str, viewer: ApproverDep, services: ServicesDep
) -> Response:
    """Upload an ad's video (approver): its DNA is extracted and stored with its frame, as
    ``POST /api/ml/variants/{ad_id}/dna`` does; back to the ad's page."""
    data, _, _ = await _read_clip(request, _clip_limit(services))
    try:
        at_s = await run_in_threadpool(
            creative_detail.store_ad_video,
            services.factory,
            services.settings,
            viewer.account_id,
            ad_id,
            data,
            services.clock.now(),
        )
    except NotFoundError as error:
        raise not_found() from error
    except AdflywheelError as error:
        code = status_of(error) or 422
        raise ConsoleRefusal(code, "Cannot read this video", str(error)) from error
    back = f"/accounts/{viewer.account_id}/creatives/{quote(ad_id, safe='')}"
    return see_other(
        request, back, f"Video read: its DNA is stored, with the frame at {at_s:.1f} s."
    )
