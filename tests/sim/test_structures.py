"""Meta's three budget structures in the simulated market (synthetic data, issue #16): one ad per
ad set with its own budget (as always), several ads sharing an ad set's budget, and a campaign
budget (CBO) shared by its ad sets; the advertiser pausing an ad set; the truth a benchmark reads
to judge pauses and campaign totals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from adflywheel.core.domain import Status
from adflywheel.platforms.base import PlatformError, PlatformRefusedError
from adflywheel.sim.market import (
    AdvertiserPause,
    DeliverySplit,
    LearningPhase,
    LearningStatus,
    MarketConfig,
    SimulatedMarket,
)

MIXED = ("ad_set_budgets", "ad_set_budgets_multi_ad", "campaign_budget")
DAY = 24


def mixed(**overrides: Any) -> MarketConfig:
    """One account of three campaigns, one per structure: 6 lone ad sets; 2 ad sets of 3 ads;
    a campaign budget over 3 ad sets of 2 ads."""
    base: dict[str, Any] = {
        "seed": 4,
        "n_accounts": 1,
        "campaigns_per_account": 3,
        "variants_per_campaign": 6,
        "campaign_daily_budget_minor": 24_000,
        "structures": MIXED,
        "ads_per_ad_set": 3,
        "campaign_budget_ads_per_ad_set": 2,
    }
    base.update(overrides)
    return MarketConfig(**base)


def spend(market: SimulatedMarket, hour: int) -> np.ndarray:
    record = market.history(hour)
    assert record is not None
    return record.spend_minor


def campaign_spend(market: SimulatedMarket, hour: int) -> np.ndarray:
    out = market.evaluation.campaign_spend_array(hour)
    assert out is not None
    return out


def ad_set_spend(market: SimulatedMarket, hour: int) -> np.ndarray:
    out = market.evaluation.ad_set_spend_array(hour)
    assert out is not None
    return out


# -- the default market is the market as it was ----------------------------------------------


def test_the_default_is_one_ad_per_ad_set_with_its_own_budget() -> None:
    config = MarketConfig(n_accounts=2)
    assert config.structures == ("ad_set_budgets",) and config.default_structures
    market = SimulatedMarket(config)
    assert len(market.ad_set_ids) == len(market.ad_ids)
    assert np.array_equal(market.ad_set_of, np.arange(len(market.ad_ids)))
    assert not market.campaign_budgets().any()
    assert set(market.evaluation.structures().values()) == {"ad_set_budgets"}


def test_the_shared_budget_rule_spends_a_lone_ad_exactly_as_the_old_market() -> None:
    """Multi-ad campaigns of one ad per ad set go through the sharing code; they must deliver
    bit for bit what the old market (the default path) delivers."""
    base: dict[str, Any] = {"seed": 9, "n_accounts": 2, "variants_per_campaign": 4}
    old = SimulatedMarket(MarketConfig(**base))
    new = SimulatedMarket(
        MarketConfig(**base, structures=("ad_set_budgets_multi_ad",), ads_per_ad_set=1)
    )
    assert not new.config.default_structures
    for market in (old, new):
        market.platform(market.accounts()[0]).set_ad_status(market.ad_ids[1], Status.PAUSED)
        market.set_ad_set_status(market.ad_set_ids[2], False)
    for h in range(30):
        old.step()
        new.step()
        a, b = old.history(h), new.history(h)
        assert a is not None and b is not None
        for name in ("spend_minor", "impressions", "clicks", "conversions", "revenue_minor"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (h, name)


# -- several ads in one ad set ----------------------------------------------------------------


def test_a_multi_ad_ad_set_spends_its_budget_split_over_its_ads_by_the_rule() -> None:
    market = SimulatedMarket(mixed())
    multi = market.campaign_structure()[0].campaigns[1]
    assert multi.structure == "ad_set_budgets_multi_ad" and len(multi.ad_set_ids) == 2
    ads = np.array(multi.variant_indices)
    sets = market.ad_set_of[ads]
    budget = market.budgets()[sets[0]]
    assert budget == 12_000
    day = np.zeros(len(ads), dtype=np.int64)
    for h in range(DAY):
        shares = market.evaluation.delivery_shares_array()[ads]
        market.step()
        s = spend(market, h)[ads]
        day += s
        for k in np.unique(sets):
            mine = sets == k
            total = int(s[mine].sum())
            assert total <= 1.2 * budget / 24  # Meta-like pacing: never a burst
            # Exactly the holder's amount, split by the stated shares (to one minor unit).
            assert np.all(np.abs(s[mine] - total * shares[mine]) < 1.0 + 1e-9)
            assert abs(shares[mine].sum() - 1.0) < 1e-9
    per_set = [int(day[sets == k].sum()) for k in np.unique(sets)]
    for total in per_set:
        assert 0.85 * budget <= total <= budget
    assert (day > 0).all()  # every active ad gets some delivery


def test_the_rule_favours_the_ad_meta_estimates_better_and_sharpens_with_impressions() -> None:
    sharp = SimulatedMarket(mixed(delivery_split=DeliverySplit(initial_sd=0.0)))
    ads = np.array(sharp.campaign_structure()[0].campaigns[1].variant_indices[:3])
    value = sharp.evaluation.expected_value_array()[ads]
    shares = sharp.evaluation.delivery_shares_array()[ads]
    assert np.argmax(shares) == np.argmax(value)  # without noise the truly better ad leads
    expected = value**3 / (value**3).sum()  # gamma = 3, the stated default
    assert np.allclose(shares, expected)
    flat = SimulatedMarket(mixed(delivery_split=DeliverySplit(gamma=0.0)))
    assert np.allclose(flat.evaluation.delivery_shares_array()[ads], 1 / 3)


def test_pausing_an_ad_moves_its_delivery_to_its_active_siblings() -> None:
    paused, twin = SimulatedMarket(mixed()), SimulatedMarket(mixed())
    platform = paused.platform(paused.accounts()[0])
    ads = np.array(paused.campaign_structure()[0].campaigns[1].variant_indices[:3])
    for market in (paused, twin):
        market.run(3)
    top = int(ads[np.argmax(paused.evaluation.delivery_shares_array()[ads])])
    platform.set_ad_status(paused.ad_ids[top], Status.PAUSED)
    assert {a.external_id: a.status for a in platform.list_ads()}[paused.ad_ids[top]] == (
        Status.PAUSED
    )
    for h in range(3, 9):
        paused.step()
        twin.step()
        mine, theirs = spend(paused, h), spend(twin, h)
        assert mine[top] == 0
        # The ad set spends what it would have: its budget moved to the siblings.
        assert mine[ads].sum() == theirs[ads].sum()
        siblings = ads[ads != top]
        assert (mine[siblings] >= theirs[siblings]).all()
        assert mine[siblings].sum() > theirs[siblings].sum()
    platform.set_ad_status(paused.ad_ids[top], Status.ACTIVE)
    paused.step()
    assert spend(paused, 9)[top] > 0


def test_an_ad_set_with_no_active_ad_spends_nothing_and_keeps_its_budget() -> None:
    market = SimulatedMarket(mixed())
    platform = market.platform(market.accounts()[0])
    campaign = market.campaign_structure()[0].campaigns[1]
    first_set = np.array(campaign.variant_indices[:3])
    for i in first_set:
        platform.set_ad_status(market.ad_ids[i], Status.PAUSED)
    market.run(4)
    assert all(spend(market, h)[first_set].sum() == 0 for h in range(4))
    assert all(spend(market, h)[np.array(campaign.variant_indices[3:])].sum() > 0 for h in range(4))
    listed = {s.external_id: s for s in platform.list_ad_sets()}
    assert listed[campaign.ad_set_ids[0]].daily_budget_minor == 12_000
    assert listed[campaign.ad_set_ids[0]].status is Status.ACTIVE  # the ad set itself is on


# -- campaign budgets (CBO) -------------------------------------------------------------------


def test_a_campaign_budget_is_listed_on_the_campaign_and_not_on_its_ad_sets() -> None:
    market = SimulatedMarket(mixed())
    platform = market.platform(market.accounts()[0])
    cbo = market.campaign_structure()[0].campaigns[2]
    assert cbo.structure == "campaign_budget" and len(cbo.ad_set_ids) == 3
    campaigns = {c.external_id: c.daily_budget_minor for c in platform.list_campaigns()}
    assert campaigns == dict.fromkeys(market.campaign_ids, 24_000)
    budgets = {s.external_id: s.daily_budget_minor for s in platform.list_ad_sets()}
    assert all(budgets[s] is None for s in cbo.ad_set_ids)
    others = [s for s in budgets if s not in cbo.ad_set_ids]
    assert all(isinstance(budgets[s], int) for s in others)
    ads = {a.external_id: a.ad_set_id for a in platform.list_ads()}
    assert [ads[a] for a in cbo.ad_ids] == [s for s in cbo.ad_set_ids for _ in range(2)]


def test_a_campaign_budget_refuses_ad_set_budget_writes_and_takes_campaign_writes() -> None:
    market = SimulatedMarket(mixed())
    platform = market.platform(market.accounts()[0])
    abo, multi, cbo = market.campaign_structure()[0].campaigns
    with pytest.raises(PlatformRefusedError):
        platform.set_ad_set_budget(cbo.ad_set_ids[0], 5_000)
    with pytest.raises(PlatformRefusedError):
        market.set_budgets_bulk({cbo.ad_set_ids[0]: 5_000})
    with pytest.raises(PlatformRefusedError):
        platform.set_campaign_budget(abo.campaign_id, 5_000)
    with pytest.raises(PlatformError):
        platform.set_campaign_budget("nope", 5_000)
    with pytest.raises(TypeError):
        platform.set_campaign_budget(cbo.campaign_id, 5_000.0)  # type: ignore[arg-type]
    platform.set_ad_set_budget(multi.ad_set_ids[0], 6_000)  # an ad set budget: fine
    platform.set_campaign_budget(cbo.campaign_id, 48_000)
    listed = {c.external_id: c.daily_budget_minor for c in platform.list_campaigns()}
    assert listed[cbo.campaign_id] == 48_000 and listed[multi.campaign_id] == 18_000
    writes = market.evaluation.campaign_budget_writes()
    assert [(w.campaign_index, w.old_minor, w.new_minor) for w in writes] == [(2, 24_000, 48_000)]
    market.run(DAY)
    day = np.sum([campaign_spend(market, h) for h in range(DAY)], axis=0)
    assert 0.85 * 48_000 <= day[2] <= 48_000


def test_a_campaign_budget_is_split_over_its_active_ad_sets() -> None:
    market = SimulatedMarket(mixed())
    platform = market.platform(market.accounts()[0])
    cbo = market.campaign_structure()[0].campaigns[2]
    ads = np.array(cbo.variant_indices)
    market.run(2)
    market.set_ad_set_status(cbo.ad_set_ids[0], False)  # an ad set off: the rest take it
    market.run(2)
    for h in (2, 3):
        s = spend(market, h)[ads]
        assert s[:2].sum() == 0 and s[2:].sum() > 0
        assert s.sum() <= 1.2 * 24_000 / 24
    per_set = market.evaluation.ad_set_spend_array(3)
    assert per_set is not None and per_set[market.ad_set_of[ads[0]]] == 0
    for i in ads:  # every ad off: the campaign spends nothing
        platform.set_ad_status(market.ad_ids[i], Status.PAUSED)
    market.step()
    assert spend(market, 4)[ads].sum() == 0


def test_a_significant_campaign_budget_edit_puts_all_its_ad_sets_back_in_learning() -> None:
    config = mixed(learning_phase=LearningPhase(learning_events=5))
    market = SimulatedMarket(config)
    platform = market.platform(market.accounts()[0])
    cbo = market.campaign_structure()[0].campaigns[2]
    market.run(DAY)
    truth = market.evaluation
    assert all(truth.learning(s) is LearningStatus.EXITED for s in cbo.ad_set_ids)
    edits = truth.significant_edits_array()
    platform.set_campaign_budget(cbo.campaign_id, 24_000 + 4_800)  # exactly 20%: not significant
    assert all(truth.learning(s) is LearningStatus.EXITED for s in cbo.ad_set_ids)
    platform.set_campaign_budget(cbo.campaign_id, 40_000)
    assert all(truth.learning(s) is LearningStatus.LEARNING for s in cbo.ad_set_ids)
    changed = truth.significant_edits_array() - edits
    assert changed[list(cbo.ad_set_indices)].tolist() == [1, 1, 1]
    assert changed.sum() == 3


def test_an_ad_sets_learning_counts_the_results_of_all_its_ads() -> None:
    market = SimulatedMarket(mixed(learning_phase=LearningPhase(learning_events=40)))
    multi = market.campaign_structure()[0].campaigns[1]
    clicks = last = 0
    first = np.array(multi.variant_indices[:3])
    for h in range(DAY * 3):
        if market.evaluation.learning(multi.ad_set_ids[0]) is LearningStatus.EXITED:
            break
        market.step()
        record = market.history(h)
        assert record is not None
        last = int(record.clicks[first].sum())
        clicks += last
    assert market.evaluation.learning(multi.ad_set_ids[0]) is LearningStatus.EXITED
    assert clicks >= 40 and clicks - last < 40


# -- the advertiser pausing an ad set ---------------------------------------------------------


def test_an_advertiser_pause_pauses_its_ad_set_at_its_hour_and_keeps_the_budget() -> None:
    multi_set = 7  # the multi-ad campaign's second ad set (6 lone ad sets come first)
    config = mixed(advertiser_pauses=(AdvertiserPause(at_hour=5, ad_set_index=multi_set),))
    market, twin = SimulatedMarket(config), SimulatedMarket(mixed())
    platform = market.platform(market.accounts()[0])
    ad_set_id = market.ad_set_ids[multi_set]
    ads = np.flatnonzero(market.ad_set_of == multi_set)
    for h in range(8):
        market.step()
        twin.step()
        status = {s.external_id: s.status for s in platform.list_ad_sets()}[ad_set_id]
        assert status is (Status.PAUSED if h >= 5 else Status.ACTIVE)
        assert bool(spend(market, h)[ads].sum() == 0) is (h >= 5)
    assert market.budgets()[multi_set] == 12_000  # its budget stays on the ad set, as on Meta
    writes = market.evaluation.status_writes(None)
    assert [(w.hour, w.index, w.kind, w.active, w.source) for w in writes] == [
        (5, multi_set, "ad_set", False, "advertiser")
    ]
    truth = market.evaluation
    assert truth.intended_campaign_totals().tolist() == [24_000] * 3
    spent = truth.campaign_spend_array(6)
    other = twin.evaluation.campaign_spend_array(6)
    assert spent is not None and other is not None
    assert spent[1] < 0.6 * other[1]  # the campaign underspends: nothing moved the budget
    assert spent[0] == other[0] and spent[2] == other[2]


def test_an_advertiser_pause_with_an_end_turns_the_ad_set_back_on() -> None:
    pause = AdvertiserPause(at_hour=2, ad_set_index=0, until_hour=4)
    market = SimulatedMarket(mixed(advertiser_pauses=(pause,)))
    market.run(6)
    on = [bool(spend(market, h)[0] > 0) for h in range(6)]
    assert on == [True, True, False, False, True, True]


def test_an_advertiser_ad_pause_is_never_judged_and_reactivating_it_is_seen() -> None:
    ad = 6  # the multi-ad campaign's first ad
    market = SimulatedMarket(mixed(advertiser_pauses=(AdvertiserPause(at_hour=2, ad_index=ad),)))
    platform = market.platform(market.accounts()[0])
    market.run(3)
    assert spend(market, 2)[ad] == 0 and spend(market, 2)[7:9].sum() > 0
    assert {a.external_id: a.status for a in platform.list_ads()}[market.ad_ids[ad]] is (
        Status.PAUSED
    )
    truth = market.evaluation
    assert truth.ad_pauses() == [] and truth.platform_writes() == 0
    assert truth.reactivated_advertiser_pauses() == []
    platform.set_ad_status(market.ad_ids[ad], Status.ACTIVE)  # what the service must not do
    platform.set_ad_status(market.ad_ids[7], Status.ACTIVE)  # not the advertiser's: fine
    [wrong] = truth.reactivated_advertiser_pauses()
    assert (wrong.index, wrong.hour, wrong.source) == (ad, 3, None)
    assert truth.platform_writes() == 2


def test_a_paused_ad_set_of_a_campaign_budget_hands_its_share_to_the_others() -> None:
    cbo_set = 8  # the CBO campaign's first ad set
    config = mixed(advertiser_pauses=(AdvertiserPause(at_hour=0, ad_set_index=cbo_set),))
    market = SimulatedMarket(config)
    market.run(DAY)
    day = np.sum([campaign_spend(market, h) for h in range(DAY)], axis=0)
    assert 0.85 * 24_000 <= day[2] <= 24_000  # the campaign total is kept
    assert all(ad_set_spend(market, h)[cbo_set] == 0 for h in range(DAY))


def test_advertiser_pauses_and_structures_are_validated() -> None:
    with pytest.raises(ValueError, match="structures"):
        mixed(structures=("ad_set_budgets", "lifetime"))
    with pytest.raises(ValueError, match="structures"):
        mixed(structures=())
    with pytest.raises(ValueError, match="ads_per_ad_set"):
        mixed(ads_per_ad_set=0)
    with pytest.raises(ValueError, match="out of range"):
        mixed(advertiser_pauses=(AdvertiserPause(at_hour=1, ad_set_index=11),))
    with pytest.raises(ValueError):
        AdvertiserPause(at_hour=3, ad_set_index=0, until_hour=3)
    with pytest.raises(ValueError, match="one of them"):
        AdvertiserPause(at_hour=3)
    with pytest.raises(ValueError, match="one of them"):
        AdvertiserPause(at_hour=3, ad_set_index=0, ad_index=0)
    with pytest.raises(ValueError, match="ad_index 18 out of range"):
        mixed(advertiser_pauses=(AdvertiserPause(at_hour=1, ad_index=18),))
    with pytest.raises(ValueError):
        DeliverySplit(sharpen_impressions=0)
    assert mixed().n_campaigns == 3
    assert [mixed().ad_sets_in(c) for c in range(3)] == [6, 2, 3]


# -- truth for benchmarks ---------------------------------------------------------------------


def test_each_pause_is_judged_on_the_truth_of_its_hour() -> None:
    market = SimulatedMarket(mixed(record_truth=True))
    platform = market.platform(market.accounts()[0])
    market.run(3)
    truth = market.evaluation
    value = truth.expected_value_array()
    multi, cbo = market.campaign_structure()[0].campaigns[1:]
    ads = np.array(multi.variant_indices[:3])
    worst, best = int(ads[np.argmin(value[ads])]), int(ads[np.argmax(value[ads])])
    platform.set_ad_status(market.ad_ids[worst], Status.PAUSED)  # right: a worse ad
    platform.set_ad_status(market.ad_ids[best], Status.PAUSED)  # false: the best one left
    platform.set_ad_status(market.ad_ids[best], Status.PAUSED)  # already paused: not again
    right, false = truth.ad_pauses()
    assert (right.ad_index, right.hour, right.value) == (worst, 3, value[worst])
    assert right.best_sibling_index == best and not right.is_false()
    remaining = int(ads[(ads != worst) & (ads != best)][0])
    assert false.ad_index == best and false.best_sibling_index == remaining
    assert false.value > value[remaining] and false.is_false()
    assert truth.false_pauses() == [false]
    # On a campaign budget the siblings are the campaign's other active ads.
    cbo_ads = np.array(cbo.variant_indices)
    platform.set_ad_status(market.ad_ids[int(cbo_ads[0])], Status.PAUSED)
    judged = truth.ad_pauses()[-1]
    assert judged.best_sibling_index == int(cbo_ads[1:][np.argmax(value[cbo_ads[1:]])])
    # The recorded value of an hour is the truth read at that hour.
    market.step()
    recorded = truth.value_at(3)
    assert recorded is not None and np.array_equal(recorded, value)
    assert truth.value_at(99) is None
    assert SimulatedMarket(mixed()).evaluation.value_at(0) is None  # not recorded unless asked


def test_campaign_spend_and_intended_totals() -> None:
    market = SimulatedMarket(mixed())
    truth = market.evaluation
    assert truth.campaign_spend_array(0) is None
    market.run(3)
    for h in range(3):
        per_campaign = truth.campaign_spend_array(h)
        per_set = truth.ad_set_spend_array(h)
        assert per_campaign is not None and per_set is not None
        assert per_campaign.tolist() == [int(x) for x in spend(market, h).reshape(3, 6).sum(1)]
        assert per_set.sum() == per_campaign.sum()
    market.platform(market.accounts()[0]).set_campaign_budget(market.campaign_ids[2], 30_000)
    assert truth.intended_campaign_totals().tolist() == [24_000] * 3  # at the start
    assert market.campaign_budget_totals().tolist() == [24_000, 24_000, 30_000]
    assert truth.structures() == dict(zip(market.campaign_ids, MIXED, strict=True))
    oracle = truth.oracle_budgets()
    assert oracle[list(market.campaign_structure()[0].campaigns[2].ad_set_indices)].sum() == 0
    assert oracle.sum() == 48_000  # the two campaigns with ad set budgets
    market.set_budgets_bulk(oracle)
    assert market.campaign_budget_totals().tolist() == [24_000, 24_000, 30_000]


# -- through the harness ------------------------------------------------------------------------


def test_a_mixed_market_runs_through_the_harness() -> None:
    """The service runs hour by hour on a market of the three structures, with an advertiser
    pause; only what the market does is asserted (the service's choices are others' tests)."""
    from adflywheel.sim.harness import SimulationSpec, run_policy

    spec = SimulationSpec(
        days=1,
        seed=5,
        accounts=1,
        campaigns_per_account=3,
        variants_per_campaign=6,
        policy="loops=2",
        structures=MIXED,
        campaign_budget_ads_per_ad_set=2,
        advertiser_pauses=(AdvertiserPause(at_hour=3, ad_set_index=6),),
        record_truth=True,
    )
    market = SimulatedMarket(spec.market_config())
    budgets = [market.campaign_budget_totals()]  # budgets[h]: what hour h was delivered under
    totals, _errors, _trace, _loops = run_policy(
        spec, lambda: budgets.append(market.campaign_budget_totals()), market=market
    )
    truth = market.evaluation
    assert totals.spend_minor > 0
    platform = market.platform(market.accounts()[0])
    campaigns = {c.external_id: c.daily_budget_minor for c in platform.list_campaigns()}
    sets = {s.external_id: s for s in platform.list_ad_sets()}
    structure = truth.structures()
    for c in market.campaign_structure()[0].campaigns:
        assert structure[c.campaign_id] == c.structure
        budgeted = [sets[s].daily_budget_minor for s in c.ad_set_ids]
        if c.structure == "campaign_budget":
            listed = campaigns[c.campaign_id]
            assert budgeted == [None] * 3 and listed == market.campaign_budgets()[c.campaign_index]
        else:
            assert all(isinstance(b, int) for b in budgeted)
            assert campaigns[c.campaign_id] == sum(b or 0 for b in budgeted)
    assert sets[market.ad_set_ids[6]].status is Status.PAUSED  # the advertiser's pause
    # Statuses hour by hour from every write (a write at hour w holds from hour w's delivery).
    ad_on = np.ones((24, len(market.ad_ids)), dtype=bool)
    set_on = np.ones((24, len(market.ad_set_ids)), dtype=bool)
    for w in truth.status_writes(None):
        (ad_on if w.kind == "ad" else set_on)[w.hour :, w.index] = w.active
    for h in range(24):
        per_ad = spend(market, h)
        per_campaign = truth.campaign_spend_array(h)
        assert per_campaign is not None
        off = ~ad_on[h] | ~set_on[h][market.ad_set_of]
        assert (per_ad[off] == 0).all()  # paused ads and ads of paused ad sets spend nothing
        assert (per_campaign <= 1.2 * budgets[h] / 24).all()  # within the hour's budgets
        assert bool(per_ad[market.ad_set_of == 6].sum() == 0) is (h >= 3)
    assert truth.intended_campaign_totals().tolist() == [20_000] * 3
    for pause in truth.ad_pauses():  # every pause the service made was judged on the truth
        recorded = truth.value_at(pause.hour)
        assert recorded is not None and pause.value == recorded[pause.ad_index]
