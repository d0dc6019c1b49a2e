"""Who is looking: the signed-in user, on which account, with which role (issue #18).

Pages under ``/accounts/{account_id}/...`` take ``ViewerDep`` (GET) or ``ApproverDep`` /
``AdminDep`` (POST). Not signed in: a redirect to ``/login``. No grant on the account: 404, the
same page an unknown account gets, so a user cannot learn which accounts exist. A POST without
the session's CSRF token, or by too low a role: 403, before the handler runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from adflywheel.api.deps import Services, get_services
from adflywheel.console.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    console_state,
    same_secret,
)
from adflywheel.store.users import Role, SignedIn, grants_of, session_user

__all__ = [
    "AccountChoice",
    "AdminDep",
    "ApproverDep",
    "ConsoleRefusal",
    "LoginRequired",
    "Role",
    "SignedInDep",
    "Viewer",
    "ViewerDep",
    "actor",
]


class LoginRequired(Exception):
    """No valid session: the browser is sent to ``/login`` and back to ``next_path`` after."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path


class ConsoleRefusal(Exception):
    """A refusal shown as a console page: 404 (no such page for this user), 403, 4xx."""

    def __init__(self, status_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message


NOT_FOUND_TEXT = "This page does not exist, or you have no access to it."


def not_found(what: str = NOT_FOUND_TEXT) -> ConsoleRefusal:
    """The 404 of a console page (an unknown account and one without a grant look the same)."""
    return ConsoleRefusal(404, "Not found", what)


@dataclass(frozen=True, slots=True)
class AccountChoice:
    """An account in the switcher."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user looking at one account with its role there. ``csrf_token`` goes in
    every form (``csrf_field``) and htmx request (the ``X-CSRF-Token`` header)."""

    user_id: int
    email: str
    account_id: int
    account_name: str
    role: Role
    currency: str
    timezone: str
    accounts: tuple[AccountChoice, ...]
    csrf_token: str

    def may(self, role: Role | str) -> bool:
        """True when the viewer's role includes ``role`` (e.g. ``viewer.may("approver")``)."""
        return self.role.allows(Role(role))

    @property
    def can_approve(self) -> bool:
        return self.may(Role.APPROVER)

    @property
    def can_admin(self) -> bool:
        return self.may(Role.ADMIN)


def actor(viewer: Viewer) -> str:
    """What every console action records as who did it."""
    return f"user:{viewer.email}"


def _request_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def signed_in(request: Request, services: Services) -> SignedIn | None:
    """The session's user when the cookie is genuine and its session live, else None."""
    signer = console_state(request).signer
    token = signer.unsign_text("session", request.cookies.get(SESSION_COOKIE))
    if token is None:
        return None
    with services.factory() as session:
        return session_user(session, token, services.clock.now())


def get_signed_in(
    request: Request, services: Annotated[Services, Depends(get_services)]
) -> SignedIn:
    """A signed-in user, whatever the account (``/`` and account-less pages)."""
    user = signed_in(request, services)
    if user is None:
        raise LoginRequired(_request_path(request) if request.method == "GET" else "/")
    return user


def get_viewer(
    request: Request,
    account_id: int,
    user: Annotated[SignedIn, Depends(get_signed_in)],
    services: Annotated[Services, Depends(get_services)],
) -> Viewer:
    with services.factory() as session:
        grants = grants_of(session, user.user_id)
    here = next((g for g in grants if g.account_id == account_id), None)
    if here is None:
        raise not_found()
    return Viewer(
        user_id=user.user_id,
        email=user.email,
        account_id=here.account_id,
        account_name=here.account_name,
        role=here.role,
        currency=here.currency,
        timezone=here.timezone,
        accounts=tuple(AccountChoice(g.account_id, g.account_name) for g in grants),
        csrf_token=user.csrf_token,
    )


async def submitted_csrf(request: Request) -> str | None:
    """The CSRF token a request carries: the header (htmx) or the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request, expected: str) -> None:
    if not same_secret(await submitted_csrf(request), expected):
        raise ConsoleRefusal(
            403,
            "Refused",
            "The form was missing its security token or it was stale. Reload the page and try "
            "again.",
        )


def _needs(role: Role) -> Callable[..., Awaitable[Viewer]]:
    """A POST dependency: the viewer, its CSRF token checked, holding at least ``role``."""

    async def dependency(
        request: Request, viewer: Annotated[Viewer, Depends(get_viewer)]
    ) -> Viewer:
        await check_csrf(request, viewer.csrf_token)
        if not viewer.may(role):
            raise ConsoleRefusal(
                403,
                "Not allowed",
                f"This needs the {role} role on {viewer.account_name}; you are {viewer.role}.",
            )
        return viewer

    return dependency


SignedInDep = Annotated[SignedIn, Depends(get_signed_in)]
ViewerDep = Annotated[Viewer, Depends(get_viewer)]
ApproverDep = Annotated[Viewer, Depends(_needs(Role.APPROVER))]
AdminDep = Annotated[Viewer, Depends(_needs(Role.ADMIN))]
