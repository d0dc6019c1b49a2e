"""Winner memory endpoints: search by ad, vector, features or text; index by hand; stats; one
isolation test per endpoint; bad inputs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.core.domain import Creative
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import PlatformAd
from adflywheel.services.memory import service as memory_service
from adflywheel.store.engine import make_session_factory, transaction
from tests.factories.catalog import store_hour, store_single_ad_set
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account

HOOKS = ("question", "bold_claim", "statistic")
COUNTS = [(5000, 50), (5000, 250), (5000, 300), (5000, 100)]  # x1 and x2 are winners
SEARCH = "/api/ml/rag/search-winners"
INDEX = "/api/ml/rag/index-winner"
STATS = "/api/ml/rag/memory-stats"


def seed(engine: Engine, settings: Settings, name: str, qualify: bool = True) -> str:
    """An account whose ads are ``<name>-x0`` … with actuals; its winners qualified."""
    account_id, key = new_account(engine, name, T0)
    factory = make_session_factory(engine)
    ads = [
        PlatformAd(
            f"{name}-x{i}",
            "s1",
            "c1",
            f"ad {i}",
            creative=Creative(headline=f"{name} headline {i}", primary_text=f"{name} says {i}"),
            observed_features={"hook_type": HOOKS[i % 3], "duration_s": 10 + 5 * i},
        )
        for i in range(len(COUNTS))
    ]
    with transaction(factory) as session:
        store_single_ad_set(session, account_id, ads, T0)
        counts = {ad.external_id: c for ad, c in zip(ads, COUNTS, strict=True)}
        store_hour(session, account_id, T0, counts, now=T0)
    if qualify:
        memory_service.qualify_and_index(factory, settings, account_id, T0 + timedelta(hours=1))
    return key


@pytest.fixture
def keys(client: TestClient, engine: Engine, settings: Settings) -> dict[str, str]:
    return {"alpha": seed(engine, settings, "alpha"), "beta": seed(engine, settings, "beta")}


def ads(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {r["ad_id"] for r in response.json()["results"]}


def test_search_by_ad_vector_features_and_text(client: TestClient, keys: dict[str, str]) -> None:
    h = auth(keys["alpha"])
    by_ad = client.post(SEARCH, json={"ad_id": "alpha-x0", "k": 5}, headers=h)
    assert ads(by_ad) == {"alpha-x1", "alpha-x2"}
    first = by_ad.json()["results"][0]
    assert {"similarity", "status", "latest", "at_qualification", "text"} <= set(first)
    assert first["latest"]["ctr"] in (0.05, 0.06)
    by_self = client.post(SEARCH, json={"ad_id": "alpha-x1"}, headers=h)
    assert ads(by_self) == {"alpha-x2"}  # the query ad itself is not its own neighbour
    by_features = client.post(
        SEARCH, json={"features": {"hook_type": "question", "duration_s": 12}, "k": 1}, headers=h
    )
    assert len(ads(by_features)) == 1
    assert by_features.json()["query_genes"]["hook_type"] == "question"
    by_text = client.post(SEARCH, json={"text": "Did you know this?"}, headers=h)
    assert ads(by_text) == {"alpha-x1", "alpha-x2"}
    by_vector = client.post(SEARCH, json={"vector": [0.5] * 38, "k": 2}, headers=h)
    assert ads(by_vector) == {"alpha-x1", "alpha-x2"}


def test_search_never_returns_another_accounts_winners(
    client: TestClient, keys: dict[str, str]
) -> None:
    h = auth(keys["beta"])
    found = client.post(SEARCH, json={"vector": [1.0] * 38, "k": 100}, headers=h)
    assert ads(found) == {"beta-x1", "beta-x2"}
    assert all("alpha" not in r["text"] for r in found.json()["results"])
    other = client.post(SEARCH, json={"ad_id": "alpha-x0"}, headers=h)
    assert other.status_code == 404


def test_index_winner_by_hand_and_never_for_another_account(
    client: TestClient, keys: dict[str, str]
) -> None:
    added = client.post(INDEX, json={"ad_id": "alpha-x3"}, headers=auth(keys["alpha"]))
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["created"] and body["winner"]["source"] == "manual"
    assert body["index_version"] == 2
    again = client.post(INDEX, json={"ad_id": "alpha-x3"}, headers=auth(keys["alpha"]))
    assert not again.json()["created"] and again.json()["index_version"] == 2
    found = client.post(SEARCH, json={"ad_id": "alpha-x0"}, headers=auth(keys["alpha"]))
    assert "alpha-x3" in ads(found)
    stolen = client.post(INDEX, json={"ad_id": "alpha-x0"}, headers=auth(keys["beta"]))
    assert stolen.status_code == 404
    beta = client.get(STATS, headers=auth(keys["beta"])).json()
    assert beta["winners"] == 2 and beta["by_source"] == {"cycle": 2}


def test_memory_stats_are_the_callers_own(
    client: TestClient, engine: Engine, settings: Settings, keys: dict[str, str]
) -> None:
    gamma = seed(engine, settings, "gamma", qualify=False)
    empty = client.get(STATS, headers=auth(gamma))
    assert empty.status_code == 200
    assert empty.json()["winners"] == 0 and empty.json()["index"] is None
    alpha = client.get(STATS, headers=auth(keys["alpha"])).json()
    assert alpha["winners"] == 2 and alpha["by_status"] == {"qualified": 2}
    assert alpha["index"]["count"] == 2 and alpha["index"]["file"] == "current"
    assert alpha["policy"]["threshold_ctr"] == 0.03
    assert client.get(STATS).status_code == 401


BAD_SEARCHES: list[dict[str, Any]] = [
    {},
    {"k": 3},
    {"ad_id": "alpha-x0", "k": 0},
    {"ad_id": "alpha-x0", "k": 101},
    {"ad_id": "alpha-x0", "k": "ten"},
    {"vector": [1.0] * 37},
    {"vector": ["a"] * 38},
    {"vector": [0.0] * 38},
    {"vector": [1.0] * 38, "ad_id": "alpha-x0"},
    {"text": "   "},
    {"features": {"duration_s": -5}},
    {"ad_id": ""},
    {"ad_id": "alpha-x0", "surprise": 1},
]


def test_bad_searches_are_422(client: TestClient, keys: dict[str, str]) -> None:
    for body in BAD_SEARCHES:
        response = client.post(SEARCH, json=body, headers=auth(keys["alpha"]))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"]


def test_non_finite_vectors_and_bad_index_requests_are_422(
    client: TestClient, keys: dict[str, str]
) -> None:
    raw = '{"vector": [' + ", ".join(["NaN"] + ["1.0"] * 37) + "]}"
    nan = client.post(
        SEARCH,
        content=raw,
        headers={**auth(keys["alpha"]), "Content-Type": "application/json"},
    )
    assert nan.status_code == 422
    for body in ({}, {"ad_id": ""}, {"ad_id": 5, "extra": True}):
        assert client.post(INDEX, json=body, headers=auth(keys["alpha"])).status_code == 422
    assert client.post(SEARCH, json={"ad_id": "alpha-x0"}).status_code == 401
