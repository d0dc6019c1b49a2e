"""Measures of a CTR predictor on aggregated rows (impressions, clicks), and the paired bootstrap
over creatives (``scipy.stats.bootstrap``).

Rates near 1% make "accuracy" meaningless (predicting 0 is 99% accurate), so predictors are judged
by the binomial log-loss per impression, normalised entropy (log-loss over the entropy of the
training base rate, He et al. 2014: below 1 means better than always predicting the base rate)
and calibration (expected over observed clicks; 1 is perfect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

FloatArray = NDArray[np.float64]
EPS = 1e-7


def clip(p: FloatArray | float) -> FloatArray:
    out: FloatArray = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return out


def binomial_loss(p: FloatArray, impressions: FloatArray, clicks: FloatArray) -> FloatArray:
    """Per-row summed log-loss of ``clicks`` out of ``impressions`` under rate ``p`` (nats)."""
    q = clip(p)
    out: FloatArray = -(clicks * np.log(q) + (impressions - clicks) * np.log1p(-q))
    return out


def log_loss(p: FloatArray, impressions: FloatArray, clicks: FloatArray) -> float:
    """Mean log-loss per impression."""
    total = float(impressions.sum())
    if total <= 0:
        raise ValueError("no impressions to score")
    return float(binomial_loss(p, impressions, clicks).sum()) / total


def entropy(rate: float) -> float:
    """The log-loss per impression of always predicting ``rate`` on data whose rate is ``rate``."""
    r = float(clip(rate))
    return -(r * math.log(r) + (1.0 - r) * math.log1p(-r))


def normalised_entropy(loss: float, base_rate: float) -> float:
    return loss / entropy(base_rate)


def calibration(p: FloatArray, impressions: FloatArray, clicks: FloatArray) -> float | None:
    """Expected over observed clicks; None when nothing was clicked (undefined)."""
    observed = float(clicks.sum())
    if observed <= 0:
        return None
    return float((clip(p) * impressions).sum()) / observed


@dataclass(frozen=True, slots=True)
class Scores:
    log_loss: float
    normalised_entropy: float
    calibration: float | None
    impressions: int
    clicks: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "log_loss": round(self.log_loss, 8),
            "normalised_entropy": round(self.normalised_entropy, 6),
            "calibration": None if self.calibration is None else round(self.calibration, 6),
            "impressions": self.impressions,
            "clicks": self.clicks,
        }


def scores(p: FloatArray, impressions: FloatArray, clicks: FloatArray, base_rate: float) -> Scores:
    """All measures at once; ``base_rate`` is the *training* base rate, so NE compares across
    windows."""
    loss = log_loss(p, impressions, clicks)
    return Scores(
        loss,
        normalised_entropy(loss, base_rate),
        calibration(p, impressions, clicks),
        int(impressions.sum()),
        int(clicks.sum()),
    )


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """Challenger minus reference log-loss per impression, with a bootstrap interval over
    creatives (negative = the challenger is better)."""

    difference: float
    lower: float
    upper: float
    n_groups: int
    n_boot: int
    level: float
    seed: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "log_loss_difference": round(self.difference, 8),
            "ci_lower": round(self.lower, 8),
            "ci_upper": round(self.upper, 8),
            "n_creatives": self.n_groups,
            "n_boot": self.n_boot,
            "level": self.level,
            "seed": self.seed,
        }


def _ratio_of_sums(delta: FloatArray, impressions: FloatArray, axis: int = -1) -> FloatArray:
    """Log-loss difference per impression of a resample of creatives."""
    out: FloatArray = np.sum(delta, axis=axis) / np.sum(impressions, axis=axis)
    return out


def paired_bootstrap(
    challenger: FloatArray,
    reference: FloatArray,
    impressions: FloatArray,
    clicks: FloatArray,
    groups: NDArray[np.int64],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Resample whole creatives (rows of one creative are not independent) with replacement and
    recompute the ratio-of-sums log-loss difference each time; percentile interval.

    The rows are first summed per creative (difference, impressions), so resampling creatives is
    resampling the rows of that table, and the two columns move together: scipy's
    ``bootstrap(..., paired=True, method="percentile")``. Creatives without impressions carry no
    loss and no weight and are left out (with all of them drawn a resample would be undefined).
    One creative leaves nothing to resample: the interval is the point itself."""
    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")
    keys, index = np.unique(groups, return_inverse=True)
    if len(keys) == 0:
        raise ValueError("no creatives to resample")
    delta = binomial_loss(challenger, impressions, clicks) - binomial_loss(
        reference, impressions, clicks
    )
    delta_g = np.bincount(index, weights=delta, minlength=len(keys))
    imps_g = np.bincount(index, weights=impressions, minlength=len(keys))
    seen = imps_g > 0
    delta_g, imps_g = delta_g[seen], imps_g[seen]
    k = len(imps_g)
    if k == 0:
        raise ValueError("no creative has impressions")
    point = float(delta_g.sum() / imps_g.sum())
    if k == 1:
        return PairedDifference(point, point, point, k, n_boot, level, seed)
    result = stats.bootstrap(
        (delta_g, imps_g),
        _ratio_of_sums,
        n_resamples=n_boot,
        vectorized=True,
        paired=True,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return PairedDifference(
        point, float(interval.low), float(interval.high), k, n_boot, level, seed
    )
