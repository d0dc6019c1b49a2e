"""Loop 6's shell: scoring stored predictions, aggregates, the breaker, drift and the retrain
trigger (with a fake retrain function), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.domain import HourlyActual
from adflywheel.loops.monitor import PageHinkleyParams, PageHinkleyState, RetrainPolicy
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.services.monitor.service import MonitorSettings, validate_and_maybe_retrain
from adflywheel.store.accounts import create_account
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog, variant_ids_by_external
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import Prediction
from adflywheel.store.monitoring import (
    AccuracySnapshot,
    DataHealth,
    DriftDetector,
    PredictionScore,
    RetrainTrigger,
)
from tests.factories.clock import T0

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)


@dataclass
class Fake:
    """A retrain function that records its calls (the compound learner provides the real one)."""

    calls: list[tuple[int, datetime, str]] = field(default_factory=list)
    fail: bool = False
    says: str | None = None  # a status the retrain function reports (e.g. "skipped")

    def __call__(
        self, factory: sessionmaker[Session], account_id: int, now: datetime, reason: str
    ) -> dict[str, Any]:
        self.calls.append((account_id, now, reason))
        if self.fail:
            raise RuntimeError("training blew up")
        if self.says is not None:
            return {"status": self.says}
        return {"promoted": True, "version": len(self.calls)}


@dataclass
class World:
    factory: sessionmaker[Session]
    account_id: int
    variants: dict[str, int]
    alerts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def alert(self, kind: str, message: str, details: dict[str, Any]) -> None:
        self.alerts.append((kind, message, details))

    def actuals(self, start: datetime, hours: int, rates: dict[str, float], imps: int) -> None:
        rows = [
            HourlyActual(ad, start + h * HOUR, imps, round(imps * r), 0, imps)
            for h in range(hours)
            for ad, r in rates.items()
        ]
        with transaction(self.factory) as session:
            upsert_actuals(session, self.account_id, rows, source="test", now=T0)

    def predict(
        self, ad: str, value: float, end: datetime, model: str = "ensemble", **kw: Any
    ) -> int:
        with transaction(self.factory) as session:
            p = Prediction(
                account_id=self.account_id,
                variant_id=self.variants[ad],
                model_name=model,
                metric="ctr",
                value=value,
                predicted_at=end - DAY,
                window_start=end - DAY,
                window_end=end,
                **kw,
            )
            session.add(p)
            session.flush()
            return p.id

    def run(self, as_of: datetime, retrain: Fake | None, **kw: Any) -> dict[str, Any]:
        return validate_and_maybe_retrain(
            self.factory, self.account_id, as_of, retrain=retrain, alerts=self.alert, **kw
        )

    def rows(self, model: type[Any]) -> list[Any]:
        with self.factory() as session:
            return list(session.scalars(select(model)))


def _world(engine: Engine, name: str = "acme") -> World:
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        account_id = create_account(session, name, T0 - 30 * DAY).id
        sync_catalog(
            session,
            account_id,
            [PlatformCampaign("c1", "Spring")],
            [PlatformAdSet(f"s{i}", "c1", f"s{i}") for i in "abc"],
            [PlatformAd(i, f"s{i}", "c1", i) for i in "abc"],
            T0 - 30 * DAY,
        )
        variants = variant_ids_by_external(session, account_id)
    return World(factory, account_id, variants)


@pytest.fixture
def world(engine: Engine) -> World:
    return _world(engine)


Make = Callable[..., World]


def test_due_predictions_are_scored_once_with_hand_checked_aggregates(world: World) -> None:
    # Window [T0-24h, T0): per ad 100 impressions an hour; 2, 1 and 0 clicks an hour.
    world.actuals(T0 - DAY, 24, {"a": 0.02, "b": 0.01, "c": 0.0}, 100)
    ids = [
        world.predict("a", 0.02, T0, model="thompson", model_version_id=None),
        world.predict("b", 0.015, T0, model="thompson", lower=0.012, upper=0.02),
        world.predict("c", 0.01, T0, model="thompson"),
    ]
    later = world.predict("a", 0.02, T0 + HOUR, model="thompson")  # window not closed yet
    out = world.run(T0, Fake())
    assert out["scored"] == 3 and out["waiting_for_actuals"] == 0
    # |48-48| + |36-24| + |24-0| = 36 error clicks on 72 clicks
    assert out["model"] == "thompson"
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["calibration"] == pytest.approx((48 + 36 + 24) / 72)
    scores = {s.prediction_id: s for s in world.rows(PredictionScore)}
    assert set(scores) == set(ids)
    assert scores[ids[0]].accuracy == pytest.approx(1.0)
    assert scores[ids[1]].relative_error == pytest.approx(0.5)
    assert scores[ids[1]].in_interval is False  # actual 0.01 is below [0.012, 0.02]
    assert scores[ids[2]].accuracy is None and scores[ids[2]].error == pytest.approx(0.01)
    snaps = {s.group_key: s for s in world.rows(AccuracySnapshot)}
    assert set(snaps) == {"model:thompson", "segment:thompson:c1"}
    assert snaps["model:thompson"].accuracy == pytest.approx(0.5)
    assert snaps["model:thompson"].clicks == 72 and snaps["model:thompson"].impressions == 7200
    with world.factory() as session:
        assert session.get(Prediction, later).scored_at is None  # type: ignore[union-attr]
    again = world.run(T0, Fake())  # a re-run scores nothing twice
    assert again["scored"] == 0 and len(world.rows(PredictionScore)) == 3


def test_a_window_waits_for_its_actuals_and_no_delivery_is_not_scored(world: World) -> None:
    world.actuals(T0 - DAY, 20, {"a": 0.02, "b": 0.02}, 100)  # the last 4 hours are missing
    world.predict("a", 0.02, T0)
    out = world.run(T0, Fake())
    assert out["scored"] == 0 and out["waiting_for_actuals"] == 1
    world.actuals(T0 - 4 * HOUR, 4, {"a": 0.02}, 100)
    world.predict("c", 0.02, T0)  # c never delivered
    out = world.run(T0 + HOUR, Fake())
    assert out["scored"] == 1 and out["no_delivery"] == 1


def test_low_accuracy_retrains_once_then_cools_down(world: World) -> None:
    world.actuals(T0 - 8 * DAY, 8 * 24 + 3, {"a": 0.02, "b": 0.01}, 1000)
    for ad in "ab":
        world.predict(ad, 0.05, T0)  # 2.5x and 5x too high
        world.predict(ad, 0.05, T0 + HOUR)
        world.predict(ad, 0.05, T0 + 2 * HOUR)
    fake = Fake()
    out = world.run(T0, fake)
    assert out["accuracy"] == 0.0 and out["retrain_triggered"] and out["retrained"]
    assert out["reason"] == "accuracy_below_threshold"
    assert fake.calls == [(world.account_id, T0, "accuracy_below_threshold")]
    assert [a[0] for a in world.alerts] == ["retrain"]
    assert world.run(T0, fake)["retrain_triggered"] is False  # the same hour never twice
    nxt = world.run(T0 + HOUR, fake)
    assert not nxt["retrain_triggered"] and nxt["blocked_by"] == "cooldown"
    assert len(fake.calls) == 1
    triggers = {t.hour: t for t in world.rows(RetrainTrigger)}
    assert triggers[T0].status == "retrained" and triggers[T0].result["version"] == 1
    assert triggers[T0].evidence["headline"]["accuracy"] == 0.0
    assert triggers[T0 + HOUR].status == "blocked_cooldown"
    cool = MonitorSettings(policy=RetrainPolicy(cooldown=timedelta(0)))
    assert world.run(T0 + 2 * HOUR, fake, settings=cool)["retrain_triggered"]


def test_a_failing_retrain_is_recorded_and_alerted(world: World) -> None:
    world.actuals(T0 - 2 * DAY, 5 * 24, {"a": 0.02, "b": 0.01}, 1000)
    for end in (T0, T0 + DAY, T0 + 3 * DAY):
        world.predict("a", 0.08, end)
        world.predict("b", 0.08, end)
    out = world.run(T0, Fake(fail=True))
    assert out["retrain_triggered"] and not out["retrained"]
    assert out["retrain_result"]["status"] == "failed"
    assert "training blew up" in out["retrain_result"]["error"]
    assert world.rows(RetrainTrigger)[0].status == "failed"
    assert world.alerts[-1][0] == "retrain" and "failed" in world.alerts[-1][1]
    # a retrain function that says it did not train is believed, and starts the cooldown
    later = world.run(T0 + DAY, Fake(says="skipped"))
    assert later["retrain_triggered"] and not later["retrained"]
    assert later["retrain_result"]["retrain_status"] == "skipped"
    assert "did not train" in world.alerts[-1][1]
    # without a retrain function the wanted retrain is recorded, not silently dropped
    assert world.run(T0 + 3 * DAY, None)["retrain_triggered"] is False
    statuses = [t.status for t in sorted(world.rows(RetrainTrigger), key=lambda t: t.hour)]
    assert statuses == ["failed", "not_retrained", "blocked_no_retrainer"]


@pytest.mark.parametrize("gate", ["refused", "retrained"])
def test_a_refused_challenger_is_an_attempt_not_a_retrain(world: World, gate: str) -> None:
    """The gate refusing the challenger: the reason is kept and the cooldown starts, but the
    old model keeps serving, so its drift detectors are not reset and no retrain is counted."""
    world.actuals(T0 - 8 * DAY, 8 * 24 + 3, {"a": 0.02, "b": 0.01}, 1000)
    for ad in "ab":
        world.predict(ad, 0.05, T0)
        world.predict(ad, 0.05, T0 + HOUR)
    fake = Fake(says=gate)
    out = world.run(T0, fake)
    assert out["retrain_triggered"] and out["reason"] == "accuracy_below_threshold"
    assert out["retrained"] is (gate == "retrained")
    assert out["retrain_refused"] is (gate == "refused")
    assert out["retrain_result"]["status"] == gate
    trigger = world.rows(RetrainTrigger)[0]
    assert (trigger.status, trigger.reason) == (gate, "accuracy_below_threshold")
    states = [PageHinkleyState.from_dict(d.state) for d in world.rows(DriftDetector)]
    assert states  # the window of T0 was fed before the retrain ran
    if gate == "refused":
        assert all(s.n == 1 for s in states)  # kept: the same model still serves
        assert "refused" in world.alerts[-1][1]
    else:
        assert all(s.n == 0 for s in states)  # a new model: the streams start afresh
    nxt = world.run(T0 + HOUR, fake)  # the attempt started the cooldown either way
    assert not nxt["retrain_triggered"] and nxt["blocked_by"] == "cooldown"
    assert len(fake.calls) == 1


def test_the_cycle_retrainer_reports_a_refused_gate_as_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adflywheel.services.monitor.step as step
    from adflywheel.services.compound.training import GateDecision

    said: list[str] = []

    def gate(*args: Any, **kwargs: Any) -> GateDecision:
        return GateDecision(said[-1], "because", world.account_id, "ctr")

    monkeypatch.setattr(step, "train_challenger_and_gate", gate)
    ctx: Any = type("Ctx", (), {"deps": type("Deps", (), {"settings": None})()})()
    retrain = step.retrainer(ctx)
    for status, expected in [
        ("promoted", "retrained"),
        ("refused", "refused"),
        ("insufficient_data", "insufficient_data"),
    ]:
        said.append(status)
        result = retrain(world.factory, world.account_id, T0, "drift")
        assert result["status"] == expected and result["gate"]["status"] == status


def _broken_feed(world: World) -> None:
    """A week of normal delivery, then 8 hours whose clicks never arrive."""
    world.actuals(T0 - 8 * DAY, 8 * 24 - 8, {"a": 0.02, "b": 0.01}, 1000)
    world.actuals(T0 - 8 * HOUR, 8, {"a": 0.0, "b": 0.0}, 1000)
    world.predict("a", 0.02, T0)
    world.predict("b", 0.01, T0)


def test_a_broken_click_feed_trips_the_breaker_and_nothing_learns_from_it(world: World) -> None:
    _broken_feed(world)
    fake = Fake()
    out = world.run(T0, fake)
    assert out["breaker"]["open"] and "zero_click_run" in out["breaker"]["reasons"]
    assert out["quarantined"] == 2 and out["scored"] == 0
    assert fake.calls == [] and not out["retrain_triggered"]
    assert [a[0] for a in world.alerts] == ["breaker"]
    health = world.rows(DataHealth)
    assert health[0].is_open and health[0].suspect_start == T0 - 8 * HOUR
    world.run(T0, fake)  # still open: alerted once, not every hour
    assert [a[0] for a in world.alerts] == ["breaker"]


def test_without_the_breaker_the_same_feed_would_retrain_on_zero_ctr(engine: Engine) -> None:
    world = _world(engine, "nobreaker")
    _broken_feed(world)
    fake = Fake()
    # The windows are [T0-24h, T0): 16 good hours and 8 zero-click hours; accuracy falls to
    # 2/3 of the clicks' worth, and with a stricter threshold the model would retrain on it.
    strict = MonitorSettings(breaker_enabled=False, policy=RetrainPolicy(accuracy_threshold=0.9))
    out = world.run(T0, fake, settings=strict)
    assert out["scored"] == 2 and not out["breaker"]["open"]
    assert out["accuracy"] == pytest.approx(1 - (480 - 320 + 240 - 160) / 480)
    assert fake.calls and out["retrained"]


def test_drift_is_detected_alerted_and_retrains(world: World) -> None:
    # CTR 2% for ad a and 1% for ad b; from hour 40 ad a doubles and ad b halves (the pooled
    # rate barely moves: the loss stream sees it). Hourly 24h-window predictions at the old rates.
    start = T0 - 5 * DAY
    world.actuals(start, 40, {"a": 0.02, "b": 0.01}, 2000)
    world.actuals(start + 40 * HOUR, 24, {"a": 0.04, "b": 0.005}, 2000)
    for h in range(24, 64):
        world.predict("a", 0.02, start + h * HOUR)
        world.predict("b", 0.01, start + h * HOUR)
    fake = Fake()
    settings = MonitorSettings(
        loss_detector=PageHinkleyParams(threshold=10, min_instances=12),
        policy=RetrainPolicy(accuracy_threshold=0.01),  # only drift may trigger here
    )
    first_alarm = None
    for h in range(24, 64):
        out = world.run(start + h * HOUR, fake, settings=settings)
        if out["drift"] and first_alarm is None:
            first_alarm = h
            assert "ensemble/loss" in out["drift"]
            assert out["retrain_triggered"] and "drift" in str(out["reason"])
    assert first_alarm is not None and 40 < first_alarm <= 52, first_alarm
    assert fake.calls and fake.calls[0][2] == "drift"
    assert "drift" in [a[0] for a in world.alerts]


def test_accounts_are_isolated(engine: Engine) -> None:
    one, two = _world(engine, "one"), _world(engine, "two")
    one.actuals(T0 - DAY, 24, {"a": 0.02}, 100)
    one.predict("a", 0.02, T0)
    assert two.run(T0, Fake())["scored"] == 0
    assert one.run(T0, Fake())["scored"] == 1


def test_scores_taken_before_the_breaker_had_evidence_are_taken_back(world: World) -> None:
    # 9 expected clicks an hour: one silent hour is not yet implausible, three are.
    world.actuals(T0 - 8 * DAY, 8 * 24 - 3, {"a": 0.02, "b": 0.01}, 300)
    world.actuals(T0 - 3 * HOUR, 3, {"a": 0.0, "b": 0.0}, 300)
    early = world.predict("a", 0.02, T0 - 2 * HOUR)  # its window holds one silent hour
    out = world.run(T0 - 2 * HOUR, Fake())
    assert not out["breaker"]["open"] and out["scored"] == 1
    out = world.run(T0, Fake())
    assert out["breaker"]["open"] and out["windows_retracted"] == 1
    with world.factory() as session:
        assert session.get(PredictionScore, early).status == "quarantined"  # type: ignore[union-attr]
    assert world.rows(AccuracySnapshot) == []  # its window's aggregates are gone too
