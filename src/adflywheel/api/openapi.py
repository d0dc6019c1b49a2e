"""The OpenAPI document tells the truth: every status a route can answer, with its body.

Most statuses follow from the route itself and are added here, once, after the routers are
included: every route can fail with a 500 (``{"detail", "request_id"}``); a route that depends on
the caller's key answers 401; a route with a JSON body can answer 400 (a body that is not UTF-8),
413 (too large) and 422; a route with parameters 422; a route with a path id 404. What only the
route knows (a conflict, an unavailable platform, a body read by hand) it declares in its
decorator with ``kinds(...)``. Every 422 is the list form that ``api/errors.py`` writes.
OpenAPI links (``LINKS``) tell a stateful fuzzer which answer feeds which request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from pydantic.json_schema import SkipJsonSchema

from adflywheel.api.deps import get_caller
from adflywheel.api.errors import REQUEST_ID_HEADER


class ErrorOut(BaseModel):
    """A deliberate refusal (an error kind, a missing key, a body too large): why."""

    detail: str


class FieldErrorOut(BaseModel):
    """One reason a request was refused; ``input`` only when it is plain, short JSON, else its
    type's name in ``input_type``."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    input_type: str | SkipJsonSchema[None] = None


class ValidationErrorOut(BaseModel):
    """A request that cannot be accepted as given (422): every reason, with where."""

    detail: list[FieldErrorOut]


class InternalErrorOut(BaseModel):
    """The service's own fault (500): only the id that finds the logged traceback."""

    detail: str
    request_id: str


DESCRIPTIONS: dict[int, str] = {
    400: "The body cannot be read (not UTF-8, or a malformed form)",
    401: "No valid account key ('Authorization: Bearer <key>')",
    403: "The key may not do this (an account key asking for every account)",
    404: "No such resource for this account",
    409: "Conflict with the current state (busy, locked, not allowed now); may carry Retry-After",
    413: "The request body exceeds the size limit",
    415: "A body in a format this route does not read",
    422: "The request cannot be accepted as given: every reason, with its location",
    500: "The service's fault: the request id finds the logged traceback",
    502: "The ad platform answered with an error",
    503: "No ad platform is connected for this account, or it is unavailable",
}

MODEL_OF_STATUS: dict[int, type[BaseModel]] = {422: ValidationErrorOut, 500: InternalErrorOut}


def kinds(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route decorator: statuses only the route knows it can answer."""
    return {
        status: {
            "model": MODEL_OF_STATUS.get(status, ErrorOut),
            "description": DESCRIPTIONS[status],
        }
        for status in statuses
    }


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _has_params(dependant: Dependant) -> bool:
    own = (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
    )
    return bool(own) or any(_has_params(d) for d in dependant.dependencies)


def derived_statuses(route: APIRoute) -> set[int]:
    """The error statuses that follow from the route's shape (see the module's docstring)."""
    dependant = route.dependant
    found = {500}
    if _depends_on(dependant, get_caller):
        found.add(401)
    if route.body_field is not None:
        found |= {400, 413, 422}
    if _has_params(dependant):
        found.add(422)
    if dependant.path_params:
        found.add(404)
    return found


# Which answer feeds which request, for a stateful fuzzer: from the 200 of the source (method,
# path), links by name to a target (method, path) with the target's parameters, taken from the
# source's request or answer.
Link = tuple[str, str, dict[str, str]]
LINKS: dict[tuple[str, str], dict[str, Link]] = {
    ("PUT", "/api/ml/catalog"): {
        "GetCampaign": (
            "GET",
            "/api/ml/campaigns/{campaign_id}",
            {"campaign_id": "$request.body#/campaigns/0/id"},
        ),
        "GetVariant": ("GET", "/api/ml/variants/{ad_id}", {"ad_id": "$request.body#/ads/0/id"}),
    },
    ("POST", "/api/ml/actuals"): {
        "GetActuals": ("GET", "/api/ml/actuals", {"ad_id": "$request.body#/rows/0/ad_id"}),
        "GetVariant": ("GET", "/api/ml/variants/{ad_id}", {"ad_id": "$request.body#/rows/0/ad_id"}),
    },
    ("POST", "/api/ml/auto-promote"): {
        "Approve": (
            "POST",
            "/api/ml/auto-promote/{action_id}/approve",
            {"action_id": "$response.body#/promoted/0/action_id"},
        ),
        "Rollback": (
            "POST",
            "/api/ml/auto-promote/{action_id}/rollback",
            {"action_id": "$response.body#/promoted/0/action_id"},
        ),
    },
    ("GET", "/api/ml/campaigns"): {
        "GetCampaign": (
            "GET",
            "/api/ml/campaigns/{campaign_id}",
            {"campaign_id": "$response.body#/campaigns/0/id"},
        ),
        "Reallocate": (
            "POST",
            "/api/ml/campaigns/{campaign_id}/reallocate",
            {"campaign_id": "$response.body#/campaigns/0/id"},
        ),
    },
    ("GET", "/api/ml/campaigns/{campaign_id}"): {
        "GetVariant": (
            "GET",
            "/api/ml/variants/{ad_id}",
            {"ad_id": "$response.body#/variants/0/ad_id"},
        ),
    },
    ("GET", "/api/ml/auto-promote/history"): {
        "Approve": (
            "POST",
            "/api/ml/auto-promote/{action_id}/approve",
            {"action_id": "$response.body#/actions/0/action_id"},
        ),
        "Rollback": (
            "POST",
            "/api/ml/auto-promote/{action_id}/rollback",
            {"action_id": "$response.body#/actions/0/action_id"},
        ),
    },
    ("GET", "/api/ml/models"): {
        "Promote": (
            "POST",
            "/api/ml/models/{version_id}/promote",
            {"version_id": "$response.body#/versions/0/version_id"},
        ),
    },
}


def _operation_ids(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (method.upper(), path): operation["operationId"]
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


def _add_model(document: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, nested in schema.pop("$defs", {}).items():
        schemas.setdefault(name, nested)
    schemas.setdefault(model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


_REQUEST_ID = {
    REQUEST_ID_HEADER: {
        "description": "The caller's own request id when it sent a usable one, else a fresh one",
        "required": True,
        "schema": {"type": "string"},
    }
}


def _document_route(
    document: dict[str, Any], operation: dict[str, Any], statuses: Iterable[int]
) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in sorted(statuses):
        model = MODEL_OF_STATUS.get(status, ErrorOut)
        responses.setdefault(
            str(status),
            {
                "description": DESCRIPTIONS[status],
                "content": {"application/json": {"schema": _add_model(document, model)}},
            },
        )
    validation = _add_model(document, ValidationErrorOut)
    for code, response in responses.items():
        if code == "422":
            response["content"] = {"application/json": {"schema": validation}}
            response["description"] = DESCRIPTIONS[422]
        response.setdefault("headers", {}).update(_REQUEST_ID)


def _add_links(document: dict[str, Any]) -> None:
    ids = _operation_ids(document)
    for (method, path), links in LINKS.items():
        source = document["paths"].get(path, {}).get(method.lower())
        if source is None:
            continue
        answer = source["responses"].setdefault("200", {"description": "Successful Response"})
        answer["links"] = {
            name: {"operationId": ids[(target_method, target_path)], "parameters": parameters}
            for name, (target_method, target_path, parameters) in links.items()
            if (target_method, target_path) in ids
        }


def _drop_unused(document: dict[str, Any]) -> None:
    """FastAPI's own 422 schemas: every 422 refers to ``ValidationErrorOut`` now."""
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def document_statuses(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (FastAPI's OpenAPI for ``app``) with every route's error statuses and links."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        item = document["paths"].get(context.path_format or route.path_format, {})
        for method in context.methods or route.methods or ():
            operation = item.get(method.lower())
            if operation is not None:
                _document_route(document, operation, derived_statuses(route))
    _add_links(document)
    _drop_unused(document)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the truthful document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_statuses(app, FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
