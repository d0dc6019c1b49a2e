"""The simulated ad market: a seeded stand-in for Meta built from synthetic data.

Accounts in niches run campaigns of video variants with hidden genes; true CTR comes from niche,
account and gene effects, noise, time of day, fatigue and drift, less while an ad set is in Meta's
learning phase (after launch and each significant edit); budgets buy impressions at a noisy CPM.
The service sees an account only through ``SimulatedPlatform`` (the ``AdPlatform`` interface);
evaluation code reads the truth through ``SimulatedMarket.evaluation``.
"""

from adflywheel.core.domain import HOOK_TYPES
from adflywheel.sim.market.config import (
    NICHES,
    STRUCTURES,
    AdvertiserPause,
    Collapse,
    DeliverySplit,
    GeneShift,
    Launch,
    LearningPhase,
    MarketConfig,
)
from adflywheel.sim.market.effects import GeneEffects
from adflywheel.sim.market.genes import ASPECTS, NUMERIC_GENES
from adflywheel.sim.market.learning import LearningStatus
from adflywheel.sim.market.market import (
    AccountStructure,
    AdPause,
    CampaignStructure,
    HourTotals,
    SimulatedMarket,
)
from adflywheel.sim.market.platform import SimulatedPlatform
from adflywheel.sim.market.truth import MarketTruth

__all__ = [
    "ASPECTS",
    "HOOK_TYPES",
    "NICHES",
    "NUMERIC_GENES",
    "STRUCTURES",
    "AccountStructure",
    "AdPause",
    "AdvertiserPause",
    "CampaignStructure",
    "Collapse",
    "DeliverySplit",
    "GeneEffects",
    "GeneShift",
    "HourTotals",
    "Launch",
    "LearningPhase",
    "LearningStatus",
    "MarketConfig",
    "MarketTruth",
    "SimulatedMarket",
    "SimulatedPlatform",
]
