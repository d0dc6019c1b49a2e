"""Winner memory endpoints (loop 1): search, index, stats."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
