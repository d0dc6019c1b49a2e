"""Bounded input types: what the edge lets in, so that nothing stored can break a read.

Every number a client sends that is stored or summed is an integer in ``0 … 2**53 - 1`` (exact
in a float and in JavaScript, far below a 64-bit column) or tighter where a real bound exists;
integral floats such as ``467164.0`` are taken as integers, fractional ones, booleans and
strings are refused. Strings fit their column and carry neither NUL (PostgreSQL refuses it) nor
lone surrogates (no UTF-8 encoding exists). Timestamps are ISO 8601 strings with a zone, in
``[2004-01-01, 2100-01-01)`` UTC; actuals are further bounded by the clock in their route.
The limits are listed, with their reasons, in docs/security.md ("Input limits").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

MAX_SAFE_INT = 2**53 - 1
"""The largest integer a count or an amount of money may have (exact as a float)."""
MAX_HOURLY_COUNT = 10**12
"""Impressions, clicks, views or conversions of one ad in one hour: Meta's whole daily traffic
is below 10**11 impressions, so this is no real limit, and a sum over every hour since 2004
(under 2.2e5 rows per ad) stays below 2.2e17, far from a 64-bit overflow."""
MAX_HOURLY_MONEY = 10**13
"""Spend or revenue of one ad in one hour, in minor units (100 billion dollars); its sum over
every hour since 2004 stays below 2.2e18 < 2**63."""
MAX_ROW_ID = 2**31 - 1
"""A stored row's id (path, query and body ids): the id columns are ``Integer``, 32-bit on
PostgreSQL, which refuses to even compare a larger parameter (a 500 before issue #17's fuzzing
found it); no row can have a larger id, so a larger one is refused at the edge."""
MAX_TEXT = 100_000
"""A free-text column without a declared length (headline, primary text, description, URI)."""

EARLIEST = datetime(2004, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def integral(value: Any) -> Any:
    """``467164.0`` is the integer 467164; anything else goes on to the strict int check (which
    refuses ``467164.5``, ``NaN``, ``inf``, ``true`` and ``"12"``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def clean(value: str) -> str:
    """``value`` when it has no NUL and encodes to UTF-8; a ValueError otherwise."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def unclean_string(value: Any) -> str | None:
    """The reason ``clean`` refuses the first string (key or value) inside a parsed JSON
    value, or None when every string in it is clean."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                clean(item)
            except ValueError as error:
                return f"a string {error}"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _iso_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string with a time zone")
    return value


def in_window(value: datetime | None) -> datetime | None:
    """``value`` in UTC when it lies in [2004, 2100); a ValueError otherwise."""
    if value is None:
        return None
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"must be between {EARLIEST.date()} and {LATEST.date()} (UTC)")
    return utc


Count = Annotated[int, BeforeValidator(integral), Field(ge=0, le=MAX_SAFE_INT, strict=True)]
"""A count or an amount of money (minor units): 0 … 2**53 - 1."""
HourlyCount = Annotated[
    int, BeforeValidator(integral), Field(ge=0, le=MAX_HOURLY_COUNT, strict=True)
]
HourlyMoney = Annotated[
    int, BeforeValidator(integral), Field(ge=0, le=MAX_HOURLY_MONEY, strict=True)
]
Seed = Annotated[int, BeforeValidator(integral), Field(ge=0, le=2**63 - 1, strict=True)]
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
"""A stored row's id in a body."""
PathRowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
"""A stored row's id in a path."""

Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_string), AfterValidator(in_window)]
"""An instant: an ISO 8601 string with a zone, in [2004, 2100), returned in UTC."""
QueryTimestamp = Annotated[AwareDatetime | None, Query(), AfterValidator(in_window)]
"""An optional instant in a query string (always a string there)."""
PathExternalId = Annotated[str, Path(min_length=1, max_length=100), AfterValidator(clean)]
"""A platform id in a path."""
QueryExternalId = Annotated[str, Query(min_length=1, max_length=100), AfterValidator(clean)]


ExternalId = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(clean)]
"""A platform id (campaign, ad set, ad): ``String(100)`` columns."""
Name = Annotated[str, Field(max_length=400), AfterValidator(clean)]
"""A campaign, ad set or ad name: ``String(400)``."""
CallToAction = Annotated[str, Field(max_length=60), AfterValidator(clean)]
Category = Annotated[str, Field(max_length=100), AfterValidator(clean)]
"""A declared category (``String(100)``)."""
LongText = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(clean)]
AdText = Annotated[str, Field(max_length=5_000), AfterValidator(clean)]
"""An ad's text given to a calculation (DNA, search, prediction, niche): 5,000 characters."""
