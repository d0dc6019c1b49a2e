"""Meta's learning phase in the simulated market (synthetic data): per ad set state and penalty.

States per ad set (flat ad set order; one ad per ad set unless the campaign's structure groups
several): ``EXITED`` (delivers at full
efficiency), ``LEARNING`` (since launch or the last significant edit) and ``LIMITED`` (the
learning window of delivery passed without enough results). The rules and the assumptions are
in ``LearningPhase`` (config.py) and docs/simulated-market.md.

Everything here is deterministic and draws no random number, so the market's random streams are
the same whether the phase is on or off.
"""

from __future__ import annotations

from enum import StrEnum
from fractions import Fraction

import numpy as np

from adflywheel.sim.market.config import LearningPhase
from adflywheel.sim.market.delivery import (
    EXITED,
    LEARNING,
    LIMITED,
    BoolArray,
    HourRecord,
    MarketState,
)
from adflywheel.sim.market.genes import IntArray


class LearningStatus(StrEnum):
    """An ad set's learning status, as Meta's Ads Manager shows it in its delivery column."""

    EXITED = "exited"  # out of the learning phase ("Active")
    LEARNING = "learning"
    LIMITED = "learning_limited"
    OFF = "off"  # the market models no learning phase

    @classmethod
    def of(cls, code: int) -> LearningStatus:
        return {EXITED: cls.EXITED, LEARNING: cls.LEARNING, LIMITED: cls.LIMITED}[code]


def significant(phase: LearningPhase, old: IntArray, new: IntArray) -> BoolArray:
    """Mask (as bool array) of budget changes old -> new that are significant edits: a change of
    more than ``significant_edit_fraction`` of the old budget (exact, in integers: 20% of 1000 is
    200, so 1000 -> 1200 is not significant and 1000 -> 1201 is). From 0, any increase is."""
    frac = Fraction(phase.significant_edit_fraction).limit_denominator(1_000_000)
    old64, new64 = old.astype(np.int64), new.astype(np.int64)
    out: BoolArray = np.abs(new64 - old64) * frac.denominator > frac.numerator * old64
    return out


def reset(state: MarketState, mask: BoolArray | int) -> None:
    """Put the ad sets in ``mask`` back into learning (a significant edit)."""
    state.learning[mask] = LEARNING
    state.learning_events[mask] = 0
    state.learning_hours[mask] = 0
    state.significant_edits[mask] += 1


def status_live(state: MarketState, ad_set_start: IntArray | None = None) -> BoolArray:
    """Ad sets whose status lets them deliver (the ad set and one of its ads active; budget
    aside). ``ad_set_start``: each ad set's first ad, when ad sets hold several ads."""
    ads = state.ad_active
    if ad_set_start is not None:
        ads = np.logical_or.reduceat(ads, ad_set_start)
    out: BoolArray = ads & state.ad_set_active
    return out


def campaign_edit(
    phase: LearningPhase | None,
    state: MarketState,
    campaign: int,
    new: int,
    ad_sets: slice,
) -> None:
    """A campaign budget (CBO) edit: when significant by the same rule as an ad set's budget,
    every ad set of the campaign is back in learning (an assumption: Meta says a budget change
    is a significant edit, not how a campaign's is shared out)."""
    if phase is None:
        return
    old = state.campaign_budgets[campaign : campaign + 1]
    if significant(phase, old, np.array([new], dtype=np.int64))[0]:
        mask = np.zeros(state.learning.shape[0], dtype=np.bool_)
        mask[ad_sets] = True
        reset(state, mask)


def status_changed(
    phase: LearningPhase | None,
    state: MarketState,
    was_live: BoolArray,
    ad_set_start: IntArray | None = None,
) -> None:
    """After a status change: remember when ad sets went dark; an ad set that comes back after
    ``pause_reset_hours`` or more dark is back in learning (Meta: pausing for 7 days or more
    is a significant edit); shorter pauses change nothing."""
    if phase is None:
        return
    live = status_live(state, ad_set_start)
    h = state.hour_index
    went_dark = was_live & ~live
    state.dark_since[went_dark] = h
    back = ~was_live & live
    if back.any():
        long_pause = back & (h - state.dark_since >= phase.pause_reset_hours)
        if long_pause.any():
            reset(state, long_pause)
        state.dark_since[back] = -1


def after_delivery(
    phase: LearningPhase | None,
    state: MarketState,
    record: HourRecord,
    ad_set_start: IntArray | None = None,
) -> None:
    """Count the hour just delivered: results and hours of the learning window of live ad sets,
    their exits (``learning_events`` results) and their falls into learning limited (the window
    spent without them). Dark hours (paused) do not use up the window; live hours at a budget
    of 0 do. ``hours_in_learning`` counts the hours an ad set spent money while in the phase."""
    if phase is None:
        return
    live = status_live(state, ad_set_start)
    spend, results = record.spend_minor, getattr(record, phase.result)
    if ad_set_start is not None:  # an ad set's results are its ads'
        spend = np.add.reduceat(spend, ad_set_start)
        results = np.add.reduceat(results.astype(np.int64), ad_set_start)
    state.hours_in_learning += (spend > 0) & (state.learning != EXITED)
    learning = live & (state.learning == LEARNING)
    state.learning_events += np.where(learning, results, 0)
    state.learning_hours += learning
    exited = learning & (state.learning_events >= phase.learning_events)
    state.learning[exited] = EXITED
    limited = learning & ~exited & (state.learning_hours >= phase.window_hours)
    state.learning[limited] = LIMITED
