"""Two of the three base predictors of a variant's CTR, as pure functions (loop 5).

* ``thompson``: loop 2's CTR posterior, Beta over the variant's discounted evidence with the
  allocator's prior (a variant with no data gets its prior: the campaign's pooled CTR, or a
  model's ``RatePrior``). Computed by ``loops.bandit.posterior.pack`` itself, so it is exactly the
  posterior the allocator samples from; its logit spread is ``sqrt(ψ'(a) + ψ'(b))``.
* ``dna_pattern``: loop 4's shrunken gene effects: the account's baseline CTR times the exp of
  the creative's summed per-gene log lifts (``patterns.contributions``); its spread is the
  between-ad spread the genes leave unexplained plus the baseline's own uncertainty.

The third, XGBoost, is the registry's champion (``registry_service``), called by the shell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.special import polygamma

from adflywheel.core.domain import Objective
from adflywheel.loops.bandit.evidence import AllocationSettings, CampaignEvidence
from adflywheel.loops.bandit.posterior import Layout, pack
from adflywheel.loops.dna import patterns as dna_patterns

from .ensemble import BasePrediction


def thompson_predictions(
    campaigns: Sequence[CampaignEvidence], settings: AllocationSettings
) -> dict[str, BasePrediction]:
    """The CTR posterior of every variant of the campaigns (paused ones too), by variant id."""
    if not campaigns:
        return {}
    # pack() neutralises inactive cells; a paused variant's CTR posterior is still wanted.
    live = [
        CampaignEvidence(c.id, tuple(replace(v, active=True) for v in c.variants), Objective.CTR)
        for c in campaigns
    ]
    layout = Layout.of(live)
    post = pack(layout, Objective.CTR, settings)
    a = post.ctr_a[layout.rows, layout.cols]
    b = post.ctr_b[layout.rows, layout.cols]
    sd = np.sqrt(polygamma(1, a) + polygamma(1, b))  # sd of logit(p) under Beta(a, b)
    return {
        v.id: BasePrediction(float(ai / (ai + bi)), float(si))
        for v, ai, bi, si in zip(layout.variants, a, b, sd, strict=True)
    }


def dna_pattern_prediction(
    found: dna_patterns.Patterns, genes: Mapping[str, Any]
) -> BasePrediction | None:
    """The DNA-pattern CTR of a creative, or None when the account has no usable patterns
    (no clicks, or no gene level with contrast)."""
    if found.events <= 0 or found.baseline <= 0:
        return None
    log_lift = sum(c["log_lift"] for c in dna_patterns.contributions(found, genes))
    ctr = min(max(found.baseline * math.exp(log_lift), 1e-6), 0.5)
    sd = math.sqrt(found.between_ad_sd**2 + 1.0 / (found.events + 0.5))
    return BasePrediction(ctr, sd)
