"""One error tree. Every error the service raises on purpose is an ``AdflywheelError``, and its
kind says what a caller can do about it; the API maps kinds to HTTP statuses in one place
(``api/errors.py``), the CLI to exit codes. Anything else that escapes is a bug: a 500 with a
request id, never a 4xx.

The kinds also subclass the builtin a caller would have caught before (``ValueError``,
``LookupError``, ``RuntimeError``), so code and tests written against those keep working.
"""

from __future__ import annotations


class AdflywheelError(Exception):
    """Base of every deliberate error."""


class InvalidInputError(AdflywheelError, ValueError):
    """The request or data cannot be accepted as given (HTTP 422)."""


class UnsupportedFormatError(InvalidInputError):
    """The input is in a format this service does not read at all (HTTP 415)."""


class NotFoundError(AdflywheelError, LookupError):
    """What was asked for does not exist, or is not this caller's to see (HTTP 404)."""


class ConflictError(AdflywheelError, RuntimeError):
    """The request clashes with the current state (HTTP 409)."""


class BusyError(ConflictError):
    """Someone else holds the resource right now; retry later (HTTP 409)."""


class UnavailableError(AdflywheelError, RuntimeError):
    """A dependency the request needs is down or not configured (HTTP 503)."""


class UpstreamError(AdflywheelError, RuntimeError):
    """A system this service called (an ad platform) refused or failed the request (HTTP 502)."""
