"""Exponential discounting of hourly evidence, so that the allocator tracks fatigue and drift.

The core takes evidence *totals*; a caller that stores hourly rows turns them into discounted
totals here: an hour ``age`` hours old weighs ``0.5 ** (age / half_life_hours)``. A Beta or Gamma
posterior over discounted counts is the discounted Thompson sampling of the non-stationary bandit
literature (e.g. Qi, Wang & Zhu 2023): with a half-life of h hours the posterior never holds more
than about 1.44·h hours of delivery, so it stays able to notice a collapse. ``None`` or ``inf``
means stationary (plain sums). The same weight applies to every count of an hour, so clicks stay
within impressions after discounting (``variant_from_hourly`` clamps float rounding).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .evidence import RatePrior, VariantEvidence

FloatArray = NDArray[np.float64]


def decay_weights(ages_hours: ArrayLike, half_life_hours: float | None) -> FloatArray:
    """Weight of each hour: ``0.5 ** (age / half_life)``; all ones when stationary."""
    ages = np.asarray(ages_hours, dtype=np.float64)
    if ages.ndim != 1:
        raise ValueError(f"ages_hours must be one-dimensional, got shape {ages.shape}")
    if not np.all(np.isfinite(ages)) or np.any(ages < 0):
        raise ValueError("ages_hours must be finite and >= 0 (an hour cannot be in the future)")
    if half_life_hours is None or math.isinf(half_life_hours):
        return np.ones_like(ages)
    if not half_life_hours > 0:
        raise ValueError(f"half_life_hours must be > 0, None or inf, got {half_life_hours!r}")
    return np.asarray(np.exp2(-ages / half_life_hours), dtype=np.float64)


def discounted_totals(
    hourly_counts: ArrayLike, ages_hours: ArrayLike, half_life_hours: float | None
) -> FloatArray:
    """Discounted sums of hourly counts over the last axis.

    ``hourly_counts`` has shape ``(..., H)`` (e.g. variants × hours), ``ages_hours`` shape ``(H,)``:
    the age of each hour, e.g. hours from the middle of that hour to now. Returns shape ``(...)``.
    """
    counts = np.asarray(hourly_counts, dtype=np.float64)
    weights = decay_weights(ages_hours, half_life_hours)
    if counts.ndim == 0 or counts.shape[-1] != weights.shape[0]:
        raise ValueError(
            f"hourly_counts last axis ({counts.shape[-1:] or 'scalar'}) must match "
            f"ages_hours ({weights.shape[0]} hours)"
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("hourly_counts must be finite and non-negative")
    return np.asarray((counts * weights).sum(axis=-1), dtype=np.float64)


def variant_from_hourly(
    variant_id: str,
    ages_hours: ArrayLike,
    impressions: ArrayLike,
    clicks: ArrayLike,
    spend_minor: ArrayLike,
    half_life_hours: float | None,
    conversions: ArrayLike | None = None,
    revenue_minor: ArrayLike | None = None,
    *,
    prior: RatePrior | None = None,
    active: bool = True,
    current_budget_minor: int | None = None,
    min_budget_minor: int = 0,
    max_budget_minor: int | None = None,
) -> VariantEvidence:
    """A ``VariantEvidence`` from hourly series (one value per hour, aligned with ``ages_hours``).

    The evidence gate counts the raw, undiscounted impressions.
    """
    hours = np.asarray(ages_hours, dtype=np.float64)
    zeros = np.zeros_like(hours)

    def total(series: ArrayLike | None) -> float:
        return float(discounted_totals(zeros if series is None else series, hours, half_life_hours))

    imps_h = np.asarray(impressions, dtype=np.float64)
    clicks_h = np.asarray(clicks, dtype=np.float64)
    convs_h = zeros if conversions is None else np.asarray(conversions, dtype=np.float64)
    if clicks_h.shape != imps_h.shape or np.any(clicks_h > imps_h):
        raise ValueError(f"variant {variant_id!r}: hourly clicks exceed hourly impressions")
    if convs_h.shape != clicks_h.shape or np.any(convs_h > clicks_h):
        raise ValueError(f"variant {variant_id!r}: hourly conversions exceed hourly clicks")
    imps_t = total(imps_h)
    # Per hour the orders hold, so the weighted sums keep them up to float rounding: clamp that.
    clicks_t = min(total(clicks_h), imps_t)
    return VariantEvidence(
        id=variant_id,
        impressions=imps_t,
        clicks=clicks_t,
        spend_minor=total(spend_minor),
        conversions=min(total(convs_h), clicks_t),
        revenue_minor=total(revenue_minor),
        prior=prior,
        active=active,
        current_budget_minor=current_budget_minor,
        min_budget_minor=min_budget_minor,
        max_budget_minor=max_budget_minor,
        evidence_impressions=float(imps_h.sum()),
    )
