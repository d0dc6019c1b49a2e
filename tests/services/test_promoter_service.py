"""The auto-promoter's service: promotion through the platform with guardrails and evidence,
every mode, idempotence and crashes, rollback, periods from the audit log, and the API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.domain import HourlyActual, Status
from adflywheel.core.errors import ConflictError, NotFoundError
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import (
    AdPlatform,
    PlatformAccount,
    PlatformAd,
    PlatformAdSet,
    PlatformCampaign,
    PlatformError,
)
from adflywheel.services.promoter.actions import approve, history, promotion_floors, rollback
from adflywheel.services.promoter.data import campaign_data
from adflywheel.services.promoter.service import (
    PromoterSettings,
    PromotionError,
    run_promotion,
    store_settings,
)
from adflywheel.sim.harness import simulated_guardrails
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.guardrails import AccountGuardrails
from adflywheel.store.models import AdSet, Base, BudgetChange, Campaign
from tests.factories.clock import T0
from tests.factories.helpers import auth, key_for
from tests.factories.market import simulated_account

pytestmark = pytest.mark.db

HOUR = timedelta(hours=1)
CTRS = (0.020, 0.032, 0.020)  # control, a clear winner (+60%), a twin of the control


class Crash(Exception):
    """The process dies (not a platform error the service handles)."""


class Flaky:
    """A platform that can die right before or right after writing a budget."""

    def __init__(self, inner: AdPlatform) -> None:
        self.inner = inner
        self.name = inner.name
        self.crash: str | None = None
        self.writes: list[tuple[str, int]] = []

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        if self.crash == "before":
            raise Crash("died before the write")
        if self.crash == "refuse":
            raise PlatformError("rate limited")
        self.inner.set_ad_set_budget(ad_set_id, daily_budget_minor)
        self.writes.append((ad_set_id, daily_budget_minor))
        if self.crash == "after":
            raise Crash("died after the write")


@dataclass
class World:
    engine: Engine
    factory: sessionmaker[Session]
    clock: ManualClock
    market: SimulatedMarket
    platform: Flaky
    account_id: int
    ads: list[str]
    ad_sets: list[str]
    campaign: str

    def run(self, **kw: Any) -> dict[str, Any]:
        return run_promotion(
            self.factory, self.platform, self.account_id, now=self.clock.now(), **kw
        ).as_dict()

    def budgets(self) -> list[int]:
        return [int(b) for b in self.market.budgets()[:3]]

    def configure(self, **values: Any) -> None:
        """Guardrails: the legacy ones (the mechanics tested here) with ``values`` on top."""
        legacy = PromoterSettings(guardrails=simulated_guardrails("legacy", 2**53 - 1))
        settings = PromoterSettings.from_dict({**legacy.to_dict(), **values})
        with transaction(self.factory) as session:
            store_settings(session, self.account_id, settings, now=self.clock.now(), actor="test")

    def records(self) -> list[BudgetChange]:
        with self.factory() as session:
            return list(session.scalars(select(BudgetChange).order_by(BudgetChange.id)))

    def sync(self) -> None:
        """What the cycle's catalogue step does: take the platform's budgets as stored truth."""
        with transaction(self.factory) as session:
            sync_catalog(
                session,
                self.account_id,
                self.platform.list_campaigns(),
                self.platform.list_ad_sets(),
                self.platform.list_ads(),
                self.clock.now(),
            )


def actuals(ads: list[str], end: datetime, hours: int, per_hour: int = 2000) -> list[HourlyActual]:
    """Deterministic counts at the true rates of ``CTRS`` (no noise needed for the service)."""
    return [
        HourlyActual(
            ad_id=ad,
            hour_start=end - (h + 1) * HOUR,
            impressions=per_hour,
            clicks=round(per_hour * ctr),
            link_clicks=0,
            spend_minor=per_hour,
        )
        for h in range(hours)
        for ad, ctr in zip(ads, CTRS, strict=True)
    ]


@pytest.fixture
def world(engine: Engine, clock: ManualClock) -> World:
    # until the migration lands (then this finds the table and does nothing)
    Base.metadata.create_all(engine, tables=[Base.metadata.tables[AccountGuardrails.__tablename__]])
    market, account_id = simulated_account(
        engine,
        MarketConfig(seed=5, n_accounts=2, campaigns_per_account=1, variants_per_campaign=3),
        now=clock.now(),
    )
    platform = Flaky(market.platform(market.accounts()[0]))
    factory = make_session_factory(engine)
    ads = [a.external_id for a in platform.list_ads()]
    ad_sets = [a.external_id for a in platform.list_ad_sets()]
    w = World(
        engine, factory, clock, market, platform, account_id, ads, ad_sets,
        platform.list_campaigns()[0].external_id,
    )  # fmt: skip
    w.sync()
    with transaction(factory) as session:
        upsert_actuals(
            session, account_id, actuals(ads, clock.now(), 24), source="test", now=clock.now()
        )
    return w


def test_a_winner_is_doubled_through_the_platform_with_its_evidence(world: World) -> None:
    before = world.budgets()
    report = world.run()
    assert report["winners_found"] == 1 and [w["id"] for w in report["winners"]] == [world.ads[1]]
    (promoted,) = report["promoted"]
    assert promoted["variant"] == world.ads[1] and promoted["mode"] == "applied"
    assert promoted["old_budget_minor"] == before[1]
    assert promoted["new_budget_minor"] == 2 * before[1] == world.budgets()[1]
    assert report["total_budget_allocated"] == 2 * before[1]
    assert promoted["lift"] == pytest.approx(0.6) and promoted["confidence"] > 0.95
    (record,) = world.records()
    evidence = record.evidence["decision"]
    assert record.reason == "promoter:promote" and record.mode == "applied"
    assert evidence["impressions"] == 48_000 and evidence["control_clicks"] == 960
    assert evidence["interval"][0] > 0 and evidence["p_value"] < 0.05
    assert evidence["srm"]["checked"] and not evidence["srm"]["mismatch"]
    assert record.evidence["rule"] == "promote" and record.evidence["guardrails"]
    assert [v["reason"] for v in report["variants"]] == ["control", "winner", "not_significant"]


def test_rerunning_the_hour_never_promotes_twice_and_later_hours_cool_down(world: World) -> None:
    world.run()
    doubled = world.budgets()
    world.sync()  # the platform's doubled budget is now the stored one
    again = world.run()
    assert again["promoted"] == [] and again["held_back"][0]["reason"] == "already_acted_this_hour"
    world.clock.advance(5 * HOUR)
    later = world.run()
    assert later["held_back"][0]["reason"] == "cooldown"
    assert world.budgets() == doubled and len(world.records()) == 1
    world.clock.advance(72 * HOUR)
    assert world.run()["promoted"][0]["new_budget_minor"] == 2 * doubled[1]


def test_dry_run_records_and_proposes_without_touching_the_platform(world: World) -> None:
    before = world.budgets()
    report = world.run(dry_run=True)
    assert report["dry_run"] and report["promoted"][0]["mode"] == "dry_run"
    assert world.budgets() == before and [r.mode for r in world.records()] == ["dry_run"]
    assert world.run()["promoted"][0]["mode"] == "applied"  # a dry run does not block the real one


def test_approval_mode_waits_for_a_human(world: World) -> None:
    world.configure(approval_threshold_minor=100)
    before = world.budgets()
    report = world.run()
    action_id = report["promoted"][0]["action_id"]
    assert report["promoted"][0]["mode"] == "pending_approval" and world.budgets() == before
    world.clock.advance(2 * HOUR)
    assert world.run()["held_back"][0]["reason"] == "awaiting_approval"
    done = approve(world.factory, world.platform, world.account_id, action_id,
                   now=world.clock.now(), actor="boss")  # fmt: skip
    assert done["mode"] == "applied" and world.budgets()[1] == 2 * before[1]
    assert done["evidence"]["approved_by"] == "boss"
    repeat = approve(world.factory, world.platform, world.account_id, action_id,
                     now=world.clock.now(), actor="boss")  # fmt: skip
    assert repeat["already"] and world.budgets()[1] == 2 * before[1]


def test_an_approval_expires(world: World) -> None:
    world.configure(approval_threshold_minor=0, approval_ttl_hours=12)
    action_id = world.run()["promoted"][0]["action_id"]
    world.clock.advance(13 * HOUR)
    with pytest.raises(PromotionError, match="expired") as error:
        approve(world.factory, world.platform, world.account_id, action_id,
                now=world.clock.now(), actor="boss")  # fmt: skip
    assert isinstance(error.value, ConflictError)


def test_the_kill_switch_stops_promotion_and_approval(world: World) -> None:
    world.configure(approval_threshold_minor=0)
    action_id = world.run()["promoted"][0]["action_id"]
    world.configure(kill_switch=True)
    world.clock.advance(HOUR)
    report = world.run()
    assert report["kill_switch"] and report["held_back"][0]["reason"] == "kill_switch"
    with pytest.raises(PromotionError, match="kill switch"):
        approve(world.factory, world.platform, world.account_id, action_id,
                now=world.clock.now(), actor="boss")  # fmt: skip


def test_ceilings_per_variant_and_per_account(world: World) -> None:
    before = world.budgets()
    world.configure(max_variant_budget_minor=before[1] + 500)
    assert world.run()["promoted"][0]["new_budget_minor"] == before[1] + 500
    world.clock.advance(100 * HOUR)
    held = world.run()["held_back"][0]
    assert held["reason"] == "variant_ceiling" and world.budgets()[1] == before[1] + 500
    world.configure(max_account_budget_minor=sum(world.budgets()), cooldown_hours=0)
    world.clock.advance(HOUR)
    assert world.run()["held_back"][0]["reason"] == "account_ceiling"


def test_rollback_restores_the_old_budget_in_one_call(world: World) -> None:
    before = world.budgets()
    action_id = world.run()["promoted"][0]["action_id"]
    world.clock.advance(HOUR)
    undo = rollback(world.factory, world.platform, world.account_id, action_id,
                    now=world.clock.now(), actor="boss")  # fmt: skip
    assert world.budgets() == before
    assert undo["reason"] == "promoter:rollback" and undo["mode"] == "applied"
    assert undo["evidence"]["rollback_of"] == action_id
    again = rollback(world.factory, world.platform, world.account_id, action_id,
                     now=world.clock.now(), actor="boss")  # fmt: skip
    assert again["already"] and again["action_id"] == undo["action_id"]
    modes = {r.id: r.mode for r in world.records()}
    assert modes[action_id] == "rolled_back"
    world.clock.advance(HOUR)
    assert world.run()["held_back"][0]["reason"] == "cooldown"  # not re-promoted at once
    with world.factory() as session:
        assert promotion_floors(session, world.account_id, world.clock.now()) == {}
        assert [h["reason"] for h in history(session, world.account_id)] == [
            "promoter:rollback",
            "promoter:promote",
        ]


def test_rollback_refuses_what_was_never_applied_and_what_is_not_its_own(world: World) -> None:
    action_id = world.run(dry_run=True)["promoted"][0]["action_id"]
    with pytest.raises(PromotionError, match="nothing was applied"):
        rollback(world.factory, world.platform, world.account_id, action_id,
                 now=world.clock.now(), actor="x")  # fmt: skip
    with pytest.raises(PromotionError) as unknown:
        rollback(world.factory, world.platform, world.account_id, 999,
                 now=world.clock.now(), actor="x")  # fmt: skip
    assert isinstance(unknown.value, NotFoundError)
    with transaction(world.factory) as session:
        other = create_account(session, "other", world.clock.now()).id
    with pytest.raises(PromotionError) as foreign:
        rollback(world.factory, world.platform, other, action_id,
                 now=world.clock.now(), actor="x")  # fmt: skip
    assert isinstance(foreign.value, NotFoundError)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_between_decision_and_platform_write_never_doubles_twice(
    world: World, when: str
) -> None:
    before = world.budgets()
    world.platform.crash = when
    with pytest.raises(Crash):
        world.run()
    assert [r.mode for r in world.records()] == ["pending"]
    world.platform.crash = None
    world.sync()  # after an "after" crash the platform already has the new budget
    report = world.run()  # the retry of the same hour
    assert report["reconciled"] == [{"action_id": world.records()[0].id, "mode": "applied"}]
    assert report["promoted"] == [] and world.budgets()[1] == 2 * before[1]
    assert [r.mode for r in world.records()] == ["applied"]


def test_a_stale_pending_record_is_abandoned_not_applied_late(world: World) -> None:
    before = world.budgets()
    world.platform.crash = "before"
    with pytest.raises(Crash):
        world.run()
    world.platform.crash = None
    world.clock.advance(3 * HOUR)
    report = world.run()
    assert report["reconciled"][0]["mode"] == "abandoned"
    assert [r.mode for r in world.records()] == ["abandoned", "applied"]
    assert world.budgets()[1] == 2 * before[1]


def test_a_platform_error_is_held_back_and_retried(world: World) -> None:
    world.platform.crash = "refuse"
    report = world.run()
    assert report["held_back"][0]["reason"] == "platform_error" and report["promoted"] == []
    world.platform.crash = None
    assert world.run()["reconciled"][0]["mode"] == "applied"


def test_periods_follow_the_audit_log_and_carry_the_intended_split(world: World) -> None:
    with transaction(world.factory) as session:
        ad_sets = {a.external_id: a for a in session.scalars(select(AdSet))}
        shifted = ad_sets[world.ad_sets[1]]
        session.add(
            BudgetChange(
                account_id=world.account_id, ad_set_id=shifted.id,
                old_budget_minor=1000, new_budget_minor=shifted.daily_budget_minor,
                reason="test", evidence={}, mode="applied", actor="test",
                cycle_hour=None, idempotency_key=None, created_at=world.clock.now() - 6 * HOUR,
            )
        )  # fmt: skip
    with world.factory() as session:
        campaign = session.scalars(select(Campaign)).one()
        data = campaign_data(
            session, world.account_id, campaign,
            since=world.clock.now() - 48 * HOUR, until=world.clock.now(),
        )  # fmt: skip
    assert data is not None and data.periods == 2
    variant = data.experiment.variants[1]
    assert variant.impressions == (18 * 2000, 6 * 2000)
    assert variant.intended_share is not None
    assert variant.intended_share[0] < variant.intended_share[1]


# -- the API -----------------------------------------------------------------------------------


@pytest.fixture
def api(world: World, settings: Settings) -> Iterator[tuple[TestClient, str]]:
    def resolve(account_id: int) -> AdPlatform:
        if account_id != world.account_id:
            raise PlatformError(f"account {account_id} has no platform")
        return world.platform

    app = create_app(settings, clock=world.clock, platforms=resolve)
    key = key_for(world.factory, world.account_id, world.clock.now())
    with TestClient(app) as client:
        yield client, key


def test_the_stateless_contract(api: tuple[TestClient, str]) -> None:
    client, key = api
    body = {
        "control_id": "a",
        "variants": [
            {"id": "a", "impressions": 40_000, "clicks": 800},
            {"id": "b", "impressions": 40_000, "clicks": 1100,
             "periods": None},
        ],
    }  # fmt: skip
    assert client.post("/api/ml/auto-promote/evaluate", json=body).status_code == 401
    response = client.post("/api/ml/auto-promote/evaluate", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["winners"] == ["b"]
    b = out["variants"][1]
    assert set(b) >= {"id", "lift", "interval", "winner", "reason"}
    assert b["winner"] and b["lift"] == pytest.approx(0.375) and len(b["interval"]) == 2
    periods = [{"impressions": 20_000, "clicks": 400}, {"impressions": 20_000, "clicks": 400}]
    staged = {
        "control_id": None,
        "min_lift": 0.1,
        "variants": [
            {"id": "a", "impressions": 40_000, "clicks": 800, "periods": periods},
            {"id": "b", "impressions": 40_000, "clicks": 1100, "periods": [
                {"impressions": 20_000, "clicks": 550}, {"impressions": 20_000, "clicks": 550}]},
        ],
    }  # fmt: skip
    assert client.post("/api/ml/auto-promote/evaluate", json=staged, headers=auth(key)).json()[
        "winners"
    ] == ["b"]


BAD_BODIES: list[dict[str, Any]] = [
    {"variants": [{"id": "a", "impressions": 10, "clicks": 11}]},
    {"variants": [{"id": "a", "impressions": -1, "clicks": 0}]},
    {"control_id": "zz", "variants": [{"id": "a", "impressions": 10, "clicks": 1}]},
    {"variants": [{"id": "a", "impressions": 10, "clicks": 1}] * 2},
    {"variants": [{"id": "a", "impressions": 10, "clicks": 1}], "confidence": 1.5},
    {"variants": [{"id": "a", "impressions": 10, "clicks": 1,
                   "periods": [{"impressions": 9, "clicks": 1}]}]},
    {"variants": [{"id": "a", "impressions": "10", "clicks": 1}]},
    {"variants": []},
]  # fmt: skip


def test_the_stateless_check_refuses_nonsense(api: tuple[TestClient, str]) -> None:
    client, key = api
    for body in BAD_BODIES:
        response = client.post("/api/ml/auto-promote/evaluate", json=body, headers=auth(key))
        assert response.status_code == 422, (body, response.text)


def test_promote_history_rollback_and_approve_over_http(
    api: tuple[TestClient, str], world: World
) -> None:
    client, key = api
    before = world.budgets()
    assert client.post("/api/ml/auto-promote").status_code == 401
    response = client.post("/api/ml/auto-promote", json={"campaign_id": world.campaign},
                           headers=auth(key))  # fmt: skip
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["winners_found"] == 1 and out["promoted"][0]["new_budget_minor"] == 2 * before[1]
    action_id = out["promoted"][0]["action_id"]
    listed = client.get("/api/ml/auto-promote/history", headers=auth(key)).json()["actions"]
    assert [a["action_id"] for a in listed] == [action_id]
    undo = client.post(f"/api/ml/auto-promote/{action_id}/rollback", headers=auth(key))
    assert undo.status_code == 200, undo.text
    assert world.budgets() == before
    wrong = client.post(f"/api/ml/auto-promote/{action_id}/approve", headers=auth(key))
    assert wrong.status_code == 409


def test_bad_requests_change_nothing(api: tuple[TestClient, str], world: World) -> None:
    client, key = api
    headers = auth(key)
    unknown = client.post("/api/ml/auto-promote", json={"campaign_id": "nope"}, headers=headers)
    assert unknown.status_code == 404
    with transaction(world.factory) as session:
        other = create_account(session, "rival", world.clock.now())
        session.add(Campaign(account_id=other.id, external_id="rival-c1"))
    foreign = client.post("/api/ml/auto-promote", json={"campaign_id": "rival-c1"}, headers=headers)
    assert foreign.status_code == 404
    bad = client.put("/api/ml/accounts/me/guardrails",
                     json={"max_variant_budget_minor": -5}, headers=headers)  # fmt: skip
    assert bad.status_code == 422
    for nonsense in ({"multiplier": 0.5}, {"cooldown_hours": -1}, {"nope": 1}):
        put = client.put("/api/ml/accounts/me/guardrails", json=nonsense, headers=headers)
        assert put.status_code == 422, nonsense
    assert (
        client.get("/api/ml/accounts/me/guardrails", headers=headers).json()[
            "max_variant_budget_minor"
        ]
        is None
    )
    assert client.post("/api/ml/auto-promote/12345/rollback", headers=headers).status_code == 404
    assert world.records() == []
    good = client.put("/api/ml/accounts/me/guardrails",
                      json={"kill_switch": True, "max_account_budget_minor": 50_000},
                      headers=headers)  # fmt: skip
    assert good.status_code == 200 and good.json()["kill_switch"] is True
    out = client.post("/api/ml/auto-promote", headers=headers).json()
    assert out["promoted"] == [] and out["held_back"][0]["reason"] == "kill_switch"


# -- the guardrail property: no sequence of cycles, retries or crashes breaks a ceiling or
# -- applies a promotion twice -----------------------------------------------------------------


class FakePlatform:
    """A minimal account on a platform: one campaign, one ad per ad set, budgets in a dict."""

    name = "fake"

    def __init__(self, budgets: list[int]) -> None:
        self.budgets = {f"s{i}": b for i, b in enumerate(budgets)}
        self.crash: str | None = None
        self.writes: list[tuple[str, int, int]] = []  # ad set, before, after

    def account(self) -> PlatformAccount:
        return PlatformAccount("acct", "Fake")

    def list_campaigns(self) -> list[PlatformCampaign]:
        return [PlatformCampaign("c1", "Campaign")]

    def list_ad_sets(self) -> list[PlatformAdSet]:
        return [PlatformAdSet(s, "c1", s, daily_budget_minor=b) for s, b in self.budgets.items()]

    def list_ads(self) -> list[PlatformAd]:
        return [PlatformAd(f"ad{s[1:]}", s, "c1", s, is_control=s == "s0") for s in self.budgets]

    def fetch_insights(self, start: datetime, end: datetime) -> list[HourlyActual]:
        return []

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        if self.crash == "before":
            raise Crash("before")
        if self.crash == "refuse":
            raise PlatformError("refused")
        self.writes.append((ad_set_id, self.budgets[ad_set_id], daily_budget_minor))
        self.budgets[ad_set_id] = daily_budget_minor
        if self.crash == "after":
            raise Crash("after")

    def set_ad_status(self, ad_id: str, status: Status) -> None:
        return None


OPS = st.one_of(
    st.tuples(st.just("run"), st.sampled_from([None, None, "before", "after", "refuse"])),
    st.tuples(st.just("sync"), st.none()),
    st.tuples(st.just("advance"), st.sampled_from([1, 2, 5, 30, 80])),
    st.tuples(st.just("rollback"), st.integers(0, 3)),
    st.tuples(st.just("approve"), st.integers(0, 3)),
)


@given(
    budgets=st.lists(st.integers(500, 5000), min_size=4, max_size=4),
    multiplier=st.sampled_from([1.5, 2.0, 3.0]),
    variant_slack=st.one_of(st.none(), st.integers(0, 6000)),
    account_slack=st.one_of(st.none(), st.integers(0, 8000)),
    cooldown=st.sampled_from([0.0, 3.0, 72.0]),
    ramp=st.sampled_from([None, 0.2]),
    approval=st.sampled_from([None, None, 0, 2000]),
    max_changes=st.integers(1, 3),
    ops=st.lists(OPS, min_size=1, max_size=12),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_sequence_of_cycles_retries_or_crashes_breaks_a_guardrail(
    budgets: list[int],
    multiplier: float,
    variant_slack: int | None,
    account_slack: int | None,
    cooldown: float,
    ramp: float | None,
    approval: int | None,
    max_changes: int,
    ops: list[tuple[str, Any]],
) -> None:
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    clock = ManualClock(T0)
    platform = FakePlatform(budgets)
    variant_cap = None if variant_slack is None else max(budgets) + variant_slack
    account_cap = None if account_slack is None else sum(budgets) + account_slack
    with transaction(factory) as session:
        account_id = create_account(session, "prop", T0).id
        sync_catalog(session, account_id, platform.list_campaigns(), platform.list_ad_sets(),
                     platform.list_ads(), T0)  # fmt: skip
        rows = [
            HourlyActual(f"ad{i}", T0 - (h + 1) * HOUR, 3000, round(3000 * ctr), 0, 3000)
            for h in range(12)
            for i, ctr in enumerate((0.02, 0.034, 0.031, 0.02))
        ]
        upsert_actuals(session, account_id, rows, source="test", now=T0)
        store_settings(
            session,
            account_id,
            PromoterSettings.from_dict({
                "multiplier": multiplier, "max_variant_budget_minor": variant_cap,
                "max_account_budget_minor": account_cap, "cooldown_hours": cooldown,
                "ramp_max_step": ramp, "ramp_min_hours": 2.0,
                "approval_threshold_minor": approval, "max_changes_per_cycle": max_changes,
            }),
            now=T0,
            actor="test",
        )  # fmt: skip
    run_increases: set[tuple[str, datetime]] = set()
    for op, arg in ops:
        platform.crash = arg if op == "run" else None
        seen = len(platform.writes)
        try:
            if op == "run":
                run_promotion(factory, platform, account_id, now=clock.now())
            elif op == "sync":
                with transaction(factory) as session:
                    catalog = platform.list_ad_sets(), platform.list_ads()
                    sync_catalog(
                        session, account_id, platform.list_campaigns(), *catalog, clock.now()
                    )
            elif op == "advance":
                clock.advance(arg * HOUR)
            else:
                with factory() as session:
                    ids = [
                        r.id
                        for r in session.scalars(select(BudgetChange).order_by(BudgetChange.id))
                        if r.reason != "promoter:rollback"
                    ]
                if ids:
                    act = rollback if op == "rollback" else approve
                    act(factory, platform, account_id, ids[arg % len(ids)], now=clock.now(),
                        actor="prop")  # fmt: skip
        except (Crash, PromotionError):
            pass
        hour = clock.now().replace(minute=0)
        for ad_set, before, after in platform.writes[seen:]:
            if op == "run" and after > before:
                assert (ad_set, hour) not in run_increases, "promoted twice in one hour"
                run_increases.add((ad_set, hour))
        if variant_cap is not None:
            assert max(platform.budgets.values()) <= variant_cap
        if account_cap is not None:
            assert sum(platform.budgets.values()) <= account_cap
    with factory() as session:
        records = list(session.scalars(select(BudgetChange)))
    raised = [r for r in records if r.reason != "promoter:rollback" and r.mode in APPLIED]
    increases = [w for w in platform.writes if w[2] > w[1]]
    assert len(increases) <= len(raised) + sum(r.reason == "promoter:rollback" for r in records)
    for r in raised:
        assert r.old_budget_minor is not None and r.new_budget_minor > r.old_budget_minor
    engine.dispose()


APPLIED = ("applied", "rolled_back", "pending")


# -- money safety: funded inside the campaign, growth given back ---------------------------------


def test_by_default_a_promotion_is_funded_by_the_campaigns_other_ad_sets(world: World) -> None:
    world.configure(campaign_growth=False, max_edit_step=0.2, ramp_max_step=0.2)
    before = world.budgets()
    (promoted,) = world.run()["promoted"]
    after = world.budgets()
    assert sum(after) == sum(before)  # the campaign's total is kept
    assert after[1] == promoted["new_budget_minor"] <= int(before[1] * 1.2)
    assert after[0] < before[0] and after[2] < before[2]  # the others paid for it
    funds = [r for r in world.records() if r.reason == "promoter:fund"]
    assert {r.new_budget_minor for r in funds} == {after[0], after[2]}
    assert all(r.mode == "applied" for r in world.records())
    # the decreases were written before the raise: the total never went above the plan
    order = [ad_set for ad_set, _ in world.platform.writes]
    assert order[-1] == world.ad_sets[1]


def test_growth_is_given_back_when_its_winner_stops_winning(world: World) -> None:
    from adflywheel.services.promoter.reversal import reverse_faded_growth

    world.configure(campaign_growth=True)
    before = world.budgets()
    world.run()
    grown = world.budgets()
    assert grown[1] > before[1]
    world.sync()
    # a week in which the winner does worse than the control: the always-valid test drops it
    end = world.clock.now() + 24 * 7 * HOUR
    worse = [
        HourlyActual(ad, end - (h + 1) * HOUR, 2000, round(2000 * ctr), 0, 2000)
        for h in range(24 * 7)
        for ad, ctr in zip(world.ads, (0.020, 0.012, 0.020), strict=True)
    ]
    with transaction(world.factory) as session:
        upsert_actuals(session, world.account_id, worse, source="test", now=end)
    world.clock.advance(24 * 7 * HOUR)
    report = run_promotion(world.factory, world.platform, world.account_id, now=world.clock.now())
    assert world.ads[1] not in {d.variant_id for d in report.decisions if d.winner}
    done = reverse_faded_growth(
        world.factory, world.platform, world.account_id, report, now=world.clock.now(), actor="t"
    )
    assert [d["mode"] for d in done] == ["applied"]
    assert world.budgets()[1] == before[1]
    again = reverse_faded_growth(
        world.factory, world.platform, world.account_id, report, now=world.clock.now(), actor="t"
    )
    assert again == []  # given back once


def run_at(world: World, when: datetime, **kw: Any) -> dict[str, Any]:
    """A replay (``cycle --as-of``): the run's ``now`` is ``when``, whatever the clock says."""
    return run_promotion(world.factory, world.platform, world.account_id, now=when, **kw).as_dict()


def test_a_dry_run_now_puts_no_cooldown_on_a_later_replay_of_an_earlier_hour(
    world: World,
) -> None:
    """Issue #16: a dry run never consumes a cooldown or any state a later real run reads, and
    no run reads records dated after its own ``now`` (a replay sees the past as it was)."""
    world.configure(ramp_max_step=None)
    now = world.clock.now()
    earlier = now - 3 * HOUR
    assert world.run(dry_run=True)["promoted"][0]["mode"] == "dry_run"
    # A dry-run replay of an earlier hour does not see the dry run made after it either ...
    replayed = run_at(world, earlier, dry_run=True)
    assert replayed["held_back"] == [] and replayed["promoted"][0]["mode"] == "dry_run"
    # ... and the real replay of that hour promotes.
    real = run_at(world, earlier)
    assert real["held_back"] == [] and real["promoted"][0]["mode"] == "applied"
    assert [r.mode for r in world.records()] == ["dry_run", "dry_run", "applied"]


def test_a_real_replay_of_an_earlier_hour_still_sees_a_later_real_promotion(world: World) -> None:
    """The other side: a real change made after the replayed hour is the platform's state (the
    budget is doubled already), so the replay is held, never doubling twice."""
    now = world.clock.now()
    assert world.run()["promoted"][0]["mode"] == "applied"
    world.sync()
    doubled = world.budgets()
    replay = run_at(world, now - 3 * HOUR)
    assert replay["promoted"] == [] and replay["held_back"][0]["reason"] == "cooldown"
    assert world.budgets() == doubled and len(world.records()) == 1
