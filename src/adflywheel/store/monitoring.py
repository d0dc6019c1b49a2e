"""Prediction scoring, drift state, retrain triggers and alerts (loop 6)."""

from __future__ import annotations
