"""The load driver behind ``bench_load`` and ``tests/api/test_load.py`` (issue #17).

The real service runs under uvicorn in a subprocess on 127.0.0.1 (a free port, loopback only),
on a database the caller gives (migrated, empty). Concurrent clients (httpx, asyncio) send a
seeded mix for a bounded time: actuals batches, ``/budget/allocate``, ``/compound/predict``,
GET reads and, from one client per account, the hourly cycle (forced, as of past hours). Every
request carries the account's key.

Why the expected rows are known whatever the interleaving: every ad-hour has a seeded sequence of
versions ``v0 < … < vK`` and one owner client, which posts them in order (each batch answered
before the next); other clients post only ``vK``. So the last write of any ad-hour is ``vK``,
while non-owners' ``vK`` landing between the owner's earlier versions forces real corrections
both ways. After the run every ad-hour is compared with the database row by row, and each
row's revisions must form one chain ending at its stored value.

A 409 with ``Retry-After`` (a busy store) is retried after that delay and counted; anything
else outside 2xx, and a 409 that never clears, is an error.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from adflywheel.core.domain import ACTUAL_METRICS
from adflywheel.store.accounts import create_account, issue_key
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade
from adflywheel.store.models import ActualRevision, HourlyActualRow, Variant

ROOT = Path(__file__).resolve().parent.parent
# The service's clock: fixed, so the hours posted and the cycle's hours are the same every run.
NOW = datetime(2026, 11, 4, 12, tzinfo=UTC)
OPERATIONS = ("actuals", "allocate", "predict", "read", "cycle")
# The mix each client draws from (the cycle only from its account's cycle client).
WEIGHTS = {"actuals": 0.40, "allocate": 0.20, "predict": 0.15, "read": 0.25}
CYCLE_SHARE = 0.15
MAX_RETRIES = 20
KEEPALIVE_S = 2.0


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """One load run. ``hours`` ad-hours back from ``NOW`` per ad; up to ``max_versions``
    versions (the original and its corrections) per ad-hour."""

    clients: int = 16
    duration_s: float = 150.0
    accounts: int = 3
    ads_per_account: int = 8
    hours: int = 48
    max_versions: int = 3
    batch_rows: int = 12
    seed: int = 17
    timeout_s: float = 120.0


@dataclass
class Outcome:
    """What the clients saw: per operation the latencies (every attempt), statuses, retries."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    retries: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    # Loops of a cycle answered 200 that failed inside (their report says so): counted apart.
    cycle_loop_failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def record(self, op: str, status: str, seconds: float) -> None:
        self.latencies.setdefault(op, []).append(seconds)
        self.statuses.setdefault(op, Counter())[status] += 1


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    key: str
    account_id: int
    ads: tuple[str, ...]


Key = tuple[int, str, datetime]  # account index, ad id, hour


def hours(config: LoadConfig) -> list[datetime]:
    return [NOW - timedelta(hours=h) for h in range(config.hours, 0, -1)]


def version_values(config: LoadConfig, key: Key, version: int) -> dict[str, int]:
    """The metrics of one ad-hour in one version; every later version is larger in each."""
    account, ad, hour = key
    rng = random.Random(f"{config.seed}/{account}/{ad}/{hour.isoformat()}")
    impressions = rng.randint(500, 5000)
    clicks = max(1, int(impressions * rng.uniform(0.005, 0.05)))
    link = rng.randint(0, clicks)
    return {
        "impressions": impressions + 50 * version,
        "clicks": clicks + version,
        "link_clicks": link + version,
        "spend_minor": rng.randint(200, 4000) + 7 * version,
        "conversions": rng.randint(0, max(1, clicks // 10)) + version,
        "revenue_minor": rng.randint(0, 5000) + 11 * version,
        "video_views": rng.randint(0, impressions // 2) + 3 * version,
    }


@dataclass(frozen=True, slots=True)
class Plan:
    """The seeded write plan: each ad-hour's last version and owner, and per client its batches
    of one round (account index, rows)."""

    final_version: dict[Key, int]
    owner: dict[Key, int]
    rounds: dict[int, list[tuple[int, list[dict[str, Any]]]]]

    def expected(self, config: LoadConfig) -> dict[Key, dict[str, int]]:
        return {k: version_values(config, k, v) for k, v in self.final_version.items()}


def _row(config: LoadConfig, key: Key, version: int) -> dict[str, Any]:
    return {
        "ad_id": key[1],
        "hour_start": key[2].isoformat(),
        **version_values(config, key, version),
    }


def make_plan(config: LoadConfig, ads: dict[int, tuple[str, ...]]) -> Plan:
    """Owners and versions drawn from the seed; each client's round: its own keys version by
    version (so a key's versions go out in order), each batch topped up with a few other
    clients' keys at their final version (duplicates and reverts, overlapping hours)."""
    rng = random.Random(config.seed)
    keys = [(a, ad, h) for a in sorted(ads) for ad in ads[a] for h in hours(config)]
    final = {k: rng.randrange(config.max_versions) for k in keys}
    owner = {k: rng.randrange(config.clients) for k in keys}
    rounds: dict[int, list[tuple[int, list[dict[str, Any]]]]] = {}
    for client in range(config.clients):
        crng = random.Random(f"{config.seed}/client/{client}")
        batches: list[tuple[int, list[dict[str, Any]]]] = []
        for version in range(config.max_versions):
            for account in sorted(ads):
                mine = [
                    k
                    for k in keys
                    if k[0] == account and owner[k] == client and final[k] >= version
                ]
                crng.shuffle(mine)
                others = [k for k in keys if k[0] == account and owner[k] != client]
                step = max(1, config.batch_rows - 3)
                for i in range(0, len(mine), step):
                    chunk = mine[i : i + step]
                    extra = crng.sample(others, min(len(others), crng.randint(0, 3)))
                    rows = [_row(config, k, version) for k in chunk]
                    rows += [_row(config, k, final[k]) for k in extra]
                    crng.shuffle(rows)
                    batches.append((account, rows))
        rounds[client] = batches
    return Plan(final, owner, rounds)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def scratch_postgres(server_url: str, name: str) -> Iterator[str]:
    """An empty database ``name`` of its own on the PostgreSQL server at ``server_url``
    (dropped first if a killed run left it, and dropped afterwards); its URL."""
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    admin = create_engine(
        make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_database(kind: str, folder: Path, server_url: str | None = None) -> Iterator[str]:
    """A migrated, empty database: a SQLite file in ``folder``, or a database of its own on the
    PostgreSQL server at ``server_url`` (created from scratch, dropped afterwards)."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'load.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    assert server_url, "PostgreSQL needs a server URL"
    with scratch_postgres(server_url, f"adflywheel_load_{os.getpid()}") as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


def make_accounts(engine: Engine, config: LoadConfig) -> list[Account]:
    """Accounts on autopilot with no platform connected (the cycle's budget writes are dry
    runs), each with a key."""
    from adflywheel.services.promoter.settings import PromoterSettings, store_settings
    from adflywheel.sim.harness import simulated_guardrails

    made = []
    with transaction(make_session_factory(engine)) as session:
        for a in range(config.accounts):
            account = create_account(session, f"load{a}", NOW)
            guardrails = simulated_guardrails("safe", 10**9)
            store_settings(
                session, account.id, PromoterSettings(guardrails=guardrails), now=NOW, actor="load"
            )
            key = issue_key(session, account, NOW)
            ads = tuple(f"L{a}-ad{i}" for i in range(config.ads_per_account))
            made.append(Account(account.name, key.key, account.id, ads))
    return made


def catalog(account: Account) -> dict[str, Any]:
    """One campaign, an ad set of its own per ad (ABO), each with a daily budget. (Ad sets of
    several ads are not split by the allocator: the cycle skips and alerts such a campaign.)"""
    ad_sets = [f"{account.name}-s{i}" for i in range(len(account.ads))]
    total = 5_000 * len(set(ad_sets))
    return {
        "campaigns": [{"id": f"{account.name}-c", "name": "load", "daily_budget_minor": total}],
        "ad_sets": [
            {"id": s, "campaign_id": f"{account.name}-c", "daily_budget_minor": 5_000}
            for s in dict.fromkeys(ad_sets)
        ],
        "ads": [
            {
                "id": ad,
                "ad_set_id": ad_sets[i],
                "campaign_id": f"{account.name}-c",
                "headline": f"Ad {i}: how to save {i + 1} hours a week?",
                "is_control": i == 0,
            }
            for i, ad in enumerate(account.ads)
        ],
    }


@contextmanager
def server_process(
    argv: Callable[[int], list[str]], env: dict[str, str], log_path: Path, wait_s: float = 90
) -> Iterator[tuple[str, int]]:
    """A server subprocess (``argv(port)``, on a free loopback port) once it answers /health:
    its base URL and pid; terminated (then killed) on the way out, its output in ``log_path``."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer /health within {wait_s:.0f} s")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def code_env(src: Path) -> dict[str, str]:
    """This environment with ``src``'s ``adflywheel`` first on the path (a snapshot of another
    commit, e.g. a baseline worktree's ``src``) and the benchmarks importable."""
    path = os.pathsep.join([str(src), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path)


def json_from_code(src: Path, args: list[str], cwd: Path = ROOT) -> dict[str, Any]:
    """Run ``python -m <args>`` with ``src``'s ``adflywheel`` first on the path; the JSON object
    on its last line of output (the benchmarks' way to measure another commit's code)."""
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=code_env(src),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} with {src} failed: {done.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@contextmanager
def serve(database_url: str, data_dir: Path, log_path: Path) -> Iterator[str]:
    """The app under uvicorn in a subprocess on a free loopback port; its base URL."""

    def argv(port: int) -> list[str]:
        serve = ["serve", database_url, str(port), str(data_dir)]
        return [sys.executable, "-m", "benchmarks.load", *serve]

    # This checkout's code, also when it is not the one installed (a snapshot of a commit).
    with server_process(argv, code_env(ROOT / "src"), log_path, wait_s=60) as (base, _pid):
        yield base


def _serve_main(database_url: str, port: int, data_dir: str) -> None:
    import uvicorn

    from adflywheel.api.app import create_app
    from adflywheel.core.clock import ManualClock
    from adflywheel.core.settings import Settings

    settings = Settings(data_dir=Path(data_dir), database_url=database_url)
    app = create_app(settings, clock=ManualClock(NOW))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _allocate_body(rng: random.Random) -> dict[str, Any]:
    variants = []
    for i in range(rng.randint(2, 8)):
        impressions = rng.randint(0, 20_000)
        clicks = rng.randint(0, impressions // 20)
        variants.append(
            {
                "id": f"v{i}",
                "impressions": impressions,
                "clicks": clicks,
                "spend_minor": rng.randint(0, 50_000),
                "current_budget_minor": rng.randint(500, 5_000),
            }
        )
    return {
        "variants": variants,
        "total_budget_minor": rng.randint(1_000, 100_000),
        "seed": rng.randint(0, 10**6),
    }


class Client:
    """One of the concurrent clients: a seeded sequence of operations until the deadline, then
    the rest of its current round of batches (so every ad-hour it owns ends at its last
    version)."""

    def __init__(
        self,
        index: int,
        http: httpx.AsyncClient,
        accounts: list[Account],
        plan: Plan,
        config: LoadConfig,
        outcome: Outcome,
        cycle_account: int | None,
    ) -> None:
        self.index, self.http, self.accounts, self.plan = index, http, accounts, plan
        self.config, self.outcome, self.cycle_account = config, outcome, cycle_account
        self.rng = random.Random(f"{config.seed}/ops/{index}")
        self.batches = plan.rounds[index]
        self.next_batch = 0

    async def call(
        self, op: str, method: str, path: str, key: str, body: Any = None
    ) -> httpx.Response | None:
        """One request, retried after ``Retry-After`` while it answers 409 with that header; the
        successful answer, or None."""
        headers = {"Authorization": f"Bearer {key}"}
        for attempt in range(MAX_RETRIES + 1):
            began = time.perf_counter()
            try:
                response = await self.http.request(method, path, json=body, headers=headers)
            except httpx.HTTPError as error:
                self.outcome.record(op, type(error).__name__, time.perf_counter() - began)
                self.outcome.errors.append(f"{op} {path}: {type(error).__name__}: {error}")
                return None
            status = response.status_code
            self.outcome.record(op, str(status), time.perf_counter() - began)
            if status < 300:
                return response
            retry_after = response.headers.get("Retry-After")
            if status == 409 and retry_after is not None and attempt < MAX_RETRIES:
                self.outcome.retries[op] += 1
                await asyncio.sleep(float(retry_after))
                continue
            self.outcome.errors.append(f"{op} {path}: {status} {response.text[:300]}")
            return None
        return None

    async def actuals(self) -> bool:
        """The next batch of the round; False when the round is done."""
        if self.next_batch >= len(self.batches):
            return False
        account, rows = self.batches[self.next_batch]
        self.next_batch += 1
        await self.call(
            "actuals", "POST", "/api/ml/actuals", self.accounts[account].key, {"rows": rows}
        )
        return True

    async def step(self) -> None:
        rng = self.rng
        if self.cycle_account is not None and rng.random() < CYCLE_SHARE:
            account = self.accounts[self.cycle_account]
            as_of = NOW - timedelta(hours=rng.randrange(self.config.hours // 2))
            body = {"as_of": as_of.isoformat(), "force": True}
            response = await self.call(
                "cycle", "POST", "/api/ml/self-learning-cycle", account.key, body
            )
            if response is not None:
                for name, loop in response.json().get("loops", {}).items():
                    if loop.get("status") == "failed":
                        failure = f"{account.name} {as_of.isoformat()} {name}: {loop.get('error')}"
                        self.outcome.cycle_loop_failures.append(failure)
            return
        op = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        account = rng.choice(self.accounts)
        ad = rng.choice(account.ads)
        if op == "actuals":
            if not await self.actuals():
                self.next_batch = 0  # a new round: the same versions in the same order
                await self.actuals()
        elif op == "allocate":
            await self.call(
                "allocate", "POST", "/api/ml/budget/allocate", account.key, _allocate_body(rng)
            )
        elif op == "predict":
            await self.call(
                "predict", "POST", "/api/ml/compound/predict", account.key, {"variant_id": ad}
            )
        else:
            path = rng.choice(
                [
                    f"/api/ml/actuals?ad_id={ad}&since={(NOW - timedelta(hours=12)).isoformat()}",
                    "/api/ml/campaigns",
                    f"/api/ml/campaigns/{account.name}-c",
                    f"/api/ml/variants/{ad}",
                ]
            )
            await self.call("read", "GET", path.replace("+", "%2B"), account.key)

    async def run(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            await self.step()
        while await self.actuals():  # finish the round
            pass


async def drive(
    base_url: str,
    accounts: list[Account],
    plan: Plan,
    config: LoadConfig,
    progress: Callable[[Outcome, float], None] | None = None,
) -> Outcome:
    """The clients against the server at ``base_url`` for ``config.duration_s``."""
    outcome = Outcome()
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them: with equal
    # timeouts (httpx's default is also 5 s) a request sent on a connection the server is
    # closing fails with ReadError: the client's race, not the service's answer.
    limits = httpx.Limits(max_connections=config.clients + 4, keepalive_expiry=KEEPALIVE_S)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=config.timeout_s, limits=limits
    ) as http:
        for account in accounts:
            response = await http.put(
                "/api/ml/catalog",
                json=catalog(account),
                headers={"Authorization": f"Bearer {account.key}"},
            )
            response.raise_for_status()
        clients = [
            Client(i, http, accounts, plan, config, outcome, i if i < len(accounts) else None)
            for i in range(config.clients)
        ]
        began = time.monotonic()
        deadline = began + config.duration_s
        tasks = [asyncio.create_task(c.run(deadline)) for c in clients]
        while not all(t.done() for t in tasks):
            await asyncio.wait(tasks, timeout=5)
            if progress is not None:
                progress(outcome, time.monotonic() - began)
        for t in tasks:
            t.result()
        outcome.elapsed_s = time.monotonic() - began
    return outcome


def check_rows(
    engine: Engine, accounts: list[Account], plan: Plan, config: LoadConfig
) -> dict[str, Any]:
    """The database against the plan, row by row: every ad-hour once with its last version,
    nothing else, and each row's revisions one chain ending at its stored value."""
    expected = plan.expected(config)
    index_of = {a.account_id: i for i, a in enumerate(accounts)}
    problems: list[str] = []
    with make_session_factory(engine)() as session:
        duplicates = session.execute(
            select(HourlyActualRow.variant_id, HourlyActualRow.hour_start, func.count())
            .group_by(HourlyActualRow.variant_id, HourlyActualRow.hour_start)
            .having(func.count() > 1)
        ).all()
        ad_of = {v.id: (v.account_id, v.external_id) for v in session.scalars(select(Variant))}
        stored: dict[Key, dict[str, int]] = {}
        by_variant: dict[tuple[int, datetime], Key] = {}
        for r in session.scalars(select(HourlyActualRow)):
            account_id, ad = ad_of[r.variant_id]
            key = (index_of[account_id], ad, r.hour_start.astimezone(UTC))
            by_variant[(r.variant_id, r.hour_start)] = key
            stored[key] = {m: getattr(r, m) for m in ACTUAL_METRICS}
        revisions = session.scalars(select(ActualRevision).order_by(ActualRevision.id)).all()
    problems += [f"duplicate row {d}" for d in duplicates]
    missing = expected.keys() - stored.keys()
    extra = stored.keys() - expected.keys()
    problems += [f"missing {k}" for k in sorted(missing)[:20]]
    problems += [f"unexpected {k}" for k in sorted(extra)[:20]]
    wrong = [k for k in expected.keys() & stored.keys() if stored[k] != expected[k]]
    problems += [f"{k}: stored {stored[k]} expected {expected[k]}" for k in sorted(wrong)[:20]]
    chains: dict[tuple[int, Any], list[ActualRevision]] = {}
    for revision in revisions:
        chains.setdefault((revision.variant_id, revision.hour_start), []).append(revision)
    broken = 0
    for (variant_id, hour), chain in chains.items():
        row_key = by_variant.get((variant_id, hour))
        last = {m: chain[-1].current.get(m) for m in ACTUAL_METRICS}
        links = all(b.previous == a.current for a, b in itertools.pairwise(chain))
        if row_key is None or not links or last != stored[row_key]:
            broken += 1
    if broken:
        problems.append(f"{broken} revision chains broken or not ending at the stored row")
    return {
        "expected_rows": len(expected),
        "stored_rows": len(stored),
        "missing": len(missing),
        "unexpected": len(extra),
        "wrong_values": len(wrong),
        "duplicates": len(duplicates),
        "revisions": len(revisions),
        "broken_chains": broken,
        "problems": problems,
    }


def summarize(outcome: Outcome) -> dict[str, Any]:
    """Requests, statuses, retries, p50/p99 (ms) per operation and overall, throughput."""

    def percentiles(values: list[float]) -> dict[str, float]:
        if not values:
            return {"p50_ms": float("nan"), "p99_ms": float("nan")}
        array = np.asarray(values) * 1000
        return {
            "p50_ms": round(float(np.percentile(array, 50)), 1),
            "p99_ms": round(float(np.percentile(array, 99)), 1),
        }

    per_op: dict[str, Any] = {}
    everything: list[float] = []
    statuses: Counter[str] = Counter()
    for op in OPERATIONS:
        values = outcome.latencies.get(op, [])
        everything += values
        op_statuses = outcome.statuses.get(op, Counter())
        statuses.update(op_statuses)
        per_op[op] = {
            "requests": len(values),
            "statuses": dict(sorted(op_statuses.items())),
            "retries": outcome.retries[op],
            **percentiles(values),
        }
    server_errors = sum(n for s, n in statuses.items() if s.isdigit() and int(s) >= 500)
    return {
        "requests": len(everything),
        "statuses": dict(sorted(statuses.items())),
        "server_errors": server_errors,
        "errors": len(outcome.errors),
        "retries": sum(outcome.retries.values()),
        "elapsed_s": round(outcome.elapsed_s, 1),
        "requests_per_s": round(len(everything) / outcome.elapsed_s, 1) if outcome.elapsed_s else 0,
        **percentiles(everything),
        "operations": per_op,
        "first_errors": outcome.errors[:10],
        "cycle_loop_failures": len(outcome.cycle_loop_failures),
        "first_cycle_loop_failures": outcome.cycle_loop_failures[:10],
    }


def run_load(
    database_url: str,
    workdir: Path,
    config: LoadConfig,
    progress: Callable[[Outcome, float], None] | None = None,
) -> dict[str, Any]:
    """Accounts, the server, the clients, then the row-by-row check: the figures of one run on
    one migrated, empty database."""
    engine = make_engine(database_url)
    try:
        accounts = make_accounts(engine, config)
        plan = make_plan(config, {i: a.ads for i, a in enumerate(accounts)})
        log_path = workdir / "server.log"
        with serve(database_url, workdir / "data", log_path) as base:
            outcome = asyncio.run(drive(base, accounts, plan, config, progress))
        figures = summarize(outcome)
        figures["integrity"] = check_rows(engine, accounts, plan, config)
        figures["database"] = engine.dialect.name
        figures["server_log_tail"] = log_path.read_text(errors="replace")[-3000:]
    finally:
        engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description="The load test's server (internal).")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("database_url")
    parser.add_argument("port", type=int)
    parser.add_argument("data_dir")
    args = parser.parse_args()
    _serve_main(args.database_url, args.port, args.data_dir)


if __name__ == "__main__":
    main()
