"""What the cycle's steps share: the run's options, its dependencies, its context, its report,
and the step type each loop's service declares (``services/<loop>/step.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import Clock
from adflywheel.core.errors import BusyError, ConflictError, InvalidInputError
from adflywheel.core.loops import INFO, Loop
from adflywheel.core.settings import Settings
from adflywheel.cycle.outcomes import CampaignLedger
from adflywheel.platforms.base import AdPlatform

if TYPE_CHECKING:  # the services implement steps on this context; it only names their policy
    from adflywheel.services.bandit.budgets import BudgetPolicy


class CycleBusyError(BusyError):
    """Another run of this account is in progress."""


class CycleLeaseLostError(ConflictError):
    """This run's claim was taken over by another run (the lease lapsed): it must stop."""


class CycleInputError(InvalidInputError):
    """The cycle was asked for something it cannot do (an hour in the future)."""


@dataclass(frozen=True, slots=True)
class CycleOptions:
    # None: fetch the hours not yet final (today and yesterday in the account's time zone);
    # a number re-pulls just that many hours (the harness, where nothing is restated later).
    actuals_lookback_hours: int | None = None
    # How much hourly history budget policies see (discounting makes older hours negligible).
    evidence_window_hours: int = 24 * 28
    dry_run: bool = False
    force: bool = False
    # Run as of this hour instead of the clock's (a replay, or an external clock driving it).
    as_of: datetime | None = None
    # Narrow the account's loops for this run (the harness's loop sets); None: the account's.
    loops: frozenset[Loop] | None = None
    lease_seconds: float = 1800.0


@dataclass(slots=True)
class CycleReport:
    account_id: int
    hour_start: datetime
    status: str = "running"
    skipped: bool = False
    recovered: bool = False
    dry_run: bool = False
    loops_active: list[int] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # Every active campaign's outcome this hour (``cycle/outcomes.py``).
    campaigns: list[dict[str, Any]] = field(default_factory=list)

    def headline(self) -> dict[str, Any]:
        """The figures the contract names, gathered from the steps that produce them."""
        s = self.steps
        validation = s.get("validate_predictions", {})
        return {
            "accuracy": validation.get("accuracy"),
            "calibration": validation.get("calibration"),
            "normalized_entropy": validation.get("normalized_entropy"),
            "retrained": bool(validation.get("retrained", False)),
            "retrain_reason": validation.get("retrain_reason"),
            "dna_extracted": int(s.get("creative_dna", {}).get("extracted", 0)),
            "winners_indexed": int(s.get("winner_memory", {}).get("indexed", 0)),
            # Promotions written to the platform (a dry run or a recommendation is not one).
            "winners_promoted": sum(
                1
                for p in s.get("auto_promote", {}).get("promoted", []) or []
                if p.get("mode") == "applied"
            ),
            "budgets_changed": int(s.get("reallocate_budgets", {}).get("budgets_changed", 0)),
            # Clear losers paused on the platform inside shared budgets (issue #16).
            "ads_paused": int(
                (s.get("reallocate_budgets", {}).get("losers", {}).get("pauses") or {}).get(
                    "applied", 0
                )
            ),
            "budget_changes": _counts(s.get("reallocate_budgets", {}).get("budget_changes")),
            "promotions": _counts(s.get("auto_promote", {}).get("promotions")),
            "total_budget_allocated": int(
                s.get("reallocate_budgets", {}).get("total_budget_minor", 0)
            ),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "hour_start": self.hour_start.isoformat(),
            "status": self.status,
            "skipped": self.skipped,
            "recovered": self.recovered,
            "dry_run": self.dry_run,
            "power_level": len(self.loops_active),
            "loops_active": self.loops_active,
            **self.headline(),
            "campaigns": self.campaigns,
            "loops": self.steps,
            "errors": self.errors,
        }


COUNT_KEYS = ("decided", "applied", "dry_run", "awaiting_approval", "recommended")


def _counts(step_counts: dict[str, int] | None) -> dict[str, int]:
    """A step's counts of decided changes, zeros when the step did not run."""
    return {k: int((step_counts or {}).get(k, 0)) for k in COUNT_KEYS}


@dataclass(frozen=True, slots=True)
class CycleDeps:
    factory: sessionmaker[Session]
    clock: Clock
    # None when the account has no connected platform: nothing is fetched, and budget and
    # promotion decisions are recorded as dry runs (they cannot be applied anywhere).
    platform: AdPlatform | None
    # An explicit budget policy (the harness's baselines); None: Thompson when loop 2 is on.
    policy: BudgetPolicy | None = None
    redis: redis.Redis | None = None
    settings: Settings = field(default_factory=Settings)
    # Called with (kind, message, details) when a step fails; the alert sink in production.
    alert: Callable[[str, str, dict[str, Any]], None] | None = None


@dataclass(frozen=True, slots=True)
class CycleContext:
    """What every step gets: who, which hour, the clock pinned to the run's "now"."""

    account_id: int
    hour: datetime
    now: datetime
    clock: Clock
    deps: CycleDeps
    options: CycleOptions
    loops: frozenset[Loop]
    earlier: dict[str, dict[str, Any]]
    # Where the steps that act on campaigns note each one's outcome.
    campaigns: CampaignLedger = field(default_factory=CampaignLedger)


StepRun = Callable[[CycleContext], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class CycleStep:
    """One step of the cycle: its report name, its loop (None: the foundation, always on), what
    it runs, and when it runs (default: when its loop is on for the account)."""

    name: str
    loop: Loop | None
    run: StepRun
    needs: Callable[[CycleContext], bool] | None = None

    @classmethod
    def of(
        cls, loop: Loop, run: StepRun, needs: Callable[[CycleContext], bool] | None = None
    ) -> CycleStep:
        """A loop's step, named as the registry names it in reports."""
        return cls(INFO[loop].step_name, loop, run, needs)

    def wanted(self, ctx: CycleContext) -> bool:
        if self.needs is not None:
            return self.needs(ctx)
        return self.loop is None or self.loop in ctx.loops
