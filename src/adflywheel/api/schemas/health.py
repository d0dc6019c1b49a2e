"""Answers of the health check."""

from __future__ import annotations

from adflywheel.api.schemas.base import Answer


class HealthOut(Answer):
    """Without a key only ``status`` (a probe needs no more, and a stranger learns nothing about
    the deployment); with an account's key also the version, schema, database kind and clock."""

    status: str
    version: str | None = None
    schema_revision: str | None = None
    database: str | None = None
    now: str | None = None
