"""Answers of the Creative DNA routes (loop 4). A DNA document's sections hold what the
extractor measured, which differs between a video and a features dict: they stay open objects;
``genes`` is the fixed set of genes (null when unknown)."""

from __future__ import annotations

from typing import Any

from adflywheel.api.schemas.base import Answer


class WinModelOut(Answer):
    """The model behind a win probability: where its threshold and prior came from."""

    threshold_ctr: float
    threshold_rule: str
    level: str
    n_ads: int
    n_winners: int
    baseline_probability: float
    prior: str


class PriorUsedOut(Answer):
    """The published cross-account pattern a thin account's model leans on (``level``: niche,
    global or none)."""

    level: str
    name: str
    accounts: str | None = None


class GeneContributionOut(Answer):
    gene: str
    logit: float


class GeneLiftOut(Answer):
    gene: str
    level: str | None
    log_lift: float
    lift: float


class DnaOut(Answer):
    dna_version: str
    source: str
    hook_dna: dict[str, Any]
    visual_dna: dict[str, Any]
    audio_dna: dict[str, Any]
    genes: dict[str, Any]
    missing_genes: list[str]
    vector: list[float]


class ExtractedDnaOut(DnaOut):
    """The DNA with its win probability from the caller's history (null, with the reason, when
    there is none)."""

    win_probability: float | None
    win_reason: str
    win_model: WinModelOut | None
    prior_used: PriorUsedOut
    contributions: list[GeneContributionOut]
    gene_lifts: list[GeneLiftOut]


class DnaScoreOut(Answer):
    dna_version: str
    genes: dict[str, Any]
    win_probability: float | None
    win_reason: str
    win_model: WinModelOut | None
    prior_used: PriorUsedOut
    contributions: list[GeneContributionOut]
    gene_lifts: list[GeneLiftOut]


class StoredDnaOut(Answer):
    ad_id: str
    stored: bool
    extracted_at: str
    dna_version: str
    source: str
    hook_dna: dict[str, Any]
    visual_dna: dict[str, Any]
    audio_dna: dict[str, Any]
    genes: dict[str, Any]
    missing_genes: list[str]
    vector: list[float]


class GeneEvidenceOut(Answer):
    """How strongly the history says a gene matters at all, and its strongest level."""

    gene: str
    df: int
    chi2: float
    evidence: float
    log10_p: float
    assured: float
    top_level: str
    top_lift: float
    top_low: float
    top_high: float


class GeneEffectOut(Answer):
    """One level's lift on the metric against the account baseline, shrunk for small groups."""

    gene: str
    level: str
    metric: str
    n_ads: int
    impressions: int
    events: int
    rate: float
    lift: float
    lift_low: float
    lift_high: float
    raw_lift: float
    raw_low: float
    raw_high: float
    se_log: float
    evidence: float
    assured: float
    shrink: float
    threshold: float | None
    coef: float
    share: float
    slope_per_sd: float | None


class MetricPatternsOut(Answer):
    baseline: float
    n_ads: int
    exposure: int
    events: int
    between_ad_sd: float
    tau: dict[str, float]
    genes: list[GeneEvidenceOut]
    effects: list[GeneEffectOut]


class DnaPatternsOut(Answer):
    dna_version: str
    n_ads: int
    ctr: MetricPatternsOut
    cvr: MetricPatternsOut | None
