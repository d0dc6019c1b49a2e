"""Retries of conflicting database writes (tenacity through ``retry_conflicts``): which errors
are retried, how many times, how long apart and what is logged; no real sleeping."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from adflywheel.store.actuals import _transient
from adflywheel.store.engine import retry_conflicts

log = logging.getLogger("tests.db_retries")


class _Serialization(Exception):
    sqlstate = "40001"


class _Constraint(Exception):
    sqlstate = "23505"


def _failing(times: int, error: BaseException) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def write() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "stored"

    return calls, write


def test_a_transient_conflict_is_retried_with_growing_pauses_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    slept: list[float] = []
    calls, write = _failing(3, OperationalError("INSERT", {}, _Serialization("serialize")))
    retrying = retry_conflicts(5, _transient, what="a batch", log=log, sleep=slept.append)
    assert retrying(write) == "stored"
    assert len(calls) == 4 and len(slept) == 3
    for attempt, pause in enumerate(slept, start=1):
        assert 0.01 * attempt <= pause <= 0.05 * attempt
    lines = [r.getMessage() for r in caplog.records if r.name == log.name]
    assert lines == [f"a batch conflicted (attempt {n}): retrying" for n in (1, 2, 3)]


def test_a_conflict_outlasting_the_attempts_is_re_raised_as_it_is() -> None:
    slept: list[float] = []
    error = OperationalError("INSERT", {}, _Serialization("serialize"))
    calls, write = _failing(10, error)
    with pytest.raises(OperationalError) as caught:
        retry_conflicts(3, _transient, what="a batch", log=log, sleep=slept.append)(write)
    assert caught.value is error and len(calls) == 3 and len(slept) == 2


def test_a_permanent_error_is_not_retried() -> None:
    slept: list[float] = []
    calls, write = _failing(1, IntegrityError("INSERT", {}, _Constraint("duplicate key")))
    with pytest.raises(IntegrityError):
        retry_conflicts(5, _transient, what="a batch", log=log, sleep=slept.append)(write)
    assert len(calls) == 1 and slept == []
    calls, write = _failing(1, ValueError("not a database error"))
    with pytest.raises(ValueError):
        retry_conflicts(5, _transient, what="a batch", log=log, sleep=slept.append)(write)
    assert len(calls) == 1 and slept == []


def test_without_pause_a_retry_comes_at_once() -> None:
    slept: list[float] = []
    calls, write = _failing(1, IntegrityError("INSERT", {}, _Constraint("duplicate key")))
    retrying = retry_conflicts(
        2,
        lambda e: isinstance(e, IntegrityError),
        what="a version",
        log=log,
        pause=False,
        sleep=slept.append,
    )
    assert retrying(write) == "stored"
    assert len(calls) == 2 and slept == [0.0]
