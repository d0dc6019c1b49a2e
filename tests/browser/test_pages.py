"""Every console page in a real browser over the seeded simulated account (synthetic data):
it answers 200 with no error, passes axe-core with no serious or critical violation, and is
photographed at desktop and phone width (ADFLYWHEEL_SCREENSHOTS=1; docs/screenshots/)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from adflywheel.store.engine import make_session_factory
from adflywheel.store.models import Campaign, Variant
from tests.browser.conftest import Console
from tests.browser.helpers import PHONE, assert_accessible, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.db, pytest.mark.postgres]

PAGES = ("overview", "campaigns", "campaign", "promotions", "creatives", "creative", "memory",
         "learning", "cycles")  # fmt: skip


def _path(console: Console, name: str) -> str:
    factory = make_session_factory(console.engine)
    account = console.world.account_id
    with factory() as session:
        if name == "campaign":
            campaign = session.scalars(
                select(Campaign.external_id).where(Campaign.account_id == account).limit(1)
            ).one()
            return console.account_path(f"campaigns/{campaign}")
        if name == "creative":
            ad = session.scalars(
                select(Variant.external_id).where(Variant.account_id == account).limit(1)
            ).one()
            return console.account_path(f"creatives/{ad}")
    return console.account_path(name)


@pytest.mark.parametrize("name", PAGES)
def test_the_page_renders_accessibly(signed_in: Page, console: Console, name: str) -> None:
    errors: list[str] = []
    signed_in.on("pageerror", lambda error: errors.append(str(error)))
    signed_in.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    answer = signed_in.goto(console.url(_path(console, name)))
    assert answer is not None and answer.status == 200, answer and answer.status
    signed_in.wait_for_load_state("networkidle")  # htmx fragments loaded too
    # Every asset is the package's own: nothing from another host, nothing missing.
    failed: list[str] = []
    signed_in.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    signed_in.reload()
    signed_in.wait_for_load_state("networkidle")
    assert not failed and not errors, (failed, errors)
    assert_accessible(signed_in)
    signed_in.set_viewport_size(PHONE)
    # At phone width nothing is wider than the screen (no sideways scrolling of the page).
    width = signed_in.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, width
    assert_accessible(signed_in)
    screenshot(signed_in, name)


def test_the_api_docs_load_their_assets_locally(signed_in: Page, console: Console) -> None:
    # What the browser got answers from (ReDoc asks cdn.redoc.ly for a badge whatever its
    # options say; the docs pages' CSP blocks it before it leaves, so it gets no response).
    hosts: set[str] = set()
    signed_in.on("response", lambda r: hosts.add(r.url.split("/")[2]))
    # Rendered, not just loaded: Swagger UI's title block, ReDoc's content inside its container.
    for path, selector in (("/docs", ".swagger-ui .info"), ("/redoc", "#redoc h1")):
        signed_in.goto(console.url(path))
        signed_in.wait_for_selector(selector, state="attached")
    assert hosts == {console.base_url.removeprefix("http://")}, hosts
