"""POST /api/ml/actuals: validated whole, atomic, idempotent, corrections recorded."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.core.clock import ManualClock
from adflywheel.store.engine import make_session_factory
from adflywheel.store.models import ActualRevision, HourlyActualRow
from tests.factories.clock import T0
from tests.factories.helpers import auth, count_rows, new_account, row, small_catalog

H1 = "2026-11-02T10:00:00Z"
H2 = "2026-11-02T11:00:00Z"


@pytest.fixture
def key(engine: Engine, client: TestClient) -> str:
    _, key = new_account(engine, "acme", T0)
    response = client.put("/api/ml/catalog", json=small_catalog(), headers=auth(key))
    assert response.status_code == 200, response.text
    return key


def stored_rows(engine: Engine) -> int:
    return count_rows(engine, HourlyActualRow)


def post(client: TestClient, key: str, rows: list[dict[str, Any]]) -> Any:
    return client.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key))


def test_batch_is_stored_and_resending_it_changes_nothing(
    client: TestClient, key: str, engine: Engine
) -> None:
    rows = [row("a1", H1), row("a2", H1), row("a1", H2, clicks=5, link_clicks=3)]
    first = post(client, key, rows)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 3, "inserted": 3, "updated": 0, "unchanged": 0}
    again = post(client, key, rows)
    assert again.json() == {"received": 3, "inserted": 0, "updated": 0, "unchanged": 3}
    assert stored_rows(engine) == 3
    got = client.get("/api/ml/actuals", params={"ad_id": "a1"}, headers=auth(key)).json()
    assert [r["clicks"] for r in got["rows"]] == [20, 5]
    assert got["rows"][0]["hour_start"].startswith("2026-11-02T10:00:00")


def test_a_corrected_row_replaces_the_old_one_and_the_change_is_recorded(
    client: TestClient, key: str, engine: Engine
) -> None:
    post(client, key, [row("a1", H1)])
    response = post(client, key, [row("a1", H1, clicks=25)])
    assert response.json()["updated"] == 1
    with make_session_factory(engine)() as session:
        revision = session.scalars(select(ActualRevision)).one()
        assert revision.previous["clicks"] == 20
        assert revision.current["clicks"] == 25
        assert session.scalars(select(HourlyActualRow)).one().clicks == 25


def test_hours_given_in_another_zone_are_stored_in_utc(client: TestClient, key: str) -> None:
    post(client, key, [row("a1", "2026-11-02T05:00:00-05:00")])
    got = client.get("/api/ml/actuals", params={"ad_id": "a1"}, headers=auth(key)).json()
    assert got["rows"][0]["hour_start"] == "2026-11-02T10:00:00+00:00"


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        (row("a2", H1, clicks=1001), "exceed impressions"),
        (row("a2", H1, impressions=-1, clicks=0, link_clicks=0), "greater than or equal to 0"),
        (row("a2", H1, link_clicks=30), "link_clicks"),
        (row("a2", "2026-11-02T10:30:00Z"), "not on the hour"),
        (row("a2", "2026-11-02T10:00:00"), "timezone"),
        ({**row("a2", H1), "clicks": 1.5}, "integer"),
        ({**row("a2", H1), "clicks": "12"}, "integer"),
        ({**row("a2", H1), "surprise": 1}, "Extra inputs"),
        (row("nope", H1), "unknown ad_id 'nope'"),
    ],
)
def test_one_bad_row_rejects_the_whole_batch_naming_the_row(
    client: TestClient, key: str, engine: Engine, bad: dict[str, Any], needle: str
) -> None:
    response = post(client, key, [row("a1", H1), bad])
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    assert any(d["loc"][:3] == ["body", "rows", 1] for d in details), details
    assert needle in str(details)
    assert stored_rows(engine) == 0


def test_duplicate_rows_in_a_batch_are_rejected(
    client: TestClient, key: str, engine: Engine
) -> None:
    response = post(client, key, [row("a1", H1), row("a2", H1), row("a1", H1)])
    assert response.status_code == 422
    assert "duplicate of row 0" in response.text
    assert stored_rows(engine) == 0


def test_empty_batch_is_rejected(client: TestClient, key: str) -> None:
    assert post(client, key, []).status_code == 422


def test_another_accounts_ads_cannot_be_written_or_read(
    client: TestClient, key: str, engine: Engine
) -> None:
    _, other_key = new_account(engine, "rival", T0)
    client.put("/api/ml/catalog", json=small_catalog("r-"), headers=auth(other_key))
    post(client, other_key, [row("r-a1", H1)])

    response = post(client, key, [row("r-a1", H1)])
    assert response.status_code == 422
    assert "unknown ad_id 'r-a1'" in response.text
    for path in ("/api/ml/variants/r-a1", "/api/ml/campaigns/r-c1"):
        missing = client.get(path, headers=auth(key))
        assert missing.status_code == 404
        assert "rival" not in missing.text
    assert (
        client.get("/api/ml/actuals", params={"ad_id": "r-a1"}, headers=auth(key)).status_code
        == 404
    )
    own = client.get("/api/ml/variants/r-a1", headers=auth(other_key))
    assert own.status_code == 200
    assert own.json()["impressions"] == 1000


def test_requests_without_a_valid_key_are_refused(client: TestClient, key: str) -> None:
    assert post(client, "", [row("a1", H1)]).status_code == 401
    assert post(client, "afw_not-a-key", [row("a1", H1)]).status_code == 401
    assert client.get("/api/ml/campaigns").status_code == 401


def test_oversized_bodies_are_refused_before_parsing(
    client: TestClient, key: str, engine: Engine
) -> None:
    limit = client.app.state.services.settings.max_request_bytes  # type: ignore[attr-defined]
    response = client.post(
        "/api/ml/actuals",
        content=b"{" + b" " * limit + b"}",
        headers={**auth(key), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert stored_rows(engine) == 0


def test_catalog_with_a_dangling_reference_stores_nothing(client: TestClient, key: str) -> None:
    catalog = {
        "campaigns": [{"id": "c9"}],
        "ad_sets": [{"id": "s9", "campaign_id": "c9"}],
        "ads": [{"id": "a9", "ad_set_id": "s9", "campaign_id": "missing"}],
    }
    response = client.put("/api/ml/catalog", json=catalog, headers=auth(key))
    assert response.status_code == 422
    assert "missing" in response.text
    ids = [c["id"] for c in client.get("/api/ml/campaigns", headers=auth(key)).json()["campaigns"]]
    assert ids == ["c1"]


def test_health_and_openapi(client: TestClient, engine: Engine, clock: ManualClock) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}  # nothing about the deployment without a key
    assert client.get("/health", headers=auth("afw_not-a-key")).json() == {"status": "ok"}
    _, key = new_account(engine, "probe", clock.now())
    detailed = client.get("/health", headers=auth(key)).json()
    assert detailed["status"] == "ok" and detailed["schema_revision"] and detailed["database"]
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/ml/actuals" in paths
