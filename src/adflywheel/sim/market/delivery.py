"""One hour of delivery in the simulated market (synthetic data), vectorised over every variant.

Budgets buy impressions at a noisy CPM; clicks, link clicks, conversions and views are binomial
draws from the hidden truth. The random stream of hour ``h`` is seeded by ``(seed, h)`` only, with
one child stream per quantity, so two markets with the same seed under different budget policies
share their pacing, CPM and drift noise exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from adflywheel.core.domain import Objective
from adflywheel.sim.market.genes import FloatArray, IntArray
from adflywheel.sim.market.structures import split_spend
from adflywheel.sim.market.world import World, sigmoid

BoolArray = NDArray[np.bool_]
CountArray = NDArray[np.int32]

TOD_CTR_AMPLITUDE = 0.15  # logit CTR swing over the day, peaking in the local evening
TOD_CPM_AMPLITUDE = 0.10  # relative CPM swing, also peaking in the evening
TOD_PEAK_HOUR = 20
PACING_MEAN = 0.97
PACING_SD = 0.06
PACING_MAX = 1.2  # an hour never spends more than 1.2 x daily_budget / 24
CPM_NOISE_SD = 0.15
REVENUE_NOISE_SD = 0.3
CTR_MIN, CTR_MAX = 1e-5, 0.5

# Learning states of an ad set (learning.py): out of the phase, learning, learning limited.
EXITED, LEARNING, LIMITED = 0, 1, 2

# Child-stream numbers per quantity: fixed, so adding a quantity never shifts another's stream.
_PACING, _CPM, _ROUNDING, _CLICKS, _LINKS, _CONVERSIONS, _REVENUE, _VIEWS, _DRIFT = range(9)


@dataclass(slots=True)
class MarketState:
    """Everything that changes hour to hour; budgets and statuses are the policy's levers.

    Per ad (flat ad order): ``ad_active``, ``cum_impressions``, ``drift``, ``multiplier``,
    ``spent_today``; per ad set: ``budgets``, ``ad_set_active`` and the learning phase; per
    campaign: ``campaign_budgets`` (campaign budgets, CBO; 0 for a campaign without one, whose
    ad sets have the budgets; a CBO campaign's ad sets have budget 0)."""

    budgets: IntArray  # daily_budget_minor per ad set
    ad_active: BoolArray
    ad_set_active: BoolArray
    cum_impressions: FloatArray
    drift: FloatArray
    multiplier: FloatArray  # scheduled collapses, multiplicative on CTR
    spent_today: IntArray
    campaign_budgets: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hour_index: int = 0
    applied_collapses: set[int] = field(default_factory=set)
    collapsed: dict[int, int] = field(default_factory=dict)  # variant index -> hour collapsed
    # The learning phase (learning.py), per ad set; all EXITED and never touched when it is off.
    learning: NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    learning_events: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    learning_hours: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    dark_since: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hours_in_learning: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    significant_edits: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # Per ad set: not launched yet (``MarketConfig.launches``): on no listing, off, no budget.
    hidden: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    # Per ad set: launched but in review (``Launch.review_hours``): listed as active, delivers
    # nothing (``ad_set_active`` stays False until its review ends).
    in_review: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))

    @classmethod
    def initial(cls, world: World) -> MarketState:
        n, m = int(world.account_of.shape[0]), world.n_ad_sets
        cfg = world.config
        total = cfg.campaign_daily_budget_minor
        budgets = np.zeros(m, dtype=np.int64)
        campaign_budgets = np.zeros(cfg.n_campaigns, dtype=np.int64)
        bounds = world.campaign_ad_set_start.tolist()
        hidden = np.zeros(m, dtype=np.bool_)
        hidden[[x.ad_set_index for x in cfg.launches]] = True
        for c in range(cfg.n_campaigns):
            if world.campaign_budgeted[c]:
                campaign_budgets[c] = total
                continue
            lo, hi = bounds[c], bounds[c + 1]
            # The ad sets live at the start share the total (all of them, without launches).
            live = np.flatnonzero(~hidden[lo:hi]) + lo
            if live.size == 0:
                continue
            base, extra = divmod(total, int(live.size))
            budgets[live] = base
            budgets[live[:extra]] += 1  # exact split: the campaign total is conserved
        phase = cfg.learning_phase
        launch = LEARNING if phase is not None and phase.start_in_learning else EXITED
        return cls(
            budgets=budgets,
            ad_active=np.ones(n, dtype=np.bool_),
            ad_set_active=~hidden,
            cum_impressions=np.zeros(n),
            drift=np.zeros(n),
            multiplier=np.ones(n),
            spent_today=np.zeros(n, dtype=np.int64),
            campaign_budgets=campaign_budgets,
            learning=np.full(m, launch, dtype=np.int8),
            learning_events=np.zeros(m, dtype=np.int64),
            learning_hours=np.zeros(m, dtype=np.int64),
            dark_since=np.full(m, -1, dtype=np.int64),
            hours_in_learning=np.zeros(m, dtype=np.int64),
            significant_edits=np.zeros(m, dtype=np.int64),
            hidden=hidden,
            in_review=np.zeros(m, dtype=np.bool_),
        )


@dataclass(frozen=True, slots=True)
class HourRecord:
    """What every variant delivered in one hour (counts int32, money int64 minor units)."""

    impressions: CountArray
    clicks: CountArray
    link_clicks: CountArray
    conversions: CountArray
    video_views: CountArray
    spend_minor: IntArray
    revenue_minor: IntArray


def hour_stream(seed: int, hour_index: int, part: int) -> np.random.Generator:
    return np.random.default_rng([seed, 104_729, hour_index, part])


def _evening_curve(world: World, hour_index: int) -> FloatArray:
    """cos of the distance from the local evening peak, per account."""
    utc_hour = (world.config.start.hour + hour_index) % 24
    local = (utc_hour + world.account_tz) % 24
    out: FloatArray = np.cos(2.0 * np.pi * (local - TOD_PEAK_HOUR) / 24.0)
    return out


def expected_cpm(world: World, hour_index: int) -> FloatArray:
    """Expected CPM (minor units) per variant at ``hour_index``: spend / expected impressions."""
    factor = 1.0 + TOD_CPM_AMPLITUDE * _evening_curve(world, hour_index)
    out: FloatArray = world.cpm_minor * factor[world.account_of]
    return out


def learning_factor(world: World, state: MarketState) -> FloatArray | None:
    """Multiplier of each ad's CTR from its ad set's learning phase now: ``1 - penalty`` while
    learning or learning limited, 1 out of it; None when the phase does not touch delivery."""
    phase = world.config.learning_phase
    if phase is None or not phase.penalised:
        return None
    learning = state.learning if world.one_ad_per_ad_set else state.learning[world.ad_set_of]
    out: FloatArray = np.where(learning != EXITED, 1.0 - phase.penalty, 1.0)
    return out


def true_ctr(world: World, state: MarketState, learning: bool = True) -> FloatArray:
    """Each variant's true CTR (all clicks per impression) at the state's current hour; with
    ``learning`` (what delivery uses) the learning phase's penalty included, without it the
    creative's own CTR."""
    cfg = world.config
    tod = TOD_CTR_AMPLITUDE * _evening_curve(world, state.hour_index)[world.account_of]
    fatigue = cfg.fatigue_strength * np.log1p(state.cum_impressions / world.audience)
    logit = world.base_logit + tod + state.drift - fatigue
    shift = cfg.gene_shift
    if shift is not None and state.hour_index >= shift.at_hour:
        logit = logit + world.gene_shift_logit  # the scheduled concept drift
    ctr = sigmoid(logit) * state.multiplier
    factor = learning_factor(world, state) if learning else None
    if factor is not None:
        ctr = ctr * factor
    out: FloatArray = np.clip(ctr, CTR_MIN, CTR_MAX)
    return out


def deliver(world: World, state: MarketState) -> HourRecord:
    """Deliver the state's current hour at its budgets and statuses; updates the state's
    cumulative impressions and spend today, not the hour (the market owns the calendar)."""
    cfg, h = world.config, state.hour_index
    if (cfg.start.hour + h) % 24 == 0:
        state.spent_today[:] = 0

    n = int(state.ad_active.shape[0])
    pacing = np.clip(
        hour_stream(cfg.seed, h, _PACING).normal(PACING_MEAN, PACING_SD, n), 0.0, PACING_MAX
    )
    if cfg.default_structures:  # one ad per ad set with its own budget: as it always was
        live = state.ad_active & state.ad_set_active & (state.budgets > 0)
        room = np.maximum(state.budgets - state.spent_today, 0)
        spend = np.minimum(np.floor(state.budgets * pacing / 24.0).astype(np.int64), room)
        spend = np.where(live, spend, 0)
    else:
        value = expected_value(world, state, cfg.objective, learning=False)
        spend = split_spend(world, state, pacing, value)

    # Mean-corrected lognormal noise on CPM so that E[impressions] = spend * 1000 / expected CPM.
    noise = hour_stream(cfg.seed, h, _CPM).normal(CPM_NOISE_SD**2 / 2.0, CPM_NOISE_SD, n)
    raw = spend * 1000.0 / (expected_cpm(world, h) * np.exp(noise))
    rounding = hour_stream(cfg.seed, h, _ROUNDING).random(n)
    impressions = np.floor(raw + rounding).astype(np.int64)

    ctr = true_ctr(world, state)
    clicks = hour_stream(cfg.seed, h, _CLICKS).binomial(impressions, ctr)
    links = hour_stream(cfg.seed, h, _LINKS).binomial(clicks, world.link_rate)
    conversions = hour_stream(cfg.seed, h, _CONVERSIONS).binomial(links, world.cvr)
    value_noise = hour_stream(cfg.seed, h, _REVENUE).normal(0.0, 1.0, n)
    sd = REVENUE_NOISE_SD / np.sqrt(np.maximum(conversions, 1))
    order_value = world.aov_minor[world.account_of] * np.exp(sd * value_noise - sd**2 / 2.0)
    revenue = np.rint(conversions * order_value).astype(np.int64)
    views = hour_stream(cfg.seed, h, _VIEWS).binomial(impressions, world.view_rate)

    state.cum_impressions += impressions
    state.spent_today += spend
    return HourRecord(
        impressions=impressions.astype(np.int32),
        clicks=clicks.astype(np.int32),
        link_clicks=links.astype(np.int32),
        conversions=conversions.astype(np.int32),
        video_views=views.astype(np.int32),
        spend_minor=spend.astype(np.int64),
        revenue_minor=revenue,
    )


def advance_drift(world: World, state: MarketState) -> None:
    """One hour of the mean-reverting random walk on logit CTR (an AR(1) with the configured
    stationary sd and half-life); the noise depends on (seed, hour) only."""
    cfg = world.config
    if not cfg.drift or cfg.drift_sd == 0.0:
        return
    rho = 0.5 ** (1.0 / cfg.drift_half_life_hours)
    shock = hour_stream(cfg.seed, state.hour_index, _DRIFT).normal(0.0, 1.0, state.drift.shape)
    state.drift *= rho
    state.drift += np.sqrt(1.0 - rho**2) * cfg.drift_sd * shock


def expected_value(
    world: World, state: MarketState, objective: Objective, learning: bool = True
) -> FloatArray:
    """Expected outcome per unit of the objective at the current hour: CTR, or clicks,
    conversions or revenue (minor) per major currency unit (per 100 minor) spent; ``learning``
    as in ``true_ctr``."""
    ctr = true_ctr(world, state, learning)
    if objective is Objective.CTR:
        return ctr
    impressions_per_major = 100_000.0 / expected_cpm(world, state.hour_index)
    clicks = ctr * impressions_per_major
    if objective is Objective.CLICKS_PER_DOLLAR:
        return clicks
    conversions = clicks * world.link_rate * world.cvr
    if objective is Objective.CONVERSIONS_PER_DOLLAR:
        return conversions
    out: FloatArray = conversions * world.aov_minor[world.account_of] / 100.0
    return out
