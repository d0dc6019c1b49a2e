"""From winners to budget changes, through the account's guardrails: a pure function of
(winners, current budgets, guardrails, recent actions, now) that says what to change and what to
hold back, and why. The service carries the plan out and re-checks the ceilings as it writes.

The order of the rules, per winner, strongest evidence first: kill switch → already acted this
cycle hour (idempotence) → a ramp in progress, a change awaiting approval, or the cooldown →
the cap on changes per cycle → the target (current x multiplier, or one ramp step toward it) →
the per-variant and per-account ceilings (the change is cut to fit, or held if nothing fits) →
dry-run, or approval when the increase is above the threshold.

Meta publishes no safe size for a budget change (each one is a "significant edit" that can send
the ad set back to learning); the "at most +20% per change, 48-72 h apart" practitioner rule is
the default ramp here, and the account's edit rules (``EditRules``, shared with the
reallocation) bound every change on top of it.

A promotion is funded inside its campaign by default: the winner's raise is taken from the other
active ad sets of the campaign, so the campaign's total stays what the advertiser planned.
Growing a campaign's total is the account's explicit choice (``campaign_growth``), bounded by the
campaign and account ceilings and by ``max_growth_per_week``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from adflywheel.core.domain import AccountMode
from adflywheel.loops.bandit.edits import EditRules


class Mode(StrEnum):
    APPLY = "apply"
    DRY_RUN = "dry_run"
    PENDING_APPROVAL = "pending_approval"


class Hold(StrEnum):
    BUDGET_UNKNOWN = "budget_unknown"
    ZERO_BUDGET = "zero_budget"
    KILL_SWITCH = "kill_switch"
    ALREADY_ACTED = "already_acted_this_hour"
    AWAITING_APPROVAL = "awaiting_approval"
    RAMP_WAIT = "ramp_wait"
    COOLDOWN = "cooldown"
    MAX_CHANGES = "max_changes_per_cycle"
    VARIANT_CEILING = "variant_ceiling"
    CAMPAIGN_CEILING = "campaign_ceiling"
    ACCOUNT_CEILING = "account_ceiling"
    EDIT_RULES = "edit_rules"
    NO_FUNDING = "no_funding_in_campaign"
    GROWTH_LIMIT = "weekly_growth_limit"
    LEFT_ALONE = "left_alone"
    # The winner's ad set budget is shared (several ads, or a campaign budget): raising it would
    # promote its other ads with it (issue #16).
    SHARED_BUDGET = "shared_budget"


# Modes of past promoter records that count for cooldowns and ramps in live operation.
LIVE_MODES = frozenset(
    {"applied", "pending", "pending_approval", "rolled_back", "expired", "rejected", "dismissed"}
)


@dataclass(frozen=True, slots=True)
class FreezeWindow:
    """A period (UTC, ``[start, end)``) in which nothing is written: the whole account, or one
    campaign (its external id)."""

    start: datetime
    end: datetime
    campaign: str | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("freeze windows need time zones (UTC)")
        if not self.start < self.end:
            raise ValueError("a freeze window must end after it starts")

    def covers(self, instant: datetime, campaign: str | None) -> bool:
        return self.start <= instant < self.end and self.campaign in (None, campaign)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "campaign": self.campaign,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FreezeWindow:
        unknown = set(data) - {"start", "end", "campaign"}
        if unknown:
            raise ValueError(f"unknown freeze window fields: {sorted(unknown)}")
        return cls(_instant(data["start"]), _instant(data["end"]), data.get("campaign"))


def _instant(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("freeze window times are ISO 8601 strings with a time zone")
    return datetime.fromisoformat(value)


_MONEY = (
    "max_variant_budget_minor",
    "max_campaign_budget_minor",
    "max_account_budget_minor",
    "approval_threshold_minor",
    "min_daily_budget_minor",
)


@dataclass(frozen=True, slots=True)
class Guardrails:
    """Per account. Money in minor units per day; ``None`` means no limit / off.

    The defaults are the safe ones: recommend mode, promotions funded inside their campaign,
    +20% steps at least 48 h apart, a dead band, increases above 5,000 minor units a day wait
    for approval. Autopilot needs ``max_account_budget_minor``."""

    mode: AccountMode = AccountMode.RECOMMEND
    multiplier: float = 2.0
    max_variant_budget_minor: int | None = None
    max_campaign_budget_minor: int | None = None
    max_account_budget_minor: int | None = None
    cooldown_hours: float = 72.0
    max_changes_per_cycle: int = 3
    ramp_max_step: float | None = 0.2  # at most +20% per promotion step
    ramp_min_hours: float = 48.0
    dry_run: bool = False
    approval_threshold_minor: int | None = 5_000  # increases above this wait for approval
    approval_ttl_hours: float = 24.0
    kill_switch: bool = False
    campaign_growth: bool = False  # may a promotion grow its campaign's total?
    max_growth_per_week: float = 0.2  # of a campaign's total, when growth is allowed
    # The edit rules every budget writer obeys (``EditRules``); None turns the step off.
    max_edit_step: float | None = 0.2
    edit_dead_band: float = 0.05
    min_hours_between_edits: float = 24.0
    min_hours_between_increases: float = 48.0
    hands_off_hours: float = 72.0
    # Meta's minimum daily budget; None: the platform's answer, else a fallback table.
    min_daily_budget_minor: int | None = None
    excluded_campaigns: tuple[str, ...] = ()
    freeze_windows: tuple[FreezeWindow, ...] = ()
    holdout_share: float = 0.0  # campaigns left to hold their split, for the holdout report

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", AccountMode(self.mode))
        object.__setattr__(self, "excluded_campaigns", tuple(self.excluded_campaigns))
        object.__setattr__(
            self,
            "freeze_windows",
            tuple(
                w if isinstance(w, FreezeWindow) else FreezeWindow.from_dict(w)
                for w in self.freeze_windows
            ),
        )
        if not (math.isfinite(self.multiplier) and 1.0 < self.multiplier <= 10.0):
            raise ValueError("multiplier must be in (1, 10]")
        for name in _MONEY:
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53
            ):
                raise ValueError(f"{name} must be a non-negative integer of minor units")
        if not isinstance(self.max_changes_per_cycle, int) or self.max_changes_per_cycle < 0:
            raise ValueError("max_changes_per_cycle must be a non-negative integer")
        for name in ("cooldown_hours", "ramp_min_hours"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 24 * 365):
                raise ValueError(f"{name} must be between 0 and 8760 hours")
        if not (math.isfinite(self.approval_ttl_hours) and 0 < self.approval_ttl_hours <= 24 * 30):
            raise ValueError("approval_ttl_hours must be in (0, 720]")
        if self.ramp_max_step is not None and not (
            math.isfinite(self.ramp_max_step) and 0 < self.ramp_max_step <= 10
        ):
            raise ValueError("ramp_max_step must be in (0, 10]")
        if not (math.isfinite(self.max_growth_per_week) and 0 <= self.max_growth_per_week <= 10):
            raise ValueError("max_growth_per_week must be in [0, 10]")
        if not (math.isfinite(self.holdout_share) and 0 <= self.holdout_share < 1):
            raise ValueError("holdout_share must be in [0, 1)")
        self.edit_rules()  # validates the edit rules
        problem = self.autopilot_problem()
        if self.mode is AccountMode.AUTOPILOT and problem is not None:
            raise ValueError(problem)

    def autopilot_problem(self) -> str | None:
        """What autopilot would miss with these guardrails (None: nothing)."""
        if self.max_account_budget_minor is None:
            return (
                "autopilot needs an account-wide daily ceiling: set max_account_budget_minor "
                "(adflywheel accounts guardrails NAME --account-ceiling MINOR)"
            )
        return None

    def edit_rules(self) -> EditRules:
        return EditRules(
            max_step=self.max_edit_step,
            dead_band=self.edit_dead_band,
            min_hours_between_edits=self.min_hours_between_edits,
            min_hours_between_increases=self.min_hours_between_increases,
            hands_off_hours=self.hands_off_hours,
        )

    def frozen(self, instant: datetime, campaign: str | None = None) -> bool:
        """Nothing may be written now (a freeze window), for the account or this campaign."""
        return any(w.covers(instant, campaign) for w in self.freeze_windows)

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["mode"] = self.mode.value
        out["excluded_campaigns"] = list(self.excluded_campaigns)
        out["freeze_windows"] = [w.to_dict() for w in self.freeze_windows]
        return out


@dataclass(frozen=True, slots=True)
class Candidate:
    """A winner: which ad set carries it, its current daily budget, and its evidence."""

    variant_id: str
    ad_set_id: str
    current_budget_minor: int | None
    adjusted_p_value: float
    lift: float
    # The most the budget may become this hour whatever the multiplier says (the edit rules,
    # what the campaign can fund, the campaign ceiling, the weekly growth), and why.
    cap_minor: int | None = None
    cap_reason: Hold = Hold.EDIT_RULES
    cap_detail: str = ""


@dataclass(frozen=True, slots=True)
class PastAction:
    """A promoter record from the audit log (``kind`` is "promote" or "rollback")."""

    ad_set_id: str
    at: datetime
    cycle_hour: datetime | None
    old_budget_minor: int | None
    new_budget_minor: int
    target_minor: int | None
    mode: str
    kind: str = "promote"


@dataclass(frozen=True, slots=True)
class PlannedAction:
    variant_id: str
    ad_set_id: str
    old_budget_minor: int
    new_budget_minor: int
    target_minor: int  # where a ramp is heading (= new_budget_minor without a ramp)
    mode: Mode
    rule: str  # "promote" or "ramp_step"
    guardrails: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HeldBack:
    variant_id: str
    ad_set_id: str
    reason: Hold
    detail: str


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[PlannedAction, ...]
    held_back: tuple[HeldBack, ...]


def _counted(action: PastAction, dry_run: bool, now: datetime) -> bool:
    """Does a past record count for cooldowns, ramps and idempotence in a run at ``now``?

    Live records always do (a real change made after a replayed hour is the platform's state:
    counting it is what stops a replay doubling twice). Dry-run records (also recommend mode's)
    count only for dry runs, and only when made at or before ``now``: a dry run "now" must not
    cool down a later ``--as-of`` replay of an earlier hour."""
    if action.mode in LIVE_MODES:
        return True
    return dry_run and action.mode == "dry_run" and action.at <= now


def plan_promotions(
    candidates: Sequence[Candidate],
    *,
    account_budget_minor: int,
    guardrails: Guardrails,
    history: Sequence[PastAction],
    now: datetime,
    cycle_hour: datetime,
) -> Plan:
    """Plan this cycle's promotions. ``account_budget_minor`` is the sum of every ad set's
    current daily budget in the account; ``history`` holds recent promoter records."""
    actions: list[PlannedAction] = []
    held: list[HeldBack] = []
    total = account_budget_minor
    ranked = sorted(candidates, key=lambda c: (c.adjusted_p_value, -c.lift, c.variant_id))
    for c in ranked:
        outcome = _plan_one(c, guardrails, history, now, cycle_hour, actions, total)
        if isinstance(outcome, _Refusal):
            held.append(HeldBack(c.variant_id, c.ad_set_id, outcome.reason, outcome.detail))
            continue
        total += outcome.new_budget_minor - outcome.old_budget_minor
        actions.append(outcome)
    return Plan(tuple(actions), tuple(held))


@dataclass(frozen=True, slots=True)
class _Refusal:
    reason: Hold
    detail: str


@dataclass(frozen=True, slots=True)
class _Aim:
    target: int
    rule: str  # "promote" or "ramp_step"


def _plan_one(
    c: Candidate,
    g: Guardrails,
    history: Sequence[PastAction],
    now: datetime,
    cycle_hour: datetime,
    actions: Sequence[PlannedAction],
    total: int,
) -> PlannedAction | _Refusal:
    """One winner through the rules, in their order; ``actions`` are those planned so far this
    cycle and ``total`` the account's daily budget after them."""
    current = c.current_budget_minor
    if current is None:
        return _Refusal(Hold.BUDGET_UNKNOWN, "the ad set's daily budget is unknown")
    if current <= 0:
        return _Refusal(Hold.ZERO_BUDGET, "a zero budget cannot be multiplied")
    if g.kill_switch:
        return _Refusal(
            Hold.KILL_SWITCH, "the account's kill switch stops automatic budget changes"
        )
    mine = sorted(
        (a for a in history if a.ad_set_id == c.ad_set_id and _counted(a, g.dry_run, now)),
        key=lambda a: a.at,
    )
    promotions = [a for a in mine if a.kind == "promote"]
    busy = _already_in_hand(c, promotions, g, actions, cycle_hour)
    if busy is not None:
        return busy
    aim = _aim(current, mine, promotions, g, now)
    if isinstance(aim, _Refusal):
        return aim
    if len(actions) >= g.max_changes_per_cycle:
        return _Refusal(Hold.MAX_CHANGES, f"at most {g.max_changes_per_cycle} changes per cycle")
    sized = _size(current, aim, g, total, c)
    if isinstance(sized, _Refusal):
        return sized
    new, applied = sized
    mode, note = _mode(current, new, g)
    if note is not None:
        applied.append(note)
    target = aim.target
    if g.max_variant_budget_minor is not None:
        target = min(target, g.max_variant_budget_minor)
    return PlannedAction(
        c.variant_id, c.ad_set_id, current, new, max(target, new), mode, aim.rule, tuple(applied)
    )


def _already_in_hand(
    c: Candidate,
    promotions: Sequence[PastAction],
    g: Guardrails,
    actions: Sequence[PlannedAction],
    cycle_hour: datetime,
) -> _Refusal | None:
    """Idempotence: acted on in this cycle hour already (or planned just now), or an earlier
    change still awaits approval."""
    same_kind = [a for a in promotions if (a.mode == "dry_run") == g.dry_run]
    if any(a.ad_set_id == c.ad_set_id for a in actions) or any(
        a.cycle_hour == cycle_hour for a in same_kind
    ):
        return _Refusal(
            Hold.ALREADY_ACTED, f"already acted on in cycle hour {cycle_hour.isoformat()}"
        )
    if promotions and promotions[-1].mode == "pending_approval":
        return _Refusal(Hold.AWAITING_APPROVAL, "an earlier change awaits approval")
    return None


def _aim(
    current: int,
    mine: Sequence[PastAction],
    promotions: Sequence[PastAction],
    g: Guardrails,
    now: datetime,
) -> _Aim | _Refusal:
    """Where the budget is heading: the next step of a ramp in progress (once its wait is
    over), or current x multiplier once the cooldown since the last change is over."""
    last = promotions[-1] if promotions else None
    if (
        g.ramp_max_step is not None
        and last is not None
        and last.mode in ("applied", "dry_run")
        and last.target_minor is not None
        and last.target_minor > current
    ):
        wait = last.at + timedelta(hours=g.ramp_min_hours)
        if now < wait:
            return _Refusal(Hold.RAMP_WAIT, f"next ramp step not before {wait.isoformat()}")
        return _Aim(last.target_minor, "ramp_step")
    if mine:
        ready = max(a.at for a in mine) + timedelta(hours=g.cooldown_hours)
        if now < ready:
            return _Refusal(Hold.COOLDOWN, f"cooling down until {ready.isoformat()}")
    return _Aim(max(math.floor(current * g.multiplier), current + 1), "promote")


def _size(
    current: int, aim: _Aim, g: Guardrails, total: int, c: Candidate
) -> tuple[int, list[str]] | _Refusal:
    """The new budget: the target cut to one ramp step, then to the candidate's cap and the
    variant's and the account's ceilings; with the guardrails that shaped it."""
    applied = [f"multiplier x{g.multiplier:g}" if aim.rule == "promote" else "ramp continues"]
    new = aim.target
    if g.ramp_max_step is not None:
        step = max(math.floor(current * (1.0 + g.ramp_max_step)), current + 1)
        if step < new:
            new = step
            applied.append(f"ramp: at most +{g.ramp_max_step:.0%} per change")
    if c.cap_minor is not None and new > c.cap_minor:
        new = c.cap_minor
        applied.append(f"{c.cap_reason.value}: at most {c.cap_minor} ({c.cap_detail})")
        if new <= current:
            return _Refusal(c.cap_reason, c.cap_detail)
    if g.max_variant_budget_minor is not None and new > g.max_variant_budget_minor:
        new = g.max_variant_budget_minor
        applied.append(f"capped at the variant ceiling {g.max_variant_budget_minor}")
        if new <= current:
            return _Refusal(Hold.VARIANT_CEILING, "the variant is at its daily ceiling")
    if g.max_account_budget_minor is not None:
        room = g.max_account_budget_minor - total
        if new - current > room:
            new = current + room
            applied.append(f"capped at the account ceiling {g.max_account_budget_minor}")
            if new <= current:
                return _Refusal(Hold.ACCOUNT_CEILING, "the account is at its daily ceiling")
    return new, applied


def _mode(current: int, new: int, g: Guardrails) -> tuple[Mode, str | None]:
    """Dry run, approval for an increase above the threshold, or apply."""
    if g.dry_run:
        return Mode.DRY_RUN, "dry run: recorded, not applied"
    if g.approval_threshold_minor is not None and new - current > g.approval_threshold_minor:
        return (
            Mode.PENDING_APPROVAL,
            f"increase above {g.approval_threshold_minor}: awaits approval",
        )
    return Mode.APPLY, None
