"""Meta's usage headers and the pacing rule built on them: pure, no I/O, no clock of its own.

Every Graph response can carry ``X-App-Usage``, ``X-Ad-Account-Usage``,
``X-Business-Use-Case-Usage`` and ``x-fb-ads-insights-throttle``: percentages of a rolling quota
and, for business use cases, ``estimated_time_to_regain_access`` in minutes. The governor keeps
the earliest instant the next request may go out: never before an advertised regain time, with a
pause once usage passes the soft limit (slow down *before* Meta refuses). After a throttling or
transient error the client's retries (tenacity) wait ``backoff``: exponential with jitter.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """The most constraining figures of one response's headers."""

    max_pct: float = 0.0  # highest utilisation across all headers, 0-100
    regain_seconds: float = 0.0  # longest advertised wait before access returns
    source: str = ""  # which header/figure gave max_pct, for logs


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """When to slow down. Defaults follow Airbyte's production connector (85%/2 min, 95%/10 min)."""

    soft_pct: float = 85.0
    soft_pause_s: float = 120.0
    hard_pct: float = 95.0
    hard_pause_s: float = 600.0
    backoff_base_s: float = 5.0
    backoff_cap_s: float = 600.0
    max_retries: int = 6

    def __post_init__(self) -> None:
        if not 0 < self.soft_pct <= self.hard_pct <= 100:
            raise ValueError("need 0 < soft_pct <= hard_pct <= 100")
        if min(self.soft_pause_s, self.hard_pause_s, self.backoff_base_s) < 0:
            raise ValueError("pauses must be non-negative")
        if self.max_retries < 0:
            raise ValueError("max_retries must be non-negative")


def _json(raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None  # a malformed header is ignored, like a missing one


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def parse_usage(headers: Mapping[str, str]) -> Usage:
    """Read all four headers (names are case-insensitive, as httpx gives them)."""
    lower = {k.lower(): v for k, v in headers.items()}
    best, regain, source = 0.0, 0.0, ""

    def offer(pct: float, name: str) -> None:
        nonlocal best, source
        if pct > best:
            best, source = pct, name

    app = _json(lower.get("x-app-usage"))
    if isinstance(app, dict):
        for key in ("call_count", "total_time", "total_cputime"):
            offer(_number(app.get(key)), f"x-app-usage.{key}")
    account = _json(lower.get("x-ad-account-usage"))
    if isinstance(account, dict):
        offer(_number(account.get("acc_id_util_pct")), "x-ad-account-usage.acc_id_util_pct")
        if _number(account.get("acc_id_util_pct")) >= 100:
            regain = max(regain, _number(account.get("reset_time_duration")))
    insights = _json(lower.get("x-fb-ads-insights-throttle"))
    if isinstance(insights, dict):
        for key in ("app_id_util_pct", "acc_id_util_pct"):
            offer(_number(insights.get(key)), f"x-fb-ads-insights-throttle.{key}")
    buc = _json(lower.get("x-business-use-case-usage"))
    if isinstance(buc, dict):
        for business, entries in buc.items():
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, dict):
                    continue
                kind = entry.get("type", "?")
                for key in ("call_count", "total_time", "total_cputime"):
                    offer(_number(entry.get(key)), f"buc[{business}].{kind}.{key}")
                minutes = _number(entry.get("estimated_time_to_regain_access"))
                regain = max(regain, minutes * 60.0)
    return Usage(max_pct=best, regain_seconds=regain, source=source)


def pause_for(usage: Usage, policy: ThrottlePolicy) -> float:
    """Seconds to wait before the next request, given the latest usage."""
    wait = usage.regain_seconds
    if usage.max_pct >= policy.hard_pct:
        wait = max(wait, policy.hard_pause_s)
    elif usage.max_pct >= policy.soft_pct:
        wait = max(wait, policy.soft_pause_s)
    return wait


def backoff(attempt: int, policy: ThrottlePolicy, rng: random.Random) -> float:
    """Exponential back-off for retry ``attempt`` (1-based) with "equal jitter": at least half
    the step, so a throttled client never comes straight back, and spread so clients desync."""
    ceiling = min(policy.backoff_cap_s, policy.backoff_base_s * 2 ** (attempt - 1))
    return float(ceiling / 2 + rng.uniform(0.0, ceiling / 2))


class Governor:
    """The earliest instant (on the caller's clock) the next request may be sent."""

    def __init__(self, policy: ThrottlePolicy) -> None:
        self.policy = policy
        self.not_before = 0.0
        self.last_usage = Usage()
        self.peak_pct = 0.0  # highest usage seen, for reports

    def observe(self, headers: Mapping[str, str], now: float) -> Usage:
        """After every response: push ``not_before`` out if the headers ask for it."""
        usage = parse_usage(headers)
        self.last_usage = usage
        self.peak_pct = max(self.peak_pct, usage.max_pct)
        self.not_before = max(self.not_before, now + pause_for(usage, self.policy))
        return usage

    def delay(self, now: float) -> float:
        return max(0.0, self.not_before - now)


def retry_after_seconds(headers: Mapping[str, str]) -> float:
    """An HTTP ``Retry-After`` in seconds (0 when absent or given as a date, which Meta does not
    send)."""
    raw = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw else 0.0
    except ValueError:
        return 0.0
