"""Sample-ratio mismatch: did each arm get the share of traffic it was meant to get?

A result is trusted only if delivery followed the intended split; an arm that was starved or
flooded (an ad stuck in review, a broken pixel, a budget edited by hand) signals that something
other than the creative differs between the arms.

Two departures from the textbook chi-square check (GrowthBook warns at p < 0.001):

* It is checked every hour, so it must be always-valid too: the relative excess of the variant's
  impressions over what the intended shares predict, ``theta = sum(n_v) / sum(N_k q_k) - 1``,
  is tested with the same normal-mixture boundary as the lift (Howard et al. 2021), per period
  so that a changing split is handled (GrowthBook's bandit SRM sums ``period_users x weights``
  the same way). The fixed-sample chi-square p-value is reported beside it, for reference.
* Budgets buy impressions at a price that differs by ad (CPM), so on an ad platform the split
  never matches exactly and with enough data any difference is significant. A mismatch is
  declared only when the confidence sequence lies entirely outside ``+- tolerance`` (default
  20%): the deviation is both certain and large.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from adflywheel.loops.promoter.sequential import always_valid_p_value, cs_half_width


@dataclass(frozen=True, slots=True)
class SrmResult:
    checked: bool
    mismatch: bool
    observed_share: float  # the variant's share of the pair's impressions
    expected_share: float  # what the intended split predicts
    deviation: float  # relative excess of the variant's impressions over expected
    interval: tuple[float, float]
    p_value: float  # always-valid, for deviation = 0
    chi2_p_value: float  # fixed-sample Pearson chi-square, for reference only

    @classmethod
    def unchecked(cls) -> SrmResult:
        return cls(False, False, 0.0, 0.0, 0.0, (0.0, 0.0), 1.0, 1.0)


def sample_ratio_check(
    variant_impressions: ArrayLike,
    control_impressions: ArrayLike,
    intended_variant_share: ArrayLike,
    *,
    alpha: float = 0.001,
    tolerance: float = 0.2,
) -> SrmResult:
    """Check the variant's impressions against its intended share ``q_k`` of the pair's
    impressions in each period ``k`` (1-D arrays of equal length)."""
    nv = np.asarray(variant_impressions, dtype=np.float64)
    nc = np.asarray(control_impressions, dtype=np.float64)
    q = np.asarray(intended_variant_share, dtype=np.float64)
    if not (nv.shape == nc.shape == q.shape) or nv.ndim != 1:
        raise ValueError("impressions and intended shares must be 1-D arrays of equal length")
    if np.any((q < 0) | (q > 1)) or not np.all(np.isfinite(q)):
        raise ValueError("intended shares must lie in [0, 1]")
    n = nv + nc
    expected_v = float(np.sum(n * q))
    expected_c = float(np.sum(n * (1.0 - q)))
    total = float(n.sum())
    if total <= 0 or expected_v <= 0 or expected_c <= 0:
        return SrmResult.unchecked()
    observed_v = float(nv.sum())
    deviation = observed_v / expected_v - 1.0
    variance = float(np.sum(n * q * (1.0 - q))) / expected_v**2
    tau = max(tolerance, 0.01)
    half = float(cs_half_width(variance, tau, alpha))
    lo, hi = deviation - half, deviation + half
    chi2 = (observed_v - expected_v) ** 2 / expected_v + (
        total - observed_v - expected_c
    ) ** 2 / expected_c
    return SrmResult(
        checked=True,
        mismatch=bool(lo > tolerance or hi < -tolerance),
        observed_share=observed_v / total,
        expected_share=expected_v / total,
        deviation=deviation,
        interval=(lo, hi),
        p_value=float(always_valid_p_value(deviation, variance, tau)),
        chi2_p_value=float(stats.chi2.sf(chi2, 1)),
    )
