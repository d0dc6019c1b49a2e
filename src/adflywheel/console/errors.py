"""Refusals on console paths are pages, not JSON: a person reads them in a browser.

``LoginRequired`` sends the browser to ``/login`` (htmx requests get ``HX-Redirect``, so the
whole page moves instead of the login form landing inside a fragment). ``ConsoleRefusal`` and
any HTTP error or invalid request on a console path (``/``, ``/login``, ``/logout``,
``/accounts/...``) render ``error.html``; API paths keep their JSON answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from adflywheel.api.deps import Services
from adflywheel.console.auth import login_url
from adflywheel.console.deps import ConsoleRefusal, LoginRequired, signed_in
from adflywheel.console.security import SESSION_COOKIE, clear_cookie
from adflywheel.console.templating import render

Handler = Callable[[Request, Exception], Awaitable[Response] | Response]

CONSOLE_PREFIXES = ("/accounts/", "/login", "/logout")

_TITLES = {
    400: "Bad request",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported file",
    422: "Cannot accept that",
    429: "Too many requests",
}


def is_console_path(path: str) -> bool:
    return path == "/" or path.startswith(CONSOLE_PREFIXES)


def _error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    """The error page; a signed-in user keeps the header with its sign-out button."""
    services = request.app.state.services
    user = signed_in(request, services) if isinstance(services, Services) else None
    return render(
        request,
        None,
        "error.html",
        {"title": title, "message": message, "back": "/", "signed_in": user},
        status_code=status_code,
    )


async def _login_required(request: Request, error: Exception) -> Response:
    assert isinstance(error, LoginRequired)
    target = login_url(error.next_path)
    response: Response
    if request.headers.get("HX-Request"):
        response = Response(status_code=401, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if SESSION_COOKIE in request.cookies:  # forged, expired or revoked: drop it
        clear_cookie(request, response, SESSION_COOKIE)
    return response


async def _refusal(request: Request, error: Exception) -> Response:
    assert isinstance(error, ConsoleRefusal)
    return _error_page(request, error.status_code, error.title, error.message)


def _html_on_console_paths(api_handler: Handler | None, default_message: str) -> Handler:
    async def handler(request: Request, error: Exception) -> Response:
        if is_console_path(request.url.path) or api_handler is None:
            status_code = getattr(error, "status_code", 422)
            detail = getattr(error, "detail", None)
            message = detail if isinstance(detail, str) and status_code < 500 else default_message
            if status_code == 404:
                message = "This page does not exist, or you have no access to it."
            title = _TITLES.get(status_code, "Error")
            return _error_page(request, status_code, title, message)
        answer = api_handler(request, error)
        return await answer if isinstance(answer, Awaitable) else answer

    return handler


def install_console_errors(app: FastAPI) -> None:
    """After ``install_error_handling``: wraps its HTTP and validation handlers."""
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(ConsoleRefusal, _refusal)
    http = app.exception_handlers.get(StarletteHTTPException)
    invalid = app.exception_handlers.get(RequestValidationError)
    app.add_exception_handler(
        StarletteHTTPException, _html_on_console_paths(http, "That request failed.")
    )
    app.add_exception_handler(
        RequestValidationError,
        _html_on_console_paths(invalid, "Some of what was sent cannot be accepted as given."),
    )
