"""``POST /api/ml/compound/predict`` over HTTP (issue #19): the real service under uvicorn in a
subprocess on loopback, a warm PostgreSQL account (one account, 50 ads, 72 hours of delivery,
weights learnt and the hour's predictions recorded by the compound step), 16 concurrent httpx
clients asking for the account's ads in turn. Figures: p50/p99 and requests/s at 16 concurrent,
and one client at a time (a cached answer's latency), with the load average.

Run: ``.venv/bin/python -m benchmarks.bench_predict`` (``--quick``: 3 s per phase; ``--workers 1
2``; ``--code /tmp/base19``: serve another checkout's code, e.g. the baseline commit 3dc1465, with
the data seeded by that code). PostgreSQL from ``ADFLYWHEEL_BENCH_DATABASE_URL`` (default the
local server); each run uses a database of its own (``b_predict_<pid>``), dropped afterwards.
Writes ``benchmarks/out/predict/table.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "predict"
SERVER = os.environ.get(
    "ADFLYWHEEL_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
HOUR0 = datetime(2026, 3, 2, 12, tzinfo=UTC)  # the account's current hour
CLIENTS = 16


# -- in the subprocess (the code under test) ----------------------------------------------------


def _seed(url: str, hours: int) -> dict[str, Any]:
    """A warm account: 5 campaigns x 10 ads delivered for ``hours`` hours before ``HOUR0``,
    weights learnt and the hour's predictions recorded. Uses only functions the baseline has."""
    from adflywheel.services.compound import service as cs
    from adflywheel.sim.market import MarketConfig, SimulatedMarket
    from adflywheel.store.accounts import create_account, issue_key
    from adflywheel.store.actuals import upsert_actuals
    from adflywheel.store.catalog import sync_catalog
    from adflywheel.store.engine import make_engine, make_session_factory, transaction

    market = SimulatedMarket(
        MarketConfig(
            seed=5,
            n_accounts=1,
            campaigns_per_account=5,
            variants_per_campaign=10,
            campaign_daily_budget_minor=60_000,
            start=HOUR0 - timedelta(hours=hours),
        )
    )
    start = market.current_hour
    market.run(hours)
    platform = market.platform(market.accounts()[0])
    factory = make_session_factory(make_engine(url))
    with transaction(factory) as session:
        account = create_account(session, "bench-predict", start, platform="simulated")
        account.category = platform.account().category
        sync_catalog(
            session,
            account.id,
            platform.list_campaigns(),
            platform.list_ad_sets(),
            platform.list_ads(),
            start,
        )
        upsert_actuals(
            session,
            account.id,
            platform.fetch_insights(start, market.current_hour),
            source="simulated",
            now=market.current_hour,
        )
        key = issue_key(session, account, start).key
        account_id = account.id
    cs.update_weights(factory, account_id, HOUR0)
    recorded = cs.predict_and_record(factory, account_id, HOUR0)
    ads = [a.external_id for a in platform.list_ads()]
    return {"key": key, "ads": ads, "recorded": recorded["recorded"]}


def _serve(url: str, port: int, workers: int, data_dir: str) -> None:
    """The service at ``HOUR0`` + 1 min (its clock then runs); several workers when asked."""
    import uvicorn

    from adflywheel.core.settings import Settings

    settings = Settings(data_dir=Path(data_dir), database_url=url, scheduler_enabled=False)
    now = HOUR0 + timedelta(minutes=1)
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "log_level": "warning",
        "access_log": False,
    }
    if workers == 1:
        from adflywheel.api.app import create_app
        from adflywheel.core.clock import ShiftedClock

        uvicorn.run(create_app(settings, clock=ShiftedClock(now)), **options)
        return
    from adflywheel.api.app import worker_environment  # type: ignore[attr-defined,unused-ignore]

    offset = (now - datetime.now(UTC)).total_seconds()
    os.environ.update(worker_environment(settings, offset))
    from adflywheel.api.multiworker import run_workers  # as `serve --workers` runs them

    run_workers("adflywheel.api.app:worker_app", workers, **options)


# -- the driver ---------------------------------------------------------------------------------


def _env(code: Path) -> dict[str, str]:
    from benchmarks.load import code_env

    return code_env(code / "src")


def seed(url: str, code: Path, hours: int) -> dict[str, Any]:
    """Migrate and seed with the code under test (a subprocess: its own ``adflywheel``)."""
    from benchmarks.load import json_from_code

    return json_from_code(code / "src", ["benchmarks.bench_predict", "seed", url, str(hours)])


@contextmanager
def served(url: str, code: Path, workers: int, folder: Path) -> Iterator[tuple[str, int]]:
    """``code``'s service with ``workers`` uvicorn workers: its base URL and the parent's pid."""
    from benchmarks.load import server_process

    def argv(port: int) -> list[str]:
        serve = ["serve", url, str(port), str(workers)]
        return [sys.executable, "-m", "benchmarks.bench_predict", *serve]

    env = dict(_env(code), ADFLYWHEEL_DATA_DIR=str(folder))
    with server_process(argv, env, folder / f"server-{workers}.log") as served:
        yield served


async def _load(
    base: str, key: str, ads: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sources: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{base}/api/ml/compound/predict"

    async def client(http: httpx.AsyncClient, i: int) -> None:
        n = i
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            r = await http.post(url, json={"ad_id": ads[n % len(ads)]}, headers=headers)
            latencies.append(time.perf_counter() - t0)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 200:
                source = str(r.json().get("source", "none"))
                sources[source] = sources.get(source, 0) + 1
            n += clients

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(http, i) for i in range(clients)))
    wall = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    return {
        "clients": clients,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "statuses": statuses,
        "sources": sources,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _server_cpu_s(base_pid: int) -> float:
    """CPU seconds used so far by the server and its worker processes (not by the clients):
    the figure that carries to a quiet machine, where the latencies here do not. Read from
    ``/proc`` (Linux); 0 elsewhere."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(entry.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    wanted, total = {base_pid}, 0.0
    while True:  # the server and its descendants
        more = {pid for pid, (parent, _) in stats.items() if parent in wanted} - wanted
        if not more:
            break
        wanted |= more
    for pid in wanted:
        total += stats.get(pid, (0, 0.0))[1]
    return total


def measure(
    label: str, code: Path, workers: int, seconds: float, hours: int, folder: Path
) -> dict[str, Any]:
    """One configuration: a fresh database seeded by ``code``, served with ``workers``."""
    from benchmarks.load import scratch_postgres

    with scratch_postgres(SERVER, f"b_predict_{os.getpid()}") as url:
        seeded = seed(url, code, hours)
        with served(url, code, workers, folder) as (base, pid):
            key, ads = seeded["key"], seeded["ads"]
            asyncio.run(_load(base, key, ads, CLIENTS, min(seconds, 3.0)))  # warm every ad
            cpu0 = _server_cpu_s(pid)
            concurrent = asyncio.run(_load(base, key, ads, CLIENTS, seconds))
            cpu = _server_cpu_s(pid) - cpu0
            concurrent["server_cpu_ms_per_request"] = round(
                1000 * cpu / max(1, concurrent["requests"]), 2
            )
            single = asyncio.run(_load(base, key, ads, 1, seconds))
    return {"label": label, "workers": workers, "concurrent": concurrent, "one_at_a_time": single}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| code | workers | 16 clients: req/s | p50 ms | p99 ms | server CPU ms/request "
        "| 1 client: p50 ms | p99 ms | answers from | load avg (1, 5, 15 min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c, s = r["concurrent"], r["one_at_a_time"]
        sources = ", ".join(f"{k}: {v}" for k, v in c["sources"].items())
        load = ", ".join(str(x) for x in c["load_average"])
        lines.append(
            f"| {r['label']} | {r['workers']} | {c['requests_per_s']} | {c['p50_ms']} "
            f"| {c['p99_ms']} | {c['server_cpu_ms_per_request']} | {s['p50_ms']} | {s['p99_ms']} "
            f"| {sources} | {load} |"
        )
    return "\n".join(lines) + "\n"


def run(
    *,
    quick: bool = False,
    workers: tuple[int, ...] = (1, 2),
    baseline: Path | None = None,
    seconds: float | None = None,
) -> list[dict[str, Any]]:
    import tempfile

    duration = seconds or (3.0 if quick else 20.0)
    hours = 24 if quick else 72
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if baseline is not None:
            rows.append(measure(f"baseline ({baseline})", baseline, 1, duration, hours, folder))
        for n in workers:
            rows.append(measure("this checkout", ROOT, n, duration, hours, folder))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
    (OUT / "table.md").write_text(markdown(rows))
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "seed":
        from adflywheel.store.engine import make_engine, upgrade

        engine = make_engine(sys.argv[2])
        upgrade(engine)
        engine.dispose()
        print(json.dumps(_seed(sys.argv[2], int(sys.argv[3]))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        _serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), os.environ["ADFLYWHEEL_DATA_DIR"])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 s per phase, 24 hours of data")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--code", type=Path, default=None, help="also serve this checkout first")
    args = parser.parse_args()
    rows = run(
        quick=args.quick, workers=tuple(args.workers), baseline=args.code, seconds=args.seconds
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
