"""One account's platform frozen at one hour: picklable, so a cycle can run in another process.

A worker process or a Dask worker cannot share a live platform with the process that owns it
(the simulated market is stepped there; a client holds connections), and every worker must see
the accounts at the same hour. So the owner captures each account's live platform once,
centrally: its catalogue and the insights of exactly the window the cycle will ask for. The
worker runs the cycle against the snapshot; budget and status writes are recorded (and reflected
in what the snapshot lists) and travel back with the result, where ``apply_writes`` replays them
on the live platforms in order.

The live platform's minimum daily budget (``MinimumBudget``), when it has one, is captured too,
so the worker's cycle floors budgets as the owner's would; ``None`` when it cannot say.

A request outside the captured window is an error, never a silently shorter answer. The
snapshot checks a budget as ``check_budget`` does; a live platform that refuses more (Meta
refuses a zero budget; a read-only platform refuses every write) refuses at the replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from adflywheel.core.clock import ensure_utc
from adflywheel.core.domain import HourlyActual, Status
from adflywheel.platforms.base import (
    AdPlatform,
    MinimumBudget,
    PlatformAccount,
    PlatformAd,
    PlatformAdSet,
    PlatformCampaign,
    PlatformError,
    check_budget,
)


@dataclass(frozen=True, slots=True)
class PlatformWrite:
    """A write the cycle made: a budget (``value`` in minor units) or an ad status."""

    account_external_id: str
    kind: str  # "budget" (ad set) or "status" (ad)
    object_id: str
    value: int | str


@dataclass(slots=True)
class SnapshotPlatform:
    """An ``AdPlatform`` over a captured account; ``writes`` lists what the cycle changed."""

    account_info: PlatformAccount
    campaigns: list[PlatformCampaign]
    ad_sets: list[PlatformAdSet]
    ads: list[PlatformAd]
    insights: list[HourlyActual]
    window: tuple[datetime, datetime]
    name: str  # the live platform's: the actuals' source stays what it would have been
    writes: list[PlatformWrite] = field(default_factory=list)
    min_daily_budget: int | None = None  # the live platform's ``min_daily_budget_minor()``

    @classmethod
    def capture(cls, live: AdPlatform, start: datetime, end: datetime) -> SnapshotPlatform:
        """The account as its live platform shows it now, with insights for hours in
        ``[start, end)``."""
        return cls(
            account_info=live.account(),
            campaigns=live.list_campaigns(),
            ad_sets=live.list_ad_sets(),
            ads=live.list_ads(),
            insights=live.fetch_insights(start, end),
            window=(ensure_utc(start), ensure_utc(end)),
            name=live.name,
            min_daily_budget=live.min_daily_budget_minor()
            if isinstance(live, MinimumBudget)
            else None,
        )

    def account(self) -> PlatformAccount:
        return self.account_info

    def min_daily_budget_minor(self) -> int | None:
        """What the live platform answered at capture (``None``: it could not say)."""
        return self.min_daily_budget

    def list_campaigns(self) -> list[PlatformCampaign]:
        return list(self.campaigns)

    def list_ad_sets(self) -> list[PlatformAdSet]:
        return list(self.ad_sets)

    def list_ads(self) -> list[PlatformAd]:
        return list(self.ads)

    def fetch_insights(self, start: datetime, end: datetime) -> list[HourlyActual]:
        lo, hi = ensure_utc(start), ensure_utc(end)
        if lo < self.window[0] or hi > self.window[1]:
            raise PlatformError(
                f"snapshot holds insights for [{self.window[0].isoformat()}, "
                f"{self.window[1].isoformat()}); asked for [{lo.isoformat()}, {hi.isoformat()})"
            )
        return [r for r in self.insights if lo <= r.hour_start < hi]

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        value = check_budget(daily_budget_minor)
        for i, ad_set in enumerate(self.ad_sets):
            if ad_set.external_id == ad_set_id:
                self.ad_sets[i] = replace(ad_set, daily_budget_minor=value)
                self.writes.append(
                    PlatformWrite(self.account_info.external_id, "budget", ad_set_id, value)
                )
                return
        raise PlatformError(f"unknown ad set {ad_set_id!r} in this account")

    def set_ad_status(self, ad_id: str, status: Status) -> None:
        status = Status(status)
        for i, ad in enumerate(self.ads):
            if ad.external_id == ad_id:
                self.ads[i] = replace(ad, status=status)
                self.writes.append(
                    PlatformWrite(self.account_info.external_id, "status", ad_id, status.value)
                )
                return
        raise PlatformError(f"unknown ad {ad_id!r} in this account")


def capture_window(as_of: datetime, lookback_hours: int | None) -> tuple[datetime, datetime]:
    """The insights window a cycle at ``as_of`` asks for (its ``actuals_lookback_hours``)."""
    if lookback_hours is None:
        raise ValueError(
            "a snapshot needs the cycle's window: set CycleOptions.actuals_lookback_hours "
            "(None lets the fetch job choose the account's days, which a snapshot cannot know)"
        )
    end = ensure_utc(as_of)
    return end - timedelta(hours=lookback_hours), end


def apply_writes(platform_of: Callable[[str], AdPlatform], writes: list[PlatformWrite]) -> int:
    """Replay the writes of worker cycles, in order, on the live platform of each write's
    account (``platform_of`` maps an account's external id to it); returns how many."""
    for write in writes:
        platform = platform_of(write.account_external_id)
        if write.kind == "budget":
            assert isinstance(write.value, int)
            platform.set_ad_set_budget(write.object_id, write.value)
        elif write.kind == "status":
            platform.set_ad_status(write.object_id, Status(str(write.value)))
        else:
            raise ValueError(f"unknown write kind {write.kind!r}")
    return len(writes)
