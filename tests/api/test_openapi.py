"""The API's contract as a whole: every route declares its answer, the OpenAPI document names its
schemas cleanly, deliberate errors keep their statuses, and anything else is a 500 that tells the
client only the request id (which every response carries)."""

from __future__ import annotations

import inspect
import json
import re
import types
from typing import Any, Union, get_args, get_origin

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Engine

from adflywheel.core.errors import (
    AdflywheelError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
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
    # The console's HTML pages are left out of the schema: they answer pages, not models.
    routes = [route for route in api_routes(app) if route.include_in_schema]
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


# -- issue #17: the document tells the truth ----------------------------------------------


def _document(client: TestClient) -> dict[str, Any]:
    document = client.get("/openapi.json").json()
    assert isinstance(document, dict)
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def _url(path: str, operation: dict[str, Any]) -> str:
    """``path`` with each path parameter given a value of its type (an id that exists or not)."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            kind = parameter["schema"].get("type")
            path = path.replace("{" + parameter["name"] + "}", "1" if kind == "integer" else "a1")
    return path


def _observe(client: TestClient, method: str, url: str, headers: dict[str, str]) -> int:
    body = {} if method in ("POST", "PUT") else None
    return client.request(method, url, json=body, headers=headers).status_code


def test_every_route_documents_its_500_and_every_keyed_route_its_401(
    client: TestClient, key: str
) -> None:
    """What a request without a key observes is documented: 401 where the route depends on the
    key (derived from the dependency graph), never where it does not (``/health``)."""
    for method, path, operation in _operations(_document(client)):
        documented = set(operation["responses"])
        assert "500" in documented, (method, path)
        status = _observe(client, method, _url(path, operation), {})
        assert str(status) in documented, (method, path, status)
        assert (status == 401) == ("401" in documented), (method, path, status)


def test_what_each_route_answers_to_an_empty_request_is_documented(
    client: TestClient, key: str
) -> None:
    observed = {}
    for method, path, operation in _operations(_document(client)):
        status = _observe(client, method, _url(path, operation), auth(key))
        assert str(status) in operation["responses"], (method, path, status)
        observed[(method, path)] = status
    assert 500 not in observed.values()


def test_every_422_is_the_list_form_and_says_so(client: TestClient) -> None:
    document = _document(client)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    for method, path, operation in _operations(document):
        answers = operation["responses"]
        if "422" in answers:
            schema = answers["422"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ValidationErrorOut"}, (method, path)
        assert answers["500"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/InternalErrorOut"
        }
        for answer in answers.values():  # every response carries the request id
            assert answer["headers"]["X-Request-ID"]["required"] is True


def test_every_reference_and_link_resolves(client: TestClient) -> None:
    document = _document(client)
    text = json.dumps(document)
    for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert name in document["components"]["schemas"], name
    ids = {operation["operationId"] for _, _, operation in _operations(document)}
    links = [
        link
        for _, _, operation in _operations(document)
        for link in operation["responses"].get("200", {}).get("links", {}).values()
    ]
    assert len(links) >= 6
    assert all(link["operationId"] in ids for link in links)


def _is_list_422(response: Any) -> None:
    assert response.status_code == 422, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    for error in detail:
        assert {"loc", "msg", "type"} <= set(error) and isinstance(error["msg"], str)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        # an HTTPException(422, "<message>") in a router
        ("GET", "/api/ml/accuracy?since=2026-11-02T10:00:00Z&until=2026-11-01T10:00:00Z", None),
        ("POST", "/api/ml/rag/search-winners", {}),
        ("POST", "/api/ml/creative-dna/extract", []),
        # an InvalidInputError from a router or a service
        ("PUT", "/api/ml/power", {"loops": [9]}),
    ],
)
def test_a_422_given_as_one_message_is_the_list_form_too(
    client: TestClient, key: str, method: str, url: str, body: Any
) -> None:
    """Regression (issue #17): these answered ``{"detail": "<message>"}`` where the document
    (and every other 422) has a list of errors."""
    _is_list_422(client.request(method, url, json=body, headers=auth(key)))


def test_an_invalid_input_error_from_a_service_is_the_list_form(
    client: TestClient, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_service, "search_winners", fail_with(InvalidInputError("k is 0")))
    response = client.post(SEARCH, json={"ad_id": "a1"}, headers=auth(key))
    _is_list_422(response)
    assert response.json()["detail"] == [{"loc": [], "msg": "k is 0", "type": "value_error"}]
