"""Bulk ingestion of hourly actuals: rows per second into SQLite and PostgreSQL.

Measures ``upsert_actuals`` (the ad look-up and batch check, the diff against stored rows, the
write with revisions and running totals) on a synthetic batch of 1,000 ads × 48 hours = 48,000
rows in one transaction: a first load (all inserts), a re-send of the same batch (all
unchanged) and a corrected re-send (all updates, one revision each). ``--http`` posts the same
rows to the real service (uvicorn subprocess on loopback, an account and key of its own, bodies
encoded before the clock starts, batches of ``--batch-rows`` up to the API's limit).

``--base PATH`` measures a second checkout's code in the same run (a git worktree of the
baseline commit): each measurement runs in a subprocess whose ``adflywheel`` is imported from
that checkout's ``src`` (checked), with this file's harness. PostgreSQL figures use a database
of their own (``c_ingest_<pid>``, created and dropped) on the server named by
``ADFLYWHEEL_TEST_DATABASE_URL``.

    python -m benchmarks.bench_ingestion [--http] [--base /tmp/base19] [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from adflywheel.core.domain import HourlyActual
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.store.accounts import create_account, issue_key
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_engine, make_session_factory, transaction, upgrade

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 1, tzinfo=UTC)
PHASES = ("insert", "unchanged", "update")
FIELDS = {"insert": "inserted", "unchanged": "unchanged", "update": "updated"}


def _rows(ads: int, hours: int, bump: int = 0) -> list[HourlyActual]:
    return [
        HourlyActual(
            ad_id=f"ad{a}",
            hour_start=T0 + timedelta(hours=h),
            impressions=1000 + a + h,
            clicks=10 + (a * 7 + h) % 20 + bump,
            link_clicks=5,
            spend_minor=900 + a,
        )
        for a in range(ads)
        for h in range(hours)
    ]


@contextmanager
def _database(kind: str, folder: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a PostgreSQL database of its own."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / f'ingest_{time.monotonic_ns()}.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    from benchmarks.load import scratch_postgres

    server = os.environ["ADFLYWHEEL_TEST_DATABASE_URL"]
    with scratch_postgres(server, f"c_ingest_{os.getpid()}") as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


def _account(engine: Engine, ads: int, name: str) -> tuple[int, str]:
    """An account with one campaign and ``ads`` ads; its id and an API key."""
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        account = create_account(session, name, T0)
        key = issue_key(session, account, T0).key
        sync_catalog(
            session,
            account.id,
            [PlatformCampaign("c", "c")],
            [PlatformAdSet(f"s{a}", "c", "s") for a in range(ads)],
            [PlatformAd(f"ad{a}", f"s{a}", "c", "ad") for a in range(ads)],
            T0,
        )
        return account.id, key


def _rates(n: int, timings: dict[str, list[float]]) -> dict[str, int]:
    return {f"{k}_rows_per_s": round(n / statistics.median(v)) for k, v in timings.items()}


def measure(kind: str, ads: int, hours: int, repeats: int) -> dict[str, int]:
    """Rows per second through the repository, median of ``repeats`` fresh databases."""
    timings: dict[str, list[float]] = {p: [] for p in PHASES}
    n = ads * hours
    batches = {"insert": _rows(ads, hours), "unchanged": _rows(ads, hours)}
    batches["update"] = _rows(ads, hours, bump=1)
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            with _database(kind, Path(folder)) as url:
                engine = make_engine(url)
                account_id, _ = _account(engine, ads, "bench")
                factory = make_session_factory(engine)
                for label in PHASES:
                    started = time.perf_counter()
                    with transaction(factory) as session:
                        result = upsert_actuals(
                            session, account_id, batches[label], source="bench", now=T0
                        )
                    timings[label].append(time.perf_counter() - started)
                    done = {"insert": result.inserted, "unchanged": result.unchanged}
                    assert done.get(label, result.updated) == n, (label, result)
                engine.dispose()
    return _rates(n, timings)


@contextmanager
def _serve(src: Path, url: str, folder: Path) -> Iterator[str]:
    """The service (``src``'s code) under uvicorn in a subprocess on a free loopback port."""
    from benchmarks.load import code_env, server_process

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "benchmarks.load", "serve", url, str(port), str(folder)]

    with server_process(argv, code_env(src), folder / "server.log") as (base, _pid):
        yield base


def _body(rows: list[HourlyActual]) -> bytes:
    return json.dumps(
        {
            "rows": [
                {
                    "ad_id": r.ad_id,
                    "hour_start": r.hour_start.isoformat(),
                    "impressions": r.impressions,
                    "clicks": r.clicks,
                    "link_clicks": r.link_clicks,
                    "spend_minor": r.spend_minor,
                }
                for r in rows
            ]
        }
    ).encode()


def measure_http(
    kind: str, ads: int, hours: int, repeats: int, batch_rows: int, src: Path
) -> dict[str, int]:
    """Rows per second posted to ``POST /api/ml/actuals`` in batches of ``batch_rows``, one
    request at a time; median of ``repeats`` accounts on one server."""
    import httpx

    n = ads * hours
    timings: dict[str, list[float]] = {p: [] for p in PHASES}
    bodies = {}
    for label, bump in (("insert", 0), ("unchanged", 0), ("update", 1)):
        rows = _rows(ads, hours, bump)
        bodies[label] = [_body(rows[i : i + batch_rows]) for i in range(0, n, batch_rows)]
    with tempfile.TemporaryDirectory() as folder, _database(kind, Path(folder)) as url:
        engine = make_engine(url)
        keys = [_account(engine, ads, f"http{r}")[1] for r in range(repeats)]
        engine.dispose()
        with _serve(src, url, Path(folder)) as base, httpx.Client(timeout=600) as client:
            for key in keys:
                headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
                for label in PHASES:
                    counted = 0
                    started = time.perf_counter()
                    for body in bodies[label]:
                        response = client.post(
                            f"{base}/api/ml/actuals", content=body, headers=headers
                        )
                        assert response.status_code == 200, response.text[:500]
                        answer = response.json()
                        counted += answer[FIELDS[label]]
                    timings[label].append(time.perf_counter() - started)
                    assert counted == n, (label, counted)
    return _rates(n, timings)


def _sizes(quick: bool, repeats: int | None = None) -> tuple[int, int, int]:
    ads, hours, default = (200, 24, 1) if quick else (1000, 48, 3)
    return ads, hours, repeats or default


def _stores() -> list[str]:
    return (
        ["sqlite", "postgresql"] if os.environ.get("ADFLYWHEEL_TEST_DATABASE_URL") else ["sqlite"]
    )


def run(
    quick: bool = False, http: bool = False, base: Path | None = None, repeats: int | None = None
) -> dict[str, Any]:
    """This checkout's figures, and with ``base`` the other checkout's, each measurement in a
    subprocess of its own (the same harness for both)."""
    ads, hours, repeats = _sizes(quick, repeats)
    out: dict[str, Any] = {
        "rows_per_batch": ads * hours,
        "repeats": repeats,
        "load_average_before": os.getloadavg(),
    }
    codes = {"now": ROOT / "src"} | ({"base": base / "src"} if base else {})
    for code, src in codes.items():
        for kind in _stores():
            modes = ["repository"] + (["http"] if http else [])
            for mode in modes:
                figures = _worker(src, mode, kind, quick, repeats)
                figures["load_average"] = os.getloadavg()
                out[f"{code}/{kind}/{mode}"] = figures
    out["load_average_after"] = os.getloadavg()
    return out


def _worker(src: Path, mode: str, kind: str, quick: bool, repeats: int) -> dict[str, Any]:
    """One measurement in a subprocess that imports ``adflywheel`` from ``src``."""
    from benchmarks.load import json_from_code

    command = ["benchmarks.bench_ingestion", "--worker", mode, kind, "--repeats", str(repeats)]
    return json_from_code(src, [*command, *(["--quick"] if quick else [])])


def _work(mode: str, kind: str, quick: bool, repeats: int | None) -> dict[str, Any]:
    import adflywheel

    ads, hours, repeats = _sizes(quick, repeats)
    src = Path(adflywheel.__file__).resolve().parent.parent
    if mode == "repository":
        figures: dict[str, Any] = dict(measure(kind, ads, hours, repeats))
    else:
        figures = dict(measure_http(kind, ads, hours, repeats, min(ads * hours, 50_000), src))
    figures["code"] = str(src)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 ads × 24 hours, once")
    parser.add_argument("--http", action="store_true", help="also through the HTTP API")
    parser.add_argument("--base", type=Path, help="a checkout of the baseline to measure too")
    parser.add_argument("--repeats", type=int, help="measurements per figure (median)")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_work(args.worker[0], args.worker[1], args.quick, args.repeats)))
        return
    figures = run(quick=args.quick, http=args.http, base=args.base, repeats=args.repeats)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
