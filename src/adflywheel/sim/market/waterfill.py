"""The marginal oracle's split (synthetic data, evaluation only): water-filling on true marginal
clicks per dollar, fatigue included.

The greedy oracle puts a campaign's whole budget on the ad that is best *now*; but an ad's CTR
falls as its audience sees it (fatigue: logit CTR minus ``fatigue_strength * log1p(seen /
audience)``), so the next dollar on the best ad is worth less than the first. Here each ad's
marginal clicks per dollar are read off that curve, as if the day's budget ``b`` were spent at
this hour's price: ``g(b) = k * sigmoid(L - s * log1p((seen + k * b) / audience))`` with ``k``
impressions per minor unit and ``L`` the ad's logit CTR before fatigue (time of day, drift,
collapses included). Each campaign's total goes where the next dollar buys most, until the
marginal values are level (one water level per campaign, found by bisection). Without fatigue
the curve is flat and the split is the greedy oracle's.

The oracle knows the learning phase too: with ``max_step`` (the market's significant-edit
fraction) no ad set's budget moves by more than that share of its budget in one hour, so the
oracle never sends an ad set back into learning (a step of 20% an hour still moves a budget
tenfold in 13 hours).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from adflywheel.sim.market.delivery import MarketState, expected_cpm
from adflywheel.sim.market.genes import FloatArray, IntArray
from adflywheel.sim.market.world import World, logit

_ITERATIONS = 60


def _logit_before_fatigue(world: World, state: MarketState, ctr_now: FloatArray) -> FloatArray:
    """Each ad's logit CTR with its fatigue taken back out (the creative's own CTR now)."""
    s = world.config.fatigue_strength
    ctr = np.clip(ctr_now / np.maximum(state.multiplier, 1e-12), 1e-9, 1 - 1e-9)
    out: FloatArray = logit(ctr) + s * np.log1p(state.cum_impressions / world.audience)
    return out


def marginal_split(
    world: World,
    state: MarketState,
    ctr_now: FloatArray,
    live: np.ndarray,
    totals: IntArray,
    current: IntArray | None = None,
    max_step: float | None = None,
    learning_factor: FloatArray | None = None,
) -> IntArray:
    """Daily budgets per ad (flat ad order) that split each campaign's ``totals[c]`` over its
    ``live`` ads by water-filling on marginal clicks per dollar (``ctr_now``: each ad's true CTR
    now without the learning penalty). Integers, each campaign's total kept exactly; a campaign
    with no live ad gets nothing. With ``max_step`` each ad's budget stays within that share of
    its ``current`` budget (a campaign's total is then kept as far as those bounds allow);
    ``learning_factor``: what each ad's learning phase leaves of its CTR now (1 out of it)."""
    n = int(ctr_now.shape[0])
    campaign_of = world.campaign_of
    s = world.config.fatigue_strength
    k = 1000.0 / expected_cpm(world, state.hour_index)  # impressions per minor unit
    factor = np.ones(n) if learning_factor is None else learning_factor
    mult = state.multiplier * factor  # what multiplies the sigmoid: collapses, learning
    base = _logit_before_fatigue(world, state, ctr_now)  # the creative's own
    seen, audience = state.cum_impressions, world.audience

    lo, hi = _bounds(n, current, max_step)

    def spend_at(level: FloatArray) -> FloatArray:
        """Each ad's budget at which its marginal value falls to its campaign's ``level``."""
        target = np.clip(level[campaign_of] / np.maximum(k * mult, 1e-300), 1e-12, 1 - 1e-12)
        reach = audience * np.expm1((base - logit(target)) / s)  # impressions at that level
        spend = np.clip(np.maximum((reach - seen) / k, 0.0), lo, hi)
        out: FloatArray = np.where(live, spend, 0.0)
        return out

    n_c = int(totals.shape[0])
    first = np.where(live, k * factor * ctr_now, 0.0)  # marginal value of the first unit
    high = np.zeros(n_c)
    np.maximum.at(high, campaign_of, first)
    low = np.zeros(n_c)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for _ in range(_ITERATIONS):  # bisection on each campaign's water level at once
            mid = (low + high) / 2.0
            spent = np.bincount(campaign_of, weights=spend_at(mid), minlength=n_c)
            over = spent > totals
            low = np.where(over, mid, low)
            high = np.where(over, high, mid)
        weights = spend_at(high)
    out = np.zeros(n, dtype=np.int64)
    for c in range(n_c):
        ads = np.flatnonzero((campaign_of == c) & live)
        if ads.size == 0 or totals[c] <= 0:
            continue
        w = weights[ads]
        if max_step is not None:
            out[ads] = _round_within(int(totals[c]), w, lo[ads], hi[ads])
            continue
        if w.sum() <= 0:  # everything level at the top: the best ad takes it all
            w = (first[ads] == first[ads].max()).astype(float)
        out[ads] = _split_exactly(int(totals[c]), w)
    return out


def _bounds(
    n: int, current: IntArray | None, max_step: float | None
) -> tuple[FloatArray, FloatArray]:
    """Each ad's lowest and highest budget this hour: any, or within ``max_step`` of its
    current budget (in whole minor units, never a significant edit)."""
    if max_step is None or current is None:
        return np.zeros(n), np.full(n, np.inf)
    frac = Fraction(max_step).limit_denominator(1_000_000)
    free = current < 0  # no current budget to keep: any budget
    held = np.maximum(current, 0).astype(np.int64)
    step = held * frac.numerator // frac.denominator
    lo = np.where(free, 0.0, (held - step).astype(float))
    hi = np.where(free, np.inf, (held + step).astype(float))
    return lo, hi


def _split_exactly(total: int, weights: FloatArray) -> IntArray:
    """Integers proportional to ``weights`` summing to ``total`` (largest remainders)."""
    exact = total * weights / weights.sum()
    floors: IntArray = np.floor(exact).astype(np.int64)
    short = total - int(floors.sum())
    order = np.argsort(floors - exact, kind="stable")[:short]
    floors[order] += 1
    return floors


def _round_within(total: int, exact: FloatArray, lo: FloatArray, hi: FloatArray) -> IntArray:
    """Whole budgets near ``exact`` within ``[lo, hi]`` summing to ``total`` where the bounds
    allow: floors first, then a unit more to the largest remainders that have room."""
    floors: IntArray = np.clip(np.floor(exact), lo, hi).astype(np.int64)
    short = total - int(floors.sum())
    if short > 0:
        room = floors < hi
        order = [i for i in np.argsort(floors - exact, kind="stable").tolist() if room[i]]
        floors[order[:short]] += 1
    return floors
