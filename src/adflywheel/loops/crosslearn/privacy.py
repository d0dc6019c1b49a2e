"""Differential privacy for niche patterns: the Laplace mechanism and the per-niche budget.

The unit of privacy is the **account**: two data sets are neighbours when one account's whole
contribution to a niche in a period is added or removed. Every account contributes to exactly one
niche per period, and a contribution is clipped before it is summed, so one account can move

* the number of contributors by at most 1 (sensitivity 1),
* the sum of centred log base CTRs by at most ``base_clip`` (each value is clipped to
  ``[-base_clip, base_clip]``),
* the vector of summed gene-level log-lifts by at most ``lift_l1`` in L1 norm (each account's
  vector is clipped per coordinate to ``[-lift_clip, lift_clip]`` and then scaled so its L1 norm
  is at most ``lift_l1``).

Each of the three sums gets Laplace noise of scale sensitivity / ε_part (pure ε-DP, δ = 0), the
parts splitting ``epsilon_per_period`` by ``split``; by sequential composition the released
values of one publication are ``epsilon_per_period``-DP for every account, and since niches are
disjoint (parallel composition) that holds across all niches of the period.

Caveat: the guarantee covers the noisy values *given* that a publication happens. Whether it
happens is decided on the **true** number of contributors (at least ``k_min``, a hard rule, and
the budget), so the mere existence of a publication reveals that at least ``k_min`` accounts
contributed — at exactly ``k_min`` accounts, one account's presence decides whether anything is
published. That decision is not covered by ε (a DP threshold on the noisy count would be).

A niche's publications add up (basic composition): the ledger refuses a publication that would
take the ε spent in the last ``window_days`` past ``epsilon_budget``. Everything computed from
published values afterwards (means, intervals, priors) is post-processing and costs nothing more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    """The documented privacy parameters (docs/cross-account.md); all are per niche."""

    k_min: int = 5  # never publish with fewer distinct contributing accounts
    epsilon_per_period: float = 1.0
    split: tuple[float, float, float] = (0.2, 0.3, 0.5)  # count, base CTR, gene lifts
    epsilon_budget: float = 12.0  # at most this much ε spent per niche within window_days
    window_days: int = 90
    period_hours: int = 24 * 7  # a publication period: one week
    lift_clip: float = 1.0  # |log-lift| per gene level
    lift_l1: float = 1.0  # L1 norm of one account's lift vector
    base_clip: float = 1.2  # |log(base CTR / BASE_CENTRE)|
    account_effect_sd: float = 0.10  # documented spread of true effects between accounts

    def __post_init__(self) -> None:
        if self.k_min < 2:
            raise ValueError("k_min must be at least 2")
        if not (math.isfinite(self.epsilon_per_period) and self.epsilon_per_period > 0):
            raise ValueError("epsilon_per_period must be a positive finite number")
        if len(self.split) != 3 or min(self.split) <= 0 or abs(sum(self.split) - 1) > 1e-9:
            raise ValueError("split must be three positive shares summing to 1")
        if not self.epsilon_budget >= self.epsilon_per_period:
            raise ValueError("epsilon_budget must be at least epsilon_per_period")
        if self.window_days < 1 or self.period_hours < 1:
            raise ValueError("window_days and period_hours must be >= 1")
        for name in ("lift_clip", "lift_l1", "base_clip", "account_effect_sd"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")

    @property
    def epsilons(self) -> tuple[float, float, float]:
        """ε of the count, the base-CTR sum and the lift vector (they sum to ε per period)."""
        e = self.epsilon_per_period
        return (e * self.split[0], e * self.split[1], e * self.split[2])

    @property
    def scales(self) -> tuple[float, float, float]:
        """Laplace scales b = sensitivity / ε of the three released sums."""
        e_count, e_base, e_lift = self.epsilons
        return (1.0 / e_count, self.base_clip / e_base, self.lift_l1 / e_lift)


def laplace_scale(sensitivity: float, epsilon: float) -> float:
    """b = Δ₁ / ε: Laplace(b) noise on a query of L1 sensitivity Δ₁ is ε-DP (Dwork et al. 2006)."""
    if not (sensitivity > 0 and epsilon > 0):
        raise ValueError("sensitivity and epsilon must be > 0")
    return sensitivity / epsilon


def laplace(values: FloatArray | float, scale: float, rng: np.random.Generator) -> FloatArray:
    """``values`` plus independent Laplace(0, ``scale``) noise per coordinate (numpy's sampler;
    variance 2·scale²)."""
    x = np.asarray(values, float)
    return np.asarray(x + rng.laplace(0.0, scale, size=x.shape), float)


def clip_vector(x: FloatArray, coord_clip: float, l1: float) -> FloatArray:
    """Bound one account's influence: clip each coordinate, then scale down to L1 norm ``l1``."""
    y: FloatArray = np.clip(np.asarray(x, float), -coord_clip, coord_clip)
    norm = float(np.abs(y).sum())
    return y * (l1 / norm) if norm > l1 else y


def period_start(at: datetime, period_hours: int, origin: datetime) -> datetime:
    """The start of the period containing ``at`` (periods of ``period_hours`` from ``origin``)."""
    hours = math.floor((at - origin).total_seconds() / 3600.0 / period_hours)
    return origin + timedelta(hours=hours * period_hours)


def budget_left(
    spent: list[tuple[datetime, float]], now: datetime, settings: PrivacySettings
) -> float:
    """ε still available to a niche: the budget minus what was spent within the window."""
    since = now - timedelta(days=settings.window_days)
    used = sum(eps for when, eps in spent if when > since)
    return settings.epsilon_budget - used


def can_spend(
    spent: list[tuple[datetime, float]], now: datetime, settings: PrivacySettings
) -> bool:
    return budget_left(spent, now, settings) + 1e-12 >= settings.epsilon_per_period
