"""The churn scenario (synthetic data, issue #15): new ads appear on schedule, old ones are
retired by the advertiser, niches share their gene truth, and the null twin has none."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from adflywheel.sim.harness import run_policy, simulate
from adflywheel.sim.market import SimulatedMarket
from adflywheel.sim.market.world import build_world
from adflywheel.sim.scenarios import (
    ACCOUNTS_PER_NICHE,
    CHURN_NICHES,
    LIVE_ADS,
    SCENARIOS,
    churn_spec,
    launch_hours,
)
from adflywheel.store.engine import make_engine, make_session_factory, transaction
from adflywheel.store.models import Variant


def test_the_full_scenario_is_fifteen_accounts_in_three_niches_for_three_weeks() -> None:
    spec = churn_spec(3, "loops=2")
    assert (spec.days, spec.accounts, spec.guardrails) == (21, 15, "safe")
    assert spec.structures == ("ad_set_budgets",)  # one ad per ad set (ABO)
    assert spec.learning_penalty is not None  # the market's learning phase, on
    assert "marginal_oracle" in spec.references
    world = build_world(spec.market_config())
    counts = Counter(CHURN_NICHES[n] for n in world.account_niche.tolist())
    assert counts == dict.fromkeys(CHURN_NICHES, ACCOUNTS_PER_NICHE)
    # Every campaign gets a new ad about every three days, each launch a day or more before
    # the end, so its first day is measured.
    for c in range(spec.accounts * spec.campaigns_per_account):
        hours = launch_hours(3, c, 21)
        assert len(hours) == spec.variants_per_campaign - LIVE_ADS == 6
        assert all(b - a >= 24 for a, b in itertools.pairwise(hours))
        assert hours[0] >= 1 and hours[-1] <= 21 * 24 - 24
    # Jittered by the seed: campaigns and seeds differ.
    assert launch_hours(3, 0, 21) != launch_hours(3, 1, 21)
    assert launch_hours(3, 0, 21) != launch_hours(4, 0, 21)


def test_a_niche_shares_its_gene_truth_across_its_accounts() -> None:
    world = build_world(churn_spec(5, "uniform").market_config())
    effects = world.effects
    # Two accounts of one niche: their hook effects differ by the small per-account deviation
    # only; two niches differ by the niche's shared deviation too.
    by_niche: dict[int, list[int]] = {}
    for a, n in enumerate(world.account_niche.tolist()):
        by_niche.setdefault(n, []).append(a)

    def hooks(a: int) -> np.ndarray:
        n = int(world.account_niche[a])
        return effects.hook_global + effects.hook_niche[n] + effects.hook_account[a]

    same = [np.abs(hooks(a) - hooks(b)).mean() for a, b in (by_niche[0][:2], by_niche[1][:2])]
    across = np.abs(hooks(by_niche[0][0]) - hooks(by_niche[2][0])).mean()
    assert max(same) < across / 2


def test_the_null_twin_has_no_gene_effect_and_the_strong_twin_twice_it() -> None:
    assert SCENARIOS == {"churn": 1.0, "null": 0.0, "strong": 2.0}
    worlds = {
        name: build_world(churn_spec(5, "uniform", gene_effect_scale=scale).market_config())
        for name, scale in SCENARIOS.items()
    }
    w1, w0, w2 = worlds["churn"], worlds["null"], worlds["strong"]
    gene = w1.effects.ctr_logit(w1.genes, w1.niche_of, w1.account_of)
    assert np.abs(gene).max() > 0.1
    assert np.allclose(w0.effects.ctr_logit(w0.genes, w0.niche_of, w0.account_of), 0.0)
    # Same seed, same world otherwise: the twins' CTRs differ by the gene effects only.
    assert np.allclose(w1.base_logit - w0.base_logit, gene)
    assert np.allclose(w2.base_logit - w0.base_logit, 2 * gene)


def test_new_ads_appear_at_launch_and_old_ones_are_retired_on_schedule() -> None:
    spec = churn_spec(2, "uniform", quick=True)
    market = SimulatedMarket(spec.market_config())
    account = market.accounts()[0]
    platform = market.platform(account)
    launch = next(x for x in spec.launches if market.campaign_of[x.ad_set_index] == 0)
    new_ad = market.ad_ids[launch.ad_set_index]
    retired = market.ad_ids[launch.retire_ad_index or 0]
    listed = {a.external_id for a in platform.list_ads()}
    assert new_ad not in listed and len(listed) == LIVE_ADS  # not on the platform yet
    assert market.ad_set_ids[launch.ad_set_index] not in {
        s.external_id for s in platform.list_ad_sets()
    }
    total = int(market.campaign_budget_totals()[0])
    while market.hour_index < launch.at_hour:
        market.step()
        assert market.last_hour_totals(account).spend_minor > 0
        record = market.history(market.hour_index - 1)
        assert record is not None and record.impressions[launch.ad_set_index] == 0
    market.step()  # the launch hour
    ads = {a.external_id: a.status for a in platform.list_ads()}
    assert ads[new_ad] == "ACTIVE" and ads[retired] == "PAUSED"
    assert sum(s == "ACTIVE" for s in ads.values()) == LIVE_ADS
    record = market.history(launch.at_hour)
    assert record is not None and record.impressions[launch.ad_set_index] > 0
    assert record.impressions[launch.retire_ad_index or 0] == 0
    budgets = market.budgets()
    assert budgets[launch.ad_set_index] == launch.budget_minor == total // LIVE_ADS
    assert budgets[market.ad_set_of[launch.retire_ad_index or 0]] == 0
    assert market.evaluation.learning(market.ad_set_ids[launch.ad_set_index]) == "learning"


@pytest.mark.slow
def test_the_service_sees_new_ads_appear_and_never_turns_a_retired_one_back_on(
    tmp_path: Path,
) -> None:
    spec = churn_spec(4, "loops=2", quick=True)
    market = SimulatedMarket(spec.market_config())
    _, errors, _, _ = run_policy(spec, lambda: None, tmp_path, market=market)
    assert errors == []
    assert market.evaluation.reactivated_advertiser_pauses() == []
    engine = make_engine(f"sqlite:///{tmp_path / 'simulation.db'}")
    with transaction(make_session_factory(engine)) as session:
        rows = {v.external_id: v for v in session.scalars(select(Variant))}
    engine.dispose()
    start = market.config.start
    for launch in spec.launches:
        new = rows[market.ad_ids[launch.ad_set_index]]
        # In review for an hour before it delivers: the service sees it in the cycle after that
        # hour (hour-start clocks), before its first delivered hour is reported.
        assert new.created_at == start + timedelta(hours=launch.at_hour)
        assert rows[market.ad_ids[launch.retire_ad_index or 0]].status == "PAUSED"


@pytest.mark.slow
def test_quick_mode_runs_well_under_a_minute_with_every_measure() -> None:
    began = time.perf_counter()
    summary = simulate(churn_spec(1, "loops=2", quick=True)).summary()
    assert time.perf_counter() - began < 60
    assert summary["synthetic"] is True and summary["cycle_errors"] == []
    for prefix in ("", "uniform_", "oracle_", "marginal_oracle_"):
        for key in ("cold_start_clicks", "cold_start_spend_minor", "hours_to_lead_new_best"):
            assert prefix + key in summary
    assert summary["cold_start_spend_minor"] > 0
    assert summary["marginal_oracle_clicks"] > 0
