"""Rendering console pages: one Jinja2 environment (autoescaped), the number and time filters,
the security headers every page carries, and flash messages across a POST's redirect.

Money arrives in integer minor units and is shown in the account's currency with that
currency's own exponent (JPY has none, BHD three); times arrive in UTC and are shown in the
account's time zone, with UTC on hover.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from adflywheel.console.deps import Viewer
from adflywheel.console.security import FLASH_COOKIE, clear_cookie, console_state, set_cookie

# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"), 0
    ),
    **dict.fromkeys(("VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "CNY": "¥"}
_DASH = "—"

# Every console page: no framing, no inline script, nothing from another origin. Inline style
# attributes are allowed (bar widths in tables); SVG charts use presentation attributes.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def money(minor: int | float | None, currency: str = "USD") -> str:
    """``123456, "USD"`` → ``$1,234.56``; ``1234, "JPY"`` → ``¥1,234``; None → a dash."""
    if minor is None or (isinstance(minor, float) and not math.isfinite(minor)):
        return _DASH
    code = currency.upper()
    exponent = currency_exponent(code)
    units = round(minor)
    sign = "−" if units < 0 else ""
    major, cents = divmod(abs(units), 10**exponent)
    text = f"{major:,}" + (f".{cents:0{exponent}d}" if exponent else "")
    symbol = _SYMBOLS.get(code)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {code}"


def pct(fraction: float | None, digits: int = 1) -> str:
    """``0.0312`` → ``3.1%``."""
    if fraction is None or not math.isfinite(fraction):
        return _DASH
    text = f"{abs(fraction) * 100:,.{digits}f}%"
    return f"−{text}" if fraction < 0 and float(text.rstrip("%").replace(",", "")) else text


def num(value: int | float | None, digits: int = 0) -> str:
    """``12345`` → ``12,345``; floats with ``digits`` decimals."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return _DASH
    if isinstance(value, int) and digits == 0:
        text = f"{abs(value):,}"
    else:
        text = f"{abs(value):,.{digits}f}"
    return f"−{text}" if value < 0 and text.strip("0.,") else text


def zone(timezone: str | None) -> ZoneInfo:
    """The account's zone; an unknown name falls back to UTC rather than failing the page."""
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when(instant: datetime | None, timezone: str | None = "UTC") -> Markup:
    """A UTC instant as the account's local time, with the UTC time on hover."""
    if instant is None:
        return Markup(_DASH)
    utc = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    local = utc.astimezone(zone(timezone))
    shown = f"{local.day} {local:%b %Y, %H:%M} {local.tzname() or ''}".strip()
    return Markup('<time datetime="{}" title="{} UTC">{}</time>').format(
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"), utc.strftime("%Y-%m-%d %H:%M"), shown
    )


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("adflywheel.console", "templates"),
        autoescape=select_autoescape(["html", "svg", "xml"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, pct=pct, num=num, when=when)
    return env


def _flashes(request: Request) -> list[dict[str, str]]:
    raw = console_state(request).signer.unsign("flash", request.cookies.get(FLASH_COOKIE))
    if not isinstance(raw, list):
        return []
    return [
        {"level": str(item[0]), "text": str(item[1])}
        for item in raw
        if isinstance(item, list) and len(item) == 2
    ]


def render(
    request: Request,
    viewer: Viewer | None,
    template: str,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The page ``template`` for ``viewer`` (None: signed out, or no account chosen)."""
    flashes = _flashes(request)
    values: dict[str, Any] = {
        "signed_in": None,
        "flashes": flashes,
        **(context or {}),
        "request": request,
        "viewer": viewer,
    }
    if values["signed_in"] is None and viewer is not None:
        values["signed_in"] = viewer
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    if flashes:
        clear_cookie(request, response, FLASH_COOKIE)
    return response


def see_other(
    request: Request, url: str, message: str | None = None, level: str = "success"
) -> RedirectResponse:
    """A POST's answer: back to ``url`` (303, so the browser GETs it), with a message shown
    once there. ``level``: success, info, warning or error."""
    response = RedirectResponse(url, status_code=303)
    if message:
        signed = console_state(request).signer.sign("flash", [[level, message]])
        set_cookie(request, response, FLASH_COOKIE, signed, max_age=120)
    return response


def escape_text(value: object) -> Markup:
    """Escapes ``value`` for HTML (for view code that builds small Markup fragments)."""
    return escape(value)
