"""One account of the simulated market (synthetic data) behind the ``AdPlatform`` interface.

It shows what Meta would show: structure, budgets, statuses, the ad text, pre-extracted features
measured with noise, and hourly insights once reported. It holds no truth of its own and exposes
none: the loops get exactly this object, as they would get the Meta client.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from adflywheel.core.clock import ensure_utc
from adflywheel.core.domain import HOOK_TYPES, Creative, HourlyActual, Status
from adflywheel.platforms.base import (
    PlatformAccount,
    PlatformAd,
    PlatformAdSet,
    PlatformCampaign,
    PlatformError,
    check_budget,
)
from adflywheel.sim.market.genes import ASPECTS, NUMERIC_GENES
from adflywheel.sim.market.texts import make_creative

if TYPE_CHECKING:
    from adflywheel.sim.market.market import SimulatedMarket

HOUR = timedelta(hours=1)


class SimulatedPlatform:
    """The ``AdPlatform`` of one simulated account."""

    name = "simulated"

    def __init__(self, market: SimulatedMarket, account_index: int) -> None:
        self._market = market
        self._a = account_index
        w = market._world
        self._slice = w.account_slice(account_index)
        self._set_slice = w.ad_set_slice(account_index)
        self._offset = self._slice.start
        ids = range(self._slice.start, self._slice.stop)
        sets = range(self._set_slice.start, self._set_slice.stop)
        self._ad_sets = {w.ad_set_ids[i]: i for i in sets}
        self._ads = {w.ad_ids[i]: i for i in ids}
        first = account_index * market.config.campaigns_per_account
        self._campaigns = {
            w.campaign_ids[c]: c for c in range(first, first + market.config.campaigns_per_account)
        }
        self._creatives: list[tuple[Creative, dict[str, float | str]]] | None = None

    def account(self) -> PlatformAccount:
        w, a = self._market._world, self._a
        return PlatformAccount(
            external_id=w.account_ids[a],
            name=f"{w.account_brand[a]} Ads",
            currency=self._market.config.currency,
            timezone="UTC",
            category=w.account_category[a],
        )

    def list_campaigns(self) -> list[PlatformCampaign]:
        """A campaign with a campaign budget (CBO) reports it; any other reports the sum of its
        ad sets' budgets (the budgets live on its ad sets)."""
        w, cfg = self._market._world, self._market.config
        totals = self._market.campaign_budget_totals()
        first = self._a * cfg.campaigns_per_account
        brand = w.account_brand[self._a]
        return [
            PlatformCampaign(
                external_id=w.campaign_ids[first + c],
                name=f"{brand} | Prospecting {c + 1}",
                status=Status.ACTIVE,
                objective=cfg.objective,
                daily_budget_minor=int(totals[first + c]),
            )
            for c in range(cfg.campaigns_per_account)
        ]

    def list_ad_sets(self) -> list[PlatformAdSet]:
        """Ad sets with their budgets; the ad sets of a campaign budget (CBO) have none."""
        w, state, cfg = self._market._world, self._market._state, self._market.config
        brand = w.account_brand[self._a]
        first = self._a * cfg.campaigns_per_account
        out = []
        for s in range(self._set_slice.start, self._set_slice.stop):
            if state.hidden[s]:  # not launched yet: not on the platform
                continue
            c = int(w.ad_set_campaign[s])
            k = s - int(w.campaign_ad_set_start[c])
            label = "Variant" if cfg.structure_of(c) == "ad_set_budgets" else "Ad set"
            out.append(
                PlatformAdSet(
                    external_id=w.ad_set_ids[s],
                    campaign_id=w.campaign_ids[c],
                    name=f"{brand} | Prospecting {c - first + 1} | {label} {k + 1}",
                    status=Status.ACTIVE
                    if state.ad_set_active[s] or state.in_review[s]
                    else Status.PAUSED,
                    daily_budget_minor=None if w.campaign_budgeted[c] else int(state.budgets[s]),
                )
            )
        return out

    def list_ads(self) -> list[PlatformAd]:
        w, state = self._market._world, self._market._state
        v = self._market.config.variants_per_campaign
        creatives = self._creative_cache()
        ads = []
        for i in range(self._slice.start, self._slice.stop):
            if state.hidden[int(w.ad_set_of[i])]:  # not launched yet: not on the platform
                continue
            creative, features = creatives[i - self._offset]
            ads.append(
                PlatformAd(
                    external_id=w.ad_ids[i],
                    ad_set_id=w.ad_set_ids[int(w.ad_set_of[i])],
                    campaign_id=w.campaign_ids[int(w.campaign_of[i])],
                    name=f"{w.account_brand[self._a]} video {i - self._offset + 1}",
                    status=Status.ACTIVE if state.ad_active[i] else Status.PAUSED,
                    creative=creative,
                    is_control=i % v == 0,
                    observed_features=dict(features),
                )
            )
        return ads

    def _creative_cache(self) -> list[tuple[Creative, dict[str, float | str]]]:
        """Ad copy and observed features, built on first use (cheap markets of many accounts)."""
        if self._creatives is None:
            w, cfg = self._market._world, self._market.config
            niche = cfg.niches[int(w.account_niche[self._a])]
            brand = w.account_brand[self._a]
            sl = self._slice
            true_hooks = w.genes.hook[sl].tolist()
            seen_hooks = w.observed.hook[sl].tolist()
            aspects = w.observed.aspect[sl].tolist()
            numeric = np.round(w.observed.numeric[sl], 3).tolist()
            self._creatives = []
            for j, i in enumerate(range(sl.start, sl.stop)):
                rng = random.Random(f"{cfg.seed}:creative:{i}")
                creative = make_creative(HOOK_TYPES[true_hooks[j]], niche, brand, rng)
                features: dict[str, float | str] = {
                    "hook_type": HOOK_TYPES[seen_hooks[j]],
                    "aspect_ratio": ASPECTS[aspects[j]],
                }
                features.update(zip(NUMERIC_GENES, numeric[j], strict=True))
                self._creatives.append((creative, features))
        return self._creatives

    def fetch_insights(self, start: datetime, end: datetime) -> list[HourlyActual]:
        """Rows of ads that delivered in hours starting in ``[start, end)`` that are already
        reported (``reporting_delay_hours`` after the hour ends); nothing for silent ads."""
        market = self._market
        t0 = market.config.start
        lo = max(-((t0 - ensure_utc(start)) // HOUR), 0)
        hi = -((t0 - ensure_utc(end)) // HOUR)
        hi = min(hi, market.hour_index - market.config.reporting_delay_hours)
        ad_ids = market._world.ad_ids[self._slice.start : self._slice.stop]
        rows: list[HourlyActual] = []
        for h in range(lo, hi):
            record = market.history(h)
            if record is None:
                continue
            sl = self._slice
            imp = record.impressions[sl]
            spend = record.spend_minor[sl]
            (idx,) = np.nonzero((imp > 0) | (spend > 0))
            if idx.size == 0:
                continue
            hour_start = market.hour_start(h)
            columns = zip(
                idx.tolist(),
                imp[idx].tolist(),
                record.clicks[sl][idx].tolist(),
                record.link_clicks[sl][idx].tolist(),
                spend[idx].tolist(),
                record.conversions[sl][idx].tolist(),
                record.revenue_minor[sl][idx].tolist(),
                record.video_views[sl][idx].tolist(),
                strict=True,
            )
            rows.extend(
                HourlyActual(
                    ad_id=ad_ids[j],
                    hour_start=hour_start,
                    impressions=i,
                    clicks=c,
                    link_clicks=lc,
                    spend_minor=s,
                    conversions=cv,
                    revenue_minor=r,
                    video_views=vv,
                )
                for j, i, c, lc, s, cv, r, vv in columns
            )
        return rows

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        """Takes effect from the next delivered hour. The ad set of a campaign budget (CBO) has
        no budget of its own: ``PlatformRefusedError``, as Meta refuses it."""
        value = check_budget(daily_budget_minor)
        i = self._ad_sets.get(ad_set_id)
        if i is None or self._market._state.hidden[i]:
            raise PlatformError(f"unknown ad set {ad_set_id!r} in this account")
        self._market._set_budget(i, value)

    def set_campaign_budget(self, campaign_id: str, daily_budget_minor: int) -> None:
        """A campaign budget (CBO) campaign's daily budget, from the next delivered hour; Meta
        splits it over the campaign's active ad sets. A campaign whose ad sets have the budgets
        is ``PlatformRefusedError``."""
        value = check_budget(daily_budget_minor)
        c = self._campaigns.get(campaign_id)
        if c is None:
            raise PlatformError(f"unknown campaign {campaign_id!r} in this account")
        self._market._set_campaign_budget(c, value)

    def min_daily_budget_minor(self) -> int:
        """The smallest positive daily budget (minor units) the market accepts for an ad set
        (``MinimumBudget``): 1. The market enforces no minimum of its own, it refuses only
        negative budgets (``check_budget``; 0 is accepted and delivers nothing), and the
        capability promises a positive amount, so this is the floor that changes nothing."""
        return 1

    def set_ad_status(self, ad_id: str, status: Status) -> None:
        """Pause or resume an ad; a paused ad delivers nothing from the next hour."""
        i = self._ads.get(ad_id)
        if i is None or self._market._state.hidden[int(self._market._world.ad_set_of[i])]:
            raise PlatformError(f"unknown ad {ad_id!r} in this account")
        self._market._set_status(i, ad=Status(status) is Status.ACTIVE)
