"""The promotions page through the app: a candidate with its lift in words, approved through
the page (applied on the platform), rolled back; dismissing; CSRF and roles; 404 elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.api.app import create_app
from adflywheel.core.settings import Settings
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.promoter.service import run_promotion
from tests.console.test_promotions_view import Promoter, promoter  # noqa: F401
from tests.console.world_pages import add_user, csrf_of, sign_in


@dataclass
class Site:
    p: Promoter
    client: TestClient
    base: str


@pytest.fixture
def site(promoter: Promoter, engine: Engine, settings: Settings) -> Iterator[Site]:  # noqa: F811
    now = promoter.clock.now()
    add_user(promoter.factory, "ann@example.com", {promoter.account_id: "approver"}, now)
    add_user(promoter.factory, "vic@example.com", {promoter.account_id: "viewer"}, now)
    add_user(promoter.factory, "oz@example.com", {promoter.other_account_id: "admin"}, now)

    def platforms(account_id: int) -> AdPlatform:
        if account_id != promoter.account_id:
            raise PlatformError("no platform connected")
        return promoter.platform

    app = create_app(settings, clock=promoter.clock, platforms=platforms)
    with TestClient(app) as client:
        yield Site(promoter, client, f"/accounts/{promoter.account_id}")


def budgets(site: Site) -> dict[str, int | None]:
    return {a.external_id: a.daily_budget_minor for a in site.p.platform.list_ad_sets()}


def test_empty_then_approve_then_roll_back(site: Site) -> None:
    sign_in(site.client, "ann@example.com")
    empty = site.client.get(f"{site.base}/promotions")
    assert empty.status_code == 200 and "No promotions yet" in empty.text
    run_promotion(site.p.factory, site.p.platform, site.p.account_id, now=site.p.clock.now())
    page = site.client.get(f"{site.base}/promotions")
    assert page.text.count('data-testid="candidate"') == 1
    assert "+60% more clicks per impression than the control, between +" in page.text
    assert "<svg" in page.text
    action = int(page.text.split('data-testid="candidate" data-action-id="')[1].split('"')[0])
    token = csrf_of(page.text)
    before = budgets(site)
    forged = site.client.post(f"{site.base}/promotions/{action}/approve", data={})
    assert forged.status_code == 403 and budgets(site) == before
    done = site.client.post(
        f"{site.base}/promotions/{action}/approve",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "approved and applied" in done.text
    assert 'data-testid="winner"' in done.text
    after = budgets(site)
    raised = [k for k in after if (after[k] or 0) > (before[k] or 0)]
    assert len(raised) == 1
    rolled = site.client.post(
        f"{site.base}/promotions/{action}/rollback",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "rolled back" in rolled.text and budgets(site)[raised[0]] == before[raised[0]]
    again = site.client.post(
        f"{site.base}/promotions/{action}/approve",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert again.status_code == 200 and 'class="flash flash-error"' in again.text


def test_dismiss_roles_and_other_accounts(site: Site) -> None:
    run_promotion(site.p.factory, site.p.platform, site.p.account_id, now=site.p.clock.now())
    sign_in(site.client, "vic@example.com")
    page = site.client.get(f"{site.base}/promotions")
    assert "An approver decides" in page.text
    action = int(page.text.split('data-testid="candidate" data-action-id="')[1].split('"')[0])
    token = csrf_of(page.text)
    viewer = site.client.post(
        f"{site.base}/promotions/{action}/dismiss", data={"csrf_token": token}
    )
    assert viewer.status_code == 403
    site.client.cookies.clear()
    sign_in(site.client, "oz@example.com")
    assert site.client.get(f"{site.base}/promotions").status_code == 404
    token = csrf_of(site.client.get(f"/accounts/{site.p.other_account_id}/promotions").text)
    other = site.client.post(
        f"/accounts/{site.p.other_account_id}/promotions/{action}/dismiss",
        data={"csrf_token": token},
    )
    assert other.status_code == 404
    site.client.cookies.clear()
    sign_in(site.client, "ann@example.com")
    token = csrf_of(site.client.get(f"{site.base}/promotions").text)
    gone = site.client.post(
        f"{site.base}/promotions/{action}/dismiss",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "dismissed" in gone.text and 'data-testid="candidate"' not in gone.text
