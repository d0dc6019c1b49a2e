"""Prediction validation and accuracy endpoints (loop 6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
