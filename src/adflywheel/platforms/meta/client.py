"""A small synchronous Graph API client on httpx, with Meta's pacing built in.

Why httpx and not the official ``facebook-business`` SDK: the service's cycle is synchronous, so
a plain sync client is the natural fit; httpx talks to any base URL, so the tests and the benchmark
run the real client against a fake Graph server on loopback (the SDK is tested by patching
``requests``); and throttling must be explicit here — read the usage headers of every response,
wait out advertised regain times on an injected timer — where the SDK leaves it to the caller.
The SDK's value (typed params and enums) is small for the handful of endpoints used.

Every request waits until the ``Governor`` allows it (Meta's usage headers: ours, Meta-specific),
is retried by tenacity on throttling and transient errors (``ThrottlePolicy.max_retries`` times,
equal-jitter exponential back-off, never sooner than an HTTP ``Retry-After``; tenacity sleeps on
the injected timer), and otherwise raises a typed ``MetaApiError``. The token travels in the
``Authorization`` header, never in logged URLs.

Secrets never reach error text or logs: Meta's ``paging.next`` URLs carry ``access_token=``, which
is removed before the URL is followed (the header authenticates); every error the client raises
has its message scrubbed (the token, the ``appsecret_proof``, and any token/key/secret-like
parameter or value; ``errors.scrub``); a transport error is wrapped into ``MetaTransientError``
naming only the method and path, without its cause; and the ``httpx``/``httpcore`` loggers (which
log request URLs) pass through a scrubbing filter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from adflywheel.platforms.meta.errors import (
    MetaApiError,
    MetaThrottledError,
    MetaTransientError,
    classify,
    scrub,
)
from adflywheel.platforms.meta.throttle import (
    Governor,
    ThrottlePolicy,
    backoff,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v26.0"
# Query parameters a followed ``paging.next`` URL loses: the header carries the token, and the
# proof is added again for this client's own token.
_DROPPED_PARAMS = ("access_token", "appsecret_proof")


class _ScrubSecrets(logging.Filter):
    """Rewrites a log record's text without secrets (httpx logs every request's full URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _install_log_filter() -> None:
    for name in ("httpx", "httpcore", __name__):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ScrubSecrets) for f in logger.filters):
            logger.addFilter(_ScrubSecrets())


_install_log_filter()


class Timer(Protocol):
    """Seconds on a monotonic scale and a way to wait; tests inject a fake that jumps."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemTimer:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(slots=True)
class ClientStats:
    requests: int = 0
    retries: int = 0
    throttle_errors: int = 0
    transient_errors: int = 0
    waited_s: float = 0.0


class GraphClient:
    """One token against one Graph API base URL and version."""

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str = DEFAULT_GRAPH_URL,
        api_version: str = DEFAULT_API_VERSION,
        app_secret: str | None = None,
        policy: ThrottlePolicy | None = None,
        timer: Timer | None = None,
        rng: random.Random | None = None,
        timeout_s: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not access_token:
            raise ValueError("a Meta access token is required")
        self.root = f"{base_url.rstrip('/')}/{api_version}"
        self.timer = timer or SystemTimer()
        self.policy = policy or ThrottlePolicy()
        self.governor = Governor(self.policy)
        self.rng = rng or random.Random()  # the back-off's jitter: seeded in tests
        self.stats = ClientStats()
        self._proof = (
            hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()
            if app_secret
            else None
        )
        self._secrets = (access_token, self._proof)
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def debug_token(self) -> dict[str, Any]:
        """Graph's ``debug_token`` about this client's own token (its validity and expiry)."""
        return self.get("debug_token", {"input_token": self._secrets[0]})

    def post(self, path: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, data=data)

    def paginate(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every element of ``data`` across pages; stops when ``paging.next`` is absent (the
        ``after`` cursor is present even on the last page)."""
        url: str | None = path
        query: Mapping[str, Any] | None = params
        while url is not None:
            body = self.request("GET", url, params=query)
            data = body.get("data")
            if not isinstance(data, list):
                raise self._scrubbed(MetaApiError(f"{path}: response without a data list"))
            yield from data
            paging = body.get("paging")
            following = paging.get("next") if isinstance(paging, dict) else None
            url, query = (following if isinstance(following, str) else None), None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One call, paced and retried; the decoded JSON object, or a typed error whose text
        carries no secret."""
        try:
            return self._request(method, path, params=params, data=data)
        except MetaApiError as error:
            raise self._scrubbed(error) from None

    def _scrubbed(self, error: MetaApiError) -> MetaApiError:
        """The error with this client's secrets (and any secret-like value) masked."""
        error.args = tuple(
            scrub(arg, self._secrets) if isinstance(arg, str) else arg for arg in error.args
        )
        return error

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = httpx.URL(self._url(path))
        for name in _DROPPED_PARAMS:
            url = url.copy_remove_param(name)
        query = {k: _encode(v) for k, v in (params or {}).items()}
        form = {k: _encode(v) for k, v in data.items()} if data is not None else None
        if self._proof:
            query["appsecret_proof"] = self._proof
        if query:  # merged: a ``paging.next`` URL keeps its own query (httpx would replace it)
            url = url.copy_merge_params(query)
        retrying = Retrying(
            retry=retry_if_exception_type((MetaThrottledError, MetaTransientError)),
            stop=stop_after_attempt(self.policy.max_retries + 1),
            wait=self._backoff_s,
            sleep=self._sleep,
            before_sleep=self._before_retry,
            reraise=True,
        )
        return retrying(self._attempt, method, url, form)

    def _attempt(self, method: str, url: httpx.URL, form: dict[str, str] | None) -> dict[str, Any]:
        """One request after the governor's pause: the body, or a typed error (a retryable one
        carries ``retry_after``: the governor's pause or an HTTP ``Retry-After``, the longer)."""
        self._wait()
        self.stats.requests += 1
        hint = 0.0  # an HTTP Retry-After, e.g. on a bare 429 or 503
        try:
            response = self._http.request(method, url, data=form)
        except httpx.TransportError as exc:
            # Not ``exc`` itself nor its repr: httpx errors carry the request and its URL.
            error: MetaApiError = MetaTransientError(
                f"{method} {url.path}: {type(exc).__name__}: {scrub(str(exc), self._secrets)}"
            )
        else:
            self.governor.observe(response.headers, self.timer.monotonic())
            body = _decode(response)
            if response.status_code < 400 and isinstance(body, dict) and "error" not in body:
                return body
            hint = retry_after_seconds(response.headers)
            error = classify(response.status_code, body)
        if isinstance(error, MetaThrottledError):
            self.stats.throttle_errors += 1
        elif isinstance(error, MetaTransientError):
            self.stats.transient_errors += 1
        else:
            raise error
        error.retry_after = max(self.governor.delay(self.timer.monotonic()), hint)
        raise error

    def _backoff_s(self, state: RetryCallState) -> float:
        """Tenacity's wait: equal-jitter exponential back-off, at least the error's
        ``retry_after`` (an advertised regain time or HTTP ``Retry-After``)."""
        error = state.outcome.exception() if state.outcome is not None else None
        at_least = getattr(error, "retry_after", None) or 0.0
        return max(backoff(state.attempt_number, self.policy, self.rng), at_least)

    def _sleep(self, seconds: float) -> None:
        self.stats.waited_s += seconds
        self.timer.sleep(seconds)

    def _before_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        error = state.outcome.exception() if state.outcome is not None else None
        # The kind and code only: an error's text may still carry a secret until scrubbed.
        log.info(
            "Graph %s (code %s): retry %s of %s in %.1f s",
            type(error).__name__,
            getattr(error, "code", None),
            state.attempt_number,
            self.policy.max_retries,
            state.upcoming_sleep,
        )

    def _wait(self) -> None:
        delay = self.governor.delay(self.timer.monotonic())
        while delay > 0:
            self.stats.waited_s += delay
            self.timer.sleep(delay)
            delay = self.governor.delay(self.timer.monotonic())

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            # A ``paging.next`` URL: follow it only on our own Graph host (it gets our token).
            if not path.startswith(self.root.rsplit("/", 1)[0] + "/"):
                host = httpx.URL(path).host
                raise MetaApiError(f"refusing to follow a paging URL off the Graph host: {host}")
            return path
        return f"{self.root}/{path.lstrip('/')}"


def _encode(value: Any) -> str:
    """Graph parameters are strings; lists and objects go as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
