"""Graph API errors as typed exceptions, so callers react to the kind, never to a message.

The envelope is ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id", ...}}``,
usually with HTTP 400 even for throttling. The codes come from Meta's error and rate-limiting
pages (see docs/meta.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from adflywheel.platforms.base import PlatformRefusedError, PlatformUnavailableError

# Rate limits: app (4), user (17), pages (32), ad account (613), business use cases (80000-80008).
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80009)})
# Worth a retry with back-off: unknown (1, unless it asks for less data), temporary (2),
# batch (960), unknown (99), connection reset (104), async job failed (-2).
TRANSIENT_CODES = frozenset({1, 2, 99, 104, 960, -2})
AUTH_CODES = frozenset({102, 190, 463, 467})
PERMISSION_CODES = frozenset({3, 10, 294, *range(200, 300)})
NOT_FOUND_SUBCODES = frozenset({33})
# "Please reduce the amount of data you're asking for" (1/99) and the sync timeout (100/1504018).
REDUCE_DATA = frozenset({(1, 99), (100, 1504018)})

# Secrets in error text: a query or form parameter (``name=value``) or a JSON member
# (``"name": "value"``) whose name says token, key, secret, proof, password or signature; a
# bearer credential; anything shaped like a Meta access token (they start with "EAA").
_SECRET_NAME = r"[\w.-]*(?:token|key|secret|proof|password|passwd|signature)[\w.-]*"
_SECRET_PARAM = re.compile(
    rf"(?P<name>\b{_SECRET_NAME})(?P<sep>=|%3D)(?P<value>[^\s&#\"',;)}}\]]+)", re.IGNORECASE
)
_SECRET_MEMBER = re.compile(
    rf"""(?P<name>["']{_SECRET_NAME}["']\s*:\s*)(?P<quote>["'])(?P<value>[^"']*)(?P=quote)""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<scheme>\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_META_TOKEN = re.compile(r"\bEAA[A-Za-z0-9_-]{6,}")
MASK = "***"


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with secret values replaced by ``***``: each of ``secrets`` (the client's own
    token and appsecret_proof) wherever it appears, and any value that looks like one."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _SECRET_PARAM.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", text)
    text = _SECRET_MEMBER.sub(lambda m: f"{m['name']}{m['quote']}{MASK}{m['quote']}", text)
    text = _BEARER.sub(lambda m: f"{m['scheme']}{MASK}", text)
    return _META_TOKEN.sub(MASK, text)


class MetaApiError(PlatformRefusedError):
    """Meta answered with an error; carries its code, subcode and trace id for support."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        http_status: int | None = None,
        fbtrace_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code, self.subcode, self.http_status = code, subcode, http_status
        self.fbtrace_id, self.retry_after = fbtrace_id, retry_after
        tags = [f"code {code}" if code is not None else None]
        tags += [f"subcode {subcode}" if subcode is not None else None]
        tags += [f"HTTP {http_status}" if http_status is not None else None]
        tags += [f"fbtrace_id {fbtrace_id}" if fbtrace_id else None]
        detail = ", ".join(t for t in tags if t)
        # Graph may echo a request (its URL, its token) in a message: never keep a secret.
        super().__init__(scrub(f"Meta: {message}" + (f" ({detail})" if detail else "")))

    def alert_details(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "subcode": self.subcode,
            "http_status": self.http_status,
            "fbtrace_id": self.fbtrace_id,
            "retry_after": self.retry_after,
        }


class MetaAuthError(MetaApiError):
    """The token is invalid, expired or revoked: reconnect the account."""


class MetaPermissionError(MetaApiError):
    """The token works but may not read or change this object (missing ads_read/ads_management)."""


class MetaNotFoundError(MetaApiError):
    """The id does not exist, or is invisible to this token."""


class MetaInvalidRequestError(MetaApiError):
    """Meta refused the parameters (a bug on our side, or a value Meta does not accept)."""


class MetaThrottledError(MetaApiError, PlatformUnavailableError):
    """Rate limited beyond the retries allowed; ``retry_after`` says when to come back."""


class MetaReduceDataError(MetaApiError):
    """Meta asks for less data per request: shrink the window or the page."""


class MetaTransientError(MetaApiError, PlatformUnavailableError):
    """A temporary failure (Meta's or the network's) that outlived the retries."""


class MetaReportFailedError(MetaApiError):
    """An async report run ended in "Job Failed"/"Job Skipped" or never finished."""


def classify(status: int, body: Any, *, retry_after: float | None = None) -> MetaApiError:
    """The typed error for an error response (``body`` is the decoded JSON, if any)."""
    error: Mapping[str, Any] = {}
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        error = body["error"]
    code = error.get("code") if isinstance(error.get("code"), int) else None
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    message = str(error.get("error_user_msg") or error.get("message") or f"HTTP {status}")
    kind: type[MetaApiError] = MetaApiError
    if code in THROTTLE_CODES or (code is None and status == 429):
        kind = MetaThrottledError
    elif (code, subcode) in REDUCE_DATA or (code == 1 and "reduce the amount" in message):
        kind = MetaReduceDataError
    elif code in AUTH_CODES or (code is None and status == 401):
        kind = MetaAuthError
    elif code in PERMISSION_CODES or (code is None and status == 403):
        kind = MetaPermissionError
    elif (code == 100 and subcode in NOT_FOUND_SUBCODES) or code == 803 or status == 404:
        kind = MetaNotFoundError
    elif code in TRANSIENT_CODES or status >= 500 or error.get("is_transient") is True:
        kind = MetaTransientError
    elif code == 100:
        kind = MetaInvalidRequestError
    return kind(
        message,
        code=code,
        subcode=subcode,
        http_status=status,
        fbtrace_id=error.get("fbtrace_id") if isinstance(error.get("fbtrace_id"), str) else None,
        retry_after=retry_after,
    )
