"""Structured logs: one JSON object per line when ``ADFLYWHEEL_LOG_FORMAT=json``.

Each record carries ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and, when
known, ``request_id`` and ``account_id`` (with ``exception`` for a traceback). The ids come
from a context the API's middleware opens per request (and the authenticating dependency
fills in), and the cycle runner opens per account. The context is a mutable dict shared by
reference, so an id noted in a sync dependency (run in a worker thread on a copy of the
context) still reaches the handler's later records. The message and the traceback pass
through ``scrub``: a key, token or secret never lands in a line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from adflywheel.platforms.meta.errors import scrub

_FIELDS: ContextVar[dict[str, Any] | None] = ContextVar("adflywheel_log_fields", default=None)
CONTEXT_KEYS = ("request_id", "account_id")


@contextmanager
def bound(**fields: Any) -> Iterator[dict[str, Any]]:
    """Records logged inside carry these fields (on top of the enclosing ones)."""
    merged = {**(_FIELDS.get() or {}), **fields}
    token = _FIELDS.set(merged)
    try:
        yield merged
    finally:
        _FIELDS.reset(token)


def note(**fields: Any) -> None:
    """Add fields to the context opened by the nearest ``bound`` (nothing outside one)."""
    current = _FIELDS.get()
    if current is not None:
        current.update(fields)


def current() -> dict[str, Any]:
    return dict(_FIELDS.get() or {})


class JsonFormatter(logging.Formatter):
    """One JSON object per record, secrets scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        fields = _FIELDS.get() or {}
        out.update({k: fields[k] for k in CONTEXT_KEYS if fields.get(k) is not None})
        if record.exc_info:
            out["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    return handler
