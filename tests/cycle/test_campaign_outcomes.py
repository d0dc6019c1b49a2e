"""Issue #16, item 2: every active campaign's outcome in every cycle report — acted,
recommended, held (with its reason) or failed — and its budget structure, so nothing is skipped
silently."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.core.clock import ManualClock
from adflywheel.core.domain import BudgetStructure, budget_structure
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleDeps, CycleOptions
from adflywheel.cycle.outcomes import CampaignLedger, Change, HoldCode, Outcome
from adflywheel.cycle.runner import run_cycle
from adflywheel.services.promoter.service import run_promotion
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.engine import make_session_factory
from adflywheel.store.models import BudgetChange
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account
from tests.factories.market import simulated_account

HOUR = timedelta(hours=1)
LOOPS = frozenset({2, 7})


def test_the_structure_follows_where_the_budgets_are() -> None:
    one_ad_each = [(5_000, 1), (5_000, 1)]
    assert budget_structure(one_ad_each) is BudgetStructure.AD_SET_BUDGETS
    assert budget_structure([(5_000, 1), (5_000, 3)]) is BudgetStructure.AD_SET_BUDGETS_MULTI_AD
    assert budget_structure([(None, 2), (None, 1)]) is BudgetStructure.CAMPAIGN_BUDGET
    assert budget_structure([(5_000, 1), (None, 1)]) is BudgetStructure.MIXED
    assert budget_structure([]) is BudgetStructure.CAMPAIGN_BUDGET  # nothing to move


def test_the_stronger_outcome_wins_and_every_change_is_kept() -> None:
    ledger = CampaignLedger()
    ledger.note("c1", Outcome.HELD, HoldCode.NO_CHANGE, "same split")
    waiting = [Change("s2", "budget", 5_000, 6_000)]
    ledger.note("c1", Outcome.HELD, HoldCode.AWAITING_APPROVAL, "approve it", waiting)
    ledger.note("c2", Outcome.ACTED, changes=[Change("s3", "budget", 100, 120)])
    ledger.note("c2", Outcome.HELD, HoldCode.NO_CHANGE, "nothing more")
    ledger.note("c3", Outcome.ACTED, changes=[Change("s4", "budget", 100, 80)])
    ledger.note("c3", Outcome.FAILED, HoldCode.ERROR, "the platform refused")
    structures = {c: BudgetStructure.AD_SET_BUDGETS for c in ("c1", "c2", "c3", "c4")}
    c1, c2, c3, c4 = ledger.report(structures)
    assert c1["outcome"] == "held" and c1["reason"]["code"] == "awaiting_approval"
    assert c1["changes"] == [{"object_id": "s2", "kind": "budget", "old": 5_000, "new": 6_000}]
    assert c2["outcome"] == "acted" and c2["reason"] is None and len(c2["changes"]) == 1
    assert c3["outcome"] == "failed" and c3["reason"]["code"] == "error"
    assert len(c3["changes"]) == 1  # what was written before it failed is still listed
    assert c4["outcome"] == "held" and c4["reason"]["code"] == "loop_off"
    assert ledger.any_failed()


def _three_structures() -> dict[str, Any]:
    """One campaign of each structure: one ad per ad set, two ads sharing an ad set's budget
    beside an ad set of one, a CBO."""
    ad_sets = [
        {"id": "abo-s1", "campaign_id": "abo", "daily_budget_minor": 5_000},
        {"id": "abo-s2", "campaign_id": "abo", "daily_budget_minor": 5_000},
        {"id": "multi-s1", "campaign_id": "multi", "daily_budget_minor": 5_000},
        {"id": "multi-s2", "campaign_id": "multi", "daily_budget_minor": 5_000},
        {"id": "cbo-s1", "campaign_id": "cbo"},
        {"id": "cbo-s2", "campaign_id": "cbo"},
    ]
    ads = [
        ("abo-a1", "abo-s1", "abo"),
        ("abo-a2", "abo-s2", "abo"),
        ("multi-a1", "multi-s1", "multi"),
        ("multi-a2", "multi-s1", "multi"),
        ("multi-a3", "multi-s2", "multi"),
        ("cbo-a1", "cbo-s1", "cbo"),
        ("cbo-a2", "cbo-s2", "cbo"),
    ]
    return {
        "campaigns": [
            {"id": "abo", "daily_budget_minor": 10_000},
            {"id": "multi", "daily_budget_minor": 5_000},
            {"id": "cbo", "daily_budget_minor": 10_000},
        ],
        "ad_sets": ad_sets,
        "ads": [
            {"id": a, "ad_set_id": s, "campaign_id": c, "is_control": a.endswith("1")}
            for a, s, c in ads
        ],
    }


def _actuals(ads: list[str], hours: int) -> list[dict[str, Any]]:
    rows = []
    for h in range(hours, 0, -1):
        hour = (T0 - h * HOUR).strftime("%Y-%m-%dT%H:00:00Z")
        for i, ad in enumerate(ads):
            clicks = 30 if i % 2 else 10  # every second ad clearly better
            rows.append({"ad_id": ad, "hour_start": hour, "impressions": 2_000,
                         "clicks": clicks, "spend_minor": 400})  # fmt: skip
    return rows


@pytest.mark.db
def test_each_structure_gets_an_outcome_and_none_is_skipped_silently(
    engine: Engine, client: TestClient
) -> None:
    account_id, key = new_account(engine, "structures", T0 - 48 * HOUR)
    catalog = _three_structures()
    assert client.put("/api/ml/catalog", json=catalog, headers=auth(key)).is_success
    rows = _actuals([a["id"] for a in catalog["ads"]], 24)
    assert client.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key)).is_success
    deps = CycleDeps(make_session_factory(engine), ManualClock(T0), None, settings=Settings())
    report = run_cycle(account_id, deps, CycleOptions(loops=LOOPS)).as_dict()
    outcomes = {c["campaign_id"]: c for c in report["campaigns"]}
    assert list(outcomes) == ["abo", "multi", "cbo"]
    assert outcomes["abo"]["structure"] == "ad_set_budgets"
    assert outcomes["multi"]["structure"] == "ad_set_budgets_multi_ad"
    assert outcomes["cbo"]["structure"] == "campaign_budget"
    # No platform: the one-ad-per-ad-set campaign's changes are recorded and not written.
    abo = outcomes["abo"]
    assert abo["outcome"] == "held" and abo["reason"]["code"] == "no_platform", abo
    assert {c["object_id"] for c in abo["changes"]} == {"abo-s1", "abo-s2"}
    # Two ads sharing an ad set: the budget moves between ad sets on ad-set-level evidence.
    multi = outcomes["multi"]
    assert multi["outcome"] == "held" and multi["reason"]["code"] == "no_platform", multi
    budgets = [c for c in multi["changes"] if c["kind"] == "budget"]
    assert {c["object_id"] for c in budgets} == {"multi-s1", "multi-s2"}
    grown = {c["object_id"]: c["new"] - c["old"] for c in budgets}
    assert grown["multi-s1"] > 0 > grown["multi-s2"], grown  # its two ads together do better
    # Inside the shared ad set, the clear loser (a third of its sibling's CTR) would be paused.
    statuses = [c for c in multi["changes"] if c["kind"] == "status"]
    assert statuses == [{"object_id": "multi-a1", "kind": "status", "old": "ACTIVE",
                         "new": "PAUSED"}]  # fmt: skip
    cbo = outcomes["cbo"]
    assert cbo["outcome"] == "held" and cbo["reason"]["code"] == "structure", cbo
    assert cbo["changes"] == []
    # The promoter judges the multi-ad campaign's ad sets, never one ad of a shared ad set.
    auto = report["loops"]["auto_promote"]
    multi_ads = {"multi-a1", "multi-a2", "multi-a3"}
    again = run_promotion(deps.factory, None, account_id, now=T0, dry_run=True)
    judged = {d.variant_id for d in again.decisions if d.experiment == "multi"}
    assert judged == {"multi-s1", "multi-s2"}, judged
    assert not multi_ads & {p["variant"] for p in auto["promoted"]}
    assert auto["held_back"].get("shared_budget", 0) == 0
    assert report["status"] == "completed"


class FailingWrites:
    """The simulated platform whose budget writes fail for one ad set."""

    def __init__(self, market: SimulatedMarket, broken: str) -> None:
        self.inner, self.broken = market.platform(market.accounts()[0]), broken

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def set_ad_set_budget(self, ad_set_id: str, daily_budget_minor: int) -> None:
        if ad_set_id == self.broken:
            raise RuntimeError(f"the platform refused {ad_set_id}")
        self.inner.set_ad_set_budget(ad_set_id, daily_budget_minor)


@pytest.mark.db
def test_on_autopilot_campaigns_are_acted_on_and_a_failure_makes_the_hour_partial(
    engine: Engine,
) -> None:
    config = MarketConfig(seed=5, n_accounts=1, campaigns_per_account=2, variants_per_campaign=4)
    market, account_id = simulated_account(engine, config)  # legacy guardrails, autopilot
    platform: Any = market.platform(market.accounts()[0])
    clock = ManualClock(market.current_hour)
    factory = make_session_factory(engine)
    seen: list[dict[str, Any]] = []
    for _ in range(30):
        market.step()
        clock.advance(HOUR)
        deps = CycleDeps(factory, clock, platform, settings=Settings())
        seen.append(run_cycle(account_id, deps, CycleOptions(loops=LOOPS)).as_dict())
    campaigns = {c.external_id for c in platform.list_campaigns()}
    for report in seen:
        assert {c["campaign_id"] for c in report["campaigns"]} == campaigns
        assert all(c["structure"] == "ad_set_budgets" for c in report["campaigns"])
        assert report["status"] == "completed"
        written = sum(len(c["changes"]) for c in report["campaigns"] if c["outcome"] == "acted")
        assert written >= report["budget_changes"]["applied"]
    acted = [c for r in seen for c in r["campaigns"] if c["outcome"] == "acted"]
    assert acted and all(c["changes"] and c["reason"] is None for c in acted)
    held = [c for r in seen for c in r["campaigns"] if c["outcome"] == "held"]
    assert all(c["reason"]["code"] in {"no_change", "edit_rules"} for c in held)
    # A write that fails: that campaign failed, the hour is partial, the other still acted on.
    broken = sorted(a.external_id for a in platform.list_ad_sets())[0]
    failing: Any = FailingWrites(market, broken)
    for _ in range(12):
        market.step()
        clock.advance(HOUR)
        deps = CycleDeps(factory, clock, failing, settings=Settings())
        report = run_cycle(account_id, deps, CycleOptions(loops=LOOPS)).as_dict()
        failed = [c for c in report["campaigns"] if c["outcome"] == "failed"]
        if failed:
            break
    assert failed, "no hour wrote to the broken ad set"
    assert report["status"] == "partial" and failed[0]["reason"]["code"] == "error"
    assert "refused" in failed[0]["reason"]["message"]


@pytest.mark.db
def test_the_reallocation_marks_provisional_conversions_with_the_accounts_window(
    engine: Engine, client: TestClient
) -> None:
    """Issue #16 item 4 through the cycle: the account's attribution window (here 3 days) is the
    one the allocator uses to mark conversions Meta may still restate."""
    account_id, key = new_account(engine, "window", T0 - 48 * HOUR)
    catalog = {
        "campaigns": [{"id": "conv", "objective": "conversions_per_dollar"}],
        "ad_sets": [
            {"id": f"conv-s{i}", "campaign_id": "conv", "daily_budget_minor": 5_000}
            for i in (1, 2)
        ],
        "ads": [{"id": f"conv-a{i}", "ad_set_id": f"conv-s{i}", "campaign_id": "conv"}
                for i in (1, 2)],
    }  # fmt: skip
    assert client.put("/api/ml/catalog", json=catalog, headers=auth(key)).is_success
    rows = _actuals(["conv-a1", "conv-a2"], 24)
    assert client.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key)).is_success
    window = {"attribution_window_days": 3}
    assert client.put("/api/ml/actuals/attribution", json=window, headers=auth(key)).is_success
    deps = CycleDeps(make_session_factory(engine), ManualClock(T0), None, settings=Settings())
    run_cycle(account_id, deps, CycleOptions(loops=frozenset({2})))
    with make_session_factory(engine)() as session:
        evidence = [c.evidence for c in session.scalars(select(BudgetChange))]
    assert evidence, "the split moved nothing: nothing to check"
    assert {e["provisional"]["attribution_window_days"] for e in evidence} == {3}
