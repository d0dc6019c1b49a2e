"""Answers of the winner-memory routes (loop 1)."""

from __future__ import annotations

from typing import Any

from adflywheel.api.schemas.base import Answer


class WinnerStatsOut(Answer):
    impressions: int
    clicks: int
    ctr: float | None
    probability_above_threshold: float
    evaluated_at: str


class QualificationOut(Answer):
    impressions: int
    clicks: int
    ctr: float | None
    probability_above_threshold: float
    at: str


class WinnerOut(Answer):
    """A winner in memory: its stats when it qualified and now. ``similarity`` (cosine to the
    query) only in search results."""

    similarity: float | None = None
    ad_id: str
    status: str
    source: str
    text: str
    threshold_ctr: float
    latest: WinnerStatsOut
    at_qualification: QualificationOut
    status_changed_at: str


class SearchIndexOut(Answer):
    version: int
    count: int
    kind: str


class WinnerSearchOut(Answer):
    dna_version: str
    query_genes: dict[str, Any] | None
    k: int
    results: list[WinnerOut]
    index: SearchIndexOut | None
    served_from: str


class IndexedWinnerOut(Answer):
    created: bool
    winner: WinnerOut
    index_changed: bool
    index_origin: str
    cache_keys_dropped: int
    index_version: int


class WinnerPolicyOut(Answer):
    threshold_ctr: float
    min_impressions: int
    min_probability: float
    lapse_probability: float


class IndexStateOut(Answer):
    """The account's index: its version and size, and whether its file is current."""

    version: int
    count: int
    dim: int
    kind: str
    content_hash: str
    built_at: str | None
    file: str


class MemoryStatsOut(Answer):
    winners: int
    by_status: dict[str, int]
    by_source: dict[str, int]
    policy: WinnerPolicyOut
    last_evaluated_at: str | None
    index: IndexStateOut | None
