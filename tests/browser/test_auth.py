"""Signing in and out in a real browser, and what the console refuses: another account's pages
(404, as an unknown account), a forged or expired session cookie, forms without the CSRF token.
Synthetic data (the simulated market)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import text

from adflywheel.console.security import SESSION_COOKIE
from tests.browser.conftest import Console
from tests.browser.helpers import assert_accessible, screenshot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.db, pytest.mark.postgres]

PAGES = ("overview", "campaigns", "promotions", "creatives", "memory", "learning", "cycles")


def _session_cookie(page: Page) -> dict[str, object]:
    cookies = [c for c in page.context.cookies() if c.get("name") == SESSION_COOKIE]
    assert len(cookies) == 1, page.context.cookies()
    return dict(cookies[0])


def test_sign_in_lands_on_the_overview_and_sign_out_ends_the_session(
    page: Page, console: Console
) -> None:
    overview = console.url(console.account_path("overview"))
    page.goto(overview)
    expect(page).to_have_url(re.compile(r"/login\?next="))  # not signed in: to the form
    assert_accessible(page)
    screenshot(page, "login")
    sign_in(page, console.base_url, console.email, console.password)
    page.goto(console.url("/"))
    expect(page).to_have_url(overview)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert console.world.account_name in page.content()
    cookie = _session_cookie(page)
    assert cookie["httpOnly"] is True and cookie["sameSite"] in ("Lax", "Strict")
    assert page.evaluate("document.cookie") == ""  # the session cookie is out of scripts' reach
    assert console.password not in page.content()

    page.get_by_role("button", name=re.compile("sign out", re.I)).click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(overview)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    # The old cookie, put back by hand, is refused: signing out revoked the session server-side.
    page.context.add_cookies([cookie])  # type: ignore[list-item]
    page.goto(overview)
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_a_wrong_password_is_refused_without_saying_which_part(
    page: Page, console: Console
) -> None:
    sign_in(page, console.base_url, console.email, "not the password at all")
    expect(page).to_have_url(re.compile(r"/login"))
    assert not [c for c in page.context.cookies() if c.get("name") == SESSION_COOKIE]
    assert "not the password at all" not in page.content()


def test_another_accounts_user_gets_404_on_every_page(
    page: Page, browser: Browser, console: Console
) -> None:
    sign_in(page, console.base_url, console.other_email, console.password)
    for name in PAGES:
        answer = page.goto(console.url(console.account_path(name)))
        assert answer is not None and answer.status == 404, name
        assert console.world.account_name not in page.content()
    # The same pages answer their own user (the 404s above are not a missing page).
    owner = browser.new_context()
    try:
        mine = owner.new_page()
        sign_in(mine, console.base_url, console.email, console.password)
        for name in PAGES:
            answer = mine.goto(console.url(console.account_path(name)))
            assert answer is not None and answer.status == 200, name
    finally:
        owner.close()


def test_an_unknown_account_is_the_same_404(signed_in: Page, console: Console) -> None:
    theirs = signed_in.goto(console.url(console.account_path("overview", 999_999)))
    other = signed_in.goto(
        console.url(console.account_path("overview", console.world.other_account_id))
    )
    assert theirs is not None and other is not None
    assert theirs.status == other.status == 404


def test_a_forged_cookie_is_refused(signed_in: Page, console: Console) -> None:
    cookie = _session_cookie(signed_in)
    value = str(cookie["value"])
    for forged in (value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"), "x" * 40):
        signed_in.context.clear_cookies()
        signed_in.context.add_cookies([{**cookie, "value": forged}])  # type: ignore[list-item]
        signed_in.goto(console.url(console.account_path("overview")))
        expect(signed_in).to_have_url(re.compile(r"/login\?next="))


def test_an_expired_session_is_refused(signed_in: Page, console: Console) -> None:
    overview = console.url(console.account_path("overview"))
    signed_in.goto(overview)
    expect(signed_in).to_have_url(overview)
    with console.engine.begin() as connection:  # the session's lifetime ran out
        connection.execute(
            text(
                "UPDATE console_sessions SET expires_at = :past WHERE user_id = "
                "(SELECT id FROM users WHERE email = :email) AND revoked_at IS NULL"
            ),
            {"past": console.world.now.replace(year=console.world.now.year - 1),
             "email": console.email},
        )  # fmt: skip
    signed_in.goto(overview)
    expect(signed_in).to_have_url(re.compile(r"/login\?next="))


def test_forms_without_the_csrf_token_are_refused(signed_in: Page, console: Console) -> None:
    """The session cookie alone never acts: every console POST needs the form's token."""
    account = f"/accounts/{console.world.account_id}"
    posts = (
        f"{account}/cycles/run",
        f"{account}/mode",
        f"{account}/power",
        f"{account}/budget-changes/1/dismiss",
        "/logout",
    )
    request = signed_in.context.request  # shares the signed-in context's cookies
    for path in posts:
        for form in ({}, {"csrf_token": "not-the-token"}):
            answer = request.post(console.url(path), form=form, max_redirects=0)
            assert answer.status == 403, (path, form, answer.status)
    # Still signed in: the refused sign-out did not sign out.
    signed_in.goto(console.url(console.account_path("overview")))
    expect(signed_in).to_have_url(console.url(console.account_path("overview")))
