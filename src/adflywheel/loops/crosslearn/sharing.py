"""What an account shares with its niche, and what the niche publishes (pure).

An opted-in account's contribution for a period is a bounded summary of its own "why ads win"
analysis (``loops/dna/patterns.py``): its centred log base CTR and, for every shared gene level,
its shrunk log-lift against its own average creative (0 for a level it has no ads in: the
account's own posterior mean for an unseen level). Both are clipped (``privacy.clip_vector``)
before anything is summed. Ad ids, creatives, text and raw counts never enter a contribution.

A niche publishes only when at least ``k_min`` distinct accounts contributed in the period; the
publication is three Laplace-noised sums (count, base, lifts; OpenDP's mechanism, see
``privacy``) turned into means. Intervals carry
the DP noise as well as the spread of accounts, and the number of accounts is published only as
">= k_min".

Only categorical and binary genes are shared: a numeric gene's "high" level is relative to each
account's own median, which does not transfer between accounts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adflywheel.loops.crosslearn.privacy import (
    Mechanism,
    PrivacySettings,
    clip_vector,
    opendp_laplace,
)
from adflywheel.loops.dna.fingerprint import BINARY, CATEGORICAL
from adflywheel.loops.dna.patterns import Patterns

Z95 = 1.959964
BASE_CENTRE = 0.01  # log base CTRs are shared as log(ctr / BASE_CENTRE), clipped
ACCOUNT_CTR_SD = 0.30  # documented spread of account base CTRs within a niche (log scale)
AD_CTR_SD = 0.35  # documented spread of ad CTRs around their prediction (log scale)
SHARED_LEVELS: tuple[str, ...] = (
    *(f"{gene}={level}" for gene, levels in CATEGORICAL.items() for level in levels),
    *(f"{gene}=yes" for gene in BINARY),
)


@dataclass(frozen=True, slots=True)
class Contribution:
    """One account's bounded summary for one period (stored with the account, summed by niche)."""

    log_base: float  # log(base CTR / BASE_CENTRE), clipped to ±base_clip
    lifts: tuple[float, ...]  # per SHARED_LEVELS, clipped, L1 norm <= lift_l1
    n_ads: int  # kept with the account only; never summed or published
    clipped: bool  # whether clipping changed anything (for the account's own view)

    def as_dict(self) -> dict[str, Any]:
        return {
            "log_base": self.log_base,
            "lifts": dict(zip(SHARED_LEVELS, self.lifts, strict=True)),
            "n_ads": self.n_ads,
            "clipped": self.clipped,
        }


def level_key(gene: str, level: str) -> str:
    return f"{gene}={level}"


def creative_levels(genes: Mapping[str, Any]) -> list[str]:
    """The shared levels a creative has: its hook type and aspect class, its "yes" binaries."""
    out = []
    for gene in CATEGORICAL:
        if genes.get(gene) is not None:
            out.append(level_key(gene, str(genes[gene])))
    out.extend(level_key(g, "yes") for g in BINARY if genes.get(g))
    return [k for k in out if k in SHARED_LEVELS]


def contribution(
    found: Patterns, settings: PrivacySettings, min_ads: int = 4
) -> Contribution | None:
    """The account's contribution from its CTR patterns; None with fewer than ``min_ads`` ads or
    no clicks (nothing worth sharing, and nothing is shared)."""
    if found.metric != "ctr" or found.n_ads < min_ads or found.events <= 0:
        return None
    raw = np.zeros(len(SHARED_LEVELS))
    index = {key: i for i, key in enumerate(SHARED_LEVELS)}
    for e in found.effects:
        i = index.get(level_key(e.gene, e.level))
        if i is not None:
            raw[i] = math.log1p(e.lift)
    lifts = clip_vector(raw, settings.lift_clip, settings.lift_l1)
    base_raw = math.log(found.baseline / BASE_CENTRE)
    base = max(-settings.base_clip, min(settings.base_clip, base_raw))
    clipped = bool(np.any(np.abs(lifts - raw) > 1e-12) or base != base_raw)
    return Contribution(base, tuple(float(v) for v in lifts), found.n_ads, clipped)


@dataclass(frozen=True, slots=True)
class PublishedEffect:
    gene: str
    level: str
    log_lift: float  # the niche's mean log-lift (noised)
    se: float  # sd of that mean: DP noise and sampling
    prior_sd: float  # sd for a new account's own effect: se and the spread between accounts
    lift: float
    lift_low: float
    lift_high: float

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class PublishedPattern:
    """A niche's anonymous pattern for one period: nothing in it names or counts an account."""

    niche: str
    accounts: str  # ">=k_min": the only account-count information published
    epsilon: float
    base_ctr: float
    base_ctr_low: float
    base_ctr_high: float
    base_log_sd: float  # sd of a new account's log base CTR around base_ctr
    effects: tuple[PublishedEffect, ...]
    noisy_count: float = field(repr=False, default=0.0)  # kept for the divisor; not published
    mechanism: str = field(repr=False, default="opendp-laplace")  # for the ledger; not published

    def as_dict(self) -> dict[str, Any]:
        ranked = sorted(self.effects, key=lambda e: -abs(e.log_lift) / max(e.se, 1e-9))
        return {
            "niche": self.niche,
            "accounts": self.accounts,
            "epsilon": self.epsilon,
            "base_ctr": self.base_ctr,
            "base_ctr_interval": [self.base_ctr_low, self.base_ctr_high],
            "effects": [e.as_dict() for e in ranked],
        }


class NotPublishable(Exception):
    """Too few distinct accounts, or the niche's privacy budget is spent; the message says."""


def _sig(x: float) -> float:
    """Six significant digits (not decimals: a very noisy interval must not round to 0)."""
    return max(float(f"{x:.6g}"), 1e-300)


def _within(value: float, bound: float) -> float:
    return min(max(value, -bound), bound)


def bucket(k_min: int) -> str:
    """The only thing published about how many accounts contributed: at least ``k_min``. (A
    bucket of the noisy count could claim more accounts than there were; one of the true count
    would leak it.)"""
    return f">={k_min}"


def publish(
    niche: str,
    contributions: Sequence[Contribution],
    settings: PrivacySettings,
    mechanism: Mechanism | None = None,
) -> PublishedPattern:
    """Noised means of the niche's contributions; raises ``NotPublishable`` below ``k_min``.
    ``contributions`` must hold one entry per distinct account (the shell guarantees it). The
    noise is OpenDP's (``opendp_laplace``) unless a benchmark passes its own ``mechanism``; the
    pattern's ``epsilon`` is what that mechanism says one release spends."""
    n = len(contributions)
    if n < settings.k_min:
        raise NotPublishable(f"{n} accounts contributed; at least {settings.k_min} are needed")
    _, b_base, b_lift = settings.scales
    lifts = np.array([c.lifts for c in contributions], float).reshape(n, len(SHARED_LEVELS))
    noise = mechanism if mechanism is not None else opendp_laplace(settings)
    noisy_n, noisy_base, noisy_lifts = noise.release(
        n, sum(c.log_base for c in contributions), lifts.sum(axis=0)
    )
    # Post-processing: a divisor below k_min is impossible (n >= k_min), so floor it there.
    m = max(noisy_n, float(settings.k_min))
    tau = settings.account_effect_sd
    # Post-processing, free in privacy: every contribution was clipped, so no true mean lies
    # outside the clip range; projecting the noisy means onto it only removes error (without
    # it, a rare large draw published a base CTR above 1).
    base_log = _within(noisy_base / m, settings.base_clip)
    base_se = math.sqrt(2.0 * b_base**2 / m**2 + ACCOUNT_CTR_SD**2 / m)
    base_sd = math.sqrt(base_se**2 + ACCOUNT_CTR_SD**2)
    effects = []
    for j, key in enumerate(SHARED_LEVELS):
        gene, level = key.split("=", 1)
        mean = _within(float(noisy_lifts[j]) / m, settings.lift_clip)
        se = math.sqrt(2.0 * b_lift**2 / m**2 + tau**2 / m)
        effects.append(
            PublishedEffect(
                gene=gene,
                level=level,
                log_lift=round(mean, 5),
                se=round(se, 5),
                prior_sd=round(math.sqrt(se**2 + tau**2), 5),
                lift=round(math.expm1(mean), 4),
                lift_low=round(math.expm1(mean - Z95 * se), 4),
                lift_high=round(math.expm1(mean + Z95 * se), 4),
            )
        )
    centre = math.log(BASE_CENTRE)
    return PublishedPattern(
        niche=niche,
        accounts=bucket(settings.k_min),
        epsilon=noise.epsilon,
        base_ctr=_sig(math.exp(centre + base_log)),
        base_ctr_low=_sig(math.exp(centre + base_log - Z95 * base_se)),
        base_ctr_high=_sig(math.exp(centre + base_log + Z95 * base_se)),
        base_log_sd=round(base_sd, 5),
        effects=tuple(effects),
        noisy_count=noisy_n,
        mechanism=noise.name,
    )
