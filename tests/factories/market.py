"""Simulated markets (synthetic data) and the store accounts that stand for their ad accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from adflywheel.platforms.base import PlatformAccount
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account
from adflywheel.store.engine import make_session_factory, transaction
from tests.factories.helpers import set_guardrails


def simulated_account(
    engine: Engine,
    config: MarketConfig,
    *,
    now: datetime | None = None,
    name: str = "sim",
    guardrails: str | None = "legacy",
) -> tuple[SimulatedMarket, int]:
    """A market and one store account on the simulated platform (bound to none of the market's
    accounts: the test hands it a platform), created at ``now``, by default the market's first
    hour, with ``guardrails`` as ``set_guardrails`` takes them."""
    market = SimulatedMarket(config)
    with transaction(make_session_factory(engine)) as session:
        created = now or market.current_hour
        account_id = create_account(session, name, created, platform="simulated").id
        set_guardrails(session, account_id, created, guardrails)
    return market, account_id


def bind_market_accounts(
    session: Session,
    market: SimulatedMarket,
    now: datetime,
    *,
    prefix: str,
    profile: bool = False,
    guardrails: str | None = "legacy",
) -> dict[str, int]:
    """One store account per market account, named ``<prefix><external id>`` and bound to it by
    that id, in the market's order; with ``profile`` also its currency, time zone and category.
    Returns the store ids by external id."""
    ids: dict[str, int] = {}
    for external in market.accounts():
        plain = PlatformAccount(external, f"{prefix}{external}")  # create_account's defaults
        info = market.platform(external).account() if profile else plain
        ids[external] = create_account(
            session,
            f"{prefix}{external}",
            now,
            platform="simulated",
            platform_account_id=external,
            currency=info.currency,
            timezone=info.timezone,
            category=info.category,
        ).id
        set_guardrails(session, ids[external], now, guardrails)
    return ids
