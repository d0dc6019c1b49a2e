"""Concurrent overlapping actuals batches (issue #17, finding 3): several clients posting the
same ad-hours, some with corrected values, never get an error other than "busy, retry later";
every (variant, hour) is stored once, and the corrections form one unbroken chain of revisions
(each revision's ``previous`` is the value the row held just before it)."""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from adflywheel.core.domain import HourlyActual
from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.store.actuals import METRICS, ConcurrentWriteError, upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import ActualRevision, HourlyActualRow
from tests.factories.clock import T0
from tests.factories.helpers import auth, key_for, new_account

THREADS = 8
ROUNDS = 30
ADS = 4
HOURS = 6


def _row(ad: int, hour: int, version: int) -> HourlyActual:
    """The values of one ad-hour in one of three versions (a version > 0 is a correction)."""
    return HourlyActual(
        f"ad{ad}", T0 + timedelta(hours=hour), 1000 + version, 10 + version, 5, 100 + version
    )


def _account(engine: Engine) -> tuple[int, str]:
    account_id, key = new_account(engine, "busy", T0)
    with transaction(make_session_factory(engine)) as session:
        sync_catalog(
            session,
            account_id,
            [PlatformCampaign("c", "c")],
            [PlatformAdSet(f"s{a}", "c", "s") for a in range(ADS)],
            [PlatformAd(f"ad{a}", f"s{a}", "c", "ad") for a in range(ADS)],
            T0,
        )
    return account_id, key


def _batch(rng: random.Random) -> list[HourlyActual]:
    keys = rng.sample([(a, h) for a in range(ADS) for h in range(HOURS)], rng.randint(2, 6))
    return [_row(a, h, rng.randrange(3)) for a, h in keys]


def _hammer(post: Any) -> tuple[Counter[str], list[BaseException]]:
    """Run ``post(batch)`` from THREADS threads at once, ROUNDS batches each; the outcomes
    counted by name and the unexpected exceptions."""
    outcomes: Counter[str] = Counter()
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(ROUNDS):
            try:
                outcome = post(_batch(rng))
            except ConcurrentWriteError:
                outcome = "busy"
            except BaseException as error:
                with lock:
                    unexpected.append(error)
                continue
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, unexpected


def _check_store(engine: Engine, account_id: int) -> tuple[int, int]:
    """Every ad-hour once, and its revisions a chain ending at the stored value."""
    metric_names = list(METRICS)
    with make_session_factory(engine)() as session:
        duplicates = session.execute(
            select(HourlyActualRow.variant_id, HourlyActualRow.hour_start, func.count())
            .group_by(HourlyActualRow.variant_id, HourlyActualRow.hour_start)
            .having(func.count() > 1)
        ).all()
        assert duplicates == []
        stored = {
            (r.variant_id, r.hour_start): {m: getattr(r, m) for m in metric_names}
            for r in session.scalars(
                select(HourlyActualRow).where(HourlyActualRow.account_id == account_id)
            )
        }
        revisions = session.scalars(select(ActualRevision).order_by(ActualRevision.id)).all()
    assert len(stored) == ADS * HOURS  # with this many rounds every ad-hour was posted
    chains: dict[tuple[int, Any], list[ActualRevision]] = {}
    for revision in revisions:
        chains.setdefault((revision.variant_id, revision.hour_start), []).append(revision)
    for key, chain in chains.items():
        for before, after in itertools.pairwise(chain):
            assert after.previous == before.current, f"revision lost a correction of {key}"
        assert chain[-1].current == stored[key], f"the stored row of {key} is not the last"
        assert chain[0].previous != chain[0].current
    return len(stored), len(revisions)


def test_concurrent_overlapping_batches_through_the_store(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adflywheel.store.actuals")
    account_id, _ = _account(engine)
    factory = make_session_factory(engine)

    def post(batch: list[HourlyActual]) -> str:
        with transaction(factory) as session:
            result = upsert_actuals(session, account_id, batch, source="api", now=T0)
        return "ok" if result.received == len(batch) else "short"

    outcomes, unexpected = _hammer(post)
    assert unexpected == [], [f"{type(e).__name__}: {e}"[:300] for e in unexpected[:3]]
    assert outcomes["ok"] + outcomes["busy"] == THREADS * ROUNDS
    assert outcomes["busy"] <= THREADS * ROUNDS // 10  # retries inside absorb nearly all
    rows, revisions = _check_store(engine, account_id)
    assert revisions > 0
    retries = sum("retrying" in r.getMessage() for r in caplog.records)
    print(f"store: {dict(outcomes)}, {rows} rows, {revisions} revisions, {retries} retries")


def test_concurrent_overlapping_batches_through_http(engine: Engine, client: TestClient) -> None:
    account_id, _ = _account(engine)
    headers = auth(key_for(make_session_factory(engine), account_id, T0))

    def post(batch: list[HourlyActual]) -> str:
        body = {
            "rows": [
                {
                    "ad_id": r.ad_id,
                    "hour_start": r.hour_start.isoformat(),
                    **{m: getattr(r, m) for m in METRICS},
                }
                for r in batch
            ]
        }
        response = client.post("/api/ml/actuals", json=body, headers=headers)
        if response.status_code == 409:
            assert int(response.headers["Retry-After"]) >= 1
            return "busy"
        assert response.status_code == 200, response.text
        return "ok"

    outcomes, unexpected = _hammer(post)
    assert unexpected == [], [f"{type(e).__name__}: {e}"[:300] for e in unexpected[:3]]
    assert outcomes["ok"] + outcomes["busy"] == THREADS * ROUNDS
    rows, revisions = _check_store(engine, account_id)
    assert revisions > 0
    print(f"http: {dict(outcomes)}, {rows} rows, {revisions} revisions")


class _Serialization(Exception):
    sqlstate = "40001"


def test_a_transient_conflict_is_retried_then_refused_as_busy(
    engine: Engine, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A serialisation failure is retried inside (PostgreSQL, from a savepoint); one that
    outlasts the attempts (or SQLite's busy timeout) is a 409 with Retry-After, never a 500."""
    from sqlalchemy.exc import OperationalError

    from adflywheel.store import actuals

    account_id, key = _account(engine)
    write = actuals._write
    failures = {"left": 2}

    def flaky(*args: Any) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError("INSERT ...", {}, _Serialization("could not serialize"))
        return write(*args)

    monkeypatch.setattr(actuals, "_write", flaky)
    factory = make_session_factory(engine)
    batch = [_row(0, 0, 0), _row(1, 0, 0)]
    postgres = engine.dialect.name == "postgresql"
    if postgres:  # two failures, then the third attempt stores the batch
        with transaction(factory) as session:
            result = upsert_actuals(session, account_id, batch, source="api", now=T0)
        assert (result.inserted, failures["left"]) == (2, 0)

    failures["left"] = 10**6
    body = {
        "rows": [
            {
                "ad_id": r.ad_id,
                "hour_start": r.hour_start.isoformat(),
                "impressions": 9,
                "clicks": 1,
                "spend_minor": 1,
            }
            for r in batch
        ]
    }
    response = client.post("/api/ml/actuals", json=body, headers=auth(key))
    assert response.status_code == 409, response.text
    assert response.headers["Retry-After"] == "1"
    assert "send it again" in response.json()["detail"]
    with factory() as session:
        stored = session.scalars(select(HourlyActualRow.impressions)).all()
    assert stored == ([1000, 1000] if postgres else [])  # the refused batch left nothing
