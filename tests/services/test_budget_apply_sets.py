"""``apply_budgets`` writes set-based (issue 19): a campaign's changes are recorded in one
INSERT and marked applied in a fixed number of statements, with the same records, budgets and
platform writes as one row at a time; a retry and a half-applied hour behave as before
(synthetic data: the simulated market stands in for Meta)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import floor_hour
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.bandit.budgets import Proposal, apply_budgets, finish_stale_pending
from adflywheel.sim.market import MarketConfig
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, BudgetChange
from tests.factories.clock import T0
from tests.factories.market import simulated_account

HOUR = timedelta(hours=1)
NOW = T0 + timedelta(minutes=5)


class Spy:
    """The simulated platform with its budget writes listed; it can refuse the n-th write."""

    def __init__(self, inner: AdPlatform) -> None:
        self.inner = inner
        self.writes: list[tuple[str, int]] = []
        self.refuse_at: int | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        if self.refuse_at is not None and len(self.writes) == self.refuse_at:
            raise PlatformError("rate limited")
        self.inner.set_ad_set_budget(ad_set_id, daily_budget_minor)
        self.writes.append((ad_set_id, daily_budget_minor))


@pytest.fixture
def world(engine: Engine) -> tuple[sessionmaker[Session], Spy, int, dict[str, int]]:
    config = MarketConfig(seed=5, n_accounts=1, campaigns_per_account=1, variants_per_campaign=5)
    market, account_id = simulated_account(engine, config, now=T0 - 48 * HOUR, guardrails=None)
    platform = Spy(market.platform(market.accounts()[0]))
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        sync_catalog(
            session,
            account_id,
            platform.list_campaigns(),
            platform.list_ad_sets(),
            platform.list_ads(),
            T0 - 48 * HOUR,
        )
    start = {a.external_id: int(a.daily_budget_minor or 0) for a in platform.list_ad_sets()}
    return factory, platform, account_id, start


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _proposal(start: dict[str, int], n: int) -> Proposal:
    """``n`` ad sets each give 100 to the last one (the campaign's total is kept)."""
    names = sorted(start)
    budgets = dict(start)
    for name in names[:n]:
        budgets[name] -= 100
    budgets[names[-1]] += 100 * n
    return Proposal(budgets, "thompson", {"n": n})


def _apply(factory: sessionmaker[Session], platform: Spy, account_id: int, p: Proposal) -> Any:
    return apply_budgets(
        factory,
        platform,
        account_id,
        p,
        actor="cycle/thompson",
        cycle_hour=floor_hour(NOW),
        now=NOW,
    )


def _records(factory: sessionmaker[Session], account_id: int) -> list[tuple[Any, ...]]:
    with factory() as session:
        rows = session.execute(
            select(
                AdSet.external_id,
                BudgetChange.old_budget_minor,
                BudgetChange.new_budget_minor,
                BudgetChange.mode,
                BudgetChange.idempotency_key,
                BudgetChange.evidence,
            )
            .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
            .where(BudgetChange.account_id == account_id)
            .order_by(BudgetChange.id)
        ).all()
    return [tuple(r) for r in rows]


def _stored(factory: sessionmaker[Session], account_id: int) -> dict[str, int | None]:
    with factory() as session:
        rows = session.execute(
            select(AdSet.external_id, AdSet.daily_budget_minor).where(
                AdSet.account_id == account_id
            )
        ).all()
    return {external: budget for external, budget in rows}


def test_every_change_is_recorded_applied_and_stored_as_one_row_at_a_time_did(
    world: tuple[sessionmaker[Session], Spy, int, dict[str, int]],
) -> None:
    factory, platform, account_id, start = world
    proposal = _proposal(start, 3)
    changes = _apply(factory, platform, account_id, proposal)
    names = sorted(start)
    changed = {k: v for k, v in proposal.budgets.items() if v != start[k]}
    assert {c.ad_set_external_id: c.new_budget_minor for c in changes} == changed
    assert all(c.mode == "applied" for c in changes)
    # Decreases first, then the raise; each once.
    assert platform.writes == [
        *((n, start[n] - 100) for n in names[:3]),
        (names[-1], changed[names[-1]]),
    ]
    hour = floor_hour(NOW).isoformat()
    assert _records(factory, account_id) == [
        (n, start[n], changed[n], "applied", f"cycle/thompson:{account_id}:{hour}:{n}", {"n": 3})
        for n in sorted(changed)
    ]
    assert _stored(factory, account_id) == proposal.budgets


def test_statements_do_not_grow_with_the_number_of_changes(
    engine: Engine, world: tuple[sessionmaker[Session], Spy, int, dict[str, int]]
) -> None:
    factory, platform, account_id, start = world
    with statements(engine) as few:
        _apply(factory, platform, account_id, _proposal(start, 1))
    with transaction(factory) as session:  # a fresh hour's decision, from where it stands
        session.execute(delete(BudgetChange))
    now = _stored(factory, account_id)
    with statements(engine) as many:
        _apply(factory, platform, account_id, _proposal({k: v or 0 for k, v in now.items()}, 4))
    writes = [s for s in many if not s.lstrip().upper().startswith(("SELECT", "BEGIN", "COMMIT"))]
    assert len(many) == len(few)
    assert len(writes) == 3  # one INSERT, one UPDATE of the records, one of the ad sets


def test_a_retried_hour_sends_nothing_again_and_a_refused_write_is_finished_later(
    world: tuple[sessionmaker[Session], Spy, int, dict[str, int]],
) -> None:
    factory, platform, account_id, start = world
    proposal = _proposal(start, 3)
    platform.refuse_at = 2  # two writes went through, then the platform refused
    with pytest.raises(PlatformError):
        _apply(factory, platform, account_id, proposal)
    modes = [r[3] for r in _records(factory, account_id)]
    assert sorted(modes) == ["applied", "applied", "pending", "pending"]
    stored = _stored(factory, account_id)
    assert sum(stored[n] != start[n] for n in start) == 2
    platform.refuse_at = None
    again = _apply(factory, platform, account_id, _proposal(start, 1))  # the recorded one stands
    assert len(again) == 2 and len(platform.writes) == 4
    assert _stored(factory, account_id) == proposal.budgets
    assert _apply(factory, platform, account_id, proposal) == []
    assert len(platform.writes) == 4
    assert finish_stale_pending(factory, platform, account_id, "cycle/", T0 + 2 * HOUR) == 0


def test_a_pending_record_left_by_a_crashed_hour_is_finished_before_the_next(
    world: tuple[sessionmaker[Session], Spy, int, dict[str, int]],
) -> None:
    factory, platform, account_id, start = world
    proposal = _proposal(start, 2)
    platform.refuse_at = 0
    with pytest.raises(PlatformError):
        _apply(factory, platform, account_id, proposal)
    platform.refuse_at = None
    assert finish_stale_pending(factory, platform, account_id, "cycle/", T0 + 2 * HOUR) == 3
    assert [r[3] for r in _records(factory, account_id)] == ["applied"] * 3
    assert _stored(factory, account_id) == proposal.budgets
