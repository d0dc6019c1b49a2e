"""A fake Graph API server on loopback, for the Meta connector's tests and benchmark.

Real HTTP (``http.server`` in a thread, 127.0.0.1, an ephemeral port) so the real httpx client is
exercised end to end: the ``/act_X`` account, its ``campaigns``/``adsets``/``ads`` edges, sync
``insights`` (level=ad, time_range, time_increment=1, the hourly breakdown, fields), async report
runs (POST → poll → results), the account's ``min_daily_budget`` (or none), the catalogue
edges answering only the fields asked for (``daily_budget``/``lifetime_budget`` among them),
``daily_budget``/``status`` writes (refused on an object with a lifetime budget), cursor
pagination with ``paging.next``, the usage headers computed from a rolling call count,
throttling with an advertised regain time, "reduce the amount of data" above a row limit, token
checks (several accepted tokens, ``debug_token`` with a configurable expiry), and faults
scripted per request (every error code, bare HTTP statuses with ``Retry-After``, connections
dropped without an answer, partial failures mid-pagination).

The fake's clock is a ``FakeTime`` shared with the client: the client's ``sleep`` jumps it, the
server stamps requests with it, so "no request before the advertised time" is checked exactly and
tests never really wait. All data is synthetic: ``tests/fixtures/meta/*.json`` or seeded numbers.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import multiprocessing
import random
import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np

if TYPE_CHECKING:
    from adflywheel.platforms.meta import MetaPlatform

FIXTURES = Path(__file__).parents[1] / "fixtures" / "meta"
HOURLY = "hourly_stats_aggregated_by_advertiser_time_zone"
TOKEN = "fake-token-123"


def load_fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


class FakeTime:
    """Seconds shared by client and server. ``real=True``: wall time plus every slept second
    (the benchmark: real work, simulated waits); otherwise time moves only by ``sleep``.
    ``shared=True`` keeps the offset in shared memory, for a server in a forked process."""

    def __init__(self, start: float = 1_000.0, *, real: bool = False, shared: bool = False) -> None:
        offset = start - (time.perf_counter() if real else 0.0)
        self._offset = multiprocessing.Value("d", offset) if shared else None
        self._local = offset
        self._lock = threading.Lock()
        self.real = real
        self.slept: list[float] = []

    def monotonic(self) -> float:
        now = time.perf_counter() if self.real else 0.0
        if self._offset is not None:
            with self._offset.get_lock():
                return float(self._offset.value) + now
        with self._lock:
            return self._local + now

    def sleep(self, seconds: float) -> None:
        step = max(0.0, seconds)
        self.slept.append(seconds)
        if self._offset is not None:
            with self._offset.get_lock():
                self._offset.value += step
            return
        with self._lock:
            self._local += step


@dataclass
class Fault:
    """Answer a matching request with this response instead (``times`` times)."""

    method: str
    path: str  # regular expression, matched (search) against the path after the version
    status: int
    body: Any
    times: int = 1
    regain_minutes: int = 0  # advertised in X-Business-Use-Case-Usage; enforced by the server
    after: int = 0  # let this many matching requests through first
    seen: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Retry-After on a bare 429


@dataclass
class RequestRecord:
    at: float
    method: str
    path: str
    params: dict[str, str]
    status: int = 0
    early: bool = False  # arrived before an advertised regain time


class SyntheticRows(Sequence[dict[str, Any]]):
    """Seeded insight rows for ``n_ads`` ads over local days, built on demand (not stored)."""

    def __init__(self, acc: FakeAccount, days: list[dt.date], hourly: bool) -> None:
        self.acc, self.days, self.hourly = acc, days, hourly
        self.per_day = len(acc.ads) * (24 if hourly else 1)

    def __len__(self) -> int:
        return self.per_day * len(self.days)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        day = self.days[index // self.per_day]
        rest = index % self.per_day
        ad, hour = (rest // 24, rest % 24) if self.hourly else (rest, None)
        return self.acc.synthetic_row(ad, day, hour)


@dataclass
class FakeAccount:
    id: str  # act_<digits>
    name: str
    currency: str = "USD"
    timezone_name: str = "UTC"
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    adsets: list[dict[str, Any]] = field(default_factory=list)
    ads: list[dict[str, Any]] = field(default_factory=list)
    hourly: list[dict[str, Any]] = field(default_factory=list)
    daily: list[dict[str, Any]] = field(default_factory=list)
    synthetic_seed: int | None = None  # generate rows for every ad instead of the lists
    max_sync_rows: int | None = None  # above this, sync insights ask to reduce the data
    # The account's ``min_daily_budget`` (minor units) as Meta sends it; ``None``: left out.
    min_daily_budget: int | str | None = 100
    _arrays: dict[str, Any] = field(default_factory=dict)

    def rows(self, since: dt.date, until: dt.date, hourly: bool) -> Sequence[dict[str, Any]]:
        if self.synthetic_seed is not None:
            days = [since + dt.timedelta(d) for d in range((until - since).days + 1)]
            return SyntheticRows(self, days, hourly)
        source = self.hourly if hourly else self.daily
        return [r for r in source if since <= dt.date.fromisoformat(r["date_start"]) <= until]

    def _day(self, day: dt.date, hourly: bool) -> dict[str, Any]:
        """Every ad's numbers for one local day (or its 24 hours), drawn at once and cached."""
        key = f"{day.isoformat()}/{hourly}"
        if key not in self._arrays:
            seed = np.random.default_rng(self.synthetic_seed)
            n = len(self.ads)
            base, ctr, cpm = (
                seed.gamma(2.0, 60.0, n),
                seed.beta(2.0, 120.0, n),
                seed.uniform(4, 14, n),
            )
            profile = 0.4 + np.sin(np.linspace(0, np.pi, 24)) ** 2
            rng = np.random.default_rng([self.synthetic_seed or 0, day.toordinal(), int(hourly)])
            lam = base[:, None] * (profile[None, :] if hourly else profile.sum()[None, None])
            impressions = rng.poisson(lam)
            clicks = rng.binomial(impressions, ctr[:, None])
            link = rng.binomial(clicks, 0.6)
            arrays = {
                "impressions": impressions,
                "clicks": clicks,
                "link": link,
                "spend": np.round(impressions * cpm[:, None] / 1000, 2),
                "views": rng.binomial(impressions, 0.3),
                "purchases": rng.binomial(link, 0.05),
            }
            self._arrays[key] = {k: v.tolist() for k, v in arrays.items()}  # fast item access
        return self._arrays[key]  # type: ignore[no-any-return]

    def synthetic_row(self, ad: int, day: dt.date, hour: int | None) -> dict[str, Any]:
        """Delivery of ad ``ad`` on ``day`` (at ``hour``); seeded, hours follow a daily profile."""
        a = self._day(day, hour is not None)
        col = hour or 0
        impressions, clicks = a["impressions"][ad][col], a["clicks"][ad][col]
        link, views, spend = a["link"][ad][col], a["views"][ad][col], a["spend"][ad][col]
        row: dict[str, Any] = {
            "ad_id": self.ads[ad]["id"],
            "date_start": day.isoformat(),
            "date_stop": day.isoformat(),
            "impressions": str(impressions),
            "clicks": str(clicks),
            "inline_link_clicks": str(link),
            "spend": f"{spend:.2f}",
            "ctr": f"{100 * clicks / impressions:.6f}" if impressions else "0",
            "cpm": f"{1000 * spend / impressions:.6f}" if impressions else "0",
            "actions": [
                {"action_type": "link_click", "value": str(link)},
                {"action_type": "video_view", "value": str(views)},
            ],
        }
        if hour is not None:
            row[HOURLY] = f"{hour:02d}:00:00 - {hour:02d}:59:59"
        else:
            purchases = a["purchases"][ad][col]
            row["actions"].append({"action_type": "purchase", "value": str(purchases)})
            row["action_values"] = [{"action_type": "purchase", "value": f"{purchases * 49.9:.2f}"}]
            row["reach"] = str(max(1, int(impressions / 1.1)))
            row["frequency"] = f"{impressions / max(1, int(impressions / 1.1)):.6f}"
        return row


def synthetic_account(
    account_id: str, n_ads: int, *, seed: int = 7, timezone: str = "UTC", currency: str = "USD"
) -> FakeAccount:
    """A synthetic account: 10 ads per ad set, 50 ad sets per campaign, daily budgets."""
    acc = FakeAccount(
        account_id,
        f"Synthetic {n_ads} ads",
        currency,
        timezone,
        synthetic_seed=seed,
    )
    n_sets = (n_ads + 9) // 10
    for c in range((n_sets + 49) // 50):
        acc.campaigns.append(
            {
                "id": f"7{c:06d}",
                "name": f"Campaign {c}",
                "status": "ACTIVE",
                "effective_status": "ACTIVE",
                "objective": "OUTCOME_TRAFFIC",
            }
        )
    for s in range(n_sets):
        acc.adsets.append(
            {
                "id": f"8{s:06d}",
                "name": f"Ad set {s}",
                "campaign_id": f"7{s // 50:06d}",
                "status": "ACTIVE",
                "effective_status": "ACTIVE",
                "daily_budget": "2500",
            }
        )
    for a in range(n_ads):
        acc.ads.append(
            {
                "id": f"9{a:07d}",
                "name": f"Ad {a}",
                "adset_id": f"8{a // 10:06d}",
                "campaign_id": f"7{a // 500:06d}",
                "status": "ACTIVE",
                "effective_status": "ACTIVE",
            }
        )
    return acc


def fixture_account() -> FakeAccount:
    data = load_fixture("account.json")
    info = data["account"]
    return FakeAccount(
        id=info["id"],
        name=info["name"],
        currency=info["currency"],
        timezone_name=info["timezone_name"],
        campaigns=data["campaigns"],
        adsets=data["adsets"],
        ads=data["ads"],
        hourly=data["insights_hourly"],
        daily=data["insights_daily"],
    )


class FakeGraph:
    """The server. ``with FakeGraph(...) as graph:`` serves on ``graph.base_url``."""

    def __init__(
        self,
        *,
        clock: FakeTime | None = None,
        version: str = "v26.0",
        token: str = TOKEN,
        quota_calls: int = 10_000,
        quota_window_s: float = 3600.0,
        async_polls: int = 2,
        token_in_paging: bool = False,
        token_expires_at: int = 0,
    ) -> None:
        self.clock = clock or FakeTime()
        self.version, self.token = version, token
        # Accepted tokens and what ``debug_token`` says of each: (is_valid, expires_at in unix
        # seconds, 0 = never). More are added with ``allow``.
        self.tokens: dict[str, tuple[bool, int]] = {token: (True, token_expires_at)}
        self.quota_calls, self.quota_window_s = quota_calls, quota_window_s
        self.async_polls = async_polls
        # As Meta does: ``paging.next`` URLs carry the caller's ``access_token`` in their query.
        self.token_in_paging = token_in_paging
        self.accounts: dict[str, FakeAccount] = {}
        self.faults: list[Fault] = []
        self.requests: list[RequestRecord] = []
        self.writes: list[tuple[str, dict[str, str]]] = []
        self.reports: dict[str, dict[str, Any]] = {}
        self.blocked_until = 0.0
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> FakeGraph:
        graph = self

        class Handler(_Handler):
            fake = graph

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, account: FakeAccount) -> FakeAccount:
        self.accounts[account.id] = account
        return account

    def allow(self, token: str, *, expires_at: int = 0, valid: bool = True) -> None:
        """Accept another token (an account's own), or change what ``debug_token`` says of one;
        an invalid token is refused as Graph refuses an expired one."""
        self.tokens[token] = (valid, expires_at)

    def fail(self, method: str, path: str, error: str | dict[str, Any], **kw: Any) -> Fault:
        """Script a fault: ``error`` names an entry of fixtures/meta/errors.json, or is one."""
        spec = load_fixture("errors.json")[error] if isinstance(error, str) else error
        kw.setdefault("headers", dict(spec.get("headers") or {}))
        fault = Fault(method, path, spec["status"], spec["body"], **kw)
        self.faults.append(fault)
        return fault

    @property
    def early_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.early]

    # -- handling ---------------------------------------------------------------------------

    def usage_headers(self, account: str, now: float) -> dict[str, str]:
        pct = min(100, round(100 * len(self._calls) / self.quota_calls))
        regain = max(0.0, self.blocked_until - now)
        digits = account.removeprefix("act_") or "0"
        reset = round(self._calls[0] + self.quota_window_s - now) if self._calls else 0
        return {
            "X-App-Usage": json.dumps(
                {"call_count": pct // 2, "total_time": pct // 3, "total_cputime": pct // 3}
            ),
            "X-Ad-Account-Usage": json.dumps(
                {
                    "acc_id_util_pct": pct,
                    "reset_time_duration": reset,
                    "ads_api_access_tier": "standard_access",
                }
            ),
            "X-Business-Use-Case-Usage": json.dumps(
                {
                    digits: [
                        {
                            "type": "ads_insights",
                            "call_count": pct,
                            "total_cputime": pct // 2,
                            "total_time": pct // 2,
                            "estimated_time_to_regain_access": -(-int(regain) // 60),
                            "ads_api_access_tier": "standard_access",
                        }
                    ]
                }
            ),
        }

    def handle(
        self,
        method: str,
        raw_path: str,
        query: dict[str, str],
        form: dict[str, str],
        auth: str | None,
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            now = self.clock.monotonic()
            params = {**query, **form}
            record = RequestRecord(now, method, raw_path, params)
            self.requests.append(record)
            prefix = f"/{self.version}/"
            path = raw_path[len(prefix) :] if raw_path.startswith(prefix) else raw_path
            account = re.match(r"act_\d+", path)
            acc_key = account.group(0) if account else "act_0"
            record.early = now < self.blocked_until
            while self._calls and self._calls[0] <= now - self.quota_window_s:
                self._calls.popleft()
            self._calls.append(now)
            status, body, regain, extra = self._route(method, path, params, auth, now)
            if regain:
                self.blocked_until = max(self.blocked_until, now + regain * 60)
            headers = {**self.usage_headers(acc_key, now), **extra}
            record.status = status
            return status, body, headers

    def _route(
        self, method: str, path: str, params: dict[str, str], auth: str | None, now: float
    ) -> tuple[int, Any, int, dict[str, str]]:
        """Status 0: close the connection without an answer (a network error); status -1: the
        same after stalling ``body`` real seconds (a client timeout)."""
        valid = {f"Bearer {t}" for t, (ok, _) in self.tokens.items() if ok}
        if auth not in valid:
            return (*_error(load_fixture("errors.json")["bad_token"]), 0, {})
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                fault.seen += 1
                if fault.seen > fault.after:
                    fault.times -= 1
                    return fault.status, fault.body, fault.regain_minutes, dict(fault.headers)
        if now < self.blocked_until or len(self._calls) > self.quota_calls:
            wait = max(self.blocked_until, self._calls[0] + self.quota_window_s) - now
            regain = max(1, -(-int(wait) // 60))
            return (*_error(load_fixture("errors.json")["buc_insights"]), regain, {})
        try:
            return (*self._dispatch(method, path, params), 0, {})
        except _GraphError as error:
            return error.status, {"error": error.error}, 0, {}

    def _dispatch(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        head = parts[0]
        if head == "debug_token" and method == "GET":
            known = self.tokens.get(params.get("input_token", ""))
            if known is None:  # as Graph: an unknown token is reported invalid, not an error
                return 200, {"data": {"is_valid": False, "expires_at": 0, "scopes": []}}
            ok, expires = known
            return 200, {
                "data": {
                    "app_id": "1000",
                    "type": "SYSTEM_USER",
                    "application": "fake",
                    "is_valid": ok,
                    "expires_at": expires,
                    "data_access_expires_at": 0,
                    "scopes": ["ads_read", "ads_management"],
                }
            }
        if head.startswith("act_"):
            acc = self.accounts.get(head)
            if acc is None:
                raise _GraphError.unknown(head)
            if len(parts) == 1 and method == "GET":
                node: dict[str, Any] = {
                    "id": acc.id,
                    "name": acc.name,
                    "currency": acc.currency,
                    "timezone_name": acc.timezone_name,
                    "account_status": 1,
                }
                if acc.min_daily_budget is not None:
                    node["min_daily_budget"] = acc.min_daily_budget
                if "fields" in params:  # Graph answers the fields asked for, and the id
                    keep = {"id", *params["fields"].split(",")}
                    node = {k: v for k, v in node.items() if k in keep}
                return 200, node
            edge = parts[1] if len(parts) == 2 else ""
            if method == "GET" and edge in ("campaigns", "adsets", "ads"):
                page = self._page(getattr(acc, edge), params, path)
                if "fields" in params:  # as Graph: only the fields asked for, and the id
                    keep = {"id", *_top_level_fields(params["fields"])}
                    page["data"] = [{k: v for k, v in i.items() if k in keep} for i in page["data"]]
                return 200, page
            if edge == "insights":
                spec = _insights_spec(params)
                rows = acc.rows(*spec)
                if method == "POST":
                    run = str(900_000 + len(self.reports))
                    self.reports[run] = {"rows": rows, "polls": 0, "fields": params["fields"]}
                    return 200, {"report_run_id": run}
                if acc.max_sync_rows is not None and len(rows) > acc.max_sync_rows:
                    raise _GraphError(
                        500,
                        1,
                        "Please reduce the amount of data you're asking "
                        "for, then retry your request",
                        subcode=99,
                    )
                return 200, self._page(rows, params, path, fields=params["fields"])
            raise _GraphError(400, 100, f"Unknown path components: /{edge}", subcode=2500)
        if head in self.reports:
            report = self.reports[head]
            if len(parts) == 2 and parts[1] == "insights":
                return 200, self._page(report["rows"], params, path, fields=report["fields"])
            report["polls"] += 1
            done = report["polls"] >= self.async_polls
            pct = 100 if done else round(100 * report["polls"] / self.async_polls)
            return 200, {
                "id": head,
                "async_status": "Job Completed" if done else "Job Running",
                "async_percent_completion": pct,
            }
        if method == "POST":
            return 200, self._write(head, params)
        raise _GraphError.unknown(head)

    def _write(self, object_id: str, params: dict[str, str]) -> dict[str, Any]:
        for acc in self.accounts.values():
            for kind, items in (
                ("campaign", acc.campaigns),
                ("adset", acc.adsets),
                ("ad", acc.ads),
            ):
                for item in items:
                    if item["id"] != object_id:
                        continue
                    if "daily_budget" in params:
                        if kind == "ad" or not re.fullmatch(r"[1-9]\d*", params["daily_budget"]):
                            raise _GraphError(400, 100, "(#100) Invalid parameter")
                        if item.get("lifetime_budget") not in (None, "", "0"):
                            raise _GraphError(
                                400,
                                100,
                                "(#100) Invalid parameter",
                                user_msg="This budget is a lifetime budget, not a daily one",
                            )
                        if int(params["daily_budget"]) < (1 if acc.currency == "JPY" else 100):
                            raise _GraphError(
                                400,
                                100,
                                "(#100) Invalid parameter",
                                user_msg="The daily budget is below the minimum",
                            )
                        item["daily_budget"] = params["daily_budget"]
                    if "status" in params:
                        if params["status"] not in ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED"):
                            raise _GraphError(
                                400,
                                100,
                                "(#100) Param status must be one of "
                                "{ACTIVE, PAUSED, DELETED, ARCHIVED}",
                            )
                        item["status"] = item["effective_status"] = params["status"]
                    self.writes.append((object_id, dict(params)))
                    return {"success": True}
        raise _GraphError.unknown(object_id)

    def _page(
        self,
        rows: Sequence[dict[str, Any]],
        params: dict[str, str],
        path: str,
        fields: str | None = None,
    ) -> dict[str, Any]:
        limit = int(params.get("limit", "25"))
        offset = int(base64.b64decode(params["after"])) if params.get("after") else 0
        chunk = list(rows[offset : offset + limit])
        if fields is not None:
            keep = {*fields.split(","), "date_start", "date_stop", HOURLY}
            chunk = [{k: v for k, v in r.items() if k in keep} for r in chunk]
        end = offset + len(chunk)
        cursor = base64.b64encode(str(end).encode()).decode()
        paging: dict[str, Any] = {
            "cursors": {"before": base64.b64encode(str(offset).encode()).decode(), "after": cursor}
        }
        if end < len(rows):
            rest = {k: v for k, v in params.items() if k != "after"}
            if self.token_in_paging:
                rest["access_token"] = self.token
            paging["next"] = f"{self.base_url}/{self.version}/{path}?" + urlencode(
                {**rest, "after": cursor}
            )
        return {"data": chunk, "paging": paging}


class _GraphError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        user_msg: str | None = None,
    ) -> None:
        self.status = status
        self.error: dict[str, Any] = {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "FakeTrace01",
        }
        if subcode is not None:
            self.error["error_subcode"] = subcode
        if user_msg:
            self.error["error_user_msg"] = user_msg

    @classmethod
    def unknown(cls, object_id: str) -> _GraphError:
        return cls(
            400,
            100,
            f"Unsupported get request. Object with ID '{object_id}' does not "
            "exist, cannot be loaded due to missing permissions, or does not support "
            "this operation.",
            subcode=33,
        )


def _top_level_fields(fields: str) -> list[str]:
    """``"id,creative{title,body},name"`` → ``["id", "creative", "name"]``."""
    names, depth, current = [], 0, ""
    for char in fields + ",":
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            names.append(current.strip())
            current = ""
        elif depth == 0:
            current += char
    return [n for n in names if n]


def _error(spec: dict[str, Any]) -> tuple[int, Any]:
    return spec["status"], spec["body"]


def _insights_spec(params: dict[str, str]) -> tuple[dt.date, dt.date, bool]:
    if params.get("level") != "ad" or params.get("time_increment") != "1":
        raise _GraphError(400, 100, "(#100) this fake serves level=ad with time_increment=1")
    try:
        span = json.loads(params["time_range"])
        since = dt.date.fromisoformat(span["since"])
        until = dt.date.fromisoformat(span["until"])
    except (KeyError, ValueError, TypeError) as exc:
        raise _GraphError(400, 100, f"(#100) time_range is invalid: {exc}") from exc
    if until < since:
        raise _GraphError(400, 100, "(#100) time_range: since is after until")
    breakdown = params.get("breakdowns")
    if breakdown not in (None, HOURLY):
        raise _GraphError(400, 100, f"(#100) unsupported breakdown {breakdown}")
    return since, until, breakdown == HOURLY


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGraph
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go as two writes: avoid 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        form: dict[str, str] = {}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            raw = self.rfile.read(length).decode()
            form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        status, body, headers = self.fake.handle(
            method, split.path, query, form, self.headers.get("Authorization")
        )
        if status == -1:  # a scripted stall: answer nothing for ``body`` real seconds, hang up
            time.sleep(float(body))
            self.close_connection = True
            return
        if status == 0:  # a scripted network error: hang up without a response
            self.close_connection = True
            return
        payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "application/json" if not isinstance(body, str) else "text/html"
        )
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


def meta_platform(graph: FakeGraph, account: str) -> MetaPlatform:
    """The real Meta platform on the fake server: its token, its clock, one quick retry."""
    from adflywheel.platforms.meta import GraphClient, MetaPlatform, ThrottlePolicy

    client = GraphClient(
        TOKEN,
        base_url=graph.base_url,
        policy=ThrottlePolicy(backoff_base_s=1.0, max_retries=1),
        timer=graph.clock,
        rng=random.Random(0),
    )
    return MetaPlatform(client, account)
