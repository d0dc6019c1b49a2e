"""``GET /metrics`` for Prometheus, and the middleware that times every request.

Why an operator token and no account key: a scraper is the deployment's, not an account's,
and the figures are the whole service's. So ``/metrics`` answers only ``Authorization: Bearer
<ADFLYWHEEL_METRICS_TOKEN>``; without that setting it answers 404 (nothing is exposed by
default), and it stays out of the OpenAPI document (it is not part of the accounts' API).

The middleware labels latency by the matched route's template (``/api/ml/campaigns/
{campaign_id}``): raw paths would carry ids and grow without bound. It also opens the log
context of the request (its id, from ``RequestIds``; the account is noted when authenticated).
"""

from __future__ import annotations

import hmac
import logging
import time

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adflywheel.api.deps import get_services
from adflywheel.services.observability import logs
from adflywheel.services.observability.metrics import CONTENT_TYPE, observe_request, render

log = logging.getLogger("adflywheel.api.requests")
UNMATCHED = "unmatched"


def install_metrics(app: FastAPI) -> None:
    """``GET /metrics`` as a plain route: text, outside the accounts' JSON API and its schema."""
    app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)


async def metrics(request: Request) -> Response:
    token = get_services(request).settings.metrics_token
    if token is None:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        return JSONResponse(
            {"detail": "send the metrics token as 'Authorization: Bearer <token>'"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(render(), media_type=CONTENT_TYPE)


class RequestMetrics:
    """ASGI middleware (inside ``RequestIds``): latency by route template, and the request's
    log context."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = int(message["status"])
            await send(message)

        with logs.bound(request_id=scope.get("state", {}).get("request_id")):
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                seconds = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None) or UNMATCHED
                observe_request(scope["method"], route, answered, seconds)
                # Debug only: uvicorn's access log already names each request.
                log.debug("%s %s -> %s in %.4f s", scope["method"], route, answered, seconds)
