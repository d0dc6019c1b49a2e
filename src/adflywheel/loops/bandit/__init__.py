"""Loop 2: Thompson-sampling budget allocation, the pure core (numpy only, seeded, no I/O).

Per campaign, a Bayesian posterior per variant (Beta–Binomial CTR and conversion rate, Gamma
impressions per unit of spend, plug-in revenue per conversion: see ``posterior``), P(best) for the
campaign's objective by vectorised Monte Carlo over many campaigns at once, shares with a floor,
and integer budgets that conserve the total exactly under min/max, change-cap and evidence rules
(see ``budget`` for the precedence). Model predictions enter as bounded Beta pseudo-counts
(``RatePrior``); non-stationarity through discounted evidence (``discount``).
"""

from .allocate import (
    CampaignAllocation,
    VariantAllocation,
    allocate_campaign,
    allocate_many,
    thompson_select,
)
from .discount import decay_weights, discounted_totals, variant_from_hourly
from .edits import (
    Bounds,
    EditHistory,
    EditRules,
    edit_bounds,
    in_dead_band,
    settle,
    share_out,
)
from .evidence import AllocationSettings, CampaignEvidence, RatePrior, VariantEvidence
from .holdout import (
    ArmSummary,
    CampaignTotals,
    HoldoutComparison,
    RatioEstimate,
    holdout_comparison,
    holdout_draw,
    in_holdout,
)

__all__ = [
    "AllocationSettings",
    "ArmSummary",
    "Bounds",
    "CampaignAllocation",
    "CampaignEvidence",
    "CampaignTotals",
    "EditHistory",
    "EditRules",
    "HoldoutComparison",
    "RatePrior",
    "RatioEstimate",
    "VariantAllocation",
    "VariantEvidence",
    "allocate_campaign",
    "allocate_many",
    "decay_weights",
    "discounted_totals",
    "edit_bounds",
    "holdout_comparison",
    "holdout_draw",
    "in_dead_band",
    "in_holdout",
    "settle",
    "share_out",
    "thompson_select",
    "variant_from_hourly",
]
