"""Ensemble weights of the compound learner and their history (loop 5)."""

from __future__ import annotations
