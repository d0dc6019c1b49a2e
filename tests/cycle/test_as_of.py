"""``--as-of`` means one thing (issue #16): the cycle runs as the scheduler would have at that
instant, and the hours that ended by then are final and fetched: the hour just closed is."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import typer
from sqlalchemy import Engine, select

from adflywheel.cli.app import app
from adflywheel.core.clock import ManualClock, ensure_utc
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleDeps, CycleOptions
from adflywheel.cycle.runner import run_cycle
from adflywheel.services.bandit.policies import UniformPolicy
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.engine import make_session_factory
from adflywheel.store.models import HourlyActualRow
from tests.factories.market import simulated_account

HOUR = timedelta(hours=1)


@pytest.fixture
def world(engine: Engine) -> tuple[SimulatedMarket, ManualClock, int]:
    market, account_id = simulated_account(
        engine, MarketConfig(seed=3, n_accounts=2, campaigns_per_account=1, variants_per_campaign=2)
    )
    clock = ManualClock(market.current_hour)
    for _ in range(4):  # four hours delivered; the clock is at the end of the last one
        market.step()
        clock.advance(HOUR)
    clock.advance(timedelta(minutes=45))
    return market, clock, account_id


def hours_stored(engine: Engine, account_id: int) -> set[datetime]:
    with make_session_factory(engine)() as session:
        rows = session.scalars(
            select(HourlyActualRow.hour_start).where(HourlyActualRow.account_id == account_id)
        ).all()
    return {ensure_utc(row) for row in rows}


@pytest.mark.parametrize(("minutes", "closed_is_fetched"), [(0, True), (30, True), (-1, False)])
def test_the_hour_just_closed_is_fetched(
    engine: Engine,
    world: tuple[SimulatedMarket, ManualClock, int],
    minutes: int,
    closed_is_fetched: bool,
) -> None:
    market, clock, account_id = world
    end = market.current_hour  # the end of the last delivered hour
    just_closed = end - HOUR
    deps = CycleDeps(
        make_session_factory(engine),
        clock,
        market.platform(market.accounts()[0]),
        UniformPolicy(),
        settings=Settings(loops=()),
    )
    as_of = end + timedelta(minutes=minutes)
    report = run_cycle(account_id, deps, CycleOptions(as_of=as_of, loops=frozenset()))
    assert report.status == "completed", report.as_dict()
    stored = hours_stored(engine, account_id)
    assert (just_closed in stored) is closed_is_fetched
    assert max(stored) == (just_closed if closed_is_fetched else just_closed - HOUR)
    assert report.hour_start == (end if closed_is_fetched else end - HOUR)


def test_the_help_says_what_as_of_means() -> None:
    command = typer.main.get_command(app)
    cycle = command.commands["cycle"]  # type: ignore[attr-defined]
    (option,) = [p for p in cycle.params if "--as-of" in p.opts]
    assert "final" in option.help and "just closed" in option.help and "09:00-10:00" in option.help
