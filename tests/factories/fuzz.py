"""Schemathesis over the whole API, in process: shared by tests/api/test_schemathesis.py and
benchmarks/bench_fuzz.py.

The app gets an account with a small catalogue, a day of its actuals and a promotion awaiting
approval (so ids exist and the promoter has something to act on), no ad platform (its writes answer
409, nothing reaches Meta) and a manual clock. A run is deterministic: a fixed seed,
derandomised generation, no example database.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.engine import Status, events
from sqlalchemy import Engine

from adflywheel.api.app import create_app
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account, row, small_catalog

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
SEED = 17
CI_EXAMPLES = 30
"""Examples per operation in the test suite's run (tests/api/test_schemathesis.py): about 25 s
per store on two cores; the benchmark runs ten times as many."""
NOT_SERVER_ERRORS = ["2XX", "3XX", "4XX"]
# Strings the API knows (the catalogue's ids, hours the clock allows, a niche) mixed into what
# is generated, so that requests get past "no such ad" to the code behind it.
KNOWN_STRINGS = [
    "c1",
    "s1",
    "s2",
    "a1",
    "a2",
    "ecommerce",
    "2026-11-02T10:00:00Z",
    "2026-11-02T11:00:00+00:00",
    "2026-11-01T00:00:00Z",
]

# Operations left out of the test suite's run, with why (the benchmark runs every one). None
# today: the cycle is bounded by the manual clock and a one-campaign catalogue (about 0.1 s a
# case), and with no platform the fetch answers 409 at once.
SLOW_OPERATIONS: dict[tuple[str, str], str] = {}


@dataclass
class FuzzResult:
    """What a run did: cases sent per operation, and each distinct failure once."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_cases(self) -> int:
        return sum(self.cases.values())


def fuzz_app(engine: Engine, data_dir: Path) -> tuple[FastAPI, str]:
    """The service on ``engine`` (migrated), with one account, its small catalogue, and its key."""
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(data_dir=data_dir, database_url=url)
    app = create_app(settings, clock=ManualClock(T0))
    _, key = new_account(engine, "acme", T0)
    with TestClient(app) as client:
        for method, url, body in _seed():
            answer = client.request(method, url, json=body, headers=auth(key))
            assert answer.status_code == 200, answer.text
    return app, key


def _seed() -> list[tuple[str, str, Any]]:
    """The catalogue; a day of actuals in which a2 beats its control a1; guardrails that hold
    a raise for approval; and one promoter run, so that an action awaits approval."""
    rows = [
        row(ad, (T0 - timedelta(hours=h)).isoformat(), clicks=clicks, link_clicks=clicks // 2)
        for h in range(1, 25)
        for ad, clicks in (("a1", 10), ("a2", 40))
    ]
    guardrails = {"approval_threshold_minor": 1, "max_account_budget_minor": 10**9}
    return [
        ("PUT", "/api/ml/catalog", small_catalog()),
        ("POST", "/api/ml/actuals", {"rows": rows}),
        ("PUT", "/api/ml/accounts/me/guardrails", guardrails),
        ("POST", "/api/ml/auto-promote", {}),
    ]


def _config(
    key: str, *, max_examples: int, stateful: bool, max_steps: int, coverage: bool = False
) -> schemathesis.Config:
    checks: dict[str, Any] = {"enabled": False} | {name: {"enabled": True} for name in CHECKS}
    checks["not_a_server_error"]["expected-statuses"] = NOT_SERVER_ERRORS
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "continue-on-failure": True,
            "cache": {"enabled": False},
            "headers": auth(key),
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "checks": checks,
            "dictionaries": {"known": {"values": KNOWN_STRINGS}},
            "generation": {
                "dictionaries": {"string": {"dictionary": "known", "probability": 0.3}},
                "mode": "all",
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": coverage},
                "fuzzing": {"enabled": not stateful},
                "stateful": {"enabled": stateful, "max-steps": max_steps},
            },
        }
    )


def run_fuzz(
    app: FastAPI,
    key: str,
    *,
    max_examples: int,
    stateful: bool = False,
    max_steps: int = 20,
    exclude: dict[tuple[str, str], str] | None = None,
    only: tuple[str, str] | None = None,
    coverage: bool = False,
) -> FuzzResult:
    """A stateless (or stateful) run over every operation but ``exclude``'s (or ``only`` one);
    with ``coverage``, first Schemathesis' deterministic boundary and negative cases."""
    config = _config(
        key, max_examples=max_examples, stateful=stateful, max_steps=max_steps, coverage=coverage
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    for method, path in exclude or {}:
        schema = schema.exclude(method=method, path=path)
    if only is not None:
        schema = schema.include(method=only[0], path=only[1])
    result = FuzzResult()
    started = time.perf_counter()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(result, event)
        elif isinstance(event, events.NonFatalError):
            result.errors.append(f"{event.label}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            result.errors.append(f"fatal: {event.exception!r}")
    result.seconds = time.perf_counter() - started
    return result


def _record(result: FuzzResult, event: events.ScenarioFinished) -> None:
    recorder = event.recorder
    for node in recorder.cases.values():
        case = node.value
        result.cases[f"{case.method} {case.path}"] += 1
    for case_id, interaction in recorder.interactions.items():
        if interaction.response is not None:
            case = recorder.cases[case_id].value
            result.statuses[f"{case.method} {case.path} {interaction.response.status_code}"] += 1
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status == Status.FAILURE and check.failure_info is not None:
                case = recorder.cases[case_id].value
                failure = check.failure_info.failure
                title = f"{case.method} {case.path}: {check.name}: {failure.title}"
                result.failures.setdefault(
                    title, f"{failure.message}\n{check.failure_info.code_sample}"
                )
