"""What a marketer does in the console, in a real browser (synthetic data): approve one of the
last hour's budget recommendations and see it applied on the (simulated) platform, roll it back
and see the old budget again; upload a clip and read its DNA and predicted CTR."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from adflywheel.store.engine import make_session_factory
from adflywheel.store.models import AdSet, BudgetChange, Campaign
from tests.browser.conftest import Console
from tests.browser.helpers import assert_accessible, screenshot
from tests.factories.video import synthetic_video

pytestmark = [pytest.mark.slow, pytest.mark.db, pytest.mark.postgres]


def _budget(console: Console, ad_set: str) -> int | None:
    return next(
        a.daily_budget_minor
        for a in console.world.platform.list_ad_sets()
        if a.external_id == ad_set
    )


def _a_pending_recommendation(console: Console) -> tuple[int, str, str, int | None, int]:
    """The last hour's first recommended decrease: its id, campaign, ad set, old and new
    budget."""
    factory = make_session_factory(console.engine)
    with factory() as session:
        row = session.execute(
            select(BudgetChange, AdSet.external_id, Campaign.external_id)
            .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
            .join(Campaign, Campaign.id == AdSet.campaign_id)
            .where(
                BudgetChange.account_id == console.world.account_id,
                BudgetChange.mode == "recommended",
                # a decrease: an increase waits for the decreases that fund it (docs/safety.md)
                BudgetChange.new_budget_minor < BudgetChange.old_budget_minor,
                BudgetChange.cycle_hour
                == console.world.now.replace(minute=0, second=0, microsecond=0),
            )
            .order_by(BudgetChange.id)
            .limit(1)
        ).first()
    assert row is not None, "the seed left no recommendation in its last hour"
    change, ad_set, campaign = row
    return change.id, campaign, ad_set, change.old_budget_minor, change.new_budget_minor


def _click(page: Page, console: Console, campaign: str, action: str, change_id: int) -> None:
    """Press the change's button, on the campaign's page or else on the campaigns page."""
    form = f'form[action$="/budget-changes/{change_id}/{action}"]'
    for path in (f"campaigns/{campaign}", "campaigns"):
        page.goto(console.url(console.account_path(path)))
        if page.locator(form).count():
            break
    page.locator(form).locator("button, input[type=submit]").first.click()
    page.wait_for_load_state()


def test_approve_a_recommendation_then_roll_it_back(signed_in: Page, console: Console) -> None:
    change_id, campaign, ad_set, old, new = _a_pending_recommendation(console)
    assert _budget(console, ad_set) == old

    _click(signed_in, console, campaign, "approve", change_id)
    expect(signed_in.get_by_role("status").or_(signed_in.locator(".flash")).first).to_be_visible()
    assert _budget(console, ad_set) == new  # written to the platform, that one change only
    assert_accessible(signed_in)
    screenshot(signed_in, "approved")

    _click(signed_in, console, campaign, "rollback", change_id)
    assert _budget(console, ad_set) == old
    factory = make_session_factory(console.engine)
    with factory() as session:
        actors = session.scalars(
            select(BudgetChange.actor).where(BudgetChange.created_at >= console.world.now)
        ).all()
    assert f"user:{console.email}" in actors  # the audit names the person


def test_upload_a_clip_and_see_its_dna(signed_in: Page, console: Console) -> None:
    signed_in.goto(console.url(console.account_path("creatives")))
    upload = signed_in.locator("form:has(input[type=file])")
    upload.locator("input[type=file]").set_input_files(
        files=[
            {
                "name": "new-hook.mp4",
                "mimeType": "video/mp4",
                "buffer": synthetic_video(seconds=2.0, size=(160, 120), audio_s=1.0),
            }
        ]
    )
    upload.locator("button, input[type=submit]").first.click()
    signed_in.wait_for_load_state()
    body = signed_in.locator("main").inner_text()
    assert re.search(r"predicted", body, re.I), body[:2000]
    assert re.search(r"gene|DNA", body, re.I), body[:2000]
    assert_accessible(signed_in)
    screenshot(signed_in, "upload")
