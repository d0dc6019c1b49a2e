"""The foundation cycle: sync, fetch, reallocate; isolated failures; never applied twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib
from sqlalchemy import Engine, select

from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import (
    CycleBusyError,
    CycleDeps,
    CycleInputError,
    CycleOptions,
    CycleStep,
)
from adflywheel.cycle.runner import run_cycle
from adflywheel.services.bandit.budgets import CampaignState, Proposal, largest_remainder
from adflywheel.services.bandit.policies import UniformPolicy
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, BudgetChange, CycleRun, HourlyActualRow
from tests.factories.helpers import count_rows
from tests.factories.market import simulated_account

HOUR = timedelta(hours=1)


class FavourFirst:
    """A test policy: 70% of each campaign to its first variant, the rest evenly."""

    name = "favour-first"

    def propose(self, campaign: CampaignState, hour: datetime) -> Proposal:
        n = len(campaign.variants)
        weights = [0.7] + [0.3 / (n - 1)] * (n - 1)
        budgets = largest_remainder(campaign.total_budget_minor, weights)
        return Proposal(
            {v.ad_set_external_id: b for v, b in zip(campaign.variants, budgets, strict=True)},
            "test",
            {"weights": weights},
        )


class Broken:
    name = "broken"

    def propose(self, campaign: CampaignState, hour: datetime) -> Proposal:
        raise RuntimeError("model exploded")


@pytest.fixture
def world(engine: Engine) -> tuple[SimulatedMarket, ManualClock, int]:
    market, account_id = simulated_account(
        engine, MarketConfig(seed=3, n_accounts=2, campaigns_per_account=2, variants_per_campaign=3)
    )
    clock = ManualClock(market.current_hour)
    for _ in range(3):
        market.step()
        clock.advance(HOUR)
    return market, clock, account_id


def deps(engine: Engine, market: SimulatedMarket, clock: ManualClock, policy: object) -> CycleDeps:
    return CycleDeps(
        make_session_factory(engine),
        clock,
        market.platform(market.accounts()[0]),
        policy,  # type: ignore[arg-type]
        settings=Settings(loops=(2, 4)),
    )


def test_cycle_syncs_fetches_and_reallocates_within_the_total(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int]
) -> None:
    market, clock, account_id = world
    report = run_cycle(account_id, deps(engine, market, clock, FavourFirst()), CycleOptions())
    assert report.status == "completed", report.errors
    assert report.steps["sync_catalog"]["ads"] == 6
    assert report.steps["fetch_actuals"]["inserted"] == 6 * 3
    assert count_rows(engine, HourlyActualRow) == 18
    budgets = market.budgets()[:6]
    assert budgets[:3].sum() == market.config.campaign_daily_budget_minor
    assert budgets[0] == round(0.7 * market.config.campaign_daily_budget_minor)
    with make_session_factory(engine)() as session:
        changes = session.scalars(select(BudgetChange)).all()
        assert {c.mode for c in changes} == {"applied"}
        assert all(c.evidence == {"weights": [0.7, 0.15, 0.15]} for c in changes)
        stored = {a.external_id: a.daily_budget_minor for a in session.scalars(select(AdSet))}
    assert stored[market.ad_set_ids[0]] == budgets[0]


def test_a_completed_hour_is_not_run_again_and_forcing_never_reapplies_budgets(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int]
) -> None:
    market, clock, account_id = world
    d = deps(engine, market, clock, FavourFirst())
    run_cycle(account_id, d, CycleOptions())
    changes = count_rows(engine, BudgetChange)
    again = run_cycle(account_id, d, CycleOptions())
    assert again.skipped and again.status == "completed"
    market.set_budgets_bulk({market.ad_set_ids[0]: 1})  # someone edits by hand meanwhile
    forced = run_cycle(account_id, d, CycleOptions(force=True))
    assert not forced.skipped
    assert forced.steps["reallocate_budgets"]["budgets_changed"] == 0
    # the only new record is the hand-made change, seen at the sync (it is the baseline now)
    assert count_rows(engine, BudgetChange) == changes + 1
    by_hand = forced.steps["sync_catalog"]["budgets_changed_by_hand"]
    assert [(c["ad_set_id"], c["new"]) for c in by_hand] == [(market.ad_set_ids[0], 1)]
    assert market.budgets()[0] == 1  # the hour's decision was not applied a second time
    assert count_rows(engine, CycleRun) == 1


def test_a_failing_step_is_reported_and_the_others_still_run(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int]
) -> None:
    market, clock, account_id = world
    report = run_cycle(account_id, deps(engine, market, clock, Broken()), CycleOptions())
    assert report.status == "partial"
    assert "model exploded" in report.errors["reallocate_budgets"]
    assert report.steps["fetch_actuals"]["inserted"] == 18
    with make_session_factory(engine)() as session:
        run = session.scalars(select(CycleRun)).one()
        assert run.status == "partial"
        assert "model exploded" in run.report["errors"]["reallocate_budgets"]


def test_dry_run_records_without_touching_the_platform(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int]
) -> None:
    market, clock, account_id = world
    before = market.budgets()
    run_cycle(account_id, deps(engine, market, clock, FavourFirst()), CycleOptions(dry_run=True))
    assert (market.budgets() == before).all()
    with make_session_factory(engine)() as session:
        assert {c.mode for c in session.scalars(select(BudgetChange))} == {"dry_run"}


def test_a_running_hour_blocks_a_second_run(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int]
) -> None:
    market, clock, account_id = world
    with transaction(make_session_factory(engine)) as session:
        session.add(
            CycleRun(
                account_id=account_id,
                hour_start=clock.now(),
                status="running",
                started_at=clock.now(),
                lease_until=datetime.now(UTC) + timedelta(minutes=10),
            )
        )
    with pytest.raises(CycleBusyError):
        run_cycle(account_id, deps(engine, market, clock, UniformPolicy()), CycleOptions())
    # Nor may another hour of the same account run meanwhile (a replay of the previous hour).
    with pytest.raises(CycleBusyError):
        run_cycle(
            account_id,
            deps(engine, market, clock, UniformPolicy()),
            CycleOptions(as_of=clock.now() - HOUR),
        )


def test_a_crashed_run_is_taken_over_once_its_lease_has_expired(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int]
) -> None:
    market, clock, account_id = world
    with transaction(make_session_factory(engine)) as session:
        session.add(
            CycleRun(
                account_id=account_id,
                hour_start=clock.now(),
                status="running",  # what kill -9 leaves behind
                started_at=clock.now(),
                lease_until=datetime.now(UTC) - timedelta(seconds=1),
            )
        )
    report = run_cycle(account_id, deps(engine, market, clock, FavourFirst()), CycleOptions())
    assert report.recovered and report.status == "completed"
    assert report.steps["reallocate_budgets"]["budgets_changed"] > 0
    with make_session_factory(engine)() as session:
        run = session.scalars(select(CycleRun)).one()
        assert run.status == "completed" and run.lease_until is None


def test_as_of_replays_a_past_hour_and_refuses_the_future(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int]
) -> None:
    market, clock, account_id = world
    d = deps(engine, market, clock, FavourFirst())
    past = clock.now() - 2 * HOUR
    report = run_cycle(account_id, d, CycleOptions(as_of=past + timedelta(minutes=7)))
    assert report.hour_start == past
    # As of two hours ago only the first simulated hour was complete.
    assert report.steps["fetch_actuals"]["inserted"] == 6
    assert run_cycle(account_id, d, CycleOptions(as_of=past)).skipped
    with pytest.raises(CycleInputError):
        run_cycle(account_id, d, CycleOptions(as_of=clock.now() + HOUR))
    as_dict = report.as_dict()
    for key in (
        "accuracy",
        "retrained",
        "dna_extracted",
        "winners_indexed",
        "winners_promoted",
        "total_budget_allocated",
        "loops",
        "skipped",
    ):
        assert key in as_dict
    assert as_dict["loops"]["creative_dna"]["status"] == "ok"
    assert as_dict["loops"]["auto_promote"]["status"] == "off"


def test_uniform_splits_exactly_and_skips_paused_variants() -> None:
    assert largest_remainder(100, [1, 1, 1]) == [34, 33, 33]
    assert sum(largest_remainder(10_001, [0.2, 0.3, 0.5])) == 10_001
    with pytest.raises(ValueError):
        largest_remainder(10, [0, 0])


def test_promotions_survive_later_reallocations_and_ceilings_hold(engine: Engine) -> None:
    """The composition rule: Thompson splits the total, a promoted ad set keeps its promoted
    budget while the promotion stands, and no ad set ever goes past the account's ceiling."""
    from adflywheel.services.bandit.policies import ThompsonPolicy
    from adflywheel.services.promoter.settings import load_settings, store_settings
    from adflywheel.store.models import Campaign

    market, account_id = simulated_account(
        engine, MarketConfig(seed=5, n_accounts=1, campaigns_per_account=1, variants_per_campaign=3)
    )
    clock = ManualClock(market.current_hour)
    factory = make_session_factory(engine)
    ceiling = 15_000
    with transaction(factory) as session:
        settings = load_settings(session, account_id)
        guardrails = replace(
            settings.guardrails, max_variant_budget_minor=ceiling, cooldown_hours=500
        )
        store_settings(
            session,
            account_id,
            replace(settings, guardrails=guardrails),
            now=clock.now(),
            actor="test",
        )
    best = market.ad_set_ids[1]
    # Make the second variant (the first is the control) a clear winner.
    market._state.multiplier[1] *= 3.0  # test-only lever on the hidden truth
    deps = CycleDeps(factory, clock, market.platform(market.accounts()[0]), ThompsonPolicy(seed=1))
    promoted_at: int | None = None
    for hour in range(60):
        market.step()
        clock.advance(HOUR)
        report = run_cycle(account_id, deps, CycleOptions(loops=frozenset({2, 4, 7})))
        assert report.status == "completed", report.errors
        budgets = dict(zip(market.ad_set_ids, market.budgets().tolist(), strict=True))
        assert max(budgets.values()) <= ceiling
        if promoted_at is None and report.steps["auto_promote"]["promoted"]:
            promoted_at, floor = hour, budgets[best]
            assert report.steps["auto_promote"]["promoted"][0]["variant"] == market.ad_ids[1]
        elif promoted_at is not None:
            assert budgets[best] >= floor, (hour, budgets)
    assert promoted_at is not None, "the clear winner was never promoted"
    with make_session_factory(engine)() as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.external_id == market.campaign_ids[0]


def test_the_kill_switch_stops_automatic_reallocation(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int]
) -> None:
    from adflywheel.services.promoter.settings import load_settings, store_settings

    market, clock, account_id = world
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        settings = load_settings(session, account_id)
        killed = replace(settings, guardrails=replace(settings.guardrails, kill_switch=True))
        store_settings(session, account_id, killed, now=clock.now(), actor="test")
    before = market.budgets()
    report = run_cycle(account_id, deps(engine, market, clock, FavourFirst()), CycleOptions())
    assert "kill switch" in report.steps["reallocate_budgets"]["skipped"]
    assert (market.budgets() == before).all()
    assert count_rows(engine, BudgetChange) == 0


def test_a_dry_run_neither_uses_up_the_hour_nor_blocks_its_real_run(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int]
) -> None:
    market, clock, account_id = world
    d = deps(engine, market, clock, FavourFirst())
    before = market.budgets().copy()
    dry = run_cycle(account_id, d, CycleOptions(dry_run=True))
    assert dry.status == "completed" and dry.dry_run and not dry.skipped, dry.errors
    proposed = dry.steps["reallocate_budgets"]["budgets_changed"]
    assert proposed > 0
    assert (market.budgets() == before).all()
    assert count_rows(engine, CycleRun) == 0  # the dry run gave the hour back
    # A repeated dry run answers the decision it recorded, and records nothing more.
    records = count_rows(engine, BudgetChange)
    assert (
        run_cycle(account_id, d, CycleOptions(dry_run=True)).steps["reallocate_budgets"][
            "budgets_changed"
        ]
        == proposed
    )
    assert count_rows(engine, BudgetChange) == records

    real = run_cycle(account_id, d, CycleOptions())  # the scheduled run of the same hour
    assert not real.skipped and real.status == "completed", real.errors
    assert real.steps["reallocate_budgets"]["budgets_changed"] == proposed
    assert market.budgets()[0] == round(0.7 * market.config.campaign_daily_budget_minor)
    with make_session_factory(engine)() as session:
        modes = [c.mode for c in session.scalars(select(BudgetChange))]
        run = session.scalars(select(CycleRun)).one()
        assert run.status == "completed" and run.report["dry_run"] is False
    assert modes.count("dry_run") == modes.count("applied") == proposed

    # A forced dry run of the completed hour leaves it completed, with the real run's report.
    assert not run_cycle(account_id, d, CycleOptions(dry_run=True, force=True)).skipped
    with make_session_factory(engine)() as session:
        run = session.scalars(select(CycleRun)).one()
        assert run.status == "completed" and run.lease_until is None
        assert run.report["dry_run"] is False
    assert run_cycle(account_id, d, CycleOptions()).skipped


def test_one_campaign_that_cannot_be_split_is_skipped_and_alerted_the_others_go_on(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int]
) -> None:
    """A campaign whose total is above its active variants × the ceiling makes the allocator
    refuse it; that campaign alone is skipped (reported, alerted), the other is reallocated."""
    from adflywheel.services.bandit.policies import ThompsonPolicy
    from adflywheel.services.promoter.settings import load_settings, store_settings

    market, clock, account_id = world
    factory = make_session_factory(engine)
    ceiling = 5_000
    with transaction(factory) as session:
        settings = load_settings(session, account_id)
        capped = replace(
            settings, guardrails=replace(settings.guardrails, max_variant_budget_minor=ceiling)
        )
        store_settings(session, account_id, capped, now=clock.now(), actor="test")
    # The second campaign's ad sets were raised by hand: 3 × 8,000 > 3 × the ceiling.
    market.set_budgets_bulk({a: 8_000 for a in market.ad_set_ids[3:6]})
    for _ in range(24):  # a day of evidence: enough for Thompson to move the first campaign
        market.step()
        clock.advance(HOUR)
    alerts: list[tuple[str, str, dict[str, object]]] = []
    d = replace(
        deps(engine, market, clock, ThompsonPolicy(seed=1)),
        alert=lambda kind, message, details: alerts.append((kind, message, details)),
    )
    before = market.budgets().copy()
    report = run_cycle(account_id, d, CycleOptions())
    assert report.status == "completed", report.errors
    step = report.steps["reallocate_budgets"]
    assert step["status"] == "ok" and step["campaigns"] == 1
    (skipped,) = step["campaigns_skipped"]
    assert skipped["external_id"] == market.campaign_ids[1]
    assert "above the sum of the active variants' maximum budgets" in skipped["reason"]
    assert [(kind, details["campaign"]) for kind, _, details in alerts] == [
        ("campaign_reallocation_skipped", market.campaign_ids[1])
    ]
    after = market.budgets()
    assert (after[3:6] == before[3:6]).all()  # the refused campaign is left as it was
    assert after[:3].sum() == before[:3].sum() and (after[:3] != before[:3]).any()
    assert step["budgets_changed"] > 0 and step["total_budget_minor"] == before[:3].sum()
    assert max(after[:3]) <= ceiling


def _steps(*steps: object) -> list[CycleStep]:
    return [CycleStep(f"step{i}", None, step) for i, step in enumerate(steps)]  # type: ignore[arg-type]


def test_the_heartbeat_keeps_a_run_longer_than_its_lease_from_being_taken_over(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from adflywheel.cycle import steps as cycle_steps

    market, clock, account_id = world
    d = deps(engine, market, clock, FavourFirst())
    seen: list[str] = []

    def slow(ctx: object) -> dict[str, object]:
        time.sleep(0.6)
        return {}

    def probe(ctx: object) -> dict[str, object]:
        # 1.2 s after the claim, past its first 1 s lease: a second run must still be refused.
        try:
            run_cycle(account_id, d, CycleOptions())
            seen.append("taken over")
        except CycleBusyError:
            seen.append("busy")
        return {}

    monkeypatch.setattr(cycle_steps, "STEPS", _steps(slow, slow, probe))
    report = run_cycle(account_id, d, CycleOptions(lease_seconds=1.0))
    assert report.status == "completed" and not report.recovered, report.errors
    assert seen == ["busy"]
    with make_session_factory(engine)() as session:
        run = session.scalars(select(CycleRun)).one()
        assert run.status == "completed" and run.lease_until is None


def test_a_run_whose_claim_was_taken_over_stops_loudly_and_writes_nothing_more(
    engine: Engine, world: tuple[SimulatedMarket, ManualClock, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from adflywheel.cycle import steps as cycle_steps
    from adflywheel.cycle.context import CycleLeaseLostError

    market, clock, account_id = world
    d = deps(engine, market, clock, FavourFirst())
    usurper: list[object] = []
    later: list[float] = []
    stalled: list[bool] = []

    def stall(ctx: object) -> dict[str, object]:
        if not stalled:  # stalls past its tiny lease: another run takes the hour over
            stalled.append(True)
            time.sleep(0.5)
            usurper.append(run_cycle(account_id, d, CycleOptions(lease_seconds=60)))
        return {}

    def after(ctx: object) -> dict[str, object]:
        later.append(ctx.options.lease_seconds)  # type: ignore[attr-defined]
        return {}

    monkeypatch.setattr(cycle_steps, "STEPS", _steps(stall, after))
    with pytest.raises(CycleLeaseLostError, match="taken over"):
        run_cycle(account_id, d, CycleOptions(lease_seconds=0.2))
    (taken,) = usurper
    assert taken.recovered and taken.status == "completed"  # type: ignore[attr-defined]
    assert later == [60]  # only the run that took over went on to the next step
    with make_session_factory(engine)() as session:
        run = session.scalars(select(CycleRun)).one()
        assert run.status == "completed" and run.report["recovered"] is True


def test_a_cycle_under_the_redis_lock_and_a_lock_that_lapsed_meanwhile(
    engine: Engine,
    world: tuple[SimulatedMarket, ManualClock, int],
    redis_client: redis_lib.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real cycle with Redis configured: the lock is held while it runs and released after;
    a held lock makes the account busy; a lock whose timeout passed during the run (here: gone
    from Redis) is a warning, never a failure of the run that completed."""
    from adflywheel.cycle.locks import LockBusyError, redis_account_lock, renew_redis_lock

    market, clock, account_id = world
    key = f"adflywheel:cycle:{account_id}"
    held: list[bool] = []

    class Watching(FavourFirst):
        def propose(self, campaign: CampaignState, hour: datetime) -> Proposal:
            held.append(bool(redis_client.exists(key)))
            return super().propose(campaign, hour)

    d = replace(deps(engine, market, clock, Watching()), redis=redis_client)
    report = run_cycle(account_id, d, CycleOptions(as_of=clock.now() - HOUR))
    assert report.status == "completed", report.errors
    assert held and all(held) and not redis_client.exists(key)

    other = redis_client.lock(key, timeout=60)
    assert other.acquire(blocking=False)
    with pytest.raises(LockBusyError):
        run_cycle(account_id, d, CycleOptions())
    other.release()

    class Lapsing(FavourFirst):
        def propose(self, campaign: CampaignState, hour: datetime) -> Proposal:
            redis_client.delete(key)  # what the lock's timeout does to a long run
            return super().propose(campaign, hour)

    caplog.set_level("WARNING", logger="adflywheel.cycle.locks")
    lapsed = replace(d, policy=Lapsing())
    report = run_cycle(account_id, lapsed, CycleOptions())
    assert report.status == "completed", report.errors
    assert report.steps["reallocate_budgets"]["campaigns"] == 2
    assert "no longer held at release" in caplog.text
    with make_session_factory(engine)() as session:
        statuses = {r.status for r in session.scalars(select(CycleRun))}
    assert statuses == {"completed"}

    import time

    with redis_account_lock(redis_client, account_id, timeout_seconds=0.1) as lock:
        time.sleep(0.3)  # the timeout itself passes: a heartbeat cannot extend it, and
        assert renew_redis_lock(lock, account_id) is False  # leaving the block does not raise
    assert "could not extend the Redis cycle lock" in caplog.text
