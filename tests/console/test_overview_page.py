"""The overview page through the app: what a signed-in user sees, the mode switch (admin only,
CSRF-checked, refused without its preconditions), the holdout fragment, and 404 elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.core.settings import Settings
from adflywheel.services.promoter.settings import PromoterSettings, load_settings, store_settings
from adflywheel.store.audit import AuditEvent
from adflywheel.store.engine import transaction
from tests.conftest import Snapshots
from tests.console.world_pages import (
    World,
    add_user,
    console_client,
    copied_world,
    csrf_of,
    sign_in,
)

START = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Site:
    world: World
    client: TestClient
    base: str


@pytest.fixture
def site(snapshots: Snapshots, engine: Engine, tmp_path: Path) -> Iterator[Site]:
    settings = Settings(data_dir=tmp_path / "data", database_url=str(engine.url))
    world = copied_world(snapshots, engine, settings, START)
    now = world.clock.now()
    add_user(world.factory, "ada@example.com", {world.account_id: "admin"}, now)
    add_user(world.factory, "ann@example.com", {world.account_id: "approver"}, now)
    add_user(world.factory, "new@example.com", {world.other_account_id: "admin"}, now)
    with console_client(engine, settings, world) as client:
        yield Site(world, client, f"/accounts/{world.account_id}")


def mode_of(site: Site, account_id: int | None = None) -> str:
    with site.world.factory() as session:
        return load_settings(session, account_id or site.world.account_id).guardrails.mode.value


def test_the_overview_of_a_running_account(site: Site) -> None:
    sign_in(site.client, "ann@example.com")
    page = site.client.get(f"{site.base}/overview")
    assert page.status_code == 200
    for testid in ("metric-spend", "metric-clicks_per_dollar", "activity", "alerts", "mode"):
        assert f'data-testid="{testid}"' in page.text
    assert "Recommends moving $" in page.text and "impressions of evidence" in page.text
    assert '<time datetime="' in page.text and "UTC" in page.text
    assert "Only an admin of this account can switch the mode." in page.text
    assert "No holdout is set" in page.text
    assert page.text.count("<svg") == 5


def test_an_account_without_data_says_what_to_do(site: Site) -> None:
    sign_in(site.client, "new@example.com")
    page = site.client.get(f"/accounts/{site.world.other_account_id}/overview")
    assert page.status_code == 200 and "No delivery yet" in page.text
    assert "adflywheel import-csv" in page.text
    assert site.client.get(f"{site.base}/overview").status_code == 404


def test_the_mode_switch(site: Site) -> None:
    sign_in(site.client, "ann@example.com")
    token = csrf_of(site.client.get(f"{site.base}/overview").text)
    approver = site.client.post(
        f"{site.base}/mode", data={"mode": "autopilot", "csrf_token": token}
    )
    assert approver.status_code == 403 and mode_of(site) == "recommend"
    site.client.cookies.clear()
    sign_in(site.client, "ada@example.com")
    page = site.client.get(f"{site.base}/overview")
    assert 'data-testid="mode-switch"' in page.text
    token = csrf_of(page.text)
    forged = site.client.post(f"{site.base}/mode", data={"mode": "autopilot"})
    assert forged.status_code == 403 and mode_of(site) == "recommend"
    bad = site.client.post(f"{site.base}/mode", data={"mode": "yolo", "csrf_token": token})
    assert bad.status_code == 422 and mode_of(site) == "recommend"
    done = site.client.post(
        f"{site.base}/mode", data={"mode": "autopilot", "csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303 and mode_of(site) == "autopilot"
    assert "Autopilot" in site.client.get(done.headers["location"]).text
    with site.world.factory() as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.actor == "user:ada@example.com" and event.what == "mode"
    # without an account-wide ceiling, autopilot is refused with the reason
    with transaction(site.world.factory) as session:
        current = load_settings(session, site.world.account_id)
        g = replace(current.guardrails, mode=current.guardrails.mode.__class__("recommend"))
        g = replace(g, max_account_budget_minor=None)
        store_settings(
            session,
            site.world.account_id,
            PromoterSettings(current.test, g),
            now=site.world.clock.now(),
            actor="t",
        )
    page = site.client.get(f"{site.base}/overview")
    assert 'data-testid="autopilot-missing"' in page.text
    refused = site.client.post(
        f"{site.base}/mode", data={"mode": "autopilot", "csrf_token": token}, follow_redirects=True
    )
    assert "Autopilot was not switched on" in refused.text and mode_of(site) == "recommend"


def test_the_holdout_fragment(site: Site) -> None:
    with transaction(site.world.factory) as session:
        current = load_settings(session, site.world.account_id)
        g = replace(current.guardrails, holdout_share=0.5)
        store_settings(
            session,
            site.world.account_id,
            PromoterSettings(current.test, g),
            now=site.world.clock.now(),
            actor="t",
        )
    sign_in(site.client, "ann@example.com")
    page = site.client.get(f"{site.base}/overview")
    assert f'hx-get="{site.base}/overview/holdout"' in page.text
    fragment = site.client.get(f"{site.base}/overview/holdout", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'data-testid="holdout-sentence"' in fragment.text
    full = site.client.get(f"{site.base}/overview/holdout")
    assert "<html" in full.text and 'data-testid="holdout-sentence"' in full.text
