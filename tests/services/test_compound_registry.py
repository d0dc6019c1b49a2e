"""The model registry: versions with artifacts, the promotion gate, manual moves, rollback."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from adflywheel.core.errors import NotFoundError
from adflywheel.core.settings import Settings
from adflywheel.loops.compound.features import Dataset, feature_matrix, pre_launch_context
from adflywheel.loops.compound.gate import GateRules, holdout_problem, judge
from adflywheel.loops.dna.fingerprint import DNA_VERSION, dna_from_features
from adflywheel.services.compound.training import (
    GateDecision,
    RegistryError,
    TrainOptions,
    list_models,
    load_champion,
    promote,
    read_artifact,
    rollback,
    train_challenger_and_gate,
    write_artifact,
)
from adflywheel.store.accounts import create_account
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import HourlyActualRow, ModelVersion
from adflywheel.store.registry import ModelEvent
from tests.factories.ctr_world import populate

START = datetime(2026, 3, 2, tzinfo=UTC)
HOURS = 72
NOW = START + timedelta(hours=HOURS)
OPTIONS = TrainOptions(holdout_hours=24, valid_hours=24)
WEAK = TrainOptions(
    holdout_hours=24, valid_hours=24, params={"n_estimators": 1, "eta": 0.001, "max_depth": 1}
)


def _account(engine: Engine, name: str) -> int:
    with transaction(make_session_factory(engine)) as session:
        return create_account(session, name, START, category="beauty").id


@pytest.fixture
def world(engine: Engine) -> tuple[Engine, int]:
    account_id = _account(engine, "ctr-world")
    populate(engine, account_id, START, HOURS, n_creatives=60, seed=0)
    return engine, account_id


@pytest.fixture
def registry_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", artifacts_url=str(tmp_path / "artifacts"))


def _train(
    engine: Engine, settings: Settings, account_id: int, options: TrainOptions = OPTIONS
) -> GateDecision:
    return train_challenger_and_gate(
        make_session_factory(engine), settings, account_id, NOW, "test", options=options
    )


def test_the_first_model_is_stored_and_promoted_over_the_base_rate(
    world: tuple[Engine, int], tmp_path: Path
) -> None:
    """Also: the artifact goes to an object store through fsspec (memory:// here) and back."""
    engine, account_id = world
    store = Settings(data_dir=tmp_path / "d", artifacts_url="memory://registry-models")
    decision = _train(engine, store, account_id)
    assert decision.status == "promoted", decision.reason
    assert decision.champion_before is None and decision.champion_after == decision.version_id
    evidence = decision.evidence
    assert evidence["reference"] == "base rate"
    assert evidence["paired"]["ci_upper"] < 0
    assert 0.8 <= evidence["challenger_scores"]["calibration"] <= 1.25
    assert evidence["challenger_scores"]["log_loss"] < evidence["base_rate_scores"]["log_loss"]
    factory = make_session_factory(engine)
    with factory() as session:
        loaded = load_champion(session, account_id)
        assert loaded is not None and loaded.version == 1
        version = session.get(ModelVersion, loaded.version_id)
        assert version is not None
        # The stored artifact is the model, byte for byte (content-addressed).
        data = read_artifact(str(version.artifact_uri))
        assert version.artifact_uri is not None and version.artifact_sha256 in version.artifact_uri
        assert version.artifact_uri.startswith("memory://")
        assert "/registry-models/models/account-" in version.artifact_uri
        assert version.feature_schema["version"] == loaded.model.schema.version
        assert version.dna_version == DNA_VERSION and version.trained_reason == "test"
        assert version.metrics["synthetic"] is False
    assert len(data) > 1000
    # Cold start through the registry's model: a creative that never ran.
    vec = dna_from_features({"hook_type": "question", "duration_s": 10}).vector
    p = loaded.model.predict_ctr(feature_matrix([pre_launch_context(account_id, vec, NOW)]))
    assert 0.0 < float(p[0]) < 1.0


def test_nothing_from_the_holdout_or_the_future_is_trained_on(
    world: tuple[Engine, int], registry_settings: Settings
) -> None:
    engine, account_id = world
    now = NOW - timedelta(hours=24)  # rows after this instant exist and must not be read
    decision = train_challenger_and_gate(
        make_session_factory(engine), registry_settings, account_id, now, "t", options=OPTIONS
    )
    assert decision.version_id is not None
    with make_session_factory(engine)() as session:
        version = session.get(ModelVersion, decision.version_id)
        assert version is not None
        split = version.metrics["split"]
        train, valid, test = (
            set(split["train_creatives"]),
            set(split["valid_creatives"]),
            set(split["test_creatives"]),
        )
        assert train and valid and test
        assert not train & test and not valid & test and not train & valid
        holdout_start = now - timedelta(hours=24)
        assert version.data_window_end == holdout_start
        assert split["end"] == now.isoformat()
        expected = session.scalar(
            select(func.sum(HourlyActualRow.impressions)).where(
                HourlyActualRow.variant_id.in_(test),
                HourlyActualRow.hour_start >= holdout_start,
                HourlyActualRow.hour_start < now,
            )
        )
    assert decision.evidence["holdout"]["impressions"] == expected
    assert decision.evidence["windows"]["holdout"] == [holdout_start.isoformat(), now.isoformat()]


def test_the_gate_refuses_worse_promotes_better_and_rollback_restores(
    world: tuple[Engine, int], registry_settings: Settings
) -> None:
    engine, account_id = world
    factory = make_session_factory(engine)
    first = _train(engine, registry_settings, account_id)
    assert first.status == "promoted"

    weak = _train(engine, registry_settings, account_id, WEAK)
    assert weak.status == "refused", weak.reason
    assert "does not lie below zero" in weak.reason
    assert weak.champion_after == first.version_id and weak.version == 2
    with factory() as session:
        champion = load_champion(session, account_id)
        assert champion is not None and champion.version_id == first.version_id

    # Put the weak version in charge by hand; a good challenger must then win the gate.
    assert weak.version_id is not None
    with transaction(factory) as session:
        promote(session, weak.version_id, "tester", "drill", account_id=account_id, now=NOW)
    better = _train(engine, registry_settings, account_id)
    assert better.status == "promoted", better.reason
    assert better.evidence["reference"] == "champion v2"
    assert better.champion_before == weak.version_id

    with transaction(factory) as session:
        event = rollback(session, account_id, "ctr_xgb", "tester", "bad night", now=NOW)
        assert event.from_version_id == better.version_id
        assert event.to_version_id == weak.version_id
    with transaction(factory) as session:
        rollback(session, account_id, "ctr_xgb", "tester", "again", now=NOW)
    with factory() as session:
        champion = load_champion(session, account_id)
        assert champion is not None and champion.version_id == first.version_id
        actions = [e["action"] for e in list_models(session, account_id)["events"]]
        assert actions == ["rollback", "rollback", "promote", "promote", "refuse", "promote"]
        events = session.scalars(select(ModelEvent).order_by(ModelEvent.id)).all()
        assert all(e.evidence for e in events) and events[0].evidence["paired"]
        assert len(list_models(session, account_id)["versions"]) == 3


def test_too_little_data_says_so_and_stores_nothing(
    engine: Engine, registry_settings: Settings
) -> None:
    empty = _account(engine, "empty")
    decision = _train(engine, registry_settings, empty)
    assert decision.status == "insufficient_data"
    assert "0 creatives" in decision.reason and decision.evidence == {}
    tiny = _account(engine, "tiny")
    populate(engine, tiny, START, HOURS, n_creatives=6, seed=1, prefix="t", impressions=5)
    decision = _train(engine, registry_settings, tiny)
    assert decision.status == "insufficient_data"
    assert "clicks" in decision.reason
    with make_session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0
        assert session.scalar(select(func.count()).select_from(ModelEvent)) == 0
        assert load_champion(session, tiny) is None
    with pytest.raises(RegistryError, match="not found"):
        _train(engine, registry_settings, 10_000)


def test_isolation_and_manual_moves_that_cannot_serve(
    world: tuple[Engine, int], registry_settings: Settings
) -> None:
    engine, account_id = world
    other = _account(engine, "other")
    decision = _train(engine, registry_settings, account_id)
    assert decision.version_id is not None
    factory = make_session_factory(engine)
    # Another account never sees or moves this account's models.
    with factory() as session:
        assert load_champion(session, other) is None
        listing = list_models(session, other)
        assert listing["versions"] == [] and listing["aliases"] == [] and listing["events"] == []
    with transaction(factory) as session, pytest.raises(RegistryError, match="not found") as error:
        promote(session, decision.version_id, "x", "steal", account_id=other, now=NOW)
    assert isinstance(error.value, NotFoundError)
    with transaction(factory) as session, pytest.raises(RegistryError, match="no champion"):
        rollback(session, other, "ctr_xgb", "x", "nothing", now=NOW)
    # Manual moves refuse what cannot serve.
    with transaction(factory) as session, pytest.raises(RegistryError, match="already"):
        promote(session, decision.version_id, "x", "again", now=NOW)
    with transaction(factory) as session, pytest.raises(RegistryError, match="not found"):
        promote(session, 99_999, "x", "ghost", now=NOW)
    with transaction(factory) as session:
        version = session.get(ModelVersion, decision.version_id)
        assert version is not None
        version.feature_schema = {"version": "ctr-features-0"}
    with factory() as session:
        assert load_champion(session, account_id) is None  # never fed columns it does not know
    weak = _train(engine, registry_settings, account_id, WEAK)
    # The champion's schema is not this code's: it is judged against the base rate instead.
    assert weak.evidence["reference"] == "base rate" and "ctr-features-0" in weak.evidence["note"]
    with transaction(factory) as session, pytest.raises(RegistryError, match="cannot serve"):
        promote(session, decision.version_id, "x", "old", now=NOW)


def test_artifacts_round_trip_through_fsspec_atomically(tmp_path: Path) -> None:
    url = write_artifact("memory://registry-test", "models/a/x.ubj", b"payload")
    assert url.startswith("memory://") and read_artifact(url) == b"payload"
    fs = fsspec.filesystem("memory")
    assert fs.ls("/registry-test/models/a", detail=False) == ["/registry-test/models/a/x.ubj"]
    local = write_artifact(str(tmp_path / "art"), "m/y.ubj", b"\x00\x01")
    assert read_artifact(local) == b"\x00\x01"
    assert sorted(p.name for p in (tmp_path / "art" / "m").iterdir()) == ["y.ubj"]


def _holdout(seed: int = 0) -> tuple[Dataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.repeat(rng.uniform(0.003, 0.06, 30), 24)
    n = np.full(truth.size, 400.0)
    c = rng.binomial(400, truth).astype(np.float64)
    X = np.zeros((truth.size, 1))
    return Dataset(X, n, c, np.repeat(np.arange(30), 24)), truth


def test_the_pure_gate_rules() -> None:
    data, truth = _holdout()
    base_rate = float(data.clicks.sum() / data.impressions.sum())
    base = np.full(len(data), base_rate)
    rules = GateRules()
    good = judge(truth, base, "base rate", data, base_rate, rules)
    assert good.promote and "beats the base rate" in good.reason
    assert good.evidence["relative_improvement"] > 0.01
    # Better in ranking but 35% too high: refused on calibration alone.
    hot = judge(truth * 1.35, base, "base rate", data, base_rate, rules)
    assert not hot.promote and "calibration" in hot.reason and "interval" not in hot.reason
    # A hair better than the reference: inside the noise or below the minimum gain.
    hair = judge(base * 0.995 + truth * 0.005, base, "base rate", data, base_rate, rules)
    assert not hair.promote and ("interval" in hair.reason or "required" in hair.reason)
    assert not judge(truth * np.nan, base, "base rate", data, base_rate, rules).promote
    small = Dataset(data.X[:24], data.impressions[:24], data.clicks[:24], data.groups[:24])
    assert holdout_problem(small, rules) is not None
    with pytest.raises(ValueError, match="1 creatives"):
        judge(truth[:24], base[:24], "base rate", small, base_rate, rules)
    with pytest.raises(ValueError, match="band"):
        GateRules(calibration_low=1.1)


def test_two_concurrent_trainings_both_get_a_version(
    world: tuple[Engine, int], registry_settings: Settings
) -> None:
    engine, account_id = world
    with ThreadPoolExecutor(max_workers=2) as pool:
        decisions = list(
            pool.map(lambda seed: _train(engine, registry_settings, account_id,
                                         TrainOptions(holdout_hours=24, valid_hours=24, seed=seed)),
                     (0, 1))
        )  # fmt: skip
    assert sorted(d.version or 0 for d in decisions) == [1, 2]
    with make_session_factory(engine)() as session:
        champion = load_champion(session, account_id)
        events = session.scalars(select(ModelEvent).order_by(ModelEvent.id)).all()
    # At most one champion move per training; the alias points at a stored version.
    assert champion is not None and champion.version_id in {d.version_id for d in decisions}
    assert len(events) == 2
