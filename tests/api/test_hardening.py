"""Issue #17: bad input gets a clear 4xx, never a 500, and changes nothing (both stores)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.store.models import Campaign
from tests.factories.clock import T0
from tests.factories.helpers import auth, count_rows, new_account

JSON = {"content-type": "application/json"}

# -- 5. a chunked body over the limit is a 413 ---------------------------------------------


@pytest.fixture
def small_client(engine: Engine, settings: Settings, clock: ManualClock) -> Iterator[TestClient]:
    small = settings.model_copy(update={"max_request_bytes": 4096})
    with TestClient(create_app(small, clock=clock)) as test_client:
        yield test_client


def test_a_chunked_body_over_the_limit_gets_413(small_client: TestClient, engine: Engine) -> None:
    _, key = new_account(engine, "acme", T0)

    def chunks() -> Iterator[bytes]:
        yield b'{"campaigns": ['
        for i in range(400):
            yield b'{"id": "c%d"},' % i
        yield b'{"id": "last"}]}'

    response = small_client.put("/api/ml/catalog", content=chunks(), headers={**auth(key), **JSON})
    assert response.status_code == 413, response.text
    assert "limit" in response.json()["detail"]
    assert count_rows(engine, Campaign) == 0
