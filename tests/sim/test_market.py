"""Tests of the simulated ad market (synthetic data): determinism, consistency, the levers, the
hidden truth's dynamics, and that the platform face shows no truth."""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from adflywheel.core.domain import Creative, HourlyActual, Status
from adflywheel.platforms.base import (
    AdPlatform,
    PlatformAccount,
    PlatformAd,
    PlatformAdSet,
    PlatformCampaign,
    PlatformError,
)
from adflywheel.sim.market import (
    HOOK_TYPES,
    Collapse,
    MarketConfig,
    MarketTruth,
    SimulatedMarket,
    SimulatedPlatform,
)
from adflywheel.sim.market.delivery import PACING_MAX
from adflywheel.sim.market.texts import opening_line
from adflywheel.sim.market.world import World

HOUR = timedelta(hours=1)


def small(**overrides: object) -> MarketConfig:
    base: dict[str, object] = {
        "seed": 11,
        "n_accounts": 4,
        "campaigns_per_account": 2,
        "variants_per_campaign": 4,
    }
    base.update(overrides)
    return MarketConfig(**base)  # type: ignore[arg-type]


def all_rows(market: SimulatedMarket) -> list[HourlyActual]:
    rows: list[HourlyActual] = []
    for account_id in market.accounts():
        rows += market.platform(account_id).fetch_insights(market.config.start, market.current_hour)
    return rows


def test_same_seed_gives_identical_results() -> None:
    a, b = SimulatedMarket(small()), SimulatedMarket(small())
    a.run(6)
    b.run(6)
    assert all_rows(a) == all_rows(b)
    account = a.accounts()[0]
    assert a.platform(account).list_ads() == b.platform(account).list_ads()
    assert np.array_equal(a.evaluation.true_ctr_array(), b.evaluation.true_ctr_array())


def test_different_seeds_differ() -> None:
    a, b = SimulatedMarket(small(seed=1)), SimulatedMarket(small(seed=2))
    a.run(3)
    b.run(3)
    assert not np.array_equal(a.evaluation.true_ctr_array(), b.evaluation.true_ctr_array())
    assert [r.clicks for r in all_rows(a)] != [r.clicks for r in all_rows(b)]


def test_counts_are_consistent_and_spend_is_paced() -> None:
    market = SimulatedMarket(small(n_accounts=6))
    budgets = market.budgets()
    market.run(30)
    for h in range(30):
        rec = market.history(h)
        assert rec is not None
        for arr in dataclasses.astuple(rec):
            assert (arr >= 0).all()
        assert (rec.clicks <= rec.impressions).all()
        assert (rec.link_clicks <= rec.clicks).all()
        assert (rec.conversions <= rec.link_clicks).all()
        assert (rec.video_views <= rec.impressions).all()
        assert (rec.spend_minor <= np.ceil(budgets * PACING_MAX / 24)).all()
    total_spend = 0
    for h in range(24):
        rec = market.history(h)
        assert rec is not None
        total_spend += int(rec.spend_minor.sum())
    assert 0.9 * budgets.sum() <= total_spend <= budgets.sum()  # a day never overspends


def test_realised_ctr_matches_truth() -> None:
    market = SimulatedMarket(
        small(
            n_accounts=1,
            campaigns_per_account=1,
            campaign_daily_budget_minor=12_000_000,
            drift=False,
        )
    )
    expected = np.zeros(4)
    clicks = np.zeros(4)
    for _ in range(6):
        ctr = market.evaluation.true_ctr_array(learning=True)
        market.step()
        rec = market.history(market.hour_index - 1)
        assert rec is not None
        expected += ctr * rec.impressions
        clicks += rec.clicks
    assert expected.min() > 1_000  # enough clicks for a tight check
    assert np.all(np.abs(clicks - expected) < 5 * np.sqrt(expected))


def test_paused_ads_and_ad_sets_deliver_nothing() -> None:
    market = SimulatedMarket(small())
    platform = market.platform(market.accounts()[0])
    ads = platform.list_ads()
    platform.set_ad_status(ads[0].external_id, Status.PAUSED)
    market.set_ad_set_status(ads[1].ad_set_id, active=False)
    market.step()
    delivered = {r.ad_id for r in platform.fetch_insights(market.config.start, market.current_hour)}
    assert ads[0].external_id not in delivered
    assert ads[1].external_id not in delivered
    assert ads[2].external_id in delivered
    assert platform.list_ads()[0].status is Status.PAUSED
    assert platform.list_ad_sets()[1].status is Status.PAUSED
    platform.set_ad_status(ads[0].external_id, Status.ACTIVE)
    hour = market.current_hour
    market.step()
    assert ads[0].external_id in {
        r.ad_id for r in platform.fetch_insights(hour, market.current_hour)
    }


def test_budget_changes_take_effect_and_are_validated() -> None:
    market = SimulatedMarket(small())
    accounts = market.accounts()
    platform = market.platform(accounts[0])
    ad_sets = platform.list_ad_sets()
    platform.set_ad_set_budget(ad_sets[0].external_id, 240_000)
    platform.set_ad_set_budget(ad_sets[1].external_id, 0)
    assert platform.list_ad_sets()[0].daily_budget_minor == 240_000
    assert platform.list_campaigns()[0].daily_budget_minor == sum(
        s.daily_budget_minor or 0 for s in platform.list_ad_sets()[:4]
    )
    market.step()
    spend = {
        r.ad_id: r.spend_minor
        for r in platform.fetch_insights(market.config.start, market.current_hour)
    }
    ads = platform.list_ads()
    assert 7_000 <= spend[ads[0].external_id] <= 12_000
    assert ads[1].external_id not in spend

    other = market.platform(accounts[1]).list_ad_sets()[0].external_id
    with pytest.raises(PlatformError):
        platform.set_ad_set_budget(other, 1_000)  # another account's ad set is unknown here
    with pytest.raises(PlatformError):
        platform.set_ad_set_budget("nope", 1_000)
    with pytest.raises(ValueError):
        platform.set_ad_set_budget(ad_sets[0].external_id, -1)
    with pytest.raises(TypeError):
        platform.set_ad_set_budget(ad_sets[0].external_id, 10.5)  # type: ignore[arg-type]
    with pytest.raises(PlatformError):
        platform.set_ad_status("nope", Status.PAUSED)
    with pytest.raises(PlatformError):
        market.platform("act_missing")


def test_bulk_budgets_and_oracle_conserve_campaign_totals() -> None:
    market = SimulatedMarket(small())
    totals = market.campaign_budget_totals()
    oracle = market.evaluation.oracle_budgets()
    market.set_budgets_bulk(oracle)
    assert np.array_equal(market.campaign_budget_totals(), totals)
    best = market.evaluation.best_ad_per_campaign()
    assert len(best) == market.config.n_campaigns
    structure = market.campaign_structure()
    first = structure[0].campaigns[0]
    assert best[first.campaign_id] in first.ad_ids
    market.set_budgets_bulk({first.ad_set_ids[0]: 123})
    assert market.budgets()[first.variant_indices[0]] == 123
    with pytest.raises(PlatformError):
        market.set_budgets_bulk({"nope": 1})
    with pytest.raises(ValueError):
        market.set_budgets_bulk(-oracle)
    totals_now = market.step()
    rows = all_rows(market)
    assert totals_now.clicks == sum(r.clicks for r in rows)
    assert totals_now.spend_minor == sum(r.spend_minor for r in rows)
    assert totals_now == market.last_hour_totals()


def test_exogenous_noise_is_shared_across_policies() -> None:
    """Same seed, different budgets elsewhere: untouched ad sets spend exactly the same."""
    a, b = SimulatedMarket(small()), SimulatedMarket(small())
    budgets = b.budgets()
    budgets[:4] = b.evaluation.oracle_budgets()[:4]  # only the first campaign changes
    b.set_budgets_bulk(budgets)
    a.run(3)
    b.run(3)
    changed = a.budgets() != b.budgets()
    assert changed.any() and not changed.all()
    same = ~changed
    for h in range(3):
        ra, rb = a.history(h), b.history(h)
        assert ra is not None and rb is not None
        assert np.array_equal(ra.spend_minor[same], rb.spend_minor[same])


def test_fatigue_lowers_ctr_as_frequency_rises() -> None:
    market = SimulatedMarket(small(n_accounts=1, campaigns_per_account=1, drift=False))
    platform = market.platform(market.accounts()[0])
    ads = platform.list_ads()
    for ad in ads[1:]:
        platform.set_ad_status(ad.external_id, Status.PAUSED)
    platform.set_ad_set_budget(ads[0].ad_set_id, 100_000)  # ten times the campaign's budget
    before = market.evaluation.true_ctr()
    market.run(24)  # same hour of day: only frequency differs
    after = market.evaluation.true_ctr()
    tired, fresh = ads[0].external_id, ads[1].external_id
    assert after[fresh] == pytest.approx(before[fresh])
    assert after[tired] < 0.9 * before[tired]


def test_scheduled_collapse_lowers_the_best_variant() -> None:
    config = small(drift=False, collapses=(Collapse(at_hour=3, factor=0.3, campaign_index=0),))
    market = SimulatedMarket(config)
    market.run(2)
    assert market.evaluation.collapsed_ads() == {}
    best = market.evaluation.best_ad_per_campaign()[market.campaign_ids[0]]
    other = next(a for a in market.campaign_structure()[0].campaigns[0].ad_ids if a != best)
    before = market.evaluation.true_ctr()
    market.step()  # now at hour 3: the collapse is in force
    after = market.evaluation.true_ctr()
    assert set(market.evaluation.collapsed_ads()) == {best}
    ratio = (after[best] / after[other]) / (before[best] / before[other])
    assert 0.25 < ratio < 0.35
    by_index = SimulatedMarket(small(collapses=(Collapse(at_hour=0, factor=0.5, ad_index=5),)))
    assert list(by_index.evaluation.collapsed_ads()) == [by_index.ad_ids[5]]


def test_reporting_delay_hides_recent_hours() -> None:
    market = SimulatedMarket(small(reporting_delay_hours=2))
    platform = market.platform(market.accounts()[0])
    market.run(5)
    hours = {
        r.hour_start for r in platform.fetch_insights(market.config.start, market.current_hour)
    }
    assert hours == {market.config.start + h * HOUR for h in range(3)}
    market.step()
    hours = {
        r.hour_start for r in platform.fetch_insights(market.config.start, market.current_hour)
    }
    assert max(hours) == market.config.start + 3 * HOUR
    with pytest.raises(ValueError):
        platform.fetch_insights(datetime(2025, 1, 6), datetime(2025, 1, 7))  # naive: refused


def test_platform_exposes_no_truth() -> None:
    market = SimulatedMarket(small())
    platform = market.platform(market.accounts()[0])
    public = [n for n in dir(platform) if not n.startswith("_")]
    assert {"evaluation", "truth", "genes", "world"}.isdisjoint(public)
    for name in public:
        assert not isinstance(getattr(platform, name), MarketTruth | World | SimulatedMarket)
    assert isinstance(market.evaluation, MarketTruth)


def test_platform_satisfies_the_ad_platform_protocol() -> None:
    market = SimulatedMarket(small())
    platform: AdPlatform = market.platform(market.accounts()[0])
    assert isinstance(platform, SimulatedPlatform)
    assert platform.name == "simulated"
    assert isinstance(platform.account(), PlatformAccount)
    campaigns = platform.list_campaigns()
    ad_sets = platform.list_ad_sets()
    ads = platform.list_ads()
    assert all(isinstance(c, PlatformCampaign) for c in campaigns) and len(campaigns) == 2
    assert all(isinstance(s, PlatformAdSet) for s in ad_sets) and len(ad_sets) == 8
    assert all(isinstance(a, PlatformAd) and isinstance(a.creative, Creative) for a in ads)
    assert sum(a.is_control for a in ads) == 2
    assert {a.ad_set_id for a in ads} == {s.external_id for s in ad_sets}
    assert all(a.observed_features["hook_type"] in HOOK_TYPES for a in ads)
    platform.set_ad_set_budget(ad_sets[0].external_id, 5_000)
    platform.set_ad_status(ads[0].external_id, Status.ACTIVE)
    market.step()
    rows = platform.fetch_insights(market.config.start, market.current_hour)
    assert rows and all(isinstance(r, HourlyActual) for r in rows)
    assert {r.ad_id for r in rows} <= {a.external_id for a in ads}


def test_observed_features_are_noisy_measurements() -> None:
    market = SimulatedMarket(small(n_accounts=30, campaigns_per_account=2, variants_per_campaign=5))
    wrong = total = 0
    for account_id in market.accounts():
        for ad in market.platform(account_id).list_ads():
            truth = market.evaluation.genes(ad.external_id)
            total += 1
            wrong += ad.observed_features["hook_type"] != truth["hook_type"]
            assert ad.observed_features["aspect_ratio"] == truth["aspect_ratio"]
    assert 0.04 < wrong / total < 0.18


def test_hook_opening_lines_differ_by_hook_type() -> None:
    lines = {
        hook: {opening_line(hook, "beauty", "GlowLab", random.Random(i)) for i in range(60)}
        for hook in HOOK_TYPES
    }
    for i, a in enumerate(HOOK_TYPES):
        for b in HOOK_TYPES[i + 1 :]:
            assert lines[a].isdisjoint(lines[b]), (a, b)
    assert all(line.endswith("?") for line in lines["question"])
    assert not any(line.endswith("?") for line in lines["offer_urgency"])


def test_truth_is_realistic() -> None:
    market = SimulatedMarket(small(n_accounts=60, campaigns_per_account=2, variants_per_campaign=8))
    ctr = market.evaluation.true_ctr_array()
    assert 0.008 < ctr.mean() < 0.018
    assert np.percentile(ctr, 1) > 0.002 and np.percentile(ctr, 99) < 0.045
    value = market.evaluation.expected_value_array().reshape(-1, 8)
    spread = float((value.max(axis=1) / value.min(axis=1)).mean())
    assert 1.5 < spread < 3.0
    cpm = market.evaluation.expected_cpm_array()
    assert 300 < np.median(cpm) < 1_600
    effects = market.evaluation.gene_effects("beauty")
    assert set(effects.hook) == set(HOOK_TYPES)
    assert math.isclose(sum(market.evaluation.gene_effects().hook.values()), 0.0, abs_tol=1e-9)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        MarketConfig(start=datetime(2025, 1, 6, 12, 30, tzinfo=UTC))
    with pytest.raises(ValueError):
        MarketConfig(niches=("astrology",))
    with pytest.raises(ValueError):
        MarketConfig(n_accounts=0)
