"""Model registry endpoints (loop 5): list versions, train a challenger through the gate."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
