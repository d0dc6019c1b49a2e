"""The overview's view on a simulated account run through the real cycle, and on records
written by hand where the words must be exact."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from adflywheel.console.views.activity import (
    _Change,
    lift_words,
    names,
    reallocation_sentence,
    recent_activity,
)
from adflywheel.console.views.overview import (
    DayTotals,
    baseline_days,
    build_overview,
    holdout_view,
    metrics,
)
from adflywheel.core.domain import HourlyActual
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.services.promoter.settings import PromoterSettings, load_settings, store_settings
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, BudgetChange, Campaign, HourlyActualRow
from tests.conftest import Snapshots
from tests.console.world_pages import copied_world
from tests.factories.helpers import new_account

START = datetime(2026, 11, 1, tzinfo=UTC)


def dollars(minor: int) -> str:
    return f"${minor / 100:,.2f}"


def test_words_for_lifts_and_lists() -> None:
    assert (
        lift_words(0.31, 0.18, 0.45)
        == "+31% more clicks per impression than the control, between +18% and +45%"
    )
    assert lift_words(-0.2, -0.3, -0.05).startswith("20% fewer clicks per impression")
    assert names(["A"]) == "A" and names(["A", "B"]) == "A and B"
    assert names(["A", "B", "C", "D"]) == "A, B and 2 others"


def test_the_week_reads_against_the_days_before_it() -> None:
    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]
    totals = {
        d: DayTotals(d, 1000, 10 if i < 23 else 30, 1000 if i < 23 else 1500, 1)
        for i, d in enumerate(days)
        if i != 5  # a day without delivery: no rate that day, zero spend
    }
    by_key = {m.key: m for m in metrics(days, totals, exponent=2)}
    spend = by_key["spend"]
    assert spend.values[5] == 0.0 and spend.values[-1] == 1500.0
    assert spend.baseline == pytest.approx(1000 * 22 / 23)
    assert spend.recent == 1500.0
    cpd = by_key["clicks_per_dollar"]
    assert cpd.values[5] is None and cpd.values[0] == pytest.approx(1.0)  # 10 clicks / $10
    assert cpd.baseline == pytest.approx(1.0) and cpd.recent == pytest.approx(2.0)
    assert cpd.change == pytest.approx(1.0)
    young = {m.key: m for m in metrics(days[-3:], {days[-1]: totals[days[-1]]}, exponent=2)}
    assert young["spend"].baseline is None and young["spend"].change is None


def test_overview_of_a_simulated_account(
    snapshots: Snapshots, engine: Engine, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=str(engine.url))
    world = copied_world(snapshots, engine, settings, START)
    now = world.clock.now()
    with world.factory() as session:
        view = build_overview(session, world.account_id, now, dollars)
        spend = session.scalar(
            select(func.sum(HourlyActualRow.spend_minor)).where(
                HourlyActualRow.account_id == world.account_id
            )
        )
        live = session.execute(
            select(BudgetChange, Campaign.external_id)
            .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
            .join(Campaign, Campaign.id == AdSet.campaign_id)
            .where(
                BudgetChange.mode == "recommended",
                BudgetChange.created_at >= now.replace(minute=0),
            )
        ).all()
    assert not view.empty and view.campaigns == 2 and len(view.days) == 30
    assert view.days[-1] == now.astimezone(ZoneInfo(view.timezone)).date()
    by_key = {m.key: m for m in view.metrics}
    assert sum(v or 0 for v in by_key["spend"].values) == spend  # every hour, folded into days
    assert view.mode.mode == "recommend" and view.mode.autopilot_ready
    # the newest sentences are this hour's recommendations, one per campaign, with evidence
    first = view.activity[0]
    assert first.kind == "budget" and first.proposed
    assert first.sentence.startswith("Recommends moving $")
    assert "likely to be the best" in first.sentence and "impressions of evidence" in first.sentence
    deltas = [
        r.new_budget_minor - (r.old_budget_minor or 0)
        for r, campaign in live
        if campaign == first.campaign_external_id
    ]
    moved = min(sum(d for d in deltas if d > 0), -sum(d for d in deltas if d < 0))
    assert first.sentence.startswith(f"Recommends moving {dollars(moved)} from ")
    assert view.activity_total >= len(view.activity) > 2
    assert all(a.at >= now - timedelta(hours=24) for a in view.activity)
    assert [a.at for a in view.activity] == sorted((a.at for a in view.activity), reverse=True)


def test_a_reallocation_in_the_words_of_the_issue(engine: Engine) -> None:
    now = datetime(2026, 11, 2, 12, 30, tzinfo=UTC)
    account_id, _ = new_account(engine, "words", now - timedelta(days=3))
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        sync_catalog(
            session,
            account_id,
            [PlatformCampaign("c1", "Summer")],
            [
                PlatformAdSet("s1", "c1", "Set one", daily_budget_minor=10_000),
                PlatformAdSet("s2", "c1", "Set two", daily_budget_minor=10_000),
            ],
            [
                PlatformAd("a1", "s1", "c1", "Summer sale v2"),
                PlatformAd("a2", "s2", "c1", "UGC hook v5"),
            ],
            now,
        )
        hours = [now.replace(minute=0) - timedelta(hours=h + 1) for h in range(24)]
        rows = [HourlyActual("a2", h, 100, 2, 0, 50) for h in hours]
        rows += [HourlyActual("a1", h, 80, 1, 0, 50) for h in hours]
        upsert_actuals(session, account_id, rows, source="test", now=now)
        ad_sets = {a.external_id: a.id for a in session.scalars(select(AdSet))}
        evidence = {"variants": {"s1": {"p_best": 0.07}, "s2": {"p_best": 0.93}}}
        hour = now.replace(minute=0)
        for ad_set, old, new in (("s1", 10_000, 6_000), ("s2", 10_000, 14_000)):
            session.add(
                BudgetChange(
                    account_id=account_id, ad_set_id=ad_sets[ad_set], old_budget_minor=old,
                    new_budget_minor=new, reason="thompson", evidence=evidence, mode="applied",
                    actor="cycle/thompson", cycle_hour=hour, created_at=now,
                )
            )  # fmt: skip
    with factory() as session:
        items, total = recent_activity(
            session, account_id, now - timedelta(hours=24), now + timedelta(seconds=1), dollars
        )
    assert total == 1
    assert items[0].sentence == (
        "Moved $40.00 from Summer sale v2 to UGC hook v5: "
        "93% likely to be the best, 2,400 impressions of evidence"
    )
    assert items[0].campaign_external_id == "c1" and not items[0].proposed


def test_holdout_off_is_none_and_on_says_what_it_found(engine: Engine) -> None:
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    account_id, _ = new_account(engine, "holdout", now)
    factory = make_session_factory(engine)
    with factory() as session:
        assert holdout_view(session, account_id, now, "USD") is None
    with transaction(factory) as session:
        current = load_settings(session, account_id)
        g = replace(current.guardrails, holdout_share=0.5)
        store_settings(session, account_id, PromoterSettings(current.test, g), now=now, actor="t")
    with factory() as session:
        view = holdout_view(session, account_id, now, "USD")
    assert view is not None and view.share == 0.5 and view.ratio is None
    assert view.sentence.startswith("Not enough to compare yet")


def test_today_is_drawn_but_not_compared() -> None:
    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]
    totals = {d: DayTotals(d, 1000, 10, 1000, 1) for d in days[:-1]}
    totals[days[-1]] = DayTotals(days[-1], 100, 1, 100, 0)  # a few hours of today
    spend = {m.key: m for m in metrics(days, totals, 2, partial_last=True)}["spend"]
    assert spend.values[-1] == 100.0
    assert spend.recent == spend.baseline == 1000.0 and spend.change == 0.0


def test_the_usual_day_starts_when_the_account_began_delivering() -> None:
    """An account that began 12 days ago: its usual is its 4 days of delivery before this
    week, not those spread over the window's 22 (which read as a tenfold jump)."""
    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]
    began = 18  # days[18:29] deliver; days[29] is today, still running
    totals = {d: DayTotals(d, 1000, 10, 2000, 1) for d in days[began:]}
    spend = {m.key: m for m in metrics(days, totals, 2, partial_last=True)}["spend"]
    assert spend.baseline == 2000.0 and spend.recent == 2000.0 and spend.change == 0.0
    assert baseline_days(tuple(days), totals) == 29 - 7 - began
    assert baseline_days(tuple(days), {}) == 0


def test_several_gainers_the_sentence_speaks_for_the_likeliest_best() -> None:
    at = datetime(2026, 11, 2, 12, tzinfo=UTC)
    evidence = {"variants": {"s1": {"p_best": 0.05}, "s2": {"p_best": 0.15}, "s3": {"p_best": 0.8}}}

    def change(i: int, old: int, new: int) -> _Change:
        return _Change(
            i, i, old, new, "thompson", "recommended", "cycle/thompson", at, at, "c1", f"s{i}"
        )

    group = [change(1, 9000, 6000), change(2, 3000, 5000), change(3, 3000, 4000)]
    group[0].evidence = evidence
    labels = {1: "A", 2: "B", 3: "C"}
    sentence = reallocation_sentence(group, labels, {3: 1234}, dollars)
    assert sentence == (
        "Recommends moving $30.00 from A to C and B: "
        "C is 80% likely to be the best, 1,234 impressions of evidence"
    )
