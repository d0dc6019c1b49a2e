"""Differential privacy for niche patterns: OpenDP's Laplace mechanism and the per-niche budget.

The unit of privacy is the **account**: two data sets are neighbours when one account's whole
contribution to a niche in a period is added or removed. Every account contributes to exactly one
niche per period, and a contribution is clipped before it is summed, so one account can move

* the number of contributors by at most 1 (sensitivity 1),
* the sum of centred log base CTRs by at most ``base_clip`` (each value is clipped to
  ``[-base_clip, base_clip]``),
* the vector of summed gene-level log-lifts by at most ``lift_l1`` in L1 norm (each account's
  vector is clipped per coordinate to ``[-lift_clip, lift_clip]`` and then scaled so its L1 norm
  is at most ``lift_l1``).

Each of the three sums gets Laplace noise from OpenDP (``make_laplace``: the count on integers,
the two float sums on a fine grid, all sampled from an exact discrete Laplace with a CSPRNG, so
the low bits of a release do not betray the true value as textbook floating-point sampling does,
Mironov 2012). The scale of each is the smallest for which OpenDP's own privacy map says the
query's share of ``epsilon_per_period`` (``split``) holds at its sensitivity; the ε a publication
spends is the sum of the three maps (sequential composition), which is what the ledger records.
Niches are disjoint (parallel composition), so that holds across all niches of the period.

Caveat: the guarantee covers the noisy values *given* that a publication happens. Whether it
happens is decided on the **true** number of contributors (at least ``k_min``, a hard rule, and
the budget), so the mere existence of a publication reveals that at least ``k_min`` accounts
contributed — at exactly ``k_min`` accounts, one account's presence decides whether anything is
published. That decision is not covered by ε (a DP threshold on the noisy count would be).

A niche's publications add up (basic composition): the ledger refuses a publication that would
take the ε spent in the last ``window_days`` past ``epsilon_budget``. Everything computed from
published values afterwards (means, intervals, priors) is post-processing and costs nothing more.

``SeededLaplaceNotPrivate`` is numpy's textbook sampler with a seed: not private, kept only so the
synthetic benchmarks on the simulated market are reproducible. The service never uses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any, NamedTuple, Protocol

import numpy as np
import opendp.prelude as dp
from numpy.typing import NDArray

# OpenDP makes callers opt in to its "contrib" constructors (proven, not yet through its vetting
# process); make_laplace is one of them. Enabled once, here, for this process. "floating-point"
# stays off: it would admit constructors OpenDP itself marks as open to floating-point attacks,
# and with it off OpenDP refuses to build them instead of running them.
dp.enable_features("contrib")

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
        """Nominal Laplace scales b = sensitivity / ε of the three released sums (OpenDP's may
        be one ulp larger: ``OpenDPLaplace.scales``)."""
        e_count, e_base, e_lift = self.epsilons
        return (1.0 / e_count, self.base_clip / e_base, self.lift_l1 / e_lift)


def laplace_scale(sensitivity: float, epsilon: float) -> float:
    """b = Δ₁ / ε: Laplace(b) noise on a query of L1 sensitivity Δ₁ is ε-DP (Dwork et al. 2006)."""
    if not (sensitivity > 0 and epsilon > 0):
        raise ValueError("sensitivity and epsilon must be > 0")
    return sensitivity / epsilon


class NoisySums(NamedTuple):
    """One release: the noisy count of contributors, base-CTR sum and lift-sum vector."""

    contributors: float
    base: float
    lifts: FloatArray


class Mechanism(Protocol):
    """What ``sharing.publish`` needs from a noise source."""

    @property
    def name(self) -> str: ...

    @property
    def epsilon(self) -> float:
        """What one release spends (recorded in the niche's ledger)."""
        ...

    def release(self, count: int, base: float, lifts: FloatArray) -> NoisySums: ...


def _scale_for(make: Any, sensitivity: float, epsilon: float) -> float:
    """The smallest Laplace scale whose OpenDP privacy map gives at most ``epsilon`` at
    ``sensitivity``: Δ/ε unless rounding puts the map one ulp over, then OpenDP's own search."""
    scale = sensitivity / epsilon
    if make(scale).map(sensitivity) > epsilon:
        scale = float(dp.binary_search_param(make, d_in=sensitivity, d_out=epsilon))
    return scale


@dataclass(frozen=True, slots=True)
class OpenDPLaplace:
    """The three Laplace measurements of a publication, built and accounted by OpenDP."""

    count: Any  # dp.Measurement on int, AbsoluteDistance: noise on the number of accounts
    base: Any  # dp.Measurement on float, AbsoluteDistance: noise on the base-CTR sum
    lifts: Any  # dp.Measurement on vector<float>, L1Distance: noise on the lift sums
    sensitivities: tuple[int, float, float]
    scales: tuple[float, float, float]  # the scales the three measurements were built with
    name: str = "opendp-laplace"

    @property
    def epsilons(self) -> tuple[float, float, float]:
        """OpenDP's privacy map of each measurement at its sensitivity."""
        c, b, lf = self.sensitivities
        return (
            float(self.count.map(c)),
            float(self.base.map(b)),
            float(self.lifts.map(lf)),
        )

    @property
    def epsilon(self) -> float:
        return float(sum(self.epsilons))

    def release(self, count: int, base: float, lifts: FloatArray) -> NoisySums:
        return NoisySums(
            float(self.count(int(count))),
            float(self.base(float(base))),
            np.asarray(self.lifts([float(v) for v in lifts]), float),
        )


@lru_cache(maxsize=64)
def opendp_laplace(settings: PrivacySettings) -> OpenDPLaplace:
    """The measurements for ``settings`` (cached: they depend on nothing else)."""
    spaces = (
        (dp.atom_domain(T=int), dp.absolute_distance(T=int)),
        (dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float)),
        (dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float)),
    )
    sensitivities = (1, settings.base_clip, settings.lift_l1)
    built = []
    for (domain, metric), d_in, eps in zip(spaces, sensitivities, settings.epsilons, strict=True):
        make = partial(dp.m.make_laplace, domain, metric)
        scale = _scale_for(make, d_in, eps)
        built.append((make(scale), scale))
    (count, b_count), (base, b_base), (lifts, b_lift) = built
    return OpenDPLaplace(count, base, lifts, sensitivities, (b_count, b_base, b_lift))


@dataclass(slots=True)
class SeededLaplaceNotPrivate:
    """Not private: for reproducible synthetic benchmarks. numpy's textbook floating-point
    Laplace from a seeded generator (anyone with the seed can subtract the noise, and the low
    bits leak). Same scales as ``PrivacySettings.scales``; only benchmarks on the simulated
    market ask for it, by name."""

    settings: PrivacySettings
    rng: np.random.Generator
    name: str = "seeded-laplace-not-private"

    @property
    def epsilon(self) -> float:
        return self.settings.epsilon_per_period

    def release(self, count: int, base: float, lifts: FloatArray) -> NoisySums:
        b_count, b_base, b_lift = self.settings.scales
        x = np.asarray(lifts, float)
        return NoisySums(
            float(count + self.rng.laplace(0.0, b_count)),
            float(base + self.rng.laplace(0.0, b_base)),
            np.asarray(x + self.rng.laplace(0.0, b_lift, size=x.shape), float),
        )


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
    spent: list[tuple[datetime, float]],
    now: datetime,
    settings: PrivacySettings,
    epsilon: float | None = None,
) -> bool:
    """Whether a release costing ``epsilon`` (default: ε per period) fits in the budget."""
    cost = settings.epsilon_per_period if epsilon is None else epsilon
    return budget_left(spent, now, settings) + 1e-12 >= cost
