"""The API's contract as a whole: every route declares its answer, the OpenAPI document names its
schemas cleanly, deliberate errors keep their statuses, and anything else is a 500 that tells the
client only the request id (which every response carries)."""

from __future__ import annotations

import inspect
import types
from typing import Any, Union, get_args, get_origin

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Engine

from adflywheel.core.errors import AdflywheelError, ConflictError, NotFoundError
from adflywheel.services.memory import service as memory_service
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account

STATS = "/api/ml/rag/memory-stats"
SEARCH = "/api/ml/rag/search-winners"
SECRET = "the database password is hunter2"


def api_routes(app: FastAPI) -> list[APIRoute]:
    """The app's routes, the included routers' among them (``app.routes`` nests those)."""
    found = [context.original_route for context in iter_route_contexts(app.routes)]
    return [route for route in found if isinstance(route, APIRoute)]


def is_model(annotation: Any) -> bool:
    """A pydantic model, or a union of them (one route answers one of two shapes)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return all(is_model(member) for member in get_args(annotation))
    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


@pytest.fixture
def key(engine: Engine) -> str:
    return new_account(engine, "acme", T0)[1]


def fail_with(error: Exception) -> Any:
    def fail(*_: Any, **__: Any) -> Any:
        raise error

    return fail


def test_every_route_declares_a_response_model(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    routes = api_routes(app)
    assert len(routes) >= 40
    untyped = [f"{sorted(r.methods)} {r.path}" for r in routes if not is_model(r.response_model)]
    assert untyped == []


def test_schema_names_are_clean(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert [name for name in schemas if "__" in name] == []


def test_an_unexpected_error_is_a_500_with_the_request_id_and_nothing_else(
    client: TestClient, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_service, "memory_stats", fail_with(RuntimeError(SECRET)))
    response = client.get(STATS, headers=auth(key))
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    assert response.json() == {"detail": "internal server error", "request_id": request_id}
    assert "hunter2" not in response.text and "RuntimeError" not in response.text


@pytest.mark.parametrize(
    "bug", [ValueError(SECRET), KeyError(SECRET), LookupError(SECRET), AdflywheelError(SECRET)]
)
def test_a_bare_builtin_error_from_a_service_is_a_500_not_a_4xx(
    client: TestClient, key: str, monkeypatch: pytest.MonkeyPatch, bug: Exception
) -> None:
    """Search used to answer any ValueError with 422 and any LookupError with 404; only the
    deliberate kinds do now. A kind-less AdflywheelError is the service's own fault too."""
    monkeypatch.setattr(memory_service, "search_winners", fail_with(bug))
    response = client.post(SEARCH, json={"ad_id": "a1"}, headers=auth(key))
    assert response.status_code == 500
    assert "hunter2" not in response.text


@pytest.mark.parametrize(("kind", "status"), [(NotFoundError, 404), (ConflictError, 409)])
def test_a_deliberate_error_answers_with_its_kinds_status_and_message(
    client: TestClient,
    key: str,
    monkeypatch: pytest.MonkeyPatch,
    kind: type[AdflywheelError],
    status: int,
) -> None:
    monkeypatch.setattr(memory_service, "search_winners", fail_with(kind("no ad 'a1'")))
    response = client.post(SEARCH, json={"ad_id": "a1"}, headers=auth(key))
    assert response.status_code == status
    assert response.json() == {"detail": "no ad 'a1'"}
    assert response.headers["X-Request-ID"]


def test_the_request_id_is_echoed_or_made(client: TestClient, key: str) -> None:
    given = client.get("/health", headers={"X-Request-ID": "trace-42.a"})
    assert given.headers["X-Request-ID"] == "trace-42.a"
    made = client.get("/health")
    assert len(made.headers["X-Request-ID"]) == 32
    unusable = client.get("/health", headers={"X-Request-ID": "x" * 200})
    assert unusable.headers["X-Request-ID"] != "x" * 200
    refused = client.get(STATS)  # errors carry it too
    assert refused.status_code == 401 and refused.headers["X-Request-ID"]
