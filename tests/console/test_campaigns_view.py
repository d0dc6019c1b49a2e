"""The campaigns pages' views on a simulated account run through the real cycle: structure and
last outcome, P(best) and CTR with its interval per ad, budget shares over time, the log and
the recommendations of the current hour (and their expiry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from adflywheel.console.views.campaigns import build_campaign_detail, build_campaign_list
from adflywheel.core.errors import NotFoundError
from adflywheel.core.settings import Settings
from adflywheel.store.models import AdSet, BudgetChange, CycleRun
from tests.conftest import Snapshots
from tests.console.world_pages import World, copied_world

START = datetime(2026, 11, 1, tzinfo=UTC)


def dollars(minor: int) -> str:
    return f"${minor / 100:,.2f}"


@pytest.fixture
def world(snapshots: Snapshots, engine: Engine, tmp_path: Path) -> World:
    settings = Settings(data_dir=tmp_path / "data", database_url=str(engine.url))
    return copied_world(snapshots, engine, settings, START)


def test_the_list_shows_structure_outcome_and_open_recommendations(world: World) -> None:
    now = world.clock.now()
    with world.factory() as session:
        view = build_campaign_list(session, world.account_id, now)
        report = session.scalar(
            select(CycleRun.report).order_by(CycleRun.hour_start.desc()).limit(1)
        )
        live = session.scalars(
            select(BudgetChange).where(
                BudgetChange.mode == "recommended",
                BudgetChange.created_at >= now.replace(minute=0),
            )
        ).all()
    assert len(view.rows) == 2 and all(r.structure == "ABO" for r in view.rows)
    assert view.pending_total == len(live) > 0
    outcomes = {c["campaign_id"]: c["outcome"] for c in report["campaigns"]}
    for row in view.rows:
        assert row.last is not None and row.last.outcome == outcomes[row.external_id]
        assert row.ads == 3 and row.spend_minor > 0 and row.impressions >= row.clicks
    with world.factory() as session:
        assert build_campaign_list(session, world.other_account_id, now).rows == ()


def test_a_campaign_in_detail(world: World) -> None:
    now = world.clock.now()
    with world.factory() as session:
        campaign = build_campaign_list(session, world.account_id, now).rows[0].external_id
        view = build_campaign_detail(session, world.account_id, campaign, now, dollars)
        latest = session.execute(
            select(BudgetChange.evidence, AdSet.campaign_id)
            .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
            .order_by(BudgetChange.created_at.desc(), BudgetChange.id.desc())
        ).all()
    assert len(view.ads) == 3 and view.structure == "ABO" and view.evidence_at is not None
    evidence = next(
        e for e, c in latest if e["variants"].keys() & {a.ad_set_external_id for a in view.ads}
    )
    for ad in view.ads:
        assert ad.ctr is not None and ad.ctr_low is not None and ad.ctr_high is not None
        assert ad.ctr_low <= ad.ctr <= ad.ctr_high
        assert ad.p_best == evidence["variants"][ad.ad_set_external_id]["p_best"]
        assert ad.gated == evidence["variants"][ad.ad_set_external_id]["gated"]
    assert sum(a.budget_share or 0 for a in view.ads) == pytest.approx(1.0)
    # shares over 30 local days, each day's summing to one, today's being today's budgets
    assert len(view.shares.days) == 30 and len(view.shares.series) == 3
    for i in range(30):
        assert sum(s[i] for _, s in view.shares.series) == pytest.approx(1.0, abs=1e-9)
    today = {label: shares[-1] for label, shares in view.shares.series}
    assert {a.ad_set_label: a.budget_share for a in view.ads} == pytest.approx(today)
    # this hour's recommendations: approvable until the hour ends; the log holds the applied
    assert view.pending and all(p.can_approve for p in view.pending)
    assert {p.expires_at for p in view.pending} == {now.replace(minute=0) + timedelta(hours=1)}
    assert any(c.mode == "applied" and c.can_rollback for c in view.log)
    assert all("likely to be the best" in c.why for c in view.log)


def test_recommendations_expire_with_their_hour(world: World) -> None:
    later = world.clock.now() + timedelta(hours=1)
    with world.factory() as session:
        campaign = build_campaign_list(session, world.account_id, later).rows[0].external_id
        view = build_campaign_detail(session, world.account_id, campaign, later, dollars)
    assert view.pending == ()
    assert any(c.mode == "expired" and not c.can_approve for c in view.log)


def test_another_accounts_campaign_is_unknown(world: World) -> None:
    now = world.clock.now()
    with world.factory() as session:
        campaign = build_campaign_list(session, world.account_id, now).rows[0].external_id
        with pytest.raises(NotFoundError):
            build_campaign_detail(session, world.other_account_id, campaign, now, dollars)
        with pytest.raises(NotFoundError):
            build_campaign_detail(session, world.account_id, "nope", now, dollars)
