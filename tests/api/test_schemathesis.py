"""Issue #17: Schemathesis over the whole API with an account's key, on SQLite and PostgreSQL:
no 5xx, every status documented, every body and header as the OpenAPI document says.

The stateless run here is bounded: Schemathesis' coverage phase (boundary values, each
constraint broken once, unsupported methods) then ``CI_EXAMPLES`` random cases per operation,
positive and negative, deterministic; about 25-40 s per store on two cores.
``benchmarks/bench_fuzz.py`` runs ten times as many examples and the stateful run along the
document's links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.core.errors import ConflictError
from adflywheel.services.memory import service as memory_service
from tests.factories.fuzz import (
    CI_EXAMPLES,
    SLOW_OPERATIONS,
    FuzzResult,
    fuzz_app,
    run_fuzz,
)

pytestmark = [pytest.mark.slow, pytest.mark.db]

STATS = ("GET", "/api/ml/rag/memory-stats")


def _report(result: FuzzResult) -> str:
    return "\n\n".join(f"{title}\n{detail}" for title, detail in result.failures.items())


def test_a_stateless_run_over_every_operation_finds_nothing(engine: Engine, tmp_path: Path) -> None:
    app, key = fuzz_app(engine, tmp_path / "data")
    result = run_fuzz(app, key, max_examples=CI_EXAMPLES, exclude=SLOW_OPERATIONS, coverage=True)
    assert result.errors == []
    assert result.failures == {}, _report(result)
    with TestClient(app) as client:
        paths = client.get("/openapi.json").json()["paths"]
    documented = {f"{m.upper()} {p}" for p, item in paths.items() for m in item}
    excluded = {f"{m} {p}" for m, p in SLOW_OPERATIONS}
    assert documented - excluded <= set(result.cases)  # every operation was exercised
    assert result.total_cases >= 10 * len(documented)


def _fail_with(error: Exception) -> Any:
    def fail(*_: Any, **__: Any) -> Any:
        raise error

    return fail


@pytest.mark.parametrize(
    ("bug", "check"),
    [(RuntimeError("boom"), "not_a_server_error"), (ConflictError("busy"), "status_code")],
)
def test_the_run_catches_a_server_error_and_an_undocumented_status(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bug: Exception, check: str
) -> None:
    """The harness itself: a route made to fail is reported, so a green run means something."""
    app, key = fuzz_app(engine, tmp_path / "data")
    monkeypatch.setattr(memory_service, "memory_stats", _fail_with(bug))
    result = run_fuzz(app, key, max_examples=3, only=STATS)
    assert any(check in title for title in result.failures), result.failures
