"""The promotions page's view: a clear winner found by the real promoter, waiting for approval
with its lift in words, then promoted, then rolled back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.console.views.promotions import build_promotions
from adflywheel.core.clock import ManualClock
from adflywheel.core.domain import HourlyActual
from adflywheel.platforms.base import AdPlatform
from adflywheel.services.promoter.actions import approve, rollback
from adflywheel.services.promoter.service import PromoterSettings, run_promotion, store_settings
from adflywheel.sim.harness import simulated_guardrails
from adflywheel.sim.market import MarketConfig
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from tests.factories.market import simulated_account

HOUR = timedelta(hours=1)
CTRS = (0.020, 0.032, 0.020)  # the control, a clear winner (+60%), the control's twin


@dataclass
class Promoter:
    factory: sessionmaker[Session]
    clock: ManualClock
    platform: AdPlatform
    account_id: int
    other_account_id: int
    ads: list[str]


@pytest.fixture
def promoter(engine: Engine, clock: ManualClock) -> Promoter:
    market, account_id = simulated_account(
        engine,
        MarketConfig(seed=5, n_accounts=2, campaigns_per_account=1, variants_per_campaign=3),
        now=clock.now(),
    )
    _, other = simulated_account(
        engine, MarketConfig(seed=6, n_accounts=1), now=clock.now(), name="other"
    )
    platform = market.platform(market.accounts()[0])
    factory = make_session_factory(engine)
    ads = [a.external_id for a in platform.list_ads()]
    legacy = PromoterSettings(guardrails=simulated_guardrails("legacy", 2**53 - 1))
    waiting = PromoterSettings.from_dict({**legacy.to_dict(), "approval_threshold_minor": 100})
    now = clock.now()
    rows = [
        HourlyActual(ad, now - (h + 1) * HOUR, 2000, round(2000 * ctr), 0, 2000)
        for h in range(24)
        for ad, ctr in zip(ads, CTRS, strict=True)
    ]
    with transaction(factory) as session:
        sync_catalog(
            session, account_id, platform.list_campaigns(), platform.list_ad_sets(),
            platform.list_ads(), now,
        )  # fmt: skip
        upsert_actuals(session, account_id, rows, source="test", now=now)
        store_settings(session, account_id, waiting, now=now, actor="test")
    return Promoter(factory, clock, platform, account_id, other, ads)


def test_a_winner_waits_is_promoted_and_rolled_back(promoter: Promoter) -> None:
    p = promoter
    with p.factory() as session:
        empty = build_promotions(session, p.account_id, p.clock.now())
    assert empty.empty and empty.candidates == ()
    run_promotion(p.factory, p.platform, p.account_id, now=p.clock.now())
    with p.factory() as session:
        view = build_promotions(session, p.account_id, p.clock.now())
    (candidate,) = view.candidates
    assert candidate.ad_external_id == p.ads[1] and candidate.can_approve and candidate.can_dismiss
    assert candidate.status == "Waiting for approval" and candidate.expires_at is not None
    assert candidate.lift == pytest.approx(0.6)
    assert candidate.lift_low is not None and candidate.lift_high is not None
    assert 0 < candidate.lift_low < 0.6 < candidate.lift_high
    assert candidate.lift_words == (
        f"+60% more clicks per impression than the control, between "
        f"{candidate.lift_low:+.0%} and {candidate.lift_high:+.0%}"
    )
    assert view.winners == () and candidate.campaign_name
    approve(
        p.factory, p.platform, p.account_id, candidate.id, now=p.clock.now(), actor="user:a@b.c"
    )
    with p.factory() as session:
        view = build_promotions(session, p.account_id, p.clock.now())
    (winner,) = view.winners
    assert view.candidates == () and winner.id == candidate.id and winner.can_rollback
    assert winner.status == "Promoted" and winner.who == "a@b.c"
    rollback(p.factory, p.platform, p.account_id, winner.id, now=p.clock.now(), actor="user:a@b.c")
    with p.factory() as session:
        view = build_promotions(session, p.account_id, p.clock.now())
    assert view.winners == ()
    assert [r.kind for r in view.history] == ["rollback", "promote"]
    assert view.history[1].status == "Rolled back" and not view.history[1].can_rollback
    with p.factory() as session:
        assert build_promotions(session, p.other_account_id, p.clock.now()).empty


def test_a_candidate_expires_after_the_approval_time(promoter: Promoter) -> None:
    p = promoter
    run_promotion(p.factory, p.platform, p.account_id, now=p.clock.now())
    later = p.clock.now() + timedelta(hours=200)
    with p.factory() as session:
        view = build_promotions(session, p.account_id, later)
    assert view.candidates == () and view.history[0].status == "Expired unapproved"
    assert not view.history[0].can_approve
