"""Using a niche's published pattern as a prior (pure; post-processing, so no privacy cost).

``NichePrior`` is what the other loops consume: the niche's base CTR and, per shared gene level,
a (log-lift mean, sd) for a new account. The account's own evidence takes over as it grows by
precision weighting (``blend_effects``; ``predict_ctr`` for one creative), and the win model of
loop 4 is centred on it through ``win_prior`` (a ``loops.dna.win.PublishedPrior``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adflywheel.loops.crosslearn.sharing import (
    AD_CTR_SD,
    BASE_CENTRE,
    SHARED_LEVELS,
    PublishedPattern,
    creative_levels,
    level_key,
)
from adflywheel.loops.dna.patterns import Patterns
from adflywheel.loops.dna.win import PublishedPrior

# Documented, data-independent spreads the published values are shrunk toward defaults with:
# niches' base CTRs around 1% (log scale), and niche-level gene effects around 0.
NICHE_BASE_SPREAD = 0.5
NICHE_EFFECT_SPREAD = 0.15


@dataclass(frozen=True, slots=True)
class NichePrior:
    niche: str
    base_ctr: float
    base_log_sd: float
    effects: dict[str, tuple[float, float]]  # "gene=level" -> (log-lift mean, sd)
    accounts: str  # the published bucket, ">=k_min"
    epsilon: float
    period_start: datetime | None = None

    @classmethod
    def from_pattern(
        cls, pattern: PublishedPattern, period_start: datetime | None = None
    ) -> NichePrior:
        """The published means, each shrunk toward a fixed, data-independent default (the base
        toward ``BASE_CENTRE``, lifts toward 0) by its standard error: a noisy publication (small
        ε, few accounts) then moves a prior little, a precise one a lot. Post-processing only."""
        centre = math.log(BASE_CENTRE)
        z = 2.0 * 1.959964
        base_se = (math.log(pattern.base_ctr_high) - math.log(pattern.base_ctr_low)) / z
        w_base = NICHE_BASE_SPREAD**2 / (NICHE_BASE_SPREAD**2 + base_se**2)
        base = centre + w_base * (math.log(pattern.base_ctr) - centre)
        base_post_var = 1.0 / (1.0 / NICHE_BASE_SPREAD**2 + 1.0 / base_se**2)
        between = max(pattern.base_log_sd**2 - base_se**2, 0.0)  # the spread of accounts
        effects = {}
        for e in pattern.effects:
            w = NICHE_EFFECT_SPREAD**2 / (NICHE_EFFECT_SPREAD**2 + e.se**2)
            post_var = 1.0 / (1.0 / NICHE_EFFECT_SPREAD**2 + 1.0 / e.se**2)
            spread = max(e.prior_sd**2 - e.se**2, 0.0)
            effects[level_key(e.gene, e.level)] = (w * e.log_lift, math.sqrt(post_var + spread))
        return cls(
            niche=pattern.niche,
            base_ctr=math.exp(base),
            base_log_sd=math.sqrt(base_post_var + between),
            effects=effects,
            accounts=pattern.accounts,
            epsilon=pattern.epsilon,
            period_start=period_start,
        )

    def describe(self) -> str:
        return (
            f"niche '{self.niche}' (published pattern of {self.accounts} accounts, "
            f"ε={self.epsilon:g} per period)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "niche": self.niche,
            "base_ctr": self.base_ctr,
            "base_log_sd": self.base_log_sd,
            "accounts": self.accounts,
            "epsilon": self.epsilon,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "effects": {k: {"log_lift": m, "sd": s} for k, (m, s) in self.effects.items()},
        }


def predict_log_ctr(prior: NichePrior, genes: Mapping[str, Any]) -> tuple[float, float]:
    """(mean, sd) of a creative's log CTR in the niche: base plus its levels' log-lifts; the sd
    adds the base's, the effects' and the spread of ads around any prediction."""
    mean = math.log(prior.base_ctr)
    var = prior.base_log_sd**2 + AD_CTR_SD**2
    for key in creative_levels(genes):
        m, s = prior.effects.get(key, (0.0, 0.0))
        mean += m
        var += s**2
    return mean, math.sqrt(var)


def account_ratio(prior: NichePrior, clicks: float, expected_clicks: float) -> float:
    """How the account runs against its niche: observed / niche-expected clicks, shrunk to 1
    with m = 1 / base_log_sd² pseudo-clicks (a Poisson ratio's log variance is ≈ 1/clicks), so
    the account's own level takes over as its clicks grow past the prior's uncertainty."""
    m = 1.0 / prior.base_log_sd**2
    return (clicks + m) / (expected_clicks + m)


def predict_ctr(
    prior: NichePrior | None,
    genes: Mapping[str, Any],
    *,
    impressions: float = 0.0,
    clicks: float = 0.0,
    account_ratio: float = 1.0,
    fallback_ctr: float = 0.01,
    fallback_strength: float = 100.0,
    max_strength: float = 2000.0,
) -> tuple[float, float]:
    """A creative's CTR: the niche prediction (scaled by the account's observed/expected ratio)
    as a Beta prior worth n0 impressions, updated by the ad's own clicks; returns (ctr, n0).
    n0 matches the prior's sd on the log scale (var ≈ 1/(n0·p)), capped at ``max_strength``.
    Without a prior it is the allocator's default: ``fallback_ctr`` worth ``fallback_strength``."""
    if prior is None:
        rate, n0 = fallback_ctr, fallback_strength
    else:
        mean, sd = predict_log_ctr(prior, genes)
        rate = min(0.5, math.exp(mean) * account_ratio)
        n0 = min(max_strength, 1.0 / (sd**2 * rate))
    return (clicks + rate * n0) / (impressions + n0), n0


def blend_effects(prior: NichePrior, own: Patterns | None) -> list[dict[str, Any]]:
    """Per shared level: the niche's log-lift and the account's own, blended by precision (the
    account's weight grows with its evidence); levels without a niche value keep the account's."""
    own_effects = {level_key(e.gene, e.level): e for e in (own.effects if own else ())}
    out = []
    for key in SHARED_LEVELS:
        gene, level = key.split("=", 1)
        m, s = prior.effects.get(key, (0.0, 1.0))
        mine = own_effects.get(key)
        if mine is None:
            mean, sd, weight, own_lift = m, s, 0.0, None
        else:
            e, se = math.log1p(mine.lift), max(mine.se_log, 1e-6)
            p_prior, p_own = 1.0 / s**2, 1.0 / se**2
            mean = (m * p_prior + e * p_own) / (p_prior + p_own)
            sd = math.sqrt(1.0 / (p_prior + p_own))
            weight, own_lift = p_own / (p_prior + p_own), mine.lift
        out.append(
            {
                "gene": gene,
                "level": level,
                "niche_lift": round(math.expm1(m), 4),
                "own_lift": own_lift,
                "own_weight": round(weight, 4),
                "lift": round(math.expm1(mean), 4),
                "log_lift": round(mean, 5),
                "sd": round(sd, 5),
            }
        )
    return out


def global_prior(priors: Sequence[NichePrior]) -> NichePrior | None:
    """The precision-weighted average of niches' published priors (no new privacy cost)."""
    if not priors:
        return None
    effects: dict[str, tuple[float, float]] = {}
    for key in SHARED_LEVELS:
        pairs = [p.effects[key] for p in priors if key in p.effects]
        if pairs:
            w = [1.0 / s**2 for _, s in pairs]
            mean = sum(m * wi for (m, _), wi in zip(pairs, w, strict=True)) / sum(w)
            spread = math.sqrt(sum((m - mean) ** 2 for m, _ in pairs) / len(pairs))
            effects[key] = (mean, math.sqrt(1.0 / sum(w) + spread**2))
    logs = [math.log(p.base_ctr) for p in priors]
    base = sum(logs) / len(logs)
    spread = math.sqrt(sum((v - base) ** 2 for v in logs) / len(logs))
    sd = math.sqrt(sum(p.base_log_sd**2 for p in priors) / len(priors) + spread**2)
    return NichePrior(
        niche="global",
        base_ctr=math.exp(base),
        base_log_sd=sd,
        effects=effects,
        accounts=f"{len(priors)} niches",
        epsilon=max(p.epsilon for p in priors),
    )


def win_prior(prior: NichePrior, level: str = "niche") -> PublishedPrior:
    """The niche prior in the form loop 4's win model takes (``win.fit_hierarchy``)."""
    return PublishedPrior(
        name=prior.describe() if level == "niche" else "global average of published niches",
        level=level,
        base_log_ctr=math.log(prior.base_ctr),
        base_log_sd=prior.base_log_sd,
        effects=dict(prior.effects),
        ad_log_sd=AD_CTR_SD,
    )
