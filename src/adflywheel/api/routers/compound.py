"""Compound learner and model registry endpoints (loop 5)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
