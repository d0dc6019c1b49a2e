"""Settings of the simulated ad market (synthetic data, a stand-in for Meta).

Everything that shapes the synthetic world is here, frozen, so that one ``MarketConfig`` (and its
seed) names one reproducible market.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from adflywheel.core.clock import ensure_utc, is_hour_aligned
from adflywheel.core.domain import Objective

NICHES: tuple[str, ...] = ("beauty", "fitness", "finance", "ecommerce_fashion", "saas", "food")


@dataclass(frozen=True, slots=True)
class Collapse:
    """A scheduled shock: from hour ``at_hour`` (hours since the start) a variant's true CTR is
    multiplied by ``factor`` for good. Drift experiments use it to check that the flywheel notices.

    With ``ad_index`` (a global variant index, see ``SimulatedMarket.ad_ids``) that variant
    collapses. Without it, the variant that is truly best (clicks per dollar) at that hour
    collapses, in campaign ``campaign_index`` (a global campaign index) or, when that is None
    too, in every campaign.
    """

    at_hour: int
    factor: float = 0.4
    ad_index: int | None = None
    campaign_index: int | None = None

    def __post_init__(self) -> None:
        if self.at_hour < 0:
            raise ValueError("at_hour must be >= 0")
        if self.factor < 0.0:
            raise ValueError("factor must be >= 0")
        if self.ad_index is not None and self.campaign_index is not None:
            raise ValueError("give ad_index or campaign_index, not both")


@dataclass(frozen=True, slots=True)
class GeneShift:
    """A scheduled concept drift: from hour ``at_hour`` the ``top_k`` largest global gene effects
    on logit CTR (hooks and numeric genes, by size) are multiplied by ``factor`` for good (the
    default -1 flips their sign: what used to win now loses). Drift-detection experiments use it
    (``benchmarks/bench_drift.py``); None (the default) leaves every existing figure unchanged."""

    at_hour: int
    top_k: int = 4
    factor: float = -1.0

    def __post_init__(self) -> None:
        if self.at_hour < 0:
            raise ValueError("at_hour must be >= 0")
        if self.top_k < 1:
            raise ValueError("top_k must be >= 1")


@dataclass(frozen=True, slots=True)
class AdvertiserPause:
    """The advertiser pauses an ad set at hour ``at_hour`` (hours since the start), as in Ads
    Manager: its budget stays on the ad set (on a campaign budget, on the campaign). With
    ``until_hour`` the advertiser turns it back on at that hour. ``ad_set_index`` is a global ad
    set index (see ``SimulatedMarket.ad_set_ids``); give ``ad_index`` instead (a global ad index,
    ``SimulatedMarket.ad_ids``) to pause one ad, its ad set staying on."""

    at_hour: int
    ad_set_index: int | None = None
    until_hour: int | None = None
    ad_index: int | None = None

    def __post_init__(self) -> None:
        if (self.ad_set_index is None) == (self.ad_index is None):
            raise ValueError("give ad_set_index or ad_index (one of them)")
        if self.at_hour < 0 or min(self.ad_set_index or 0, self.ad_index or 0) < 0:
            raise ValueError("at_hour, ad_set_index and ad_index must be >= 0")
        if self.until_hour is not None and self.until_hour <= self.at_hour:
            raise ValueError("until_hour must be after at_hour")


@dataclass(frozen=True, slots=True)
class Launch:
    """The advertiser launches a new ad set (its ads) at hour ``at_hour`` (hours since the start).

    Before its launch the ad set does not exist on the platform: it is in no listing, delivers
    nothing and holds no budget. At ``at_hour`` it appears, active, in the learning phase, with
    the daily budget ``budget_minor`` the advertiser gives it. With ``retire_ad_index`` (a global
    ad index) the advertiser retires an old ad at the same hour, as in Ads Manager: turns the ad
    off (an advertiser pause, which the service must never undo) and takes its ad set's budget
    off with it (to 0), so the campaign's daily total stays what the advertiser meant.

    ``review_hours``: Meta reviews every ad before it delivers ("most ads are reviewed within 24
    hours"): for that many hours before ``at_hour`` the ad set is already on the platform, active
    with its budget, but delivers nothing (the service can see it, predict it and set its first
    budget before its first impression). 0: it appears as it starts delivering."""

    at_hour: int
    ad_set_index: int
    budget_minor: int
    retire_ad_index: int | None = None
    review_hours: int = 0

    def __post_init__(self) -> None:
        if self.at_hour < 1:
            raise ValueError("at_hour must be >= 1 (an ad set live from the start needs none)")
        if self.ad_set_index < 0 or self.budget_minor < 0:
            raise ValueError("ad_set_index and budget_minor must be >= 0")
        if self.retire_ad_index is not None and self.retire_ad_index < 0:
            raise ValueError("retire_ad_index must be >= 0")
        if not 0 <= self.review_hours < self.at_hour:
            raise ValueError("review_hours must be >= 0 and end after the first hour")

    @property
    def listed_hour(self) -> int:
        """The hour the ad set appears on the platform (its review starts)."""
        return self.at_hour - self.review_hours


# Meta's budget structures of a campaign (the names the cycle report uses).
Structure = Literal["ad_set_budgets", "ad_set_budgets_multi_ad", "campaign_budget"]
STRUCTURES: tuple[str, ...] = ("ad_set_budgets", "ad_set_budgets_multi_ad", "campaign_budget")


@dataclass(frozen=True, slots=True)
class DeliverySplit:
    """How Meta splits one budget over several ads (an ad set's) or ad sets (a campaign's), as the
    market assumes it (docs/simulated-market.md, "Budget structures"). Meta publishes no rule.

    Each ad's share is proportional to ``estimate ** gamma``, where the estimate is the ad's true
    expected objective per dollar (the creative's own, without the learning penalty) times
    ``exp(sd * z)``: ``z`` a fixed standard normal per ad and ``sd = initial_sd / sqrt(1 +
    impressions / sharpen_impressions)``, so Meta's guess starts noisy and sharpens as the ad
    delivers. An ad set's estimate (for a campaign budget) is its ads' estimates averaged by
    their shares. Fixed before any measurement; not tuned on the service's results."""

    gamma: float = 3.0
    initial_sd: float = 0.3
    sharpen_impressions: float = 10_000.0

    def __post_init__(self) -> None:
        if self.gamma < 0 or self.initial_sd < 0 or self.sharpen_impressions <= 0:
            raise ValueError("gamma and initial_sd must be >= 0, sharpen_impressions > 0")


LearningResult = Literal["clicks", "link_clicks", "conversions"]


@dataclass(frozen=True, slots=True)
class LearningPhase:
    """Meta's learning phase, as the simulated market models it (docs/simulated-market.md).

    Every ad set is *learning* from its launch and again after each significant edit; it exits
    after ``learning_events`` results (``result``) delivered in the ``window_hours`` of delivery
    after that edit, or else becomes *learning limited* until its next significant edit. Learning
    and learning limited ad sets deliver at ``(1 - penalty)`` times their CTR (every click, and so
    every link click and conversion, per impression); impressions and spend are unchanged.

    Meta's facts: ~50 results in the week after the last significant edit; a budget amount change
    and a pause of 7 days or more are significant edits. Assumptions (Meta publishes no number):
    ``significant_edit_fraction`` (a budget change of more than this share of the old budget is
    significant), ``penalty`` and its form, and that learning limited keeps the penalty.
    ``penalty=0`` still tracks the states but leaves delivery exactly as without the phase.
    """

    penalty: float = 0.2
    learning_events: int = 50
    result: LearningResult = "clicks"
    window_hours: int = 7 * 24
    significant_edit_fraction: float = 0.2
    pause_reset_hours: int = 7 * 24
    start_in_learning: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.penalty < 1.0:
            raise ValueError("penalty must be in [0, 1)")
        if self.learning_events < 1:
            raise ValueError("learning_events must be >= 1")
        if self.result not in ("clicks", "link_clicks", "conversions"):
            raise ValueError(f"unknown result {self.result!r}")
        if self.window_hours < 1 or self.pause_reset_hours < 1:
            raise ValueError("window_hours and pause_reset_hours must be >= 1")
        if self.significant_edit_fraction < 0.0:
            raise ValueError("significant_edit_fraction must be >= 0")

    @property
    def penalised(self) -> bool:
        """Whether the phase changes delivery at all (``penalty > 0``)."""
        return self.penalty > 0.0


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """One synthetic market: sizes, money (int minor units) and the knobs of the hidden truth."""

    seed: int = 0
    n_accounts: int = 12
    campaigns_per_account: int = 2
    variants_per_campaign: int = 6
    # The campaign's total daily budget, split evenly over its ad sets (one variant each) at start.
    campaign_daily_budget_minor: int = 10_000
    start: datetime = datetime(2025, 1, 6, tzinfo=UTC)
    niches: tuple[str, ...] = NICHES
    objective: Objective = Objective.CLICKS_PER_DOLLAR
    # Share of accounts that declare a category on the platform (the rest declare none).
    category_share: float = 0.7
    # Slow mean-reverting random walk of each variant's logit CTR.
    drift: bool = True
    drift_sd: float = 0.15
    drift_half_life_hours: float = 96.0
    collapses: tuple[Collapse, ...] = ()
    gene_shift: GeneShift | None = None
    # Hours after an hour ends before the platform reports it.
    reporting_delay_hours: int = 0
    # Fatigue: logit CTR falls by fatigue_strength * log(1 + frequency).
    fatigue_strength: float = 0.35
    # Audience size of a variant, in days of its whole campaign's budget worth of impressions.
    audience_days: float = 5.0
    # Delivered hours kept for fetch_insights; None keeps all. Memory is about 36 bytes per ad
    # and hour (1.8 MB an hour for 50,000 ads), so big long runs should keep a window.
    retention_hours: int | None = 24 * 7
    # Observation noise of the features a DNA extractor would see.
    hook_misclassification: float = 0.1
    feature_noise: float = 0.1
    # Scales every gene effect (0 makes creatives irrelevant, for null experiments).
    gene_effect_scale: float = 1.0
    # Meta's learning phase: on by default so every benchmark prices budget churn in; None turns
    # it off (the market then delivers exactly as it did before the phase was modelled).
    learning_phase: LearningPhase | None = LearningPhase()
    id_prefix: str = "sim"
    currency: str = "USD"
    # Budget structure of each campaign, cycled over global campaign indices (campaign c has
    # ``structures[c % len(structures)]``): "ad_set_budgets" (one ad per ad set, each ad set its
    # own budget: the market as it always was), "ad_set_budgets_multi_ad" (``ads_per_ad_set``
    # ads share each ad set's budget) or "campaign_budget" (CBO: the campaign has the budget, its
    # ad sets of ``campaign_budget_ads_per_ad_set`` ads each have none). A campaign still has
    # ``variants_per_campaign`` ads; only their grouping into ad sets changes.
    structures: tuple[str, ...] = ("ad_set_budgets",)
    ads_per_ad_set: int = 3
    campaign_budget_ads_per_ad_set: int = 1
    delivery_split: DeliverySplit = DeliverySplit()
    advertiser_pauses: tuple[AdvertiserPause, ...] = ()
    # Keep each hour's true expected objective per ad (``evaluation.value_at``), as long as the
    # delivery history (``retention_hours``): for benchmarks that judge pauses afterwards.
    record_truth: bool = False
    # New ad sets the advertiser launches mid-run (hidden from the platform until then), each
    # perhaps retiring an old ad (``Launch``); () leaves every ad set live from the start.
    launches: tuple[Launch, ...] = ()
    # Accounts dealt to niches in turn (account a in ``niches[a % len(niches)]``) instead of at
    # random: every niche gets its share of accounts (cross-account learning needs k of them).
    balanced_niches: bool = False

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        for name in ("n_accounts", "campaigns_per_account", "variants_per_campaign"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.campaign_daily_budget_minor < 0:
            raise ValueError("campaign_daily_budget_minor must be >= 0")
        start = ensure_utc(self.start)
        if not is_hour_aligned(start):
            raise ValueError("start must be on the hour")
        object.__setattr__(self, "start", start)
        if not self.niches:
            raise ValueError("niches must not be empty")
        unknown = set(self.niches) - set(NICHES)
        if unknown:
            raise ValueError(f"unknown niches {sorted(unknown)}; known: {NICHES}")
        if self.reporting_delay_hours < 0:
            raise ValueError("reporting_delay_hours must be >= 0")
        if self.retention_hours is not None and self.retention_hours < 1:
            raise ValueError("retention_hours must be >= 1 or None")
        for name in ("category_share", "hook_misclassification"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        for name in ("drift_sd", "fatigue_strength", "feature_noise", "gene_effect_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.drift_half_life_hours <= 0 or self.audience_days <= 0:
            raise ValueError("drift_half_life_hours and audience_days must be > 0")
        if not self.structures or set(self.structures) - set(STRUCTURES):
            raise ValueError(f"structures must be a non-empty tuple of {STRUCTURES}")
        if self.ads_per_ad_set < 1 or self.campaign_budget_ads_per_ad_set < 1:
            raise ValueError("ads_per_ad_set and campaign_budget_ads_per_ad_set must be >= 1")
        n_ad_sets = sum(self.ad_sets_in(c) for c in range(self.n_campaigns))
        for p in self.advertiser_pauses:
            if p.ad_set_index is not None and p.ad_set_index >= n_ad_sets:
                raise ValueError(f"advertiser pause ad_set_index {p.ad_set_index} out of range")
            if p.ad_index is not None and p.ad_index >= self.n_variants:
                raise ValueError(f"advertiser pause ad_index {p.ad_index} out of range")
        launched = [x.ad_set_index for x in self.launches]
        if len(set(launched)) != len(launched) or any(i >= n_ad_sets for i in launched):
            raise ValueError("launches must name distinct ad set indices in range")
        retired = [x.retire_ad_index for x in self.launches if x.retire_ad_index is not None]
        if any(i >= self.n_variants for i in retired):
            raise ValueError("launch retire_ad_index out of range")
        n_campaigns = self.n_accounts * self.campaigns_per_account
        for c in self.collapses:
            if c.ad_index is not None and c.ad_index >= n_campaigns * self.variants_per_campaign:
                raise ValueError(f"collapse ad_index {c.ad_index} out of range")
            if c.campaign_index is not None and c.campaign_index >= n_campaigns:
                raise ValueError(f"collapse campaign_index {c.campaign_index} out of range")

    @property
    def n_campaigns(self) -> int:
        return self.n_accounts * self.campaigns_per_account

    @property
    def n_variants(self) -> int:
        return self.n_campaigns * self.variants_per_campaign

    def structure_of(self, campaign_index: int) -> str:
        """The budget structure of a campaign (global index)."""
        return self.structures[campaign_index % len(self.structures)]

    def ads_per_ad_set_in(self, campaign_index: int) -> int:
        structure = self.structure_of(campaign_index)
        if structure == "ad_set_budgets_multi_ad":
            return self.ads_per_ad_set
        if structure == "campaign_budget":
            return self.campaign_budget_ads_per_ad_set
        return 1

    def ad_sets_in(self, campaign_index: int) -> int:
        """How many ad sets a campaign has (its ads grouped in order, the last group smaller)."""
        per = self.ads_per_ad_set_in(campaign_index)
        return -(-self.variants_per_campaign // per)

    @property
    def default_structures(self) -> bool:
        """Every campaign one ad per ad set with its own budget (the market as it always was)."""
        return set(self.structures) == {"ad_set_budgets"}
