"""Cold-start measures of a run with launches (synthetic data): how new ads fare early on.

Recorded after every delivered hour from the market (its delivery and, for the truth, its
evaluation-only view), so the policy under test and each reference are measured the same way:

- the clicks and spend of ads in their first ``COLD_START_HOURS`` hours after their launch;
- for each launched ad that is truly best in its campaign (clicks per dollar, the creative's own
  true value, averaged over its first 72 hours, against every other ad of its campaign live in
  those hours), the hours from its launch until it first holds the strictly largest daily
  budget of its campaign's live ads (None when it never does within the run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median
from typing import Any

import numpy as np

from adflywheel.core.domain import Objective, per_dollar
from adflywheel.sim.market import SimulatedMarket

COLD_START_HOURS = 72


@dataclass(slots=True)
class ColdStartTrace:
    """Per hour and ad: delivery, true value, liveness and budget (runs with launches only)."""

    launch_hour: dict[int, int]  # launched ad index -> its launch hour
    campaign_of: np.ndarray
    clicks: list[np.ndarray] = field(default_factory=list)
    spend_minor: list[np.ndarray] = field(default_factory=list)
    value: list[np.ndarray] = field(default_factory=list)
    live: list[np.ndarray] = field(default_factory=list)
    budget: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def for_market(cls, market: SimulatedMarket) -> ColdStartTrace | None:
        """A trace for a market with launches; None without (nothing is recorded then)."""
        launches = market.config.launches
        if not launches:
            return None
        ad_set_of = market.ad_set_of
        hours = {
            int(ad): x.at_hour
            for x in launches
            for ad in np.flatnonzero(ad_set_of == x.ad_set_index).tolist()
        }
        return cls(launch_hour=hours, campaign_of=market.campaign_of)

    def observe(self, market: SimulatedMarket) -> None:
        """After a step: what the hour just delivered, and the budgets and statuses it ran at
        (the truth is read at the hour's end, the ads' fatigue after it)."""
        record = market.history(market.hour_index - 1)
        if record is None:
            raise LookupError("no hour has been delivered yet")
        truth = market.evaluation
        self.clicks.append(record.clicks.astype(np.int64))
        self.spend_minor.append(record.spend_minor.astype(np.int64))
        self.value.append(truth.expected_value_array(Objective.CLICKS_PER_DOLLAR))
        self.live.append(truth.live_ads_array())
        self.budget.append(market.budgets()[market.ad_set_of])

    def totals(self) -> tuple[int, int]:
        """Clicks and spend (minor) of ads in their first ``COLD_START_HOURS`` hours."""
        clicks = spend = 0
        for ad, start in self.launch_hour.items():
            for h in range(start, min(start + COLD_START_HOURS, len(self.clicks))):
                clicks += int(self.clicks[h][ad])
                spend += int(self.spend_minor[h][ad])
        return clicks, spend

    def new_best(self) -> list[int]:
        """The launched ads that are truly best in their campaign over their first 72 hours
        (ads launched after the run's last hour are not judged)."""
        hours = len(self.value)
        out = []
        for ad, start in sorted(self.launch_hour.items()):
            window = range(start, min(start + COLD_START_HOURS, hours))
            if not window:
                continue
            value = np.array([self.value[h] for h in window])
            live = np.array([self.live[h] for h in window])
            peers = np.flatnonzero(self.campaign_of == self.campaign_of[ad])
            mine = value[:, ad].mean()
            rivals = [value[live[:, j], j].mean() for j in peers if j != ad and live[:, j].any()]
            if not rivals or mine >= max(rivals):
                out.append(ad)
        return out

    def hours_to_lead(self) -> list[int | None]:
        """For each truly best new ad (``new_best``): hours from its launch until its budget is
        first the strictly largest of its campaign's live ads (None: never, within the run)."""
        out: list[int | None] = []
        for ad in self.new_best():
            peers = np.flatnonzero(self.campaign_of == self.campaign_of[ad])
            others = peers[peers != ad]
            lead: int | None = None
            for h in range(self.launch_hour[ad], len(self.budget)):
                live, budget = self.live[h], self.budget[h]
                rivals = budget[others][live[others]]
                if live[ad] and (rivals.size == 0 or budget[ad] > rivals.max()):
                    lead = h - self.launch_hour[ad]
                    break
            out.append(lead)
        return out

    def summary(self, prefix: str = "") -> dict[str, Any]:
        clicks, spend = self.totals()
        lead = self.hours_to_lead()
        return {
            f"{prefix}cold_start_clicks": clicks,
            f"{prefix}cold_start_spend_minor": spend,
            f"{prefix}cold_start_clicks_per_dollar": round(per_dollar(clicks, spend), 6),
            f"{prefix}hours_to_lead_new_best": lead,
            f"{prefix}hours_to_lead_new_best_median": median_or_never(lead),
        }


def median_or_never(hours: list[int | None]) -> float | None:
    """The median, a None (never) counting as longer than any hour; None when the median is
    never (or there is nothing to take it of)."""
    if not hours:
        return None
    value = median(float("inf") if h is None else float(h) for h in hours)
    return None if value == float("inf") else value
