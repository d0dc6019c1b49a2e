"""The cycle runs page: each hour's steps with status, seconds and error; "run now" and "dry run
now" through the API's own runner (approver, CSRF). Seeded synthetic data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from adflywheel.console.views import cycles
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.store.engine import make_session_factory
from adflywheel.store.models import CycleRun
from tests.conftest import Snapshots
from tests.console.pages_b_world import World, open_world
from tests.console.signin import APPROVER, OTHER, VIEWER
from tests.factories.clock import T0


@pytest.fixture
def world(
    snapshots: Snapshots, engine: Engine, settings: Settings, clock: ManualClock
) -> Iterator[World]:
    with open_world(snapshots, engine, settings, clock) as opened:
        yield opened


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_the_view_reads_each_hours_steps(world: World, engine: Engine) -> None:
    with make_session_factory(engine)() as session:
        view = cycles.build(session, world.console.account_id)
        empty = cycles.build(session, world.console.other_account_id)
    assert view.total == 2 and [r.status for r in view.runs] == ["partial", "completed"]
    partial = view.runs[0]
    assert partial.hour == T0 - timedelta(hours=1) and partial.seconds == 42.0
    assert partial.failed_steps == 1
    steps = {s.step: s for s in partial.steps}
    assert steps["compound"].error == "RuntimeError: boom" and steps["compound"].loop == 5
    assert steps["creative_dna"].note == "install adflywheel[dna]"
    assert empty.runs == () and empty.total == 0 and empty.pages == 1


def test_the_summary_of_a_run() -> None:
    ok = cycles.summary({"hour_start": "h", "status": "completed", "loops": {}})
    assert ok.ok and ok.message == "Run of h: completed."
    failed = cycles.summary(
        {"hour_start": "h", "status": "partial", "dry_run": True,
         "loops": {"compound": {"status": "failed"}, "x": {"status": "ok"}}}
    )  # fmt: skip
    assert not failed.ok and failed.message == "Dry run of h: partial; failed: compound"
    assert "already run" in cycles.summary({"skipped": True, "hour_start": "h"}).message


def test_the_page_shows_the_hours(world: World) -> None:
    console = world.console
    console.sign_in(VIEWER)
    page = console.client.get(f"/accounts/{console.account_id}/cycles")
    assert page.status_code == 200
    assert page.text.count('data-testid="cycle-run"') == 2
    assert "RuntimeError: boom" in page.text and "(1 failed)" in page.text
    assert "Run now" not in page.text  # a viewer cannot run
    assert console.client.get(f"/accounts/{console.other_account_id}/cycles").status_code == 404


def test_an_empty_account_says_what_to_do(world: World) -> None:
    console = world.console
    console.sign_in(OTHER)
    page = console.client.get(f"/accounts/{console.other_account_id}/cycles")
    assert page.status_code == 200 and "No cycle has run yet" in page.text
    assert "Dry run now" in page.text  # OTHER is an admin of Globex


def test_an_approver_runs_a_dry_run_and_then_the_hour(world: World, engine: Engine) -> None:
    console = world.console
    console.sign_in(APPROVER)
    token = csrf_of(console.client.get(f"/accounts/{console.account_id}/cycles").text)
    url = f"/accounts/{console.account_id}/cycles/run"
    dry = console.client.post(url, data={"csrf_token": token, "dry_run": "true"})
    assert dry.status_code == 200 and "Dry run of" in dry.text
    with make_session_factory(engine)() as session:
        hour = session.scalar(
            select(CycleRun).where(
                CycleRun.account_id == console.account_id, CycleRun.hour_start == T0
            )
        )
        assert hour is None or hour.status != "completed"  # a dry run leaves the hour
    real = console.client.post(url, data={"csrf_token": token, "dry_run": "false"})
    assert real.status_code == 200 and "Run of" in real.text
    with make_session_factory(engine)() as session:
        run = session.scalar(
            select(CycleRun).where(
                CycleRun.account_id == console.account_id, CycleRun.hour_start == T0
            )
        )
        assert run is not None and run.status in ("completed", "partial")
    again = console.client.post(url, data={"csrf_token": token})
    assert "already run" in again.text


def test_running_needs_an_approver_and_the_csrf_token(world: World, engine: Engine) -> None:
    console = world.console
    url = f"/accounts/{console.account_id}/cycles/run"
    console.sign_in(VIEWER)
    token = csrf_of(console.client.get(f"/accounts/{console.account_id}/cycles").text)
    assert console.client.post(url, data={"csrf_token": token}).status_code == 403
    console.sign_in(APPROVER)
    assert console.client.post(url, data={"dry_run": "true"}).status_code == 403
    with make_session_factory(engine)() as session:
        assert session.scalar(select(CycleRun).where(CycleRun.hour_start == T0)) is None
