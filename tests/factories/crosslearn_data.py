"""Builders for loop 3's tests: accounts of the simulated market (synthetic data) in the store."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Engine

from adflywheel.sim.market import SimulatedMarket
from adflywheel.sim.market.config import MarketConfig
from adflywheel.store.accounts import create_account, issue_key
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction

HOURS = 72


@lru_cache(maxsize=2)
def market(seed: int = 3, n_accounts: int = 8) -> SimulatedMarket:
    """A small single-niche market (fitness) run for three days."""
    config = MarketConfig(
        seed=seed,
        n_accounts=n_accounts,
        campaigns_per_account=1,
        variants_per_campaign=8,
        niches=("fitness",),
        retention_hours=None,
    )
    m = SimulatedMarket(config)
    m.run(HOURS)
    return m


def market_now() -> datetime:
    """The hour the market's three days end: the data's "now"."""
    return market().config.start + timedelta(hours=HOURS)


def load_account(
    engine: Engine, index: int, *, name: str | None = None, with_actuals: bool = True
) -> tuple[int, str]:
    """Store simulated account ``index`` (catalogue and, optionally, its actuals); returns its
    id and an API key."""
    m = market()
    platform = m.platform(m.accounts()[index])
    info = platform.account()
    start = m.config.start
    now = market_now()
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        account = create_account(session, name or f"sim-{index}", now, category=info.category)
        key = issue_key(session, account, now)
        sync_catalog(
            session,
            account.id,
            platform.list_campaigns(),
            platform.list_ad_sets(),
            platform.list_ads(),
            now,
        )
        if with_actuals:
            rows = platform.fetch_insights(start, now)
            upsert_actuals(session, account.id, rows, source="simulated", now=now)
    return key.account_id, key.key
