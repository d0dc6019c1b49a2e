"""The self-learning cycle and power-level endpoints."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
