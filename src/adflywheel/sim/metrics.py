"""What the harness measures about learning, beyond clicks per dollar (synthetic data).

Read from the cycle's own reports and, for the truth, from the market's evaluation-only view:
prediction quality over time (loop 6's validation), retrains, promotions that were wrong
(the promoted ad was not truly better than its campaign's control), and how long a campaign's
truly best ad took to reach twice its starting budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median
from typing import Any

import numpy as np

from adflywheel.core.domain import Objective
from adflywheel.sim.market import SimulatedMarket


@dataclass(slots=True)
class LearningTrace:
    hours: int = 0
    accuracy: list[tuple[int, float]] = field(default_factory=list)
    # The headline accuracy a model that knew the true rates would expect on the same scored
    # impressions (loop 6's ``accuracy_noise_floor``: binomial noise alone): the ceiling.
    accuracy_ceiling: list[tuple[int, float]] = field(default_factory=list)
    calibration: list[tuple[int, float]] = field(default_factory=list)
    normalized_entropy: list[tuple[int, float]] = field(default_factory=list)
    retrains: int = 0
    promotions: int = 0
    false_promotions: int = 0
    # Per campaign: the hour its true best ad first had 2x its starting budget (None: never).
    doubled_at: dict[int, int | None] = field(default_factory=dict)
    # Per cycle step: how often it ran ok, failed or was off, and its total seconds.
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Campaign-hours by outcome ("acted", "recommended", "failed", "held: <code>").
    campaign_outcomes: dict[str, int] = field(default_factory=dict)
    _start_budgets: np.ndarray | None = None
    _best: np.ndarray | None = None

    def start(self, market: SimulatedMarket) -> None:
        self._start_budgets = market.budgets().copy()
        truth = market.evaluation
        self._best = truth.best_index_per_campaign(Objective.CLICKS_PER_DOLLAR, only_active=False)
        self.doubled_at = {c: None for c in range(len(self._best))}

    def observe(self, market: SimulatedMarket, reports: list[dict[str, Any]]) -> None:
        """After the hour's cycles: budgets now, and what each account's report says."""
        hour = self.hours
        self.hours += 1
        for report in reports:
            for campaign in report.get("campaigns", []):
                reason = campaign.get("reason") or {}
                key = campaign["outcome"] + (f": {reason['code']}" if reason else "")
                self.campaign_outcomes[key] = self.campaign_outcomes.get(key, 0) + 1
            loops = report.get("loops", {})
            for name, outcome in loops.items():
                stat = self.steps.setdefault(
                    name,
                    {"loop": outcome.get("loop"), "ok": 0, "failed": 0, "off": 0, "seconds": 0.0},
                )
                status = outcome.get("status", "ok")
                stat[status if status in ("ok", "failed", "off") else "ok"] += 1
                stat["seconds"] += float(outcome.get("seconds") or 0.0)
            validation = loops.get("validate_predictions", {})
            for key, series in (
                ("accuracy", self.accuracy),
                ("accuracy_noise_floor", self.accuracy_ceiling),
                ("calibration", self.calibration),
                ("normalized_entropy", self.normalized_entropy),
            ):
                value = validation.get(key)
                if isinstance(value, (int, float)):
                    series.append((hour, float(value)))
            if validation.get("retrained"):
                self.retrains += 1
            for promoted in loops.get("auto_promote", {}).get("promoted", []) or []:
                if promoted.get("mode") not in (None, "applied", "dry_run"):
                    continue
                self.promotions += 1
                if not self._truly_better(market, str(promoted["variant"])):
                    self.false_promotions += 1
        if self._start_budgets is None or self._best is None:
            return
        budgets, ad_set_of = market.budgets(), market.ad_set_of
        for campaign, ad in enumerate(self._best):
            s = ad_set_of[ad]  # budgets are per ad set (the ad itself, one ad per ad set)
            if self.doubled_at[campaign] is None and budgets[s] >= 2 * self._start_budgets[s]:
                self.doubled_at[campaign] = hour

    def _truly_better(self, market: SimulatedMarket, promoted: str) -> bool:
        """The promoted ad beats its campaign's control (its first ad) in truth; a promoted ad
        set (its ads share its budget) when its ads' mean beats the control's ad set's."""
        values = market.evaluation.expected_value_array(Objective.CLICKS_PER_DOLLAR)
        if promoted in market.ad_set_ids:
            ad_set_of = market.ad_set_of
            s = market.ad_set_ids.index(promoted)
            first = int(np.flatnonzero(ad_set_of == s)[0])
            campaign = int(market.campaign_of[first])
            control = ad_set_of[int(np.flatnonzero(market.campaign_of == campaign)[0])]
            mine, theirs = values[ad_set_of == s], values[ad_set_of == control]
            return bool(mine.mean() > theirs.mean())
        index = market.ad_ids.index(promoted)
        campaign = int(market.campaign_of[index])
        control = int(np.flatnonzero(market.campaign_of == campaign)[0])
        return bool(values[index] > values[control])

    def summary(self) -> dict[str, Any]:
        def last_day(series: list[tuple[int, float]]) -> float | None:
            if not series:
                return None
            cutoff = self.hours - 24
            recent = [v for h, v in series if h >= cutoff] or [series[-1][1]]
            return round(float(np.mean(recent)), 6)

        reached = [h for h in self.doubled_at.values() if h is not None]
        return {
            "accuracy": last_day(self.accuracy),
            "calibration": last_day(self.calibration),
            "normalized_entropy": last_day(self.normalized_entropy),
            "retrains": self.retrains,
            "promotions": self.promotions,
            "false_promotions": self.false_promotions,
            "best_doubled_campaigns": len(reached),
            "campaigns": len(self.doubled_at),
            "hours_to_double_median": median(reached) if reached else None,
        }

    def accuracy_by_day(
        self, days: int, series: list[tuple[int, float]] | None = None
    ) -> list[float | None]:
        """Loop 6's headline accuracy (or another hourly ``series``, such as its ceiling)
        averaged over each simulated day (None: not scored)."""
        hourly = self.accuracy if series is None else series
        out: list[float | None] = []
        for day in range(days):
            values = [v for h, v in hourly if day * 24 <= h < (day + 1) * 24]
            out.append(round(float(np.mean(values)), 6) if values else None)
        return out

    def series(self) -> dict[str, list[tuple[int, float]]]:
        return {
            "accuracy": self.accuracy,
            "calibration": self.calibration,
            "normalized_entropy": self.normalized_entropy,
        }
