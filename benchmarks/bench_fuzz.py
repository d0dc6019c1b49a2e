"""Schemathesis over the whole API, longer than the test suite's run (issue #17).

On a fresh SQLite file and a fresh PostgreSQL database (``ADFLYWHEEL_BENCH_DATABASE_URL``, by
default the local server), each with one account, its small catalogue, a day of actuals and a
promotion awaiting approval (``tests/factories/fuzz.py``), no ad platform:

* ``stateless``: every operation, Schemathesis' coverage phase (boundaries, each constraint
  broken once, unsupported methods) then ``10 ×`` the random examples of
  ``tests/api/test_schemathesis.py``, positive and negative, deterministic (a fixed seed);
* ``stateful``: Schemathesis' state machine along the document's OpenAPI links (``LINKS`` in
  ``api/openapi.py``: catalogue → campaign → variant, actuals → their ad, promoter run or history
  → approve/rollback of its action, models → promote).

Checks: no 5xx, every status documented, content type,
body schema and headers as documented. Writes ``benchmarks/out/fuzz/results.json``.

Run: ``python -m benchmarks.bench_fuzz [--quick]`` (quick: 20 examples, 20 scenarios).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.factories.fuzz import CI_EXAMPLES, FuzzResult, fuzz_app, run_fuzz

from adflywheel.store.engine import make_engine, upgrade
from benchmarks._cli import print_figures

OUT = Path(__file__).parent / "out" / "fuzz"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STATEFUL_SCENARIOS = 200
STATEFUL_STEPS = 10


@contextmanager
def _fresh_postgres() -> Iterator[str]:
    """A database of its own on the server, dropped afterwards."""
    server = make_url(os.environ.get("ADFLYWHEEL_BENCH_DATABASE_URL", POSTGRES))
    name = f"adflywheel_bench_fuzz_{os.getpid()}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _store(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'fuzz.db'}"
    else:
        with _fresh_postgres() as url:
            yield url


def _figures(result: FuzzResult) -> dict[str, Any]:
    return {
        "cases": result.total_cases,
        "operations": len(result.cases),
        "failures": len(result.failures),
        "errors": len(result.errors),
        "seconds": round(result.seconds, 1),
        "failure_titles": sorted(result.failures),
        "statuses": dict(sorted(result.statuses.items())),
    }


def _one(kind: str, *, stateful: bool, examples: int) -> dict[str, Any]:
    """One run on a fresh database (a stateful run must not start from the stateless one's)."""
    with tempfile.TemporaryDirectory() as scratch, _store(kind, Path(scratch)) as url:
        engine = make_engine(url)
        upgrade(engine)
        try:
            app, key = fuzz_app(engine, Path(scratch) / "data")
            result = run_fuzz(
                app,
                key,
                max_examples=examples,
                stateful=stateful,
                max_steps=STATEFUL_STEPS,
                coverage=not stateful,
            )
        finally:
            engine.dispose()
    return _figures(result)


def run(quick: bool = False, stores: tuple[str, ...] = ("sqlite", "postgresql")) -> dict[str, Any]:
    stateless = 20 if quick else 10 * CI_EXAMPLES
    scenarios = 20 if quick else STATEFUL_SCENARIOS
    figures: dict[str, Any] = {
        "stateless_examples_per_operation": stateless,
        "stateful_scenarios": scenarios,
        "stateful_max_steps": STATEFUL_STEPS,
    }
    for kind in stores:
        figures[kind] = {
            "stateless": _one(kind, stateful=False, examples=stateless),
            "stateful": _one(kind, stateful=True, examples=scenarios),
        }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(figures, indent=2) + "\n")
    return {
        f"{kind} {phase}": {k: v for k, v in figures[kind][phase].items() if k != "statuses"}
        for kind in stores
        for phase in ("stateless", "stateful")
    }


if __name__ == "__main__":
    print_figures(run, __doc__.splitlines()[0] if __doc__ else None, "20 examples, 20 scenarios")
