"""Cross-account learning endpoints (loop 3)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
