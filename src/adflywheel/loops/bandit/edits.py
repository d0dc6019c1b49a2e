"""Budget edits a Meta ad set tolerates: how far, how often, and not for nothing.

On Meta a change of an ad set's budget amount is a "significant edit" that can send it back into
the learning phase (about 50 results in the week after the last significant edit). Meta
publishes no safe size or frequency; the practitioner rule is "at most +20% per change, 48-72 h
apart, decreases may go faster" (sources in docs/safety.md). The rules here encode that, for
every writer of budgets (the reallocation and the promoter):

- an ad set edited less than ``min_hours_between_edits`` ago is not edited again, and an increase
  waits ``min_hours_between_increases`` after the last increase;
- one edit moves a budget by at most ``max_step`` of its current value, up or down (with edits at
  least a day apart this is also the most it moves in a day);
- an edit smaller than ``dead_band`` of the current budget is not made (it buys nothing and
  counts as an edit);
- no budget is set below the platform's minimum daily budget (an absolute floor), nor above a
  ceiling;
- an ad set the advertiser changed by hand is left alone for ``hands_off_hours``;
- a new ad set has little learning to lose: its first budget (before it has delivered, or in
  its first few hours of delivery, when a reset of the learning phase costs those few hours of
  its ~50 results) may be set anywhere within the floor and ceiling, once (the edit interval
  then applies), so what loops 3, 4 and 5 predict for a new creative can reach its budget
  (issue #15).

``edit_bounds`` gives the interval one ad set's budget may move to now; ``settle`` turns any
proposal for a campaign into one that keeps the campaign's total and obeys every bound and the
dead band (or changes nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class EditRules:
    """``None`` turns a rule off (the pre-safety behaviour, kept for comparisons)."""

    max_step: float | None = 0.20
    dead_band: float = 0.05
    min_hours_between_edits: float = 24.0
    min_hours_between_increases: float = 48.0
    hands_off_hours: float = 72.0

    def __post_init__(self) -> None:
        if self.max_step is not None and not (
            math.isfinite(self.max_step) and 0 < self.max_step <= 10
        ):
            raise ValueError("max_step must be in (0, 10]")
        if not (math.isfinite(self.dead_band) and 0 <= self.dead_band < 1):
            raise ValueError("dead_band must be in [0, 1)")
        for name in ("min_hours_between_edits", "min_hours_between_increases", "hands_off_hours"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 24 * 365):
                raise ValueError(f"{name} must be between 0 and 8760 hours")

    @classmethod
    def off(cls) -> EditRules:
        """No edit rule at all: any budget, any hour (how the service worked before)."""
        return cls(
            max_step=None,
            dead_band=0.0,
            min_hours_between_edits=0.0,
            min_hours_between_increases=0.0,
            hands_off_hours=0.0,
        )


@dataclass(frozen=True, slots=True)
class EditHistory:
    """When one ad set's budget last changed (by anyone), last went up, and was last changed by
    hand outside the service."""

    last_edit: datetime | None = None
    last_increase: datetime | None = None
    last_external: datetime | None = None


@dataclass(frozen=True, slots=True)
class Bounds:
    low: int
    high: int
    why: str  # the rule that binds, for the evidence ("free" when only the step does)

    @property
    def frozen(self) -> bool:
        return self.low == self.high


def edit_bounds(
    current: int,
    history: EditHistory,
    now: datetime,
    rules: EditRules,
    *,
    floor_minor: int = 0,
    ceiling_minor: int | None = None,
    first_budget: bool = False,
) -> Bounds:
    """The interval ``[low, high]`` this ad set's daily budget may be set to at ``now``;
    ``first_budget``: the ad set is new (see the module's rules) and the service sets its first
    budget.

    ``current`` is always inside it unless ``current`` is already above the ceiling (then the
    interval lies below it: the ceiling wins). A budget below the floor is never pushed up by
    the floor alone (the advertiser set it), only kept from going lower."""
    frozen = _frozen_by(history, now, rules)
    if frozen is not None:
        return Bounds(current, current, frozen)
    low, high, why = 0, math.inf, "free"
    if first_budget:
        why = "first budget of a new ad set"
    elif rules.max_step is not None:
        low = math.ceil(current * (1.0 - rules.max_step))
        high = math.floor(current * (1.0 + rules.max_step))
        why = f"at most {rules.max_step:.0%} per edit"
    if (
        not first_budget
        and history.last_increase is not None
        and now < history.last_increase + timedelta(hours=rules.min_hours_between_increases)
    ):
        high, why = current, "no increase within the increase interval"
    low = max(low, min(floor_minor, current))
    if ceiling_minor is not None and high > ceiling_minor:
        high = ceiling_minor
        low = min(low, high)
        why = "ceiling"
    return Bounds(int(low), int(high) if math.isfinite(high) else _NO_LIMIT, why)


_NO_LIMIT = 2**62  # "no upper bound" as an int (far above any budget Meta accepts)


def _frozen_by(history: EditHistory, now: datetime, rules: EditRules) -> str | None:
    if history.last_external is not None and now < history.last_external + timedelta(
        hours=rules.hands_off_hours
    ):
        return "hands off: changed outside the service"
    if history.last_edit is not None and now < history.last_edit + timedelta(
        hours=rules.min_hours_between_edits
    ):
        return "edited too recently"
    return None


def in_dead_band(current: int, new: int, dead_band: float) -> bool:
    """A change too small to be worth an edit (a change from zero never is)."""
    return new != current and current > 0 and abs(new - current) < dead_band * current


def settle(
    proposed: Mapping[str, int],
    current: Mapping[str, int],
    bounds: Mapping[str, Bounds],
    dead_band: float,
) -> dict[str, int]:
    """A proposal the edit rules allow, with the same total as ``current``.

    Each budget is clamped to its bounds and changes inside the dead band are dropped; what that
    moved is taken from (or given to) the ad sets still changing in the same direction, within
    their bounds. If the total cannot be kept that way, nothing changes: a campaign that keeps
    its budgets is always allowed. Every key of ``proposed`` must be in ``current`` and
    ``bounds``."""
    total = sum(current[k] for k in proposed)
    new = {k: min(max(v, bounds[k].low), bounds[k].high) for k, v in proposed.items()}
    for _ in range(len(new) + 1):
        for k, v in new.items():
            if in_dead_band(current[k], v, dead_band):
                new[k] = current[k]
        gap = total - sum(new.values())
        if gap == 0:
            return new
        movable = [k for k in sorted(new) if new[k] != current[k]]
        room = {
            k: (bounds[k].high - new[k]) if gap > 0 else (new[k] - bounds[k].low) for k in movable
        }
        free = sum(room.values())
        if free < abs(gap):
            break
        step = share_out(abs(gap), room)
        sign = 1 if gap > 0 else -1
        for k, amount in step.items():
            new[k] += sign * amount
    if _valid(new, current, bounds, dead_band, total):
        return new
    return {k: current[k] for k in proposed}


def share_out(amount: int, room: Mapping[str, int]) -> dict[str, int]:
    """``amount`` split over the keys in proportion to their room (integers, never above it)."""
    free = sum(room.values())
    out = {k: (amount * r) // free for k, r in room.items()}
    left = amount - sum(out.values())
    for k in sorted(room, key=lambda k: (-(room[k] - out[k]), k)):
        if left == 0:
            break
        if out[k] < room[k]:
            out[k] += 1
            left -= 1
    return out


def _valid(
    new: Mapping[str, int],
    current: Mapping[str, int],
    bounds: Mapping[str, Bounds],
    dead_band: float,
    total: int,
) -> bool:
    return sum(new.values()) == total and all(
        bounds[k].low <= v <= bounds[k].high and not in_dead_band(current[k], v, dead_band)
        for k, v in new.items()
    )
