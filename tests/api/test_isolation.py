"""Issue #17: one account can never read or change another's data, on every route.

The routes come from the app's own OpenAPI document, so a new route is covered the day it is
added: an id parameter or a request body this file does not know fails the test and asks for
an entry below. A second account ("intruder") calls every operation with the owner's ids, names
and numbers; then the owner's rows must be exactly as before, no answer may carry the owner's
names or figures, and every route whose path names one of the owner's ids must answer 404 —
whether the intruder has a working platform or none (approve and rollback used to answer 503
"no platform" before looking at whose action it was). The owner calling the same paths proves
the ids are real, so the intruder's 404s mean something.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import AdPlatform
from adflywheel.platforms.registry import no_platform
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, AdStatusChange, Base, BudgetChange, ModelVersion, Variant
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account

# What only the owner's data contains: an answer to the intruder that carries one of these leaks.
SECRET_NAME = "Owner Secret Campaign"
SECRET_HEADLINE = "owner-only headline"
SECRET_IMPRESSIONS = 987_653

OWNER_CATALOG: dict[str, Any] = {
    "campaigns": [{"id": "own-c1", "name": SECRET_NAME, "daily_budget_minor": 10_000}],
    "ad_sets": [
        {"id": f"own-s{i}", "campaign_id": "own-c1", "daily_budget_minor": 5_000} for i in (1, 2)
    ],
    "ads": [
        {
            "id": f"own-a{i}",
            "ad_set_id": f"own-s{i}",
            "campaign_id": "own-c1",
            "headline": f"{SECRET_HEADLINE} {i}",
            "is_control": i == 1,
        }
        for i in (1, 2)
    ],
}
HOURS = [(T0 - timedelta(hours=h)).strftime("%Y-%m-%dT%H:00:00Z") for h in range(3, 0, -1)]

# The owner's value of each path parameter; a callable gets the ids created in ``owner``.
PATH_IDS: dict[str, Callable[[dict[str, int]], str]] = {
    "campaign_id": lambda _: "own-c1",
    "ad_id": lambda _: "own-a1",
    "action_id": lambda ids: str(ids["action"]),
    "version_id": lambda ids: str(ids["model"]),
    "change_id": lambda ids: str(ids["pause"]),
    "budget_change_id": lambda ids: str(ids["action"]),  # a budget change of the owner's
    # Niche patterns are anonymous and shared by design (k-anonymous, noised): no owner.
    "niche": lambda _: "fitness",
}
SHARED_PATH_PARAMS = {"niche"}

QUERY: dict[str, str] = {"ad_id": "own-a1", "name": "ctr_xgb"}

# A body for every operation that takes one, naming the owner's ids wherever the body can.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/ml/actuals"): {
        "rows": [
            {
                "ad_id": "own-a1",
                "hour_start": HOURS[0],
                "impressions": 1,
                "clicks": 1,
                "spend_minor": 1,
            }
        ]
    },
    ("POST", "/api/ml/budget/allocate"): {
        "total_budget_minor": 100,
        "variants": [{"id": "own-a1", "impressions": 10, "clicks": 1, "spend_minor": 5}],
    },
    ("POST", "/api/ml/thompson/select"): {
        "variants": [{"id": "own-a1", "impressions": 10, "clicks": 1, "spend_minor": 5}]
    },
    ("POST", "/api/ml/compound/predict"): {"ad_id": "own-a1"},
    ("POST", "/api/ml/cross-learning/detect-niche"): {"texts": ["a protein shake for runners"]},
    ("POST", "/api/ml/cross-learning/contribute"): {},
    ("POST", "/api/ml/self-learning-cycle"): {"dry_run": True},
    ("PUT", "/api/ml/power"): {"loops": [2]},
    ("POST", "/api/ml/creative-dna/extract"): {"ad_id": "own-a1"},
    ("POST", "/api/ml/creative-dna/score"): {"ad_id": "own-a1"},
    ("POST", "/api/ml/variants/{ad_id}/dna"): {"features": {"brightness": 0.5}},
    ("POST", "/api/ml/actuals/fetch"): {"sync_catalog": False},
    ("PUT", "/api/ml/actuals/attribution"): {"attribution_window_days": 1},
    ("POST", "/api/ml/rag/search-winners"): {"ad_id": "own-a1"},
    ("POST", "/api/ml/rag/index-winner"): {"ad_id": "own-a1"},
    ("POST", "/api/ml/validate-prediction"): {"ad_id": "own-a1"},
    ("POST", "/api/ml/auto-promote/evaluate"): {
        "control_id": "own-a1",
        "variants": [
            {"id": "own-a1", "impressions": 100, "clicks": 1},
            {"id": "own-a2", "impressions": 100, "clicks": 2},
        ],
    },
    ("POST", "/api/ml/auto-promote"): {"campaign_id": "own-c1", "dry_run": True},
    ("PUT", "/api/ml/accounts/me/guardrails"): {"max_account_budget_minor": 1},
    ("PUT", "/api/ml/accounts/me/mode"): {"mode": "recommend"},
    ("POST", "/api/ml/models/train"): {"holdout_hours": 24, "valid_hours": 24, "reason": "x"},
    ("POST", "/api/ml/models/{version_id}/promote"): {"reason": "mine now"},
    ("POST", "/api/ml/models/rollback"): {"reason": "x"},
    # Last: the intruder's own catalog with the owner's external ids makes the intruder's own
    # rows (ids are unique per account), never touches the owner's.
    ("PUT", "/api/ml/catalog"): OWNER_CATALOG,
}
LAST = ("PUT", "/api/ml/catalog")


@pytest.fixture(params=["no platform", "a platform"])
def world(
    request: pytest.FixtureRequest, engine: Engine, settings: Settings
) -> Iterator[tuple[TestClient, str, str, dict[str, int]]]:
    clock = ManualClock(T0)
    owner_id, owner_key = new_account(engine, "owner", T0)
    intruder_id, intruder_key = new_account(engine, "intruder", T0)
    platforms: dict[int, AdPlatform] = {}
    if request.param == "a platform":  # the intruder's own, working: its writes could succeed
        market = SimulatedMarket(MarketConfig(seed=3, n_accounts=1, campaigns_per_account=1))
        platforms[intruder_id] = market.platform(market.accounts()[0])

    def resolve(account_id: int) -> AdPlatform:
        return platforms[account_id] if account_id in platforms else no_platform(account_id)

    client = TestClient(create_app(settings, clock=clock, platforms=resolve))
    assert client.put("/api/ml/catalog", json=OWNER_CATALOG, headers=auth(owner_key)).is_success
    rows = [
        {
            "ad_id": f"own-a{i}",
            "hour_start": h,
            "impressions": SECRET_IMPRESSIONS,
            "clicks": 9,
            "spend_minor": 700,
        }
        for i in (1, 2)
        for h in HOURS
    ]
    posted = client.post("/api/ml/actuals", json={"rows": rows}, headers=auth(owner_key))
    assert posted.is_success, posted.text
    yield client, owner_key, intruder_key, {"owner": owner_id, **_owner_records(engine, owner_id)}


def _owner_records(engine: Engine, owner_id: int) -> dict[str, int]:
    """A promoter action, a model version and an applied pause of the owner's, for the routes
    that take their row ids."""
    with transaction(make_session_factory(engine)) as session:
        ad_set = session.scalars(select(AdSet).where(AdSet.account_id == owner_id)).first()
        assert ad_set is not None
        action = BudgetChange(
            account_id=owner_id,
            ad_set_id=ad_set.id,
            old_budget_minor=5_000,
            new_budget_minor=6_000,
            reason="promoter:promote",
            evidence={},
            mode="pending_approval",
            actor="promoter",
            idempotency_key="isolation-test-action",
            created_at=T0,
        )
        model = ModelVersion(
            account_id=owner_id,
            name="ctr_xgb",
            version=1,
            artifact_uri="file:///nowhere",
            metrics={},
            created_at=T0,
        )
        variant = session.scalars(select(Variant).where(Variant.account_id == owner_id)).first()
        assert variant is not None
        pause = AdStatusChange(
            account_id=owner_id,
            variant_id=variant.id,
            old_status="ACTIVE",
            new_status="PAUSED",
            reason="pause:clear_loser",
            evidence={},
            mode="applied",
            actor="cycle/pause",
            idempotency_key="isolation-test-pause",
            created_at=T0,
        )
        session.add_all([action, model, pause])
        session.flush()
        return {"action": action.id, "model": model.id, "pause": pause.id}


def _snapshot(engine: Engine, account_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the account owns, table by table."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if "account_id" not in table.c:
                continue
            query = select(table).where(table.c.account_id == account_id)
            out[table.name] = sorted(
                (tuple(map(repr, r)) for r in connection.execute(query)), key=repr
            )
    return out


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    document = client.app.openapi()  # type: ignore[attr-defined]
    found = [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "put", "post", "delete", "patch"}
    ]
    return sorted(found, key=lambda o: (o[0], o[1]) == LAST)


def _request(
    method: str, path: str, operation: dict[str, Any], ids: dict[str, int]
) -> tuple[str, dict[str, str], dict[str, Any] | None]:
    url, query = path, {}
    for parameter in operation.get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        if where == "path":
            assert name in PATH_IDS, f"{method} {path}: add the owner's {name!r} to PATH_IDS"
            url = url.replace("{" + name + "}", PATH_IDS[name](ids))
        elif where == "query" and name in QUERY:
            query[name] = QUERY[name]
    body = None
    if "requestBody" in operation:
        assert (method, path) in BODIES, f"{method} {path}: add a body naming the owner's ids"
        body = BODIES[(method, path)]
    return url, query, body


def test_no_route_lets_one_account_reach_another(
    world: tuple[TestClient, str, str, dict[str, int]], engine: Engine
) -> None:
    client, _, intruder_key, ids = world
    owner_id = ids["owner"]
    before = _snapshot(engine, owner_id)
    checked, problems = 0, []
    for method, path, operation in operations(client):
        if path == "/health":
            continue
        url, query, body = _request(method, path, operation, ids)
        answer = client.request(method, url, params=query, json=body, headers=auth(intruder_key))
        checked += 1
        names_owner_id = any(
            p["in"] == "path" and p["name"] not in SHARED_PATH_PARAMS
            for p in operation.get("parameters", [])
        )
        if answer.status_code >= 500:
            problems.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        if names_owner_id and answer.status_code != 404:
            problems.append(f"{method} {path}: {answer.status_code}, not 404, for another's id")
        for secret in (SECRET_NAME, SECRET_HEADLINE, str(SECRET_IMPRESSIONS)):
            if secret in answer.text and (method, path) != LAST:
                problems.append(f"{method} {path}: the answer carries the owner's {secret!r}")
    assert problems == []
    assert checked >= 40
    assert _snapshot(engine, owner_id) == before


def test_the_owners_ids_are_real(world: tuple[TestClient, str, str, dict[str, int]]) -> None:
    """The same paths with the owner's key are no 404: the intruder's 404s are about whose id
    it is, not about a bad id."""
    client, owner_key, _, ids = world
    for method, path, operation in operations(client):
        parameters = operation.get("parameters", [])
        if not any(p["in"] == "path" and p["name"] not in SHARED_PATH_PARAMS for p in parameters):
            continue
        url, query, body = _request(method, path, operation, ids)
        if method == "POST" and path.endswith("/dna"):
            continue  # writes the owner's DNA: its own tests cover it
        answer = client.request(method, url, params=query, json=body, headers=auth(owner_key))
        assert answer.status_code != 404, (method, path, answer.text)
        assert answer.status_code not in (500, 502), (method, path, answer.text)
