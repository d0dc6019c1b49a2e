"""Errors as HTTP answers, in one place.

A deliberate error (an ``AdflywheelError`` of a kind) answers with its kind's status and
``{"detail": <message>}``, the body FastAPI gives an ``HTTPException``. Anything else is a bug: a
500 whose body carries only the request id, so the traceback in the log can be found without
the client learning what broke. A request that fails validation is a 422 whose body can always
be written as JSON: each error's ``loc``, ``msg`` and ``type``, with its ``input`` only when that
is plain, short and finite (FastAPI's own handler echoes ``NaN``, ``1e400`` or a lone surrogate
and then fails to encode its answer). Every 422 has that list form, one raised with a message
(an ``InvalidInputError``, an ``HTTPException``) too, as the OpenAPI document says
(``api/openapi.py``). Every response, errors included, carries ``X-Request-ID``: the caller's
own when it sent a usable one, otherwise a fresh one.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adflywheel.core.errors import (
    AdflywheelError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
    UnsupportedFormatError,
    UpstreamError,
)

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# An id from the caller is echoed and logged, so it must be short and plain.
_USABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# The most specific kind wins: a class's MRO is searched in order.
STATUS_OF_KIND: dict[type[AdflywheelError], int] = {
    UnsupportedFormatError: 415,
    InvalidInputError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    UpstreamError: 502,
    UnavailableError: 503,
}


def status_of(error: AdflywheelError) -> int | None:
    """The HTTP status of the error's kind; None for an error of no kind (the service's fault)."""
    for cls in type(error).__mro__:
        status = STATUS_OF_KIND.get(cls)
        if status is not None:
            return status
    return None


async def _answer_kind(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AdflywheelError)
    status = status_of(error)
    if status is None:
        raise error  # no kind: unexpected, answered as a 500 by ``RequestIds``
    # A kind that says when to come back (e.g. a busy store) carries ``retry_after`` seconds.
    retry_after = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else None
    detail: object = _as_errors(str(error)) if status == 422 else str(error)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _as_errors(message: str) -> list[dict[str, Any]]:
    """A 422 given as one message, in the list form of every 422: about the request as a whole
    (an empty ``loc``), since the message alone does not say which field."""
    return [{"loc": [], "msg": _safe_text(message, 1000), "type": "value_error"}]


async def _answer_http(request: Request, error: Exception) -> Response:
    """FastAPI's answer to an ``HTTPException``, but a 422 is always the list form."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 422 and isinstance(error.detail, str):
        return JSONResponse(
            {"detail": _as_errors(error.detail)}, status_code=422, headers=error.headers
        )
    return await http_exception_handler(request, error)


# An echoed input longer than this (characters of its JSON) is left out of the answer.
_MAX_ECHO_CHARS = 200


def _safe_text(value: object, limit: int = _MAX_ECHO_CHARS) -> str:
    """``value`` as text that encodes to UTF-8 (lone surrogates replaced), at most ``limit``."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_safe(value: Any, depth: int = 0) -> bool:
    """True for a value ``json.dumps`` writes as standard JSON (finite numbers, UTF-8 strings)."""
    if value is None or isinstance(value, bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if depth > 3:
        return False
    if isinstance(value, list | tuple):
        return all(_json_safe(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(k) for k in value) and all(
            _json_safe(v, depth + 1) for v in value.values()
        )
    return False


def _safe_error(error: dict[str, Any]) -> dict[str, Any]:
    loc: Sequence[object] = error.get("loc", ())
    safe: dict[str, Any] = {
        "loc": [part if isinstance(part, int) else _safe_text(part) for part in loc],
        "msg": _safe_text(error.get("msg", ""), 1000),
        "type": _safe_text(error.get("type", "value_error")),
    }
    if "input" in error:
        value = error["input"]
        if _json_safe(value) and len(json.dumps(value)) <= _MAX_ECHO_CHARS:
            safe["input"] = value
        else:
            safe["input_type"] = type(value).__name__
    return safe


async def _answer_invalid(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": [_safe_error(dict(e)) for e in error.errors()]}, status_code=422)


def install_error_handling(app: FastAPI) -> None:
    """Map the error kinds to statuses, answer invalid requests with a JSON-safe 422, and give
    every response a request id."""
    app.add_exception_handler(AdflywheelError, _answer_kind)
    app.add_exception_handler(StarletteHTTPException, _answer_http)
    app.add_exception_handler(RequestValidationError, _answer_invalid)
    app.add_middleware(RequestIds)


class RequestIds:
    """ASGI middleware: a request id on every response, and a JSON 500 for anything that
    escapes a route (logged with that id, its text kept out of the response)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error in %s %s (request id %s)",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
            if started:
                raise
            await _internal_error(send, request_id)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            given = bytes(value).decode("latin-1")
            if _USABLE_ID.fullmatch(given):
                return given
    return uuid.uuid4().hex


async def _internal_error(send: Send, request_id: str) -> None:
    body = json.dumps({"detail": "internal server error", "request_id": request_id}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
