"""A small simulated account (synthetic data) run through the service's own cycle, for the
overview, campaigns and promotions pages' tests: on autopilot first (applied changes in the log)
and in recommend mode for its last hours (recommendations of the current hour still open)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.domain import AccountMode
from adflywheel.core.loops import Loop
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleDeps, CycleOptions
from adflywheel.cycle.runner import run_cycle
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.promoter.settings import PromoterSettings, load_settings, store_settings
from adflywheel.sim.harness import simulated_guardrails
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.users import Role, create_user, grant

if TYPE_CHECKING:
    from tests.conftest import Snapshots

HOUR = timedelta(hours=1)
LOOPS = frozenset({Loop.BANDIT, Loop.PROMOTER})


@dataclass(frozen=True, slots=True)
class World:
    account_id: int
    other_account_id: int
    market: SimulatedMarket
    platform: AdPlatform
    factory: sessionmaker[Session]
    clock: ManualClock  # a few minutes into the last cycle's hour


def run_world(
    engine: Engine,
    settings: Settings,
    start: datetime,
    *,
    hours: int = 30,
    recommend_hours: int = 4,
    seed: int = 3,
    guardrails: str = "legacy",
) -> World:
    """``hours`` simulated hours from ``start``; the clock ends 5 minutes into the last one.
    ``guardrails`` as ``simulated_guardrails`` takes them: "legacy" (no edit rules) moves
    budgets every hour, "safe" (the defaults) far less often."""
    config = MarketConfig(
        seed=seed, n_accounts=1, campaigns_per_account=2, variants_per_campaign=3, start=start
    )
    market = SimulatedMarket(config)
    external = market.accounts()[0]
    platform = market.platform(external)
    info = platform.account()
    clock = ManualClock(market.current_hour)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        account = create_account(
            session,
            "Sim Shop (synthetic)",
            clock.now(),
            platform="simulated",
            platform_account_id=external,
            currency=info.currency,
            timezone=info.timezone,
        )
        total = sum(c.daily_budget_minor or 0 for c in platform.list_campaigns())
        ceiling = 2**53 - 1 if guardrails == "legacy" else total
        store_settings(
            session,
            account.id,
            PromoterSettings(guardrails=simulated_guardrails(guardrails, ceiling)),
            now=clock.now(),
            actor="seed",
        )
        other = create_account(session, "Other (synthetic)", clock.now())
        ids = (account.id, other.id)
    options = CycleOptions(actuals_lookback_hours=6, loops=LOOPS)
    for hour in range(hours):
        if hour == hours - recommend_hours:
            with transaction(factory) as session:
                current = load_settings(session, ids[0])
                g = replace(current.guardrails, mode=AccountMode.RECOMMEND)
                store_settings(
                    session,
                    ids[0],
                    PromoterSettings(current.test, g),
                    now=clock.now(),
                    actor="seed",
                )
        market.step()
        clock.advance(HOUR)
        run_cycle(ids[0], CycleDeps(factory, clock, platform, settings=settings), options)
    clock.advance(timedelta(minutes=5))
    return World(ids[0], ids[1], market, platform, factory, clock)


def copied_world(
    snapshots: Snapshots,
    engine: Engine,
    settings: Settings,
    start: datetime,
    *,
    hours: int = 30,
    recommend_hours: int = 4,
    seed: int = 3,
    guardrails: str = "legacy",
) -> World:
    """``run_world``'s world, simulated once a session per backend and copied into ``engine``'s
    database: the market, platform and clock are the test's own (deep copies) and its session
    factory is bound to ``engine``."""
    key = f"world_pages:{start.isoformat()}:{hours}:{recommend_hours}:{seed}:{guardrails}"

    def build(seeded: Engine, seeded_settings: Settings) -> World:
        world = run_world(
            seeded, seeded_settings, start, hours=hours, recommend_hours=recommend_hours,
            seed=seed, guardrails=guardrails,
        )  # fmt: skip
        return replace(world, factory=None)  # type: ignore[arg-type]  # bound per copy

    world = snapshots.restore(key, engine, settings, build)
    return replace(world, factory=make_session_factory(engine))


PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_user(
    factory: sessionmaker[Session], email: str, grants: dict[int, str], now: datetime
) -> None:
    """A console user with ``grants`` (account id → role)."""
    with transaction(factory) as session:
        create_user(session, email, PASSWORD, now)
        for account_id, role in grants.items():
            grant(session, email, account_id, Role(role), now)


def sign_in(client: TestClient, email: str) -> None:
    """Through the login form, as a browser would (its nonce cookie and field)."""
    page = client.get("/login")
    token = csrf_of(page.text)
    answer = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF.search(html)
    assert found is not None, "no form with a CSRF token on the page"
    return found.group(1)


def console_client(engine: Engine, settings: Settings, world: World) -> TestClient:
    """The service's app on the world's database, clock and simulated platform."""

    def platforms(account_id: int) -> AdPlatform:
        if account_id != world.account_id:
            raise PlatformError("no platform connected")
        return world.platform

    return TestClient(create_app(settings, clock=world.clock, platforms=platforms))
