"""Predict over HTTP from what the hour computed, and the API-key cache's revocation bound."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from adflywheel.api.app import _try_lock, create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.services.compound import service as cs
from adflywheel.store.accounts import revoke_keys
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import ApiKey
from tests.factories.clock import T0
from tests.factories.compound_world import build_world
from tests.factories.helpers import auth, key_for, new_account


def test_an_ad_the_cycle_predicted_is_answered_from_its_rows(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    world = build_world(engine, hours=48)
    cs.update_weights(world.factory, world.account_id, world.end)
    cs.predict_and_record(world.factory, world.account_id, world.end)
    key = key_for(world.factory, world.account_id, world.end)
    ads = [a.external_id for a in world.market.platform(world.market.accounts()[0]).list_ads()]
    url = "/api/ml/compound/predict"
    first = client.post(url, json={"ad_id": ads[0]}, headers=auth(key)).json()
    assert first["source"] == "cycle" and first["age_s"] == 0.0
    assert first["computed_at"] == world.end.isoformat() and first["synthetic"] is True
    assert first["prediction"] is not None and first["weights_as_of"] == world.end.isoformat()
    again = client.post(url, json={"variant_id": ads[0]}, headers=auth(key)).json()
    assert again == first
    assert client.post(url, json={"ad_id": "nope"}, headers=auth(key)).status_code == 404


def test_a_revoked_key_stops_working_within_the_cache_ttl(
    engine: Engine, database_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url, api_key_cache_ttl_s=0.5)
    account_id, key = new_account(engine, "keys", T0)
    _, other = new_account(engine, "other", T0)
    url = "/api/ml/compound/weights"
    with TestClient(create_app(settings, clock=clock)) as client:
        assert client.get(url, headers=auth(key)).status_code == 200
        # Revoked by another process (a plain UPDATE, no ORM event here): served from the
        # cache until its TTL, refused after.
        with engine.begin() as connection:
            connection.execute(update(ApiKey).where(ApiKey.account_id == account_id).values(
                revoked_at=T0
            ))  # fmt: skip
        assert client.get(url, headers=auth(key)).status_code == 200
        time.sleep(0.6)
        assert client.get(url, headers=auth(key)).status_code == 401
        # Revoked in this process through the store: refused at once.
        assert client.get(url, headers=auth(other)).status_code == 200
        with transaction(make_session_factory(engine)) as session:
            assert revoke_keys(session, account_id + 1, T0) == 1
        assert client.get(url, headers=auth(other)).status_code == 401


def test_only_one_process_holds_the_scheduler_lock(tmp_path: Path) -> None:
    first = _try_lock(tmp_path / "scheduler.lock")
    assert first is not None
    assert _try_lock(tmp_path / "scheduler.lock") is None
    first.close()
    again = _try_lock(tmp_path / "scheduler.lock")
    assert again is not None
    again.close()
