"""A console app over two accounts with one user per role, and a probe page behind each
dependency (the real pages are tested by their own helpers' tests)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from argon2 import PasswordHasher
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.api.app import create_app
from adflywheel.console.deps import AdminDep, ApproverDep, ViewerDep, actor
from adflywheel.console.templating import render, see_other
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.store import users
from adflywheel.store.accounts import create_account
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.users import Role, create_user, grant
from tests.factories.clock import T0

PASSWORD = "correct horse battery staple"
VIEWER, APPROVER, ADMIN, OTHER, NOBODY = (
    "viewer@example.com",
    "approver@example.com",
    "admin@example.com",
    "other@example.com",
    "nobody@example.com",
)


@dataclass
class Console:
    client: TestClient
    engine: Engine
    clock: ManualClock
    account_id: int
    other_account_id: int
    calls: list[tuple[str, int, str]] = field(default_factory=list)

    def sign_in(self, email: str, password: str = PASSWORD, next_path: str = "/") -> Response:
        token = login_token(self.client)
        return self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token, "next": next_path},
            follow_redirects=False,
        )

    def csrf(self) -> str:
        """The session's CSRF token, as a page carries it."""
        page = self.client.get(f"/accounts/{self.account_id}/probe")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1)


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def probe_router(calls: list[tuple[str, int, str]]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/accounts/{account_id}/probe")
    def probe(request: Request, viewer: ViewerDep) -> Response:
        return render(
            request,
            viewer,
            "error.html",
            {"title": f"Probe of {viewer.account_name}", "message": viewer.role, "back": "/"},
        )

    @router.post("/accounts/{account_id}/probe/approve")
    def approve(request: Request, viewer: ApproverDep) -> Response:
        calls.append(("approve", viewer.account_id, actor(viewer)))
        return see_other(request, f"/accounts/{viewer.account_id}/probe", "Approved it.")

    @router.post("/accounts/{account_id}/probe/settings")
    def settings(request: Request, viewer: AdminDep) -> Response:
        calls.append(("settings", viewer.account_id, actor(viewer)))
        return see_other(request, f"/accounts/{viewer.account_id}/probe", "Saved.")

    return router


def seed_users(engine: Engine) -> tuple[int, int]:
    with transaction(make_session_factory(engine)) as session:
        acme = create_account(session, "Acme", T0, currency="EUR", timezone="Europe/Berlin")
        globex = create_account(session, "Globex", T0)
        for email, role in ((VIEWER, Role.VIEWER), (APPROVER, Role.APPROVER), (ADMIN, Role.ADMIN)):
            create_user(session, email, PASSWORD, T0)
            grant(session, email, acme.id, role, T0)
        create_user(session, OTHER, PASSWORD, T0)
        grant(session, OTHER, globex.id, Role.ADMIN, T0)
        grant(session, ADMIN, globex.id, Role.VIEWER, T0)
        create_user(session, NOBODY, PASSWORD, T0)
        return acme.id, globex.id


# argon2id still, with the smallest cost: each test adds five users and signs in several times
# (the production parameters are checked in test_auth.py).
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(name="console")
def console_fixture(
    engine: Engine, settings: Settings, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Console]:
    monkeypatch.setattr(users, "_hasher", CHEAP_HASHER)
    account_id, other_id = seed_users(engine)
    calls: list[tuple[str, int, str]] = []
    app = create_app(settings, clock=clock)
    app.include_router(probe_router(calls))
    with TestClient(app) as client:
        yield Console(client, engine, clock, account_id, other_id, calls)
