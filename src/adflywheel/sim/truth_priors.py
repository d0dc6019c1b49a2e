"""A perfect prior for new variants, read from the simulated market's truth (evaluation only).

Issue #15 asks whether a new creative's prior (loops 1, 3, 4, 5) can make money through the
allocator's mechanism: the evidence gate, the ±``prior_tilt`` on a gated variant's fair share, the
cap on a prior's strength, the edit rules, the learning phase. The loops' own priors gained
nothing in the ablation; ``TruthPriors`` is the upper bound: the same mechanism fed the truth.
If even it gains little, the mechanism (or the market) bounds what any prediction is worth.

It reads the hidden truth, so it lives here and never in ``services`` or ``loops``: no loop may
receive it. All figures it produces are synthetic. Kinds:

- ``ad``: the ad's true CTR at launch (``MarketTruth.launch_ctr``): niche, account, genes and
  the ad's idiosyncratic factor, times its ad set's learning-phase penalty this hour (what it
  delivers: the loops learn from delivered clicks, so their priors carry the penalty too); no
  daypart (common to a campaign's ads in an hour), fatigue, drift or collapse: a perfect
  prediction of the creative;
- ``genes``: the same without the ad's idiosyncratic factor (``genes_only``): what a perfect
  Creative DNA or niche model (genes, niche and the account's level) could know.

Young variants only (``crosslearn.priors.young``, as the loops' providers), each at the strongest
strength any loop may give (``AllocationSettings().max_prior_impressions``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from adflywheel.loops.bandit import RatePrior
from adflywheel.loops.bandit.evidence import AllocationSettings
from adflywheel.services.bandit.budgets import CampaignState
from adflywheel.services.crosslearn.priors import young

if TYPE_CHECKING:
    from adflywheel.sim.market import SimulatedMarket

TruthKind = Literal["ad", "genes"]
TRUTH_KINDS: tuple[TruthKind, ...] = ("ad", "genes")


def truth_kind(text: str) -> TruthKind:
    """``text`` as a kind, or a ``ValueError`` naming the kinds."""
    if text not in TRUTH_KINDS:
        raise ValueError(f"truth prior kind must be one of {list(TRUTH_KINDS)}, not {text!r}")
    return text


@dataclass(slots=True)
class TruthPriors:
    """A ``PriorProvider`` that knows the truth: ``TruthPriors("ad")``, then ``bind(market)``
    with the run's market before the first cycle. Store variants map to the market's ads by
    ``VariantTotals.ad_id`` (the platform's ad id, ``World.ad_ids``)."""

    kind: TruthKind
    strength: float = AllocationSettings().max_prior_impressions
    market: SimulatedMarket | None = None
    # The rates of the market's hour they were read at (they change only at a gene shift).
    _rates: tuple[int, dict[str, float]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        truth_kind(self.kind)

    def bind(self, market: SimulatedMarket) -> None:
        self.market = market
        self._rates = None

    def rates(self) -> dict[str, float]:
        """Ad id -> the prior's rate at the market's current hour."""
        if self.market is None:
            raise RuntimeError("TruthPriors.bind(market) was not called")
        hour = self.market.hour_index
        if self._rates is None or self._rates[0] != hour:
            genes_only = self.kind == "genes"
            truth = self.market.evaluation
            self._rates = (hour, truth.launch_ctr(genes_only=genes_only, learning=True))
        return self._rates[1]

    def __call__(self, campaign: CampaignState, hour: datetime) -> dict[int, RatePrior]:
        if not any(young(campaign, v) for v in campaign.variants):
            return {}
        rates = self.rates()
        return {
            v.variant_id: RatePrior(rates[v.ad_id], self.strength)
            for v in campaign.variants
            if young(campaign, v) and v.ad_id in rates
        }


__all__ = ["TRUTH_KINDS", "TruthKind", "TruthPriors", "truth_kind"]
