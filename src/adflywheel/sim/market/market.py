"""The simulated ad market (synthetic data): the seeded stand-in for Meta.

``SimulatedMarket`` owns the world, the hour-by-hour state and the delivery history. The service
talks to one account at a time through ``market.platform(account_id)`` (the ``AdPlatform``
interface, no truth); the harness drives the clock with ``step()``, runs baseline policies at
market level with ``set_budgets_bulk`` and ``last_hour_totals``, and reads ground truth only
through ``market.evaluation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from adflywheel.core.domain import Objective
from adflywheel.platforms.base import PlatformError, PlatformRefusedError, check_budget
from adflywheel.sim.market.config import MarketConfig
from adflywheel.sim.market.delivery import (
    EXITED,
    LEARNING,
    HourRecord,
    MarketState,
    advance_drift,
    deliver,
    expected_value,
)
from adflywheel.sim.market.genes import IntArray
from adflywheel.sim.market.learning import (
    after_delivery,
    campaign_edit,
    reset,
    significant,
    status_changed,
    status_live,
)
from adflywheel.sim.market.platform import SimulatedPlatform
from adflywheel.sim.market.records import AdPause, BudgetWrite, CampaignBudgetWrite, StatusWrite
from adflywheel.sim.market.truth import MarketTruth
from adflywheel.sim.market.world import World, build_world

HOUR = timedelta(hours=1)
__all__ = [
    "AccountStructure",
    "AdPause",
    "BudgetWrite",
    "CampaignBudgetWrite",
    "CampaignStructure",
    "HourTotals",
    "SimulatedMarket",
    "StatusWrite",
]


@dataclass(frozen=True, slots=True)
class HourTotals:
    """Delivery summed over a set of variants for one hour."""

    hour_start: datetime
    impressions: int
    clicks: int
    link_clicks: int
    conversions: int
    video_views: int
    spend_minor: int
    revenue_minor: int


@dataclass(frozen=True, slots=True)
class CampaignStructure:
    """One campaign's ids; ``variant_indices`` index the market's flat ad arrays (``ad_ids``),
    ``ad_set_indices`` its flat ad set arrays (``ad_set_ids``, ``budgets()``); ``ad_set_of``
    gives each of its ads' ad set id. ``structure`` is its budget structure (config.py)."""

    campaign_id: str
    campaign_index: int
    ad_set_ids: tuple[str, ...]
    ad_ids: tuple[str, ...]
    variant_indices: range
    structure: str = "ad_set_budgets"
    ad_set_indices: range = range(0)
    ad_set_of: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountStructure:
    account_id: str
    campaigns: tuple[CampaignStructure, ...]


class SimulatedMarket:
    """A seeded market of accounts, campaigns and variants with hidden genes (synthetic data)."""

    def __init__(self, config: MarketConfig | None = None) -> None:
        self.config = config or MarketConfig()
        self._world: World = build_world(self.config)
        self._state = MarketState.initial(self._world)
        self._history: dict[int, HourRecord] = {}
        self._account_index = {a: i for i, a in enumerate(self._world.account_ids)}
        self._ad_set_index: dict[str, int] | None = None
        self._platforms: dict[int, SimulatedPlatform] = {}
        # Every budget and status write, for evaluation (``evaluation.budget_writes()``): the
        # log draws no random number and changes no state, so delivery is the same without it.
        self._budget_writes: list[BudgetWrite] = []
        self._status_writes: list[StatusWrite] = []
        self._campaign_budget_writes: list[CampaignBudgetWrite] = []
        self._ad_pauses: list[AdPause] = []
        self._applied_pauses: set[tuple[int, bool]] = set()
        # Each hour's true value per ad (``config.record_truth``), kept like the history.
        self._truth_history: dict[int, np.ndarray] = {}
        self._start_campaign_totals = self.campaign_budget_totals()
        # Ad sets hold several ads: sums over an ad set's ads (None: one ad per ad set).
        self._ad_set_start = None if self._world.one_ad_per_ad_set else self._world.ad_set_start
        self._evaluation = MarketTruth(self)

    # -- the clock ---------------------------------------------------------------------------

    @property
    def hour_index(self) -> int:
        """Hours delivered so far; the next ``step`` delivers hour ``hour_index``."""
        return self._state.hour_index

    @property
    def current_hour(self) -> datetime:
        """Start (UTC) of the hour the next ``step`` delivers."""
        return self.hour_start(self._state.hour_index)

    def hour_start(self, hour_index: int) -> datetime:
        return self.config.start + hour_index * HOUR

    def step(self) -> HourTotals:
        """Deliver one hour at the current budgets and statuses, then advance the clock."""
        self._apply_due_collapses()
        self._apply_advertiser_pauses()
        self._apply_launches()
        h = self._state.hour_index
        if self.config.record_truth:
            self._truth_history[h] = self._true_values()
        record = deliver(self._world, self._state)
        after_delivery(self.config.learning_phase, self._state, record, self._ad_set_start)
        self._history[h] = record
        retention = self.config.retention_hours
        if retention is not None:
            self._history.pop(h - retention, None)
            self._truth_history.pop(h - retention, None)
        advance_drift(self._world, self._state)
        self._state.hour_index = h + 1
        return self.last_hour_totals()

    def run(self, hours: int) -> None:
        """``hours`` steps with budgets unchanged (warm-up, uniform baseline)."""
        for _ in range(hours):
            self.step()

    def _apply_due_collapses(self) -> None:
        """Resolve scheduled collapses whose hour has come (idempotent; also called by the
        evaluation so truth read at hour H already reflects a collapse at H)."""
        state, world = self._state, self._world
        for i, collapse in enumerate(self.config.collapses):
            if i in state.applied_collapses or collapse.at_hour > state.hour_index:
                continue
            if collapse.ad_index is not None:
                targets = np.array([collapse.ad_index])
            else:
                # The creative that is truly best, whatever its ad set's learning state.
                value = expected_value(world, state, Objective.CLICKS_PER_DOLLAR, learning=False)
                v = self.config.variants_per_campaign
                best = value.reshape(-1, v).argmax(axis=1) + np.arange(self.config.n_campaigns) * v
                c = collapse.campaign_index
                targets = best if c is None else best[c : c + 1]
            state.multiplier[targets] *= collapse.factor
            for t in targets.tolist():
                state.collapsed.setdefault(int(t), state.hour_index)
            state.applied_collapses.add(i)

    def _apply_advertiser_pauses(self) -> None:
        """Scheduled advertiser pauses (and resumes) whose hour has come, as Ads Manager would:
        the ad set's (or the ad's) status only; budgets stay where they are."""
        h, done = self._state.hour_index, self._applied_pauses
        for i, pause in enumerate(self.config.advertiser_pauses):
            for active, at in ((False, pause.at_hour), (True, pause.until_hour)):
                if at is None or at > h or (i, active) in done:
                    continue
                done.add((i, active))
                if pause.ad_index is not None:
                    self._set_status(pause.ad_index, ad=active, source="advertiser")
                elif pause.ad_set_index is not None:
                    self._set_status(pause.ad_set_index, ad_set=active, source="advertiser")

    def _apply_launches(self) -> None:
        """The advertiser's launches whose hour has come (``MarketConfig.launches``): the new ad
        set appears (in review for ``review_hours``: listed, active, with its budget, delivering
        nothing), then goes live, learning from scratch, with the budget it has then (the
        service may have set its first one); the ad it replaces (if any) is turned off and its
        ad set's budget taken off as it goes live. Writes logged with source "launch"."""
        state, h = self._state, self._state.hour_index
        for launch in self.config.launches:
            s = launch.ad_set_index
            if state.hidden[s] and launch.listed_hour <= h:
                state.hidden[s] = False
                self._budget_writes.append(BudgetWrite(h, s, 0, launch.budget_minor, "launch"))
                state.budgets[s] = launch.budget_minor
                state.in_review[s] = launch.at_hour > h
            if launch.at_hour != h or state.ad_set_active[s]:
                continue
            state.in_review[s] = False
            if launch.retire_ad_index is not None:
                r = launch.retire_ad_index
                self._set_status(r, ad=False, source="advertiser")
                retired_set = int(self._world.ad_set_of[r])
                old = int(state.budgets[retired_set])
                self._budget_writes.append(BudgetWrite(h, retired_set, old, 0, "launch"))
                state.budgets[retired_set] = 0  # off: no learning reset, it delivers no more
            was_live = status_live(state, self._ad_set_start)
            state.ad_set_active[s] = True
            self._status_writes.append(StatusWrite(h, s, "ad_set", True, "launch"))
            phase = self.config.learning_phase
            if phase is not None:  # a new ad set: learning from its launch (not an edit)
                state.learning[s] = LEARNING if phase.start_in_learning else EXITED
                state.learning_events[s] = 0
                state.learning_hours[s] = 0
                state.dark_since[s] = h  # never dark before: no long-pause reset either
            status_changed(phase, state, was_live, self._ad_set_start)

    def _true_values(self) -> np.ndarray:
        """True expected objective per dollar of every ad now (creative's own, no penalty)."""
        return expected_value(self._world, self._state, self.config.objective, learning=False)

    # -- accounts and the platform interface --------------------------------------------------

    def accounts(self) -> list[str]:
        return list(self._world.account_ids)

    def platform(self, account_id: str) -> SimulatedPlatform:
        """The ``AdPlatform`` of one account: what the service sees, and nothing more."""
        a = self._account_index.get(account_id)
        if a is None:
            raise PlatformError(f"unknown account {account_id!r}")
        if a not in self._platforms:
            self._platforms[a] = SimulatedPlatform(self, a)
        return self._platforms[a]

    def history(self, hour_index: int) -> HourRecord | None:
        """The delivery of ``hour_index`` if still retained (all variants, whatever the delay)."""
        return self._history.get(hour_index)

    # -- market-level levers for the harness ---------------------------------------------------

    @property
    def ad_ids(self) -> tuple[str, ...]:
        """Every ad id, in the order of the market's flat arrays."""
        return self._world.ad_ids

    @property
    def ad_set_ids(self) -> tuple[str, ...]:
        return self._world.ad_set_ids

    @property
    def campaign_ids(self) -> tuple[str, ...]:
        return self._world.campaign_ids

    @property
    def campaign_of(self) -> IntArray:
        """Global campaign index of every variant (a copy)."""
        return self._world.campaign_of.copy()

    @property
    def ad_set_of(self) -> IntArray:
        """Global ad set index of every ad (a copy; ``arange`` with one ad per ad set)."""
        return self._world.ad_set_of.copy()

    @property
    def ad_set_campaign(self) -> IntArray:
        """Global campaign index of every ad set (a copy)."""
        return self._world.ad_set_campaign.copy()

    def structure_of(self, campaign_index: int) -> str:
        """A campaign's budget structure: ``ad_set_budgets``, ``ad_set_budgets_multi_ad`` or
        ``campaign_budget`` (CBO)."""
        return self.config.structure_of(campaign_index)

    def campaign_structure(self) -> list[AccountStructure]:
        w, v = self._world, self.config.variants_per_campaign
        bounds = w.campaign_ad_set_start.tolist()
        out: list[AccountStructure] = []
        for a, account_id in enumerate(w.account_ids):
            campaigns = []
            for c in range(
                a * self.config.campaigns_per_account, (a + 1) * self.config.campaigns_per_account
            ):
                idx = range(c * v, (c + 1) * v)
                sets = range(bounds[c], bounds[c + 1])
                campaigns.append(
                    CampaignStructure(
                        campaign_id=w.campaign_ids[c],
                        campaign_index=c,
                        ad_set_ids=w.ad_set_ids[sets.start : sets.stop],
                        ad_ids=w.ad_ids[idx.start : idx.stop],
                        variant_indices=idx,
                        structure=self.config.structure_of(c),
                        ad_set_indices=sets,
                        ad_set_of=tuple(w.ad_set_ids[int(s)] for s in w.ad_set_of[idx]),
                    )
                )
            out.append(AccountStructure(account_id=account_id, campaigns=tuple(campaigns)))
        return out

    def budgets(self) -> IntArray:
        """Current daily budget (minor) of every ad set, in flat ad set order (a copy); 0 for
        the ad sets of a campaign budget (CBO), which have none."""
        return self._state.budgets.copy()

    def campaign_budgets(self) -> IntArray:
        """Current campaign budget (minor) of every campaign (a copy): CBO campaigns' budgets,
        0 for a campaign whose ad sets have the budgets."""
        return self._state.campaign_budgets.copy()

    def campaign_budget_totals(self) -> IntArray:
        """Each campaign's daily budget: the sum of its ad set budgets, or its campaign budget."""
        w = self._world
        out: IntArray = (
            np.add.reduceat(self._state.budgets, w.campaign_ad_set_start[:-1])
            + self._state.campaign_budgets
        )
        return out

    def set_budgets_bulk(self, budgets: Mapping[str, int] | IntArray) -> None:
        """Set many ad set budgets at once: a mapping ad set id -> minor, or a full flat array
        (one entry per ad set; 0 for a CBO campaign's ad sets, which have no budget). Each ad
        set whose budget changes significantly goes back into learning."""
        if isinstance(budgets, Mapping):
            index = self._ad_set_lookup()
            for ad_set_id, value in budgets.items():
                i = index.get(ad_set_id)
                if i is None:
                    raise PlatformError(f"unknown ad set {ad_set_id!r}")
                self._set_budget(i, check_budget(value), source="bulk")
            return
        arr = np.asarray(budgets)
        if arr.shape != self._state.budgets.shape:
            raise ValueError(f"expected {self._state.budgets.shape[0]} budgets, got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError("budgets must be integers (minor units)")
        if (arr < 0).any():
            raise ValueError("budgets must be >= 0")
        cbo = self._world.campaign_budgeted[self._world.ad_set_campaign]
        if (arr[cbo] != 0).any():
            raise PlatformRefusedError("the ad sets of a campaign budget (CBO) have no budget")
        phase = self.config.learning_phase
        if phase is not None:
            edited = significant(phase, self._state.budgets, arr)
            if edited.any():
                reset(self._state, edited)
        h = self._state.hour_index
        for i in np.flatnonzero(arr != self._state.budgets).tolist():
            old, new = int(self._state.budgets[i]), int(arr[i])
            self._budget_writes.append(BudgetWrite(h, i, old, new, "bulk"))
        self._state.budgets[:] = arr

    def _is_campaign_budget_ad_set(self, index: int) -> bool:
        w = self._world
        return bool(w.campaign_budgeted[int(w.ad_set_campaign[index])])

    def _set_budget(self, index: int, value: int, source: str = "platform") -> None:
        """One ad set's daily budget (checked); a significant change resets its learning. The
        ad set of a campaign budget (CBO) has none: refused, as Meta refuses it."""
        if self._is_campaign_budget_ad_set(index):
            raise PlatformRefusedError(
                f"ad set {self._world.ad_set_ids[index]!r} is in a campaign with a campaign "
                "budget (CBO): set the campaign's budget instead"
            )
        state, phase = self._state, self.config.learning_phase
        old_minor = int(state.budgets[index])
        if source == "platform" or value != old_minor:
            self._budget_writes.append(
                BudgetWrite(state.hour_index, index, old_minor, int(value), source)
            )
        if phase is not None:
            old = state.budgets[index : index + 1]
            if significant(phase, old, np.array([value], dtype=np.int64))[0]:
                reset(state, index)
        state.budgets[index] = value

    def _set_campaign_budget(self, campaign: int, value: int, source: str = "platform") -> None:
        """A CBO campaign's daily budget (checked); a significant change puts all its ad sets
        back into learning. A campaign whose ad sets have the budgets: refused."""
        w, state = self._world, self._state
        if not w.campaign_budgeted[campaign]:
            raise PlatformRefusedError(
                f"campaign {w.campaign_ids[campaign]!r} has no campaign budget: its ad sets "
                "have the budgets"
            )
        old_minor = int(state.campaign_budgets[campaign])
        self._campaign_budget_writes.append(
            CampaignBudgetWrite(state.hour_index, campaign, old_minor, int(value), source)
        )
        bounds = w.campaign_ad_set_start
        sets = slice(int(bounds[campaign]), int(bounds[campaign + 1]))
        campaign_edit(self.config.learning_phase, state, campaign, value, sets)
        state.campaign_budgets[campaign] = value

    def set_campaign_budget(self, campaign_id: str, daily_budget_minor: int) -> None:
        """Set a CBO campaign's daily budget (not part of ``AdPlatform``; for experiments)."""
        try:
            c = self._world.campaign_ids.index(campaign_id)
        except ValueError:
            raise PlatformError(f"unknown campaign {campaign_id!r}") from None
        self._set_campaign_budget(c, check_budget(daily_budget_minor), source="bulk")

    def _set_status(
        self,
        index: int,
        *,
        ad_set: bool | None = None,
        ad: bool | None = None,
        source: str | None = None,
    ) -> None:
        """Pause or resume an ad set (``index`` an ad set index) or an ad (an ad index; give
        one of the two); back after a long pause means back in learning."""
        if ad_set is not None and ad is not None:
            raise ValueError("give ad_set or ad, not both")
        state = self._state
        was_live = status_live(state, self._ad_set_start)
        for kind, active in (("ad_set", ad_set), ("ad", ad)):
            if active is not None:
                self._status_writes.append(
                    StatusWrite(state.hour_index, index, kind, active, source)
                )
        if ad_set is not None:
            state.ad_set_active[index] = ad_set
        if ad is not None:
            if not ad and state.ad_active[index] and source is None:
                self._judge_pause(index)  # the service's pauses, judged
            state.ad_active[index] = ad
        status_changed(self.config.learning_phase, state, was_live, self._ad_set_start)

    def _judge_pause(self, ad: int) -> None:
        """Record a pause of an active ad with the truth of this hour (evaluation only)."""
        self._apply_due_collapses()
        w, state = self._world, self._state
        values = self._true_values()
        c, s = int(w.campaign_of[ad]), int(w.ad_set_of[ad])
        same = w.campaign_of == c if w.campaign_budgeted[c] else w.ad_set_of == s
        siblings = same & state.ad_active & state.ad_set_active[w.ad_set_of]
        siblings[ad] = False
        best: int | None = None
        if siblings.any():
            best = int(np.flatnonzero(siblings)[np.argmax(values[siblings])])
        self._ad_pauses.append(
            AdPause(
                hour=state.hour_index,
                ad_index=ad,
                ad_set_index=s,
                value=float(values[ad]),
                best_sibling_index=best,
                best_sibling_value=None if best is None else float(values[best]),
            )
        )

    def set_ad_set_status(self, ad_set_id: str, active: bool) -> None:
        """Pause or resume an ad set (not part of ``AdPlatform``; for experiments)."""
        i = self._ad_set_lookup().get(ad_set_id)
        if i is None:
            raise PlatformError(f"unknown ad set {ad_set_id!r}")
        self._set_status(i, ad_set=active)

    def _ad_set_lookup(self) -> dict[str, int]:
        if self._ad_set_index is None:
            self._ad_set_index = {s: i for i, s in enumerate(self._world.ad_set_ids)}
        return self._ad_set_index

    def last_hour_totals(self, account_id: str | None = None) -> HourTotals:
        """Totals of the last delivered hour, over the market or one account."""
        h = self._state.hour_index - 1
        record = self._history.get(h)
        if record is None:
            raise LookupError("no hour has been delivered yet")
        sl = slice(None)
        if account_id is not None:
            a = self._account_index.get(account_id)
            if a is None:
                raise PlatformError(f"unknown account {account_id!r}")
            sl = self._world.account_slice(a)
        return HourTotals(
            hour_start=self.hour_start(h),
            impressions=int(record.impressions[sl].sum(dtype=np.int64)),
            clicks=int(record.clicks[sl].sum(dtype=np.int64)),
            link_clicks=int(record.link_clicks[sl].sum(dtype=np.int64)),
            conversions=int(record.conversions[sl].sum(dtype=np.int64)),
            video_views=int(record.video_views[sl].sum(dtype=np.int64)),
            spend_minor=int(record.spend_minor[sl].sum()),
            revenue_minor=int(record.revenue_minor[sl].sum()),
        )

    # -- ground truth ---------------------------------------------------------------------------

    @property
    def evaluation(self) -> MarketTruth:
        """Ground truth, for evaluation code only (oracle, reports, tests): never for a loop."""
        return self._evaluation
