"""The learning page: accuracy, calibration and NE per predictor with retrains and alarms on the
same time axis, the registry with a refused challenger, and the power switches (admin, CSRF,
recorded under the user's name). Seeded synthetic data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from adflywheel.console.pages.learning import domain, marks_strip
from adflywheel.console.views import learning
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.services.account_settings import audit_log
from adflywheel.store.engine import make_session_factory
from adflywheel.store.power import load_loops
from tests.conftest import Snapshots
from tests.console.pages_b_world import World, open_world
from tests.console.signin import ADMIN, APPROVER, OTHER, VIEWER
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


def test_the_view_has_series_marks_registry_and_switches(world: World, engine: Engine) -> None:
    with make_session_factory(engine)() as session:
        view = learning.build(session, world.console.account_id, T0, (1, 2, 5, 6, 7), days=14)
        short = learning.build(session, world.console.account_id, T0, (2,), days=1)
        empty = learning.build(session, world.console.other_account_id, T0, (2,))
    assert [s.model for s in view.series] == ["ensemble", "xgboost"]
    ensemble = view.series[0]
    assert len(ensemble.points) == 24 and ensemble.points[0].at < ensemble.points[-1].at
    assert ensemble.latest.accuracy == pytest.approx(0.8 + 23 / 200)
    assert {m.kind for m in view.marks} == {"retrain", "drift"}
    assert [d.action for d in view.decisions] == ["refuse"]
    assert "did not beat" in view.decisions[0].reason
    assert len(view.models) == 1 and not view.models[0].champion
    assert ("log_loss", 0.091) in view.models[0].scores
    assert [s.loop for s in view.switches] == [1, 2, 3, 4, 5, 6, 7]
    assert {s.loop for s in view.switches if s.active} <= {1, 2, 5, 6, 7}
    assert len(short.series[0].points) == 24 and short.since == T0 - timedelta(days=1)
    assert empty.series == () and empty.marks == () and empty.models == ()


def test_the_marks_share_the_accuracy_charts_axis(world: World, engine: Engine) -> None:
    with make_session_factory(engine)() as session:
        view = learning.build(session, world.console.account_id, T0, (2,))
    span = domain(view.series)
    assert span is not None
    strip = str(marks_strip(view.marks, span))
    assert 'role="img"' in strip and "1 retrain" in strip and "1 drift" in strip
    assert strip.count("<line") == 3  # the axis and the two marks inside the span
    assert str(marks_strip(view.marks, None)) == ""


def test_the_page_for_a_viewer(world: World) -> None:
    console = world.console
    console.sign_in(VIEWER)
    page = console.client.get(f"/accounts/{console.account_id}/learning")
    assert page.status_code == 200
    html = page.text
    assert 'data-testid="learning-headline"' in html and 'data-testid="learning-marks"' in html
    assert html.count("<svg") >= 4 and "refused" in html and "did not beat" in html
    assert (
        'data-testid="power-switches"' in html
        and 'action="/accounts/' not in html.split('data-testid="power-switches"')[1]
    )  # a viewer sees the switches, not the form
    assert "<time datetime=" in html and 'title="' in html  # local time, UTC on hover
    other = console.client.get(f"/accounts/{console.other_account_id}/learning")
    assert other.status_code == 404


def test_an_empty_account_says_what_to_do(world: World) -> None:
    console = world.console
    console.sign_in(OTHER)
    page = console.client.get(f"/accounts/{console.other_account_id}/learning")
    assert page.status_code == 200 and "No scored predictions yet" in page.text
    assert "No model trained yet" in page.text
    assert console.client.get(f"/accounts/{console.account_id}/learning").status_code == 404


def test_an_admin_turns_loops_off_and_on(world: World, engine: Engine) -> None:
    console = world.console
    console.sign_in(ADMIN)
    url = f"/accounts/{console.account_id}/learning"
    token = csrf_of(console.client.get(url).text)
    got = console.client.post(
        f"/accounts/{console.account_id}/power",
        data={"csrf_token": token, "loop": ["2", "6"]},
        follow_redirects=False,
    )
    assert got.status_code == 303 and got.headers["location"].endswith("/learning#power")
    with make_session_factory(engine)() as session:
        assert load_loops(session, console.account_id) == [2, 6]
        audit = audit_log(session, console.account_id, what="power")
    assert [(e["actor"], e["new"]) for e in audit] == [(f"user:{ADMIN}", {"loops": [2, 6]})]
    page = console.client.get(url)
    assert "Loops on: 2, 6." in page.text
    assert re.search(r'id="loop-2" name="loop" value="2" checked', page.text)
    assert not re.search(r'id="loop-5" name="loop" value="5" checked', page.text)
    bad = console.client.post(
        f"/accounts/{console.account_id}/power", data={"csrf_token": token, "loop": ["9"]}
    )
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]


def test_power_needs_an_admin_and_the_csrf_token(world: World, engine: Engine) -> None:
    console = world.console
    console.sign_in(APPROVER)
    token = csrf_of(console.client.get(f"/accounts/{console.account_id}/learning").text)
    url = f"/accounts/{console.account_id}/power"
    assert console.client.post(url, data={"csrf_token": token, "loop": "2"}).status_code == 403
    console.sign_in(ADMIN)
    assert console.client.post(url, data={"loop": "2"}).status_code == 403
    assert console.client.post(url, data={"csrf_token": "x", "loop": "2"}).status_code == 403
    with make_session_factory(engine)() as session:
        assert load_loops(session, console.account_id) is None  # nothing changed
