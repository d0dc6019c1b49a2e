"""Sign-in, sign-out and the console's front door (``/``).

The sign-in form is itself protected against CSRF (a signed nonce in a short cookie, echoed by
the form), so another site cannot sign a browser in to an account of its choosing. Failed
sign-ins are throttled per email and per client; an unknown email costs as much time as a
wrong password. Nothing here logs or echoes a password, and the token lives only in the cookie.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from adflywheel.api.deps import ServicesDep
from adflywheel.console.deps import signed_in, submitted_csrf
from adflywheel.console.security import (
    LOGIN_COOKIE,
    LOGIN_NONCE_SECONDS,
    SESSION_COOKIE,
    clear_cookie,
    console_state,
    local_path,
    same_secret,
    set_cookie,
)
from adflywheel.console.templating import render
from adflywheel.core.errors import InvalidInputError
from adflywheel.store.engine import transaction
from adflywheel.store.users import (
    authenticate_user,
    end_session,
    grants_of,
    normalize_email,
    purge_sessions,
    start_session,
)

router = APIRouter(include_in_schema=False)


def login_url(next_path: str) -> str:
    return "/login" + (f"?{urlencode({'next': next_path})}" if next_path != "/" else "")


def _login_page(
    request: Request,
    next_path: str,
    *,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        None,
        "login.html",
        {"login_token": nonce, "next_path": next_path, "email": email, "error": error},
        status_code=status_code,
    )
    signed = console_state(request).signer.sign("login", nonce)
    set_cookie(request, response, LOGIN_COOKIE, signed, max_age=LOGIN_NONCE_SECONDS)
    return response


@router.get("/login")
def login_form(request: Request, services: ServicesDep, next: str | None = None) -> Response:
    next_path = local_path(next)
    if signed_in(request, services) is not None:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, next_path)


def _field(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


@router.post("/login")
async def login(request: Request, services: ServicesDep) -> Response:
    state = console_state(request)
    form = await request.form()
    next_path = local_path(_field(form, "next"))
    email = _field(form, "email", 400).strip()
    password = _field(form, "password", 4096)
    expected = state.signer.unsign_text("login", request.cookies.get(LOGIN_COOKIE))
    if expected is None or not same_secret(_field(form, "csrf_token"), expected):
        return _login_page(
            request,
            next_path,
            email=email,
            error="The sign-in form expired. Please sign in again.",
            status_code=403,
        )
    now = services.clock.now()
    try:
        address = normalize_email(email)
    except InvalidInputError:
        address = email.lower()
    client = request.client.host if request.client else "unknown"
    if state.throttle.blocked(address, client, now):
        minutes = int(state.throttle.window.total_seconds() // 60)
        return _login_page(
            request,
            next_path,
            email=email,
            error=f"Too many failed sign-ins. Wait {minutes} minutes and try again.",
            status_code=429,
        )
    with transaction(services.factory) as session:
        user = authenticate_user(session, address, password)
        new = start_session(session, user, now, state.session_lifetime) if user else None
        if new is not None:
            purge_sessions(session, now)  # dead sessions authenticate nothing: keep few
    if new is None:
        state.throttle.failed(address, client, now)
        return _login_page(
            request, next_path, email=email, error="Wrong email or password.", status_code=401
        )
    state.throttle.succeeded(address)
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(
        request,
        response,
        SESSION_COOKIE,
        state.signer.sign("session", new.token),
        max_age=int(state.session_lifetime.total_seconds()),
    )
    clear_cookie(request, response, LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, services: ServicesDep) -> Response:
    """Revokes the session server-side and clears the cookie. Needs the session's CSRF token
    (another site must not sign people out); a browser with no live session just goes to
    ``/login``."""
    state = console_state(request)
    token = state.signer.unsign_text("session", request.cookies.get(SESSION_COOKIE))
    user = signed_in(request, services)
    response = RedirectResponse("/login", status_code=303)
    if user is not None and token is not None:
        if not same_secret(await submitted_csrf(request), user.csrf_token):
            return render(
                request,
                None,
                "error.html",
                {
                    "title": "Refused",
                    "message": "The sign-out form was missing its security token. Reload the "
                    "page and try again.",
                    "back": "/",
                },
                status_code=403,
            )
        with transaction(services.factory) as session:
            end_session(session, token, services.clock.now())
    clear_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/")
def home(request: Request, services: ServicesDep) -> Response:
    """The first account the user may see, else what to do about having none."""
    user = signed_in(request, services)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    with services.factory() as session:
        grants = grants_of(session, user.user_id)
    if grants:
        return RedirectResponse(f"/accounts/{grants[0].account_id}/overview", status_code=303)
    return render(request, None, "no_accounts.html", {"signed_in": user})
