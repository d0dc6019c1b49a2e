"""The campaigns pages through the app: a signed-in approver sees the list and a campaign,
approves a recommendation and sees it applied on the platform, rolls a change back; another
account's campaign is a 404, a form without its CSRF token is refused, a viewer cannot approve."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.core.settings import Settings
from adflywheel.store.models import AdSet, BudgetChange, Campaign
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
    campaign: str  # a campaign with recommendations open this hour


@pytest.fixture
def site(snapshots: Snapshots, engine: Engine, tmp_path: Path) -> Iterator[Site]:
    settings = Settings(data_dir=tmp_path / "data", database_url=str(engine.url))
    world = copied_world(snapshots, engine, settings, START)
    now = world.clock.now()
    add_user(world.factory, "ann@example.com", {world.account_id: "approver"}, now)
    add_user(world.factory, "vic@example.com", {world.account_id: "viewer"}, now)
    add_user(world.factory, "oz@example.com", {world.other_account_id: "admin"}, now)
    with world.factory() as session:
        campaign = session.scalars(
            select(Campaign.external_id)
            .join(AdSet, AdSet.campaign_id == Campaign.id)
            .join(BudgetChange, BudgetChange.ad_set_id == AdSet.id)
            .where(BudgetChange.mode == "recommended")
        ).first()
    assert campaign is not None
    with console_client(engine, settings, world) as client:
        yield Site(world, client, campaign)


def recommendations(site: Site) -> list[BudgetChange]:
    with site.world.factory() as session:
        return list(
            session.scalars(
                select(BudgetChange)
                .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
                .join(Campaign, Campaign.id == AdSet.campaign_id)
                .where(Campaign.external_id == site.campaign, BudgetChange.mode == "recommended")
                .order_by(BudgetChange.id)
            )
        )


def test_signed_out_goes_to_login_and_another_account_is_404(site: Site) -> None:
    base = f"/accounts/{site.world.account_id}"
    answer = site.client.get(f"{base}/campaigns", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    sign_in(site.client, "oz@example.com")
    assert site.client.get(f"{base}/campaigns").status_code == 404
    assert site.client.get(f"{base}/campaigns/{site.campaign}").status_code == 404
    other = f"/accounts/{site.world.other_account_id}"
    empty = site.client.get(f"{other}/campaigns")
    assert empty.status_code == 200 and "No campaigns yet" in empty.text
    # their own account, someone else's campaign id: 404 too
    assert site.client.get(f"{other}/campaigns/{site.campaign}").status_code == 404


def test_list_and_detail(site: Site) -> None:
    sign_in(site.client, "ann@example.com")
    base = f"/accounts/{site.world.account_id}"
    listing = site.client.get(f"{base}/campaigns")
    assert listing.status_code == 200
    assert listing.text.count('data-testid="campaign-row"') == 2
    assert "ABO" in listing.text and "to approve" in listing.text
    page = site.client.get(f"{base}/campaigns/{site.campaign}")
    assert page.status_code == 200
    assert page.text.count('data-testid="ad-row"') == 3
    assert page.text.count('data-testid="recommendation"') == len(recommendations(site))
    assert "likely to be the best" in page.text and "<svg" in page.text
    assert 'data-testid="change-row"' in page.text and "Roll back" in page.text


def test_approve_applies_one_change_on_the_platform(site: Site) -> None:
    sign_in(site.client, "ann@example.com")
    base = f"/accounts/{site.world.account_id}"
    page = site.client.get(f"{base}/campaigns/{site.campaign}")
    token = csrf_of(page.text)
    # a decrease needs no funding: approving it alone is within the guardrails
    change = next(
        r for r in recommendations(site) if r.new_budget_minor < (r.old_budget_minor or 0)
    )
    with site.world.factory() as session:
        external = session.get(AdSet, change.ad_set_id).external_id  # type: ignore[union-attr]
    url = f"{base}/budget-changes/{change.id}/approve"
    refused = site.client.post(url, data={}, follow_redirects=False)
    assert refused.status_code == 403
    answer = site.client.post(url, data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{base}/campaigns/{site.campaign}"
    live = {a.external_id: a.daily_budget_minor for a in site.world.platform.list_ad_sets()}
    assert live[external] == change.new_budget_minor
    with site.world.factory() as session:
        record = session.get(BudgetChange, change.id)
        assert record is not None and record.mode == "applied"
        assert record.actor == "user:ann@example.com"
    shown = site.client.get(answer.headers["location"])
    assert "approved and applied" in shown.text
    # and rolled back from the same page
    rolled = site.client.post(
        f"{base}/budget-changes/{change.id}/rollback",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert rolled.status_code == 303
    live = {a.external_id: a.daily_budget_minor for a in site.world.platform.list_ad_sets()}
    assert live[external] == change.old_budget_minor
    assert "rolled back" in site.client.get(rolled.headers["location"]).text


def test_expired_dismissed_and_refused(site: Site) -> None:
    sign_in(site.client, "vic@example.com")
    base = f"/accounts/{site.world.account_id}"
    page = site.client.get(f"{base}/campaigns/{site.campaign}")
    assert page.status_code == 200 and 'action="' + base + "/budget-changes/" not in page.text
    first, second, *_ = recommendations(site)
    token = csrf_of(page.text)  # the sign-out form's token: the session's
    viewer = site.client.post(
        f"{base}/budget-changes/{first.id}/approve", data={"csrf_token": token}
    )
    assert viewer.status_code == 403
    site.client.cookies.clear()
    sign_in(site.client, "ann@example.com")
    token = csrf_of(site.client.get(f"{base}/campaigns").text)
    dismissed = site.client.post(
        f"{base}/budget-changes/{first.id}/dismiss",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "dismissed" in dismissed.text
    site.world.clock.advance(timedelta(hours=1))
    expired = site.client.post(
        f"{base}/budget-changes/{second.id}/approve",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert expired.status_code == 200 and "expired" in expired.text
    unknown = site.client.post(f"{base}/budget-changes/999999/approve", data={"csrf_token": token})
    assert unknown.status_code == 404
    bad = site.client.post(f"{base}/budget-changes/abc/approve", data={"csrf_token": token})
    assert 400 <= bad.status_code < 500
