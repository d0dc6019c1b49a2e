"""Meta's learning phase in the simulated market (synthetic data): launch and significant edits
put an ad set into learning, ~50 results take it out, a week without them leaves it learning
limited, and while in the phase its CTR is (1 - penalty) of the creative's own. With the phase
off the market is byte-identical to the market before the phase was modelled."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adflywheel.core.domain import Status
from adflywheel.platforms.base import MinimumBudget, min_daily_budget_floor_minor
from adflywheel.sim.market import (
    Collapse,
    LearningPhase,
    LearningStatus,
    MarketConfig,
    SimulatedMarket,
)

FIXTURE = Path(__file__).parent / "data" / "market_before_learning_phase.json"


def small(phase: LearningPhase | None = LearningPhase(), **overrides: Any) -> MarketConfig:
    base: dict[str, Any] = {
        "seed": 3,
        "n_accounts": 2,
        "campaigns_per_account": 2,
        "variants_per_campaign": 4,
        "campaign_daily_budget_minor": 20_000,  # ~5 clicks an hour per ad set
        "learning_phase": phase,
    }
    base.update(overrides)
    return MarketConfig(**base)


# -- learning off: the market as it was ------------------------------------------------------


def run_scenario(**extra: Any) -> dict[str, Any]:
    """A small market driven through every lever for 48 hours, every output recorded. The
    fixture holds this scenario's outputs from the market before the learning phase (commit
    380ad51, recorded with ``extra`` empty)."""
    config = MarketConfig(
        seed=5,
        n_accounts=2,
        campaigns_per_account=2,
        variants_per_campaign=3,
        reporting_delay_hours=1,
        collapses=(Collapse(at_hour=30, ad_index=4),),
        **extra,
    )
    market = SimulatedMarket(config)
    account = market.accounts()[0]
    platform = market.platform(account)
    ad_set_ids = market.ad_set_ids
    hours = []
    for h in range(48):
        if h % 3 == 1:  # scale every ad set by +-50% (and +-10%) in turn
            factors = np.where(np.arange(config.n_variants) % 2 == h % 2, 1.5, 0.5)
            factors[::4] = 1.1 if h % 2 else 0.9
            market.set_budgets_bulk((market.budgets() * factors).astype(np.int64))
        if h == 5:
            platform.set_ad_set_budget(ad_set_ids[0], 7_000)
        if h == 8:
            market.set_ad_set_status(ad_set_ids[1], False)
        if h == 20:
            market.set_ad_set_status(ad_set_ids[1], True)
        if h == 12:
            platform.set_ad_status(market.ad_ids[2], Status.PAUSED)
        truth = market.evaluation
        entry: dict[str, Any] = {
            "ctr": truth.true_ctr_array().tolist(),
            "value": truth.expected_value_array().tolist(),
            "cpm": truth.expected_cpm_array().tolist(),
            "oracle": truth.oracle_budgets().tolist(),
        }
        totals = market.step()
        rec = market.history(h)
        assert rec is not None
        for name in (
            "impressions",
            "clicks",
            "link_clicks",
            "conversions",
            "video_views",
            "spend_minor",
            "revenue_minor",
        ):
            entry[name] = getattr(rec, name).tolist()
        entry["totals"] = [totals.impressions, totals.clicks, totals.spend_minor]
        hours.append(entry)
    rows = platform.fetch_insights(config.start, market.current_hour)
    return {
        "hours": hours,
        "rows": len(rows),
        "ad_sets": [
            [s.external_id, s.status.value, s.daily_budget_minor] for s in platform.list_ad_sets()
        ],
        "budgets": market.budgets().tolist(),
    }


@pytest.mark.parametrize("phase", [None, LearningPhase(penalty=0.0)], ids=["none", "penalty0"])
def test_learning_off_is_byte_identical_to_the_market_before_it(
    phase: LearningPhase | None,
) -> None:
    expected = json.loads(FIXTURE.read_text())
    got = json.loads(json.dumps(run_scenario(learning_phase=phase)))
    assert_same(got, expected)


def assert_same(got: object, expected: object, where: str = "") -> None:
    """Every count and amount equal, every float equal to its last bits: numpy's vectorised
    paths differ between CPUs by an ulp (seen on the fixture's CTRs and CPMs: at most 6e-16
    relative, while every integer matched)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_same(g, e, f"{where}[{i}]")
    elif isinstance(expected, float) or isinstance(got, float):
        assert isinstance(got, int | float) and isinstance(expected, int | float), where
        assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-300), (where, got, expected)
    else:
        assert got == expected, (where, got, expected)


def test_learning_on_changes_clicks_not_impressions_or_spend() -> None:
    expected = json.loads(FIXTURE.read_text())
    got = json.loads(json.dumps(run_scenario()))  # the default: on
    for old, new in zip(expected["hours"], got["hours"], strict=True):
        for name in ("impressions", "spend_minor", "cpm", "video_views"):
            assert new[name] == old[name]
    assert sum(sum(h["clicks"]) for h in got["hours"]) < sum(
        sum(h["clicks"]) for h in expected["hours"]
    )


def test_the_default_is_on_with_the_stated_defaults() -> None:
    phase = MarketConfig().learning_phase
    assert phase == LearningPhase()
    assert phase is not None
    assert (phase.penalty, phase.learning_events, phase.result) == (0.2, 50, "clicks")
    assert (phase.window_hours, phase.significant_edit_fraction, phase.pause_reset_hours) == (
        168,
        0.2,
        168,
    )
    assert phase.start_in_learning
    with pytest.raises(ValueError):
        LearningPhase(penalty=1.0)
    with pytest.raises(ValueError):
        LearningPhase(learning_events=0)


# -- the states ------------------------------------------------------------------------------


def run_until_all_exited(market: SimulatedMarket, limit: int = 400) -> None:
    for _ in range(limit):
        if not market.evaluation.learning_array().any():
            return
        market.step()
    raise AssertionError("ad sets did not exit learning")


def test_a_new_ad_set_starts_in_learning_and_exits_after_50_results() -> None:
    market = SimulatedMarket(small())
    truth = market.evaluation
    assert truth.learning_array().all()
    assert set(truth.learning_statuses().values()) == {LearningStatus.LEARNING}
    n = market.config.n_variants
    clicks = np.zeros(n, dtype=np.int64)
    exit_hour = np.full(n, -1)
    for h in range(200):
        before = truth.learning_array()
        market.step()
        rec = market.history(h)
        assert rec is not None
        clicks += rec.clicks
        after = truth.learning_array()
        newly = before & ~after
        exit_hour[newly] = h
        # Exactly when the clicks since launch reach 50, not before.
        assert (clicks[after] < 50).all()
        assert (clicks[newly] >= 50).all()
    assert (exit_hour >= 0).all(), "every ad set of this market gets 50 clicks within 200 hours"
    assert (truth.hours_in_learning_array() == exit_hour + 1).all()
    assert truth.learning(market.ad_set_ids[0]) is LearningStatus.EXITED


def test_a_significant_edit_resets_learning_and_cuts_ctr_by_the_penalty() -> None:
    market = SimulatedMarket(small())
    run_until_all_exited(market)
    truth = market.evaluation
    own = truth.true_ctr_array()  # the creative's own CTR (the default)
    assert np.array_equal(truth.true_ctr_array(learning=True), own)  # out of learning: no penalty
    platform = market.platform(market.accounts()[0])
    ad_set = market.ad_set_ids[0]
    old = int(market.budgets()[0])
    platform.set_ad_set_budget(ad_set, old * 13 // 10)  # +30%
    assert truth.learning(ad_set) is LearningStatus.LEARNING
    assert truth.significant_edits_array()[0] == 1
    assert np.array_equal(truth.true_ctr_array(), own)
    ctr = truth.true_ctr_array(learning=True)
    assert ctr[0] == pytest.approx(0.8 * own[0], rel=1e-12)
    assert np.array_equal(ctr[1:], own[1:])
    value = truth.expected_value_array("clicks_per_dollar", learning=True)
    plain = truth.expected_value_array("clicks_per_dollar")
    assert value[0] == pytest.approx(0.8 * plain[0], rel=1e-12)
    assert truth.learning_factor_array().tolist() == [0.8] + [1.0] * (market.config.n_variants - 1)


@pytest.mark.parametrize(
    ("new_budget", "resets"),
    [(1200, False), (800, False), (1201, True), (799, True), (1000, False), (0, True)],
)
def test_only_a_change_of_more_than_20_percent_is_significant(
    new_budget: int, resets: bool
) -> None:
    quick = LearningPhase(learning_events=5)
    market = SimulatedMarket(small(quick, campaign_daily_budget_minor=4000))  # 1000 per ad set
    run_until_all_exited(market)
    ad_set = market.ad_set_ids[0]
    market.set_budgets_bulk({ad_set: new_budget})
    status = market.evaluation.learning(ad_set)
    assert status is (LearningStatus.LEARNING if resets else LearningStatus.EXITED)
    # The flat-array lever judges the same way.
    twin = SimulatedMarket(small(quick, campaign_daily_budget_minor=4000))
    run_until_all_exited(twin)
    budgets = twin.budgets()
    budgets[0] = new_budget
    twin.set_budgets_bulk(budgets)
    assert twin.evaluation.learning_array()[0] == resets
    assert not twin.evaluation.learning_array()[1:].any()


def test_the_threshold_is_configurable() -> None:
    phase = LearningPhase(significant_edit_fraction=0.5, learning_events=5)
    market = SimulatedMarket(small(phase, campaign_daily_budget_minor=4000))
    run_until_all_exited(market)
    market.set_budgets_bulk({market.ad_set_ids[0]: 1400, market.ad_set_ids[1]: 1600})
    assert market.evaluation.learning_array()[:2].tolist() == [False, True]


def test_without_enough_results_in_a_week_it_is_learning_limited_and_keeps_the_penalty() -> None:
    market = SimulatedMarket(small(LearningPhase(learning_events=10**9)))
    truth = market.evaluation
    market.run(167)
    assert set(truth.learning_statuses().values()) == {LearningStatus.LEARNING}
    market.step()
    assert set(truth.learning_statuses().values()) == {LearningStatus.LIMITED}
    market.run(24)
    assert set(truth.learning_statuses().values()) == {LearningStatus.LIMITED}
    assert np.allclose(truth.learning_factor_array(), 0.8)
    assert (truth.hours_in_learning_array() == 192).all()
    market.set_budgets_bulk({market.ad_set_ids[0]: int(market.budgets()[0]) * 2})
    assert truth.learning(market.ad_set_ids[0]) is LearningStatus.LEARNING


def test_a_pause_of_7_days_resets_learning_a_shorter_one_does_not() -> None:
    market = SimulatedMarket(small())
    run_until_all_exited(market)
    truth = market.evaluation
    short, long_ = market.ad_set_ids[0], market.ad_set_ids[1]
    ad_of_long = market.ad_ids[1]
    market.set_ad_set_status(short, False)
    market.platform(market.accounts()[0]).set_ad_status(ad_of_long, Status.PAUSED)
    market.run(167)
    market.set_ad_set_status(short, True)  # 167 hours dark
    market.step()
    platform = market.platform(market.accounts()[0])
    platform.set_ad_status(ad_of_long, Status.ACTIVE)  # 168 hours dark
    assert truth.learning(short) is LearningStatus.EXITED
    assert truth.learning(long_) is LearningStatus.LEARNING
    assert truth.significant_edits_array()[:2].tolist() == [0, 1]


def test_dark_hours_do_not_use_up_the_learning_window() -> None:
    market = SimulatedMarket(small(LearningPhase(learning_events=10**9)))
    ad_set = market.ad_set_ids[0]
    market.set_ad_set_status(ad_set, False)
    market.run(100)
    market.set_ad_set_status(ad_set, True)
    market.run(100)
    statuses = market.evaluation.learning_statuses()
    assert statuses[ad_set] is LearningStatus.LEARNING  # 100 live hours, not 200
    assert statuses[market.ad_set_ids[1]] is LearningStatus.LIMITED


def test_learning_off_reports_off_and_no_state() -> None:
    market = SimulatedMarket(small(None))
    market.run(3)
    truth = market.evaluation
    assert truth.learning(market.ad_set_ids[0]) is LearningStatus.OFF
    assert not truth.learning_array().any()
    assert (truth.learning_factor_array() == 1.0).all()
    assert (truth.hours_in_learning_array() == 0).all()


def test_the_platform_answers_the_minimum_daily_budget_it_enforces() -> None:
    market = SimulatedMarket(small())
    platform = market.platform(market.accounts()[0])
    assert isinstance(platform, MinimumBudget)
    # No minimum of its own: any non-negative budget is accepted, and the capability wants a
    # positive answer, so the smallest positive one.
    assert platform.min_daily_budget_minor() == 1
    assert min_daily_budget_floor_minor(platform, "USD") == 1
    platform.set_ad_set_budget(market.ad_set_ids[0], 1)
    platform.set_ad_set_budget(market.ad_set_ids[0], 0)
    with pytest.raises(ValueError):
        platform.set_ad_set_budget(market.ad_set_ids[0], -1)


# -- churn: budget edits cost efficiency only through the learning phase ------------------------


def churn_run(phase: LearningPhase | None, churn: bool, hours: int = 14 * 24) -> tuple[int, int]:
    """Clicks and spend (minor) of a market left alone or edited every hour by +-50% of its
    starting budgets (alternately 1.5x and 0.5x, so the mean budget is the same)."""
    market = SimulatedMarket(
        MarketConfig(
            seed=21,
            n_accounts=4,
            campaigns_per_account=2,
            variants_per_campaign=6,
            learning_phase=phase,
        )
    )
    base = market.budgets()
    clicks = spend = 0
    for h in range(hours):
        if churn:
            market.set_budgets_bulk(base * 3 // 2 if h % 2 == 0 else base // 2)
        totals = market.step()
        clicks += totals.clicks
        spend += totals.spend_minor
    return clicks, spend


def churn_gap(phase: LearningPhase | None) -> float:
    """Relative loss of clicks per dollar of the churned market against the one left alone."""
    calm_clicks, calm_spend = churn_run(phase, churn=False)
    churn_clicks, churn_spend = churn_run(phase, churn=True)
    return 1.0 - (churn_clicks / churn_spend) / (calm_clicks / calm_spend)


def test_hourly_budget_churn_costs_clicks_per_dollar_only_with_learning_on() -> None:
    on = churn_gap(LearningPhase())
    off = churn_gap(None)
    # Churned: in learning all the time (0.8 CTR); calm: only until ~50 clicks (a few days).
    assert 0.08 < on < 0.2
    assert abs(off) < 0.02  # the null twin: the same edits cost (almost) nothing
    assert on - off > 0.08


def test_the_penalty_is_a_sensitivity_knob() -> None:
    weak = churn_gap(LearningPhase(penalty=0.1))
    strong = churn_gap(LearningPhase(penalty=0.4))
    assert 0.0 < weak < churn_gap(LearningPhase()) < strong


def test_learning_phase_config_is_frozen() -> None:
    phase = LearningPhase()
    with pytest.raises(dataclasses.FrozenInstanceError):
        phase.penalty = 0.5  # type: ignore[misc]
