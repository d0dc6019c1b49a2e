"""Pausing clear losers in the cycle (issue #16): what is recorded and written in each mode,
once per hour, never a re-activation, and nothing under the kill switch."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from adflywheel.core.clock import ManualClock
from adflywheel.core.domain import Status
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleContext, CycleDeps, CycleOptions
from adflywheel.cycle.outcomes import HoldCode, Outcome
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign, PlatformError
from adflywheel.services.bandit.pausing import pause_losers
from adflywheel.services.promoter.settings import load_settings, store_settings
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdStatusChange, Variant
from tests.factories.catalog import store_hour, store_single_ad_set
from tests.factories.clock import T0
from tests.factories.helpers import new_account

HOUR = timedelta(hours=1)
# Per hour: (impressions, clicks). a2 has a third of a1's click rate; a3 (paused by the
# advertiser) had the best; b1 is alone in its ad set; in the CBO campaign t2 is the loser.
HOURLY = {
    "a1": (1_000, 30),
    "a2": (1_000, 10),
    "a3": (1_000, 60),
    "b1": (1_000, 5),
    "t1": (1_000, 30),
    "t2": (1_000, 8),
    "x1": (1_000, 30),
    "x2": (1_000, 5),
}


class RecordingPlatform:
    """Records every status write; refuses the ads in ``refuse``."""

    name = "double"

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.calls: list[tuple[str, Status]] = []
        self.refuse = refuse

    def set_ad_status(self, ad_id: str, status: Status) -> None:
        if ad_id in self.refuse:
            raise PlatformError(f"the platform refused {ad_id}")
        self.calls.append((ad_id, status))


def _account(engine: Engine, guardrails: str | None = "safe") -> int:
    """ABO campaign c1 (ad set s1: a1, a2 and the advertiser's paused a3; s2: b1 alone), CBO
    campaign c2 (ad set u1: t1, t2), and ABO campaign c3 (ad set v1: x1, x2), 24 hours of data."""
    account_id, _ = new_account(engine, "pausing", T0 - 48 * HOUR, guardrails=guardrails)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        sync_catalog(
            session,
            account_id,
            [
                PlatformCampaign("c1", "ABO", daily_budget_minor=10_000),
                PlatformCampaign("c2", "CBO", daily_budget_minor=10_000),
                PlatformCampaign("c3", "Other", daily_budget_minor=5_000),
            ],
            [
                PlatformAdSet("s1", "c1", "S1", daily_budget_minor=5_000),
                PlatformAdSet("s2", "c1", "S2", daily_budget_minor=5_000),
                PlatformAdSet("u1", "c2", "U1"),
                PlatformAdSet("v1", "c3", "V1", daily_budget_minor=5_000),
            ],
            [
                PlatformAd("a1", "s1", "c1", "A1"),
                PlatformAd("a2", "s1", "c1", "A2"),
                PlatformAd("a3", "s1", "c1", "A3", status=Status.PAUSED),
                PlatformAd("b1", "s2", "c1", "B1"),
                PlatformAd("t1", "u1", "c2", "T1"),
                PlatformAd("t2", "u1", "c2", "T2"),
                PlatformAd("x1", "v1", "c3", "X1"),
                PlatformAd("x2", "v1", "c3", "X2"),
            ],
            T0 - 48 * HOUR,
        )
        for h in range(24, 0, -1):
            store_hour(session, account_id, T0 - h * HOUR, HOURLY, T0)
    return account_id


def _ctx(
    engine: Engine, account_id: int, platform: Any, hour: datetime = T0, **options: Any
) -> CycleContext:
    clock = ManualClock(hour)
    deps = CycleDeps(make_session_factory(engine), clock, platform, settings=Settings())
    return CycleContext(
        account_id, hour, hour, clock, deps, CycleOptions(**options), frozenset(), {}
    )


def _guardrails(engine: Engine, account_id: int, **changes: Any) -> None:
    with transaction(make_session_factory(engine)) as session:
        settings = load_settings(session, account_id)
        g = replace(settings.guardrails, **changes)
        store_settings(session, account_id, replace(settings, guardrails=g), now=T0, actor="t")


def _records(engine: Engine) -> list[AdStatusChange]:
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(AdStatusChange).order_by(AdStatusChange.id)))


def _status(engine: Engine, ad: str) -> str:
    with make_session_factory(engine)() as session:
        return str(session.scalar(select(Variant.status).where(Variant.external_id == ad)))


def test_on_autopilot_each_loser_is_paused_once_and_a_rerun_writes_nothing(
    engine: Engine,
) -> None:
    account_id = _account(engine)
    platform = RecordingPlatform()
    ctx = _ctx(engine, account_id, platform)
    result = pause_losers(ctx)
    assert sorted(platform.calls) == [(a, Status.PAUSED) for a in ("a2", "t2", "x2")]
    assert result["ad_sets_examined"] == 3  # s2 has one ad; s1's a3 is the advertiser's pause
    assert result["pauses"]["decided"] == result["pauses"]["applied"] == 3
    by_ad = {p["ad"]: p for p in result["paused"]}
    assert by_ad["t2"]["campaign"] == "c2" and by_ad["t2"]["ad_set"] == "u1"
    assert all(0 <= p["p_value"] <= 0.05 for p in result["paused"])
    records = _records(engine)
    assert {r.mode for r in records} == {"applied"}
    assert all(r.old_status == "ACTIVE" and r.new_status == "PAUSED" for r in records)
    assert {r.idempotency_key for r in records} == {
        f"cycle/pause:{account_id}:{T0.isoformat()}:{a}" for a in ("a2", "t2", "x2")
    }
    a2 = next(r for r in records if r.idempotency_key and r.idempotency_key.endswith(":a2"))
    assert a2.evidence["best_ad_id"] == "a1" and a2.evidence["impressions"] == 24_000
    assert _status(engine, "a2") == "PAUSED" and _status(engine, "a1") == "ACTIVE"
    c1 = ctx.campaigns.noted["c1"]
    assert c1.outcome is Outcome.ACTED
    assert [(c.object_id, c.kind, c.old, c.new) for c in c1.changes] == [
        ("a2", "status", "ACTIVE", "PAUSED")
    ]
    # The same hour again (a retry): nothing is decided or written twice.
    again = pause_losers(_ctx(engine, account_id, platform))
    assert len(platform.calls) == 3 and len(_records(engine)) == 3
    assert again["pauses"]["decided"] == 0 and again["already_recorded_this_hour"] == 3
    # The next hour: each ad set is down to one active ad, and nothing is re-activated.
    later = pause_losers(_ctx(engine, account_id, platform, T0 + HOUR))
    assert later["ad_sets_examined"] == 0 and len(platform.calls) == 3
    assert all(status is Status.PAUSED for _, status in platform.calls)
    assert "a3" not in {ad for ad, _ in platform.calls}
    assert _status(engine, "a3") == "PAUSED"


def test_recommend_mode_records_and_writes_nothing(engine: Engine) -> None:
    account_id = _account(engine, guardrails=None)  # a new account's defaults: recommend
    platform = RecordingPlatform()
    ctx = _ctx(engine, account_id, platform)
    result = pause_losers(ctx)
    assert platform.calls == []
    assert result["pauses"]["recommended"] == result["pauses"]["decided"] == 3
    records = _records(engine)
    assert {r.mode for r in records} == {"recommended"}
    assert not any((r.idempotency_key or "").endswith(":dry") for r in records)
    # Recommended once: a retry of the hour recommends nothing more.
    assert pause_losers(_ctx(engine, account_id, platform))["pauses"]["decided"] == 0
    assert len(_records(engine)) == 3 and platform.calls == []
    assert _status(engine, "a2") == "ACTIVE"
    assert ctx.campaigns.noted["c1"].outcome is Outcome.RECOMMENDED


def test_a_dry_run_never_blocks_the_real_run_of_its_hour(engine: Engine) -> None:
    account_id = _account(engine)
    platform = RecordingPlatform()
    ctx = _ctx(engine, account_id, platform, dry_run=True)
    assert pause_losers(ctx)["pauses"]["dry_run"] == 3
    assert platform.calls == [] and _status(engine, "a2") == "ACTIVE"
    assert ctx.campaigns.noted["c1"].code is HoldCode.DRY_RUN
    assert all((r.idempotency_key or "").endswith(":dry") for r in _records(engine))
    assert pause_losers(_ctx(engine, account_id, platform))["pauses"]["applied"] == 3
    assert len(platform.calls) == 3
    # Without a platform, the pause is recorded as a dry run too.
    ctx = _ctx(engine, account_id, None, T0 + 2 * HOUR)
    assert pause_losers(ctx)["write_mode"] == "dry_run"


@pytest.mark.parametrize(
    "guardrails", [{"kill_switch": True}, {"excluded_campaigns": ("c1", "c2", "c3")}]
)
def test_the_kill_switch_and_excluded_campaigns_pause_nothing(
    engine: Engine, guardrails: dict[str, Any]
) -> None:
    account_id = _account(engine)
    _guardrails(engine, account_id, **guardrails)
    platform = RecordingPlatform()
    ctx = _ctx(engine, account_id, platform)
    result = pause_losers(ctx)
    assert platform.calls == [] and _records(engine) == []
    assert result["pauses"]["decided"] == 0 and ctx.campaigns.noted == {}


def test_a_refused_pause_fails_its_campaign_and_the_others_still_go(engine: Engine) -> None:
    account_id = _account(engine)
    platform = RecordingPlatform(refuse=frozenset({"t2"}))
    ctx = _ctx(engine, account_id, platform)
    with pytest.raises(RuntimeError, match="t2"):
        pause_losers(ctx)
    assert sorted(platform.calls) == [("a2", Status.PAUSED), ("x2", Status.PAUSED)]
    failed = ctx.campaigns.noted["c2"]
    assert failed.outcome is Outcome.FAILED and failed.code is HoldCode.ERROR
    assert "refused" in (failed.message or "")
    t2 = next(r for r in _records(engine) if (r.idempotency_key or "").endswith(":t2"))
    assert t2.mode == "pending" and "refused" in t2.evidence["error"]
    # A retry of the hour sends the recorded pause, and only that one.
    platform.refuse = frozenset()
    retry = pause_losers(_ctx(engine, account_id, platform))
    assert platform.calls[-1] == ("t2", Status.PAUSED) and len(platform.calls) == 3
    assert retry["pauses"]["applied"] == 1
    assert _status(engine, "t2") == "PAUSED"


def test_a_pending_pause_of_an_earlier_hour_is_abandoned_not_sent_late(engine: Engine) -> None:
    account_id = _account(engine)
    with pytest.raises(RuntimeError):
        pause_losers(_ctx(engine, account_id, RecordingPlatform(refuse=frozenset({"t2"}))))
    platform = RecordingPlatform()
    result = pause_losers(_ctx(engine, account_id, platform, T0 + HOUR))
    assert result["stale_pending_abandoned"] == 1
    assert platform.calls == [("t2", Status.PAUSED)]  # decided afresh on this hour's evidence
    modes = sorted(r.mode for r in _records(engine) if (r.idempotency_key or "").find(":t2") > 0)
    assert modes == ["abandoned", "applied"]


def test_an_ad_launched_later_is_compared_only_over_the_hours_both_ran(engine: Engine) -> None:
    """a1 was strong while fresh and is now as good as a2, which started 8 hours ago: on the
    window's totals a2 looks like a clear loser, hour by hour it is not."""
    account_id, _ = new_account(engine, "late", T0 - 48 * HOUR)
    with transaction(make_session_factory(engine)) as session:
        store_single_ad_set(
            session,
            account_id,
            [PlatformAd("a1", "s1", "c1", "A1"), PlatformAd("a2", "s1", "c1", "A2")],
            T0,
        )
        for h in range(24, 0, -1):
            counts = {"a1": (1_000, 40 if h > 8 else 10)}
            if h <= 8:
                counts["a2"] = (1_000, 10)
            store_hour(session, account_id, T0 - h * HOUR, counts, T0)
    platform = RecordingPlatform()
    result = pause_losers(_ctx(engine, account_id, platform))
    assert result["ad_sets_examined"] == 1 and result["pauses"]["decided"] == 0
    assert platform.calls == []
    # A real loser over the same hours is still paused, with the hours it was compared over.
    with transaction(make_session_factory(engine)) as session:
        for h in range(8, 0, -1):
            store_hour(
                session, account_id, T0 - h * HOUR, {"a1": (1_000, 40), "a2": (1_000, 10)}, T0
            )
    assert pause_losers(_ctx(engine, account_id, platform))["pauses"]["applied"] == 1
    assert platform.calls == [("a2", Status.PAUSED)]
    (record,) = _records(engine)
    assert record.evidence["hours"] == 8
