"""The console's pages on a large account (simulated market, synthetic data; issue #18).

Setup seeds a PostgreSQL database of its own (created for the run, dropped after) with one
account of 50 campaigns × 20 ads and 30 days of hourly actuals: the simulated market delivers
the hours, the store's own bulk path (``upsert_actuals``: COPY into a staging table on
PostgreSQL) takes each day, and the service's real cycle (loops 2, 6 and 7) runs the last
``CYCLE_HOURS`` hours, so the budget-change log, cycle reports and predictions are the service's
own; the earlier days' cycle reports and budget changes are copies of those, shifted back a day
at a time (``_backfill``), so every page has 30 days of history to aggregate. The database is
ANALYZEd before timing, as autovacuum would have done after such a load.

Then the real app (``create_app``) runs under uvicorn in a background thread on a free loopback
port, a console user signs in through the login form, and each page is fetched once cold (its
server time reported apart as ``first_ms``: templates compiled, per-account caches filled) and
then ``REQUESTS`` times in sequence with httpx. The figures are server time, measured by an ASGI
wrapper from the request's arrival to its last body chunk, p50 and p99 (of 30: the largest);
the client's loopback wall time is beside them, and each page's SQL (statements, total, the
slowest three, from engine events) names the query when a page is slow. The page weight is the
page's HTML plus every stylesheet and script it references (not /docs or /redoc), each gzipped
at level 6 as a server would.

Run: ``python -m benchmarks.bench_console [--quick]``; targets: p99 ≤ 300 ms, ≤ 500 kB gzipped.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import psycopg
import uvicorn
from sqlalchemy import Engine, event, select, text
from sqlalchemy.engine import make_url
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.loops import Loop
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleDeps, CycleOptions
from adflywheel.cycle.runner import run_cycle
from adflywheel.platforms.base import AdPlatform
from adflywheel.platforms.registry import no_platform
from adflywheel.services.promoter.settings import PromoterSettings, store_settings
from adflywheel.sim.harness import simulated_guardrails
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.accounts import create_account
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade
from adflywheel.store.models import Campaign, Variant
from adflywheel.store.users import Role, create_user, grant

POSTGRES = os.environ.get(
    "ADFLYWHEEL_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CAMPAIGNS, ADS, DAYS = 50, 20, 30
CYCLE_HOURS = 3
REQUESTS = 30
TARGET_P99_MS, TARGET_KB = 300.0, 500.0
HOUR = timedelta(hours=1)
EMAIL, PASSWORD = "bench@example.com", "bench password, synthetic"
LOOPS = frozenset({Loop.BANDIT, Loop.MONITOR, Loop.PROMOTER})
ASSET = re.compile(r"""<(?:script[^>]*\ssrc|link[^>]*\shref)=["']([^"']+)["']""")


@dataclass(frozen=True, slots=True)
class Seeded:
    account_id: int
    campaign: str  # one campaign's and one ad's external id, for the detail pages
    ad: str
    now: datetime
    seconds: float
    hourly_rows: int


# -- the database -------------------------------------------------------------------------------


def _admin() -> psycopg.Connection[Any]:
    url = make_url(POSTGRES)
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname="postgres",
        autocommit=True,
    )


@contextmanager
def database(keep: bool = False) -> Iterator[str]:
    """A PostgreSQL database of the run's own, migrated; dropped afterwards unless ``keep``
    (to look into a slow query: ``--keep``, then ``--reuse`` it)."""
    name = f"adflywheel_bench_console_{os.getpid()}"
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        if keep:
            print(f"kept the database: {url}", file=sys.stderr)
        else:
            with _admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def reused(url: str) -> Iterator[str]:
    yield url


def seeded_already(engine: Engine) -> Seeded:
    """What ``seed`` returned, read back from a kept database."""
    with engine.connect() as connection:
        account, last = connection.execute(
            text("SELECT account_id, max(hour_start) FROM cycle_runs GROUP BY account_id")
        ).one()
        campaign = connection.execute(
            text("SELECT external_id FROM campaigns WHERE account_id = :a ORDER BY id LIMIT 1"),
            {"a": account},
        ).scalar_one()
        ad = connection.execute(
            text("SELECT external_id FROM variants WHERE account_id = :a ORDER BY id LIMIT 1"),
            {"a": account},
        ).scalar_one()
        rows = connection.execute(text("SELECT count(*) FROM hourly_actuals")).scalar_one()
    return Seeded(account, campaign, ad, last, 0.0, rows)


def seed(engine: Engine, settings: Settings, *, days: int, campaigns: int, ads: int) -> Seeded:
    """The large account (see the module's docstring); ends at the current hour."""
    started = time.perf_counter()
    wall = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = days * 24
    config = MarketConfig(
        seed=11,
        n_accounts=1,
        campaigns_per_account=campaigns,
        variants_per_campaign=ads,
        start=wall - hours * HOUR,
    )
    market = SimulatedMarket(config)
    external = market.accounts()[0]
    platform = market.platform(external)
    info = platform.account()
    factory = make_session_factory(engine)
    start = market.current_hour
    with transaction(factory) as session:
        account = create_account(
            session,
            "Bench Outdoor Co (synthetic)",
            start,
            platform="simulated",
            platform_account_id=external,
            currency=info.currency,
            timezone=info.timezone,
            category=info.category,
        )
        total = sum(c.daily_budget_minor or 0 for c in platform.list_campaigns())
        store_settings(
            session,
            account.id,
            PromoterSettings(guardrails=simulated_guardrails("safe", total)),
            now=start,
            actor="bench",
        )
        sync_catalog(
            session,
            account.id,
            platform.list_campaigns(),
            platform.list_ad_sets(),
            platform.list_ads(),
            start,
        )
        account_id = account.id
        create_user(session, EMAIL, PASSWORD, start)
        grant(session, EMAIL, account_id, Role.ADMIN, start)
    rows = 0
    bulk = hours - CYCLE_HOURS
    for day_start in range(0, bulk, 24):
        chunk = min(24, bulk - day_start)
        first = market.current_hour
        for _ in range(chunk):
            market.step()
        batch = platform.fetch_insights(first, market.current_hour)
        with transaction(factory) as session:
            upsert_actuals(session, account_id, batch, source="bench", now=market.current_hour)
        rows += len(batch)
    clock = ManualClock(market.current_hour)
    options = CycleOptions(actuals_lookback_hours=6, loops=LOOPS)
    for _ in range(CYCLE_HOURS):
        market.step()
        clock.advance(HOUR)
        run_cycle(account_id, CycleDeps(factory, clock, platform, settings=settings), options)
    rows += CYCLE_HOURS * campaigns * ads
    _backfill(engine, account_id, days)
    # Statistics for the planner, as autovacuum would gather after such a load: without them
    # PostgreSQL plans on empty-table guesses (an on-disk sort of every hourly row).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    with factory() as session:
        campaign = session.scalars(
            select(Campaign.external_id).where(Campaign.account_id == account_id).limit(1)
        ).one()
        ad = session.scalars(
            select(Variant.external_id).where(Variant.account_id == account_id).limit(1)
        ).one()
    return Seeded(
        account_id, campaign, ad, clock.now(), time.perf_counter() - started, hourly_rows=rows
    )


def _backfill(engine: Engine, account_id: int, days: int) -> None:
    """Earlier days' cycle reports and budget changes: the real ones, shifted back day by day
    (each hour's report once; budget changes without their idempotency key, which is unique)."""
    with engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO cycle_runs
                    (account_id, hour_start, status, started_at, finished_at, report, lease_until)
                SELECT r.account_id, r.hour_start - make_interval(hours => h.n),
                       r.status, r.started_at - make_interval(hours => h.n),
                       r.finished_at - make_interval(hours => h.n), r.report, NULL
                FROM cycle_runs r
                CROSS JOIN generate_series(CAST(:step AS integer), CAST(:hours AS integer),
                                           CAST(:step AS integer)) AS h(n)
                WHERE r.account_id = :account
                """
            ),
            {"account": account_id, "step": CYCLE_HOURS, "hours": days * 24 - CYCLE_HOURS},
        )
        connection.execute(
            text(
                """
                INSERT INTO budget_changes
                    (account_id, ad_set_id, old_budget_minor, new_budget_minor, reason, evidence,
                     mode, actor, cycle_hour, idempotency_key, created_at)
                SELECT b.account_id, b.ad_set_id, b.old_budget_minor, b.new_budget_minor,
                       b.reason, b.evidence, b.mode, b.actor,
                       b.cycle_hour - make_interval(days => d.n), NULL,
                       b.created_at - make_interval(days => d.n)
                FROM budget_changes b
                CROSS JOIN generate_series(1, CAST(:days AS integer)) AS d(n)
                WHERE b.account_id = :account
                """
            ),
            {"account": account_id, "days": days - 1},
        )


# -- the server and the measurements ----------------------------------------------------------


class ServerTimer:
    """An ASGI wrapper noting each request's server time: from the app receiving the request to
    its last body chunk (what the page costs the server, whatever the transport adds)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last_ms = (time.perf_counter() - started) * 1000

        await self.app(scope, receive, timed)


class QueryLog:
    """Every SQL statement the app's engine runs, with its milliseconds: which query makes a
    page slow (the slowest statements of a page's last request are reported with its figures)."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[tuple[float, str]] = []
        local = threading.local()

        @event.listens_for(engine, "before_cursor_execute")
        def _before(*_: Any) -> None:
            local.started = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
            elapsed = (time.perf_counter() - local.started) * 1000
            self.statements.append((elapsed, " ".join(statement.split())))

    def take(self) -> list[tuple[float, str]]:
        taken, self.statements = self.statements, []
        return taken


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """``app`` under uvicorn in a background thread on a free loopback port; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the console did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def sign_in(http: httpx.Client) -> None:
    """Through the login form: its CSRF token (if it has one), then the POST."""
    form = http.get("/login")
    form.raise_for_status()
    data = {"email": EMAIL, "password": PASSWORD}
    token = re.search(r'name="csrf_token"\s+value="([^"]+)"', form.text)
    if token:
        data["csrf_token"] = token.group(1)
    answer = http.post("/login", data=data)
    if answer.status_code != 303 or answer.headers["location"].startswith("/login"):
        raise RuntimeError(f"signing in failed: {answer.status_code}")


def gzipped(body: bytes) -> int:
    return len(gzip.compress(body, compresslevel=6))


def weight(http: httpx.Client, path: str, html: bytes) -> dict[str, Any]:
    """The page and the stylesheets and scripts it references, gzipped (bytes)."""
    base = str(http.base_url)
    assets = sorted(
        {urljoin(base + path, href) for href in ASSET.findall(html.decode(errors="replace"))}
    )
    sizes = {"html": gzipped(html)}
    for url in assets:
        if not url.startswith(base) or url.startswith((base + "/docs", base + "/redoc")):
            continue
        sizes[url.removeprefix(base)] = gzipped(http.get(url).content)
    return {"total_kb": round(sum(sizes.values()) / 1000, 1), "parts_bytes": sizes}


def _percentiles(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return round(statistics.median(ordered), 1), round(p99, 1)


def time_page(
    http: httpx.Client, timer: ServerTimer, queries: QueryLog, path: str, requests: int
) -> dict[str, Any]:
    server: list[float] = []
    client: list[float] = []
    status, body = 0, b""
    statements: list[tuple[float, str]] = []
    for _ in range(requests):
        queries.take()
        t0 = time.perf_counter()
        answer = http.get(path)
        client.append((time.perf_counter() - t0) * 1000)
        server.append(timer.last_ms)
        status, body = answer.status_code, answer.content
        statements = queries.take()
    p50, p99 = _percentiles(server)
    client_p50, client_p99 = _percentiles(client)
    size = weight(http, path, body) if status == 200 else None
    return {
        "status": status,
        "p50_ms": p50,
        "p99_ms": p99,
        "client_p50_ms": client_p50,
        "client_p99_ms": client_p99,
        "weight": size,
        # The last request's SQL: how many statements, their total, the slowest three.
        "sql": {
            "statements": len(statements),
            "total_ms": round(sum(ms for ms, _ in statements), 1),
            "slowest": [
                {"ms": round(ms, 1), "sql": sql[:400]}
                for ms, sql in sorted(statements, reverse=True)[:3]
            ],
        },
        "meets_targets": size is not None
        and p99 <= TARGET_P99_MS
        and size["total_kb"] <= TARGET_KB,
    }


def pages(seeded: Seeded) -> dict[str, str]:
    a = f"/accounts/{seeded.account_id}"
    return {
        "overview": f"{a}/overview",
        "campaigns": f"{a}/campaigns",
        "campaign": f"{a}/campaigns/{seeded.campaign}",
        "promotions": f"{a}/promotions",
        "creatives": f"{a}/creatives",
        "creative": f"{a}/creatives/{seeded.ad}",
        "memory": f"{a}/memory",
        "learning": f"{a}/learning",
        "cycles": f"{a}/cycles",
    }


def run(quick: bool = False, *, keep: bool = False, reuse: str | None = None) -> dict[str, Any]:
    days, campaigns, ads = (3, 5, 4) if quick else (DAYS, CAMPAIGNS, ADS)
    requests = 5 if quick else REQUESTS
    store = reused(reuse) if reuse else database(keep)
    with store as url, tempfile.TemporaryDirectory(prefix="adflywheel-bench-") as folder:
        settings = Settings(
            data_dir=Path(folder),
            database_url=url,
            artifacts_url=str(Path(folder) / "artifacts"),
            redis_url=None,
            scheduler_enabled=False,
        )
        engine = make_engine(url)
        if reuse:
            upgrade(engine)  # the code may have moved on since the database was kept
            seeded = seeded_already(engine)
        else:
            seeded = seed(engine, settings, days=days, campaigns=campaigns, ads=ads)
        engine.dispose()

        def platforms(account_id: int) -> AdPlatform:
            return no_platform(account_id)  # reading pages never writes

        app = create_app(settings, clock=ManualClock(seeded.now), platforms=platforms)
        timer = ServerTimer(app)
        queries = QueryLog(app.state.services.engine)
        figures: dict[str, Any] = {}
        with serve(timer) as base, httpx.Client(base_url=base, timeout=60) as http:
            with httpx.Client(base_url=base, timeout=60) as anonymous:
                anonymous.get("/login")
                figures["login"] = time_page(anonymous, timer, queries, "/login", requests)
            sign_in(http)
            for name, path in pages(seeded).items():
                http.get(path)  # warm: templates compiled, connections pooled, caches filled
                first_ms = timer.last_ms
                figures[name] = time_page(http, timer, queries, path, requests)
                figures[name]["first_ms"] = round(first_ms, 1)  # that cold request, apart
    return {
        "synthetic": True,
        "account": f"{campaigns} campaigns x {ads} ads, {days} days hourly",
        "hourly_rows": seeded.hourly_rows,
        "seed_s": round(seeded.seconds, 1),
        "requests_per_page": requests,
        "how": "server time: an ASGI wrapper, request in to last body chunk out; client time: "
        "httpx on loopback, sequential, against uvicorn in-process (a thread)",
        "targets": {"p99_ms": TARGET_P99_MS, "gzipped_kb": TARGET_KB},
        "pages": figures,
    }


def table(figures: dict[str, Any]) -> str:
    """The pages' figures as aligned lines (what RESULTS.md shows)."""
    lines = [
        f"{'page':<12} {'status':>6} {'first ms':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'client p99':>10} {'kB gz':>7}  targets"
    ]
    for name, f in figures["pages"].items():
        kb = f["weight"]["total_kb"] if f["weight"] else float("nan")
        ok = "met" if f["meets_targets"] else "MISSED"
        lines.append(
            f"{name:<12} {f['status']:>6} {f.get('first_ms', float('nan')):>8.1f} "
            f"{f['p50_ms']:>8.1f} {f['p99_ms']:>8.1f} "
            f"{f['client_p99_ms']:>10.1f} {kb:>7.1f}  {ok}"
        )
        if f["status"] == 200 and not f["meets_targets"]:
            sql = f["sql"]
            lines.append(
                f"    {sql['statements']} statements, {sql['total_ms']} ms of SQL; slowest:"
            )
            lines += [f"    {q['ms']:>8.1f} ms  {q['sql'][:160]}" for q in sql["slowest"]]
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 x 4 ads, 3 days, 5 requests")
    parser.add_argument("--json", action="store_true", help="the whole figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument("--reuse", metavar="URL", help="a database --keep kept: no seeding")
    arguments = parser.parse_args()
    result = run(quick=arguments.quick, keep=arguments.keep, reuse=arguments.reuse)
    print(json.dumps(result, indent=2) if arguments.json else table(result))
