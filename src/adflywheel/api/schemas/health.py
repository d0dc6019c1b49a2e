"""Answers of the health check."""

from __future__ import annotations

from adflywheel.api.schemas.base import Answer


class HealthOut(Answer):
    status: str
    version: str
    schema_revision: str
    database: str
    now: str
