"""Serving predict from what the hour computed (issue #19): the cycle's answers cached, rebuilt
from its rows on a miss, computed only for what it did not predict; invalidation; the model LRU."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from adflywheel.core.settings import Settings
from adflywheel.services.compound import service as cs
from adflywheel.services.compound import serving
from adflywheel.services.compound.registry import ModelLru
from adflywheel.store.models import Variant
from tests.factories.compound_world import World, a_champion, build_world

pytestmark = pytest.mark.db

SAME = ("prediction", "interval", "confidence", "models_used", "weights", "method")


def _recorded(world: World, answers: serving.Answers | None) -> dict[int, dict[str, Any]]:
    """Run the hour's compound predictions, publishing into ``answers``; the answers."""
    published: dict[int, dict[str, Any]] = {}

    def publish(found: dict[int, dict[str, Any]], version: int | None) -> None:
        published.update(found)
        serving.publish(answers, world.account_id, world.end, found, version, world.end)

    cs.predict_and_record(world.factory, world.account_id, world.end, on_answers=publish)
    return published


def _variants(world: World) -> list[int]:
    with world.factory() as session:
        return list(
            session.scalars(select(Variant.id).where(Variant.account_id == world.account_id))
        )


def _close(a: dict[str, Any], b: dict[str, Any]) -> None:
    for field in SAME:
        if field in ("models_used", "method"):
            assert a[field] == b[field], field
        else:
            assert a[field] == pytest.approx(b[field], rel=1e-9), field


def test_cycle_answers_are_served_from_the_cache(engine: Engine, settings: Settings) -> None:
    world = build_world(engine, hours=72)
    a_champion(world, settings, world.end)
    cs.update_weights(world.factory, world.account_id, world.end)
    answers = serving.LocalAnswers(100, 60)
    published = _recorded(world, answers)
    assert published and len(answers) == len(published)
    variant = next(iter(published))
    later = world.end + timedelta(minutes=7)
    with world.factory() as session:
        got = serving.serve_variant(session, answers, world.account_id, variant, world.end, later)
        fresh = cs.predict_variant(session, world.account_id, variant, world.end)
    assert got["source"] == "cycle" and got["age_s"] == 420.0
    assert got["xgboost_version_id"] == fresh["xgboost_version_id"] is not None
    _close(got, fresh)
    assert got["predictions"].keys() == fresh["predictions"].keys()


def test_a_miss_is_rebuilt_from_the_stored_rows_then_cached(engine: Engine) -> None:
    world = build_world(engine, hours=72)
    cs.update_weights(world.factory, world.account_id, world.end)
    published = _recorded(world, None)  # the cycle ran in another process: nothing cached here
    answers = serving.LocalAnswers(100, 60)
    with world.factory() as session:
        for variant, expected in published.items():
            got = serving.serve_variant(
                session, answers, world.account_id, variant, world.end, world.end
            )
            assert got["source"] == "cycle", variant
            _close(got, expected)
            assert got["weights_as_of"] == expected["weights_as_of"]
            assert got["predictions"] == expected["predictions"]
    assert len(answers) == len(published)


def test_what_the_cycle_did_not_predict_is_computed(engine: Engine) -> None:
    world = build_world(engine, hours=48)
    answers = serving.LocalAnswers(100, 60)
    variant = _variants(world)[0]
    with world.factory() as session:
        got = serving.serve_variant(
            session, answers, world.account_id, variant, world.end, world.end
        )
        again = serving.serve_variant(
            session, answers, world.account_id, variant, world.end, world.end + timedelta(seconds=3)
        )
    assert got["source"] == "computed" and got["age_s"] == 0.0
    assert again["source"] == "computed" and again["age_s"] == 3.0  # cached once computed
    assert again["prediction"] == got["prediction"]


def test_a_new_hour_and_a_new_champion_are_not_served_stale(engine: Engine) -> None:
    world = build_world(engine, hours=48)
    answers = serving.LocalAnswers(100, 60)
    published = _recorded(world, answers)
    variant = next(iter(published))
    # A different champion (id 999 never exists) than the one the entry was made with: ignored.
    bogus = {**published[variant], "prediction": 0.5, "method": "stale"}
    answers.put_many(
        {(world.account_id, variant, world.end): serving.Entry(bogus, 999, world.end, "cycle")}
    )
    nxt = world.end + timedelta(hours=1)
    with world.factory() as session:
        now = serving.serve_variant(
            session, answers, world.account_id, variant, world.end, world.end
        )
        assert now["method"] != "stale" and now["source"] == "cycle"  # rebuilt from the rows
        later = serving.serve_variant(session, answers, world.account_id, variant, nxt, nxt)
    assert later["source"] == "computed"  # no rows for the next hour: computed, not last hour's


def test_entries_expire_and_the_lru_is_bounded() -> None:
    hour = build_hour()
    answers = serving.LocalAnswers(2, 0.05)
    entry = serving.Entry({"prediction": 0.1}, None, hour, "cycle")
    answers.put_many({(1, v, hour): entry for v in range(3)})
    assert len(answers) == 2 and answers.get((1, 0, hour)) is None
    assert answers.get((1, 2, hour)) == entry
    time.sleep(0.06)
    assert answers.get((1, 2, hour)) is None


def build_hour() -> Any:
    from tests.factories.clock import T0

    return T0


def test_redis_answers_round_trip(redis_url: str) -> None:
    hour = build_hour()
    answers = serving.RedisAnswers(redis_url, 30, "test-serving")
    entry = serving.Entry({"prediction": 0.1, "interval": [0.05, 0.2]}, 7, hour, "cycle")
    answers.put_many({(1, 2, hour): entry})
    assert answers.get((1, 2, hour)) == entry
    assert answers.get((1, 2, hour + timedelta(hours=1))) is None
    assert answers.client.ttl(answers._key((1, 2, hour))) <= 30
    down = serving.RedisAnswers("redis://127.0.0.1:1/0", 30, "x")  # nothing listens: a miss
    assert down.get((1, 2, hour)) is None
    down.put_many({(1, 2, hour): entry})


def test_answers_for_is_per_engine_and_off_at_ttl_zero(engine: Engine) -> None:
    settings = Settings(prediction_cache_ttl_s=60)
    assert serving.answers_for(settings, engine) is serving.answers_for(settings, engine)
    assert isinstance(serving.answers_for(settings, engine), serving.LocalAnswers)
    assert serving.answers_for(Settings(prediction_cache_ttl_s=0), engine) is None


def test_model_lru_keeps_at_most_its_size() -> None:
    lru = ModelLru(2)
    models = [object() for _ in range(3)]
    for i, m in enumerate(models):
        lru.put((f"u{i}", None), m)  # type: ignore[arg-type]
    assert len(lru) == 2 and lru.get(("u0", None)) is None
    assert lru.get(("u2", None)) is models[2]
    lru.resize(1)
    assert len(lru) == 1 and lru.get(("u2", None)) is models[2]


def test_the_cycle_step_publishes_the_hours_answers(engine: Engine) -> None:
    from adflywheel.core.clock import ManualClock
    from adflywheel.cycle.context import CycleContext, CycleDeps, CycleOptions
    from adflywheel.services.compound.step import compound

    world = build_world(engine, hours=48)
    hour = world.end + timedelta(hours=1)  # not a weights hour: the step only predicts
    settings = Settings(model_cache_size=3)
    clock = ManualClock(hour + timedelta(minutes=5))
    deps = CycleDeps(world.factory, clock, None, settings=settings)
    ctx = CycleContext(
        world.account_id, hour, clock.now(), clock, deps, CycleOptions(), frozenset(), {}
    )
    assert compound(ctx)["predictions_recorded"] > 0
    answers = serving.answers_for(settings, world.factory.kw["bind"])
    assert answers is not None
    variant = _variants(world)[0]
    with world.factory() as session:
        got = serving.serve_variant(
            session, answers, world.account_id, variant, hour, hour + timedelta(minutes=6)
        )
    assert got["source"] == "cycle" and got["age_s"] == 60.0  # published at the step's "now"
    from adflywheel.services.compound.registry import MODELS

    assert MODELS.size == 3
    MODELS.resize(Settings().model_cache_size)
