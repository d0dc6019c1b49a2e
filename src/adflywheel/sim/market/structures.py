"""How Meta spends a shared budget in the simulated market (synthetic data).

An ad set's budget shared by several ads, or a campaign's budget (CBO) shared by its ad sets, is
split each hour by the market's assumed rule (``DeliverySplit`` in config.py; docs/simulated-
market.md, "Budget structures"): shares proportional to Meta's noisy estimate of each ad's value,
raised to ``gamma``, over the ads (and ad sets) that can deliver. Paused ads and ad sets get no
share, so their delivery moves to their active siblings; an ad set without an active ad, or a
campaign without an active ad set, spends nothing. Draws no random number: the market's hourly
streams are the same whatever the structures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from adflywheel.sim.market.genes import FloatArray, IntArray

if TYPE_CHECKING:
    from adflywheel.sim.market.delivery import BoolArray, MarketState
    from adflywheel.sim.market.world import World


def ad_set_has_active_ad(world: World, state: MarketState) -> BoolArray:
    """Per ad set: at least one of its ads is active."""
    out: BoolArray = np.logical_or.reduceat(state.ad_active, world.ad_set_start)
    return out


def estimate_log(world: World, state: MarketState, value: FloatArray) -> FloatArray:
    """Log of Meta's estimate of each ad's value: the true ``value`` (the objective per dollar,
    without the learning penalty) times a fixed per-ad error that shrinks with impressions."""
    split = world.config.delivery_split
    sd = split.initial_sd / np.sqrt(1.0 + state.cum_impressions / split.sharpen_impressions)
    out: FloatArray = np.log(np.maximum(value, 1e-300)) + sd * world.estimate_z
    return out


def _shares(
    log_score: FloatArray, eligible: BoolArray, starts: IntArray, group: IntArray
) -> FloatArray:
    """Per member: ``exp(gamma * log_score)`` over its group's eligible members (0 when not
    eligible or the group has none). ``starts`` are the groups' first members (contiguous)."""
    lw = np.where(eligible, log_score, -np.inf)
    top = np.maximum.reduceat(lw, starts)
    weight = np.where(eligible, np.exp(lw - np.where(np.isfinite(top), top, 0.0)[group]), 0.0)
    total = np.add.reduceat(weight, starts)
    out: FloatArray = np.where(eligible, weight / np.where(total > 0, total, 1.0)[group], 0.0)
    return out


def delivery_shares(world: World, state: MarketState, value: FloatArray) -> FloatArray:
    """Each ad's share of its budget holder's spend this hour (its ad set's budget, or its
    campaign's for CBO): 1 for a lone active ad, 0 for an ad that cannot deliver."""
    gamma = world.config.delivery_split.gamma
    set_live = state.ad_set_active & ad_set_has_active_ad(world, state)
    ad_live = state.ad_active & set_live[world.ad_set_of]
    log_est = estimate_log(world, state, value)
    within = _shares(gamma * log_est, ad_live, world.ad_set_start, world.ad_set_of)
    if not world.campaign_budgeted.any():
        return within
    # An ad set's estimate: its ads' estimates averaged by their shares.
    set_est = np.add.reduceat(within * np.exp(log_est), world.ad_set_start)
    cbo_set = world.campaign_budgeted[world.ad_set_campaign]
    set_share = _shares(
        gamma * np.log(np.maximum(set_est, 1e-300)),
        set_live & cbo_set,
        world.campaign_ad_set_start[:-1],
        world.ad_set_campaign,
    )
    out: FloatArray = np.where(
        cbo_set[world.ad_set_of], within * set_share[world.ad_set_of], within
    )
    return out


def _hour_spend(budget: IntArray, pacing: FloatArray, spent: IntArray) -> IntArray:
    """An hour's spend of a budget at Meta-like pacing, never past the day's budget."""
    room = np.maximum(budget - spent, 0)
    out: IntArray = np.minimum(np.floor(budget * pacing / 24.0).astype(np.int64), room)
    return out


def split_spend(
    world: World, state: MarketState, pacing: FloatArray, value: FloatArray
) -> IntArray:
    """Spend (minor) of every ad this hour. Each budget holder (an ad set with a budget, or a
    CBO campaign) spends like a lone ad set of the old market (its first ad's pacing draw), then
    the amount is split over its ads by ``delivery_shares``, exactly in integers (largest
    remainders), so a holder's ads spend exactly what it spends."""
    n, m = int(state.ad_active.shape[0]), world.n_ad_sets
    share = delivery_shares(world, state, value)
    cbo_ad = world.campaign_budgeted[world.campaign_of]
    set_spent = np.add.reduceat(state.spent_today, world.ad_set_start)
    set_spend = _hour_spend(state.budgets, pacing[world.ad_set_start], set_spent)
    set_spend = np.where(world.campaign_budgeted[world.ad_set_campaign], 0, set_spend)
    first_ad = world.ad_set_start[world.campaign_ad_set_start[:-1]]
    camp_spent = np.add.reduceat(state.spent_today, first_ad)
    camp_spend = _hour_spend(state.campaign_budgets, pacing[first_ad], camp_spent)
    camp_spend = np.where(world.campaign_budgeted, camp_spend, 0)
    # Budget holder of every ad: its ad set (0..m-1) or its CBO campaign (m + c).
    holder = np.where(cbo_ad, m + world.campaign_of, world.ad_set_of)
    holder_spend = np.concatenate([set_spend, camp_spend])
    holder_share = np.zeros(holder_spend.shape[0])
    np.add.at(holder_share, holder, share)
    # A holder none of whose ads can deliver spends nothing.
    holder_spend = np.where(holder_share > 0, holder_spend, 0)
    raw = holder_spend[holder] * share
    base = np.floor(raw).astype(np.int64)
    given = np.zeros(holder_spend.shape[0], dtype=np.int64)
    np.add.at(given, holder, base)
    short = holder_spend - given
    order = np.lexsort((-(raw - base), holder))
    sorted_holder = holder[order]
    rank = np.arange(n) - np.searchsorted(sorted_holder, sorted_holder, side="left")
    bump = (rank < short[sorted_holder]) & (share[order] > 0)
    base[order[bump]] += 1
    return base
