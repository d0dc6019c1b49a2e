"""Sign-in, sessions, CSRF and roles on the console (issue #18)."""

from __future__ import annotations

import logging
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer

from adflywheel.console.security import SESSION_COOKIE
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.users import remove_user
from tests.console.signin import (
    ADMIN,
    APPROVER,
    NOBODY,
    OTHER,
    PASSWORD,
    VIEWER,
    Console,
    console_fixture,  # noqa: F401 (the ``console`` fixture)
    login_token,
)


def cookie_attributes(response_header: str, name: str) -> dict[str, str | bool]:
    jar: SimpleCookie = SimpleCookie()
    jar.load(response_header)
    morsel = jar[name]
    return {key: morsel[key] for key in ("httponly", "samesite", "max-age", "secure", "path")}


def test_signed_out_visitors_are_sent_to_sign_in_and_back(console: Console) -> None:
    client = console.client
    home = client.get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/login")
    page = client.get(f"/accounts/{console.account_id}/probe?tab=1", follow_redirects=False)
    assert page.status_code == 303
    assert (
        page.headers["location"]
        == f"/login?next=%2Faccounts%2F{console.account_id}%2Fprobe%3Ftab%3D1"
    )
    signed = console.sign_in(VIEWER, next_path=f"/accounts/{console.account_id}/probe?tab=1")
    assert signed.headers["location"] == f"/accounts/{console.account_id}/probe?tab=1"


def test_sign_in_sets_a_hardened_cookie_and_lands_on_the_first_account(console: Console) -> None:
    response = console.sign_in(VIEWER)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    header = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith(SESSION_COOKIE)
    )
    attributes = cookie_attributes(header, SESSION_COOKIE)
    assert attributes["httponly"] is True
    assert str(attributes["samesite"]).lower() == "lax"
    assert attributes["max-age"] == str(12 * 3600)
    assert not attributes["secure"]  # plain http (the test client); see the https test
    assert PASSWORD not in header
    home = console.client.get("/", follow_redirects=False)
    assert home.headers["location"] == f"/accounts/{console.account_id}/overview"
    page = console.client.get(f"/accounts/{console.account_id}/probe")
    assert page.status_code == 200
    assert "Probe of Acme" in page.text and VIEWER in page.text
    assert PASSWORD not in page.text
    token = console.client.cookies[SESSION_COOKIE]
    assert token not in page.text


def test_the_cookie_is_secure_over_https(console: Console) -> None:
    client = TestClient(console.client.app, base_url="https://testserver")
    token = login_token(client)
    response = client.post(
        "/login",
        data={"email": VIEWER, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    header = next(v for n, v in response.headers.multi_items() if v.startswith(SESSION_COOKIE))
    assert cookie_attributes(header, SESSION_COOKIE)["secure"] is True


@pytest.mark.parametrize("email", [VIEWER, "unknown@example.com", "not an email"])
def test_a_wrong_password_or_unknown_email_gets_the_same_refusal(
    console: Console, email: str
) -> None:
    response = console.sign_in(email, password="wrong password here")
    assert response.status_code == 401
    assert "Wrong email or password." in response.text
    assert SESSION_COOKIE not in console.client.cookies
    assert "wrong password here" not in response.text


def test_repeated_failures_are_throttled_then_released(console: Console) -> None:
    for _ in range(5):
        assert console.sign_in(VIEWER, password="guess guess guess").status_code == 401
    blocked = console.sign_in(VIEWER)  # even the right password waits
    assert blocked.status_code == 429
    assert SESSION_COOKIE not in console.client.cookies
    console.clock.advance(timedelta(minutes=16))
    assert console.sign_in(VIEWER).status_code == 303


def test_the_sign_in_form_needs_its_own_token(console: Console) -> None:
    client = console.client
    login_token(client)
    for data in (
        {"email": VIEWER, "password": PASSWORD},
        {"email": VIEWER, "password": PASSWORD, "csrf_token": "forged"},
    ):
        response = client.post("/login", data=data, follow_redirects=False)
        assert response.status_code == 403
        assert SESSION_COOKIE not in client.cookies


@pytest.mark.parametrize(
    ("next_path", "landing"),
    [
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("accounts/1", "/"),
        ("/accounts/1/overview?x=1", "/accounts/1/overview?x=1"),
    ],
)
def test_next_is_only_ever_a_local_path(console: Console, next_path: str, landing: str) -> None:
    assert console.sign_in(VIEWER, next_path=next_path).headers["location"] == landing


def test_a_forged_cookie_is_refused(console: Console) -> None:
    client = console.client
    page = f"/accounts/{console.account_id}/probe"
    forged_token = URLSafeSerializer("not the secret", salt="adflywheel.console.session")
    for value in ("garbage", forged_token.dumps("any-token"), 'x."y"'):
        client.cookies.set(SESSION_COOKIE, value)
        response = client.get(page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    # Correctly signed, but a token no session has: refused too.
    client.cookies.clear()
    signer = client.app.state.console.signer  # type: ignore[attr-defined]
    client.cookies.set(SESSION_COOKIE, signer.sign("session", "no-such-session-token"))
    assert client.get(page, follow_redirects=False).status_code == 303


def test_an_expired_session_is_refused(console: Console) -> None:
    console.sign_in(VIEWER)
    page = f"/accounts/{console.account_id}/probe"
    console.clock.advance(timedelta(hours=11, minutes=59))
    assert console.client.get(page).status_code == 200
    console.clock.advance(timedelta(minutes=2))
    response = console.client.get(page, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert SESSION_COOKIE not in console.client.cookies  # the dead cookie is cleared


def test_sign_out_revokes_the_session_on_the_server(console: Console) -> None:
    console.sign_in(VIEWER)
    client = console.client
    kept = client.cookies[SESSION_COOKIE]
    csrf = console.csrf()
    refused = client.post("/logout", follow_redirects=False)
    assert refused.status_code == 403
    assert client.get(f"/accounts/{console.account_id}/probe").status_code == 200
    out = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert SESSION_COOKIE not in client.cookies
    client.cookies.set(SESSION_COOKIE, kept)  # a copy of the cookie is dead too
    assert (
        client.get(f"/accounts/{console.account_id}/probe", follow_redirects=False).status_code
        == 303
    )


def test_removing_a_user_ends_its_sessions(console: Console) -> None:
    console.sign_in(VIEWER)
    with transaction(make_session_factory(console.engine)) as session:
        remove_user(session, VIEWER)
    page = console.client.get(f"/accounts/{console.account_id}/probe", follow_redirects=False)
    assert page.status_code == 303


def test_posts_without_the_csrf_token_are_refused_and_change_nothing(console: Console) -> None:
    console.sign_in(APPROVER)
    client = console.client
    action = f"/accounts/{console.account_id}/probe/approve"
    csrf = console.csrf()
    assert client.post(action, follow_redirects=False).status_code == 403
    assert (
        client.post(action, data={"csrf_token": "wrong"}, follow_redirects=False).status_code == 403
    )
    assert (
        client.post(action, headers={"X-CSRF-Token": csrf[:-1]}, follow_redirects=False).status_code
        == 403
    )
    assert console.calls == []
    by_form = client.post(action, data={"csrf_token": csrf}, follow_redirects=False)
    assert (by_form.status_code, by_form.headers["location"]) == (
        303,
        f"/accounts/{console.account_id}/probe",
    )
    by_header = client.post(action, headers={"X-CSRF-Token": csrf}, follow_redirects=False)
    assert by_header.status_code == 303
    assert console.calls == [("approve", console.account_id, f"user:{APPROVER}")] * 2


def test_a_flash_message_is_shown_once_after_a_post(console: Console) -> None:
    console.sign_in(APPROVER)
    csrf = console.csrf()
    page = console.client.post(
        f"/accounts/{console.account_id}/probe/approve", data={"csrf_token": csrf}
    )
    assert page.status_code == 200 and "Approved it." in page.text
    again = console.client.get(f"/accounts/{console.account_id}/probe")
    assert "Approved it." not in again.text


@pytest.mark.parametrize(
    ("email", "approve", "change"),
    [(VIEWER, 403, 403), (APPROVER, 303, 403), (ADMIN, 303, 303)],
)
def test_roles_decide_what_a_user_may_do(
    console: Console, email: str, approve: int, change: int
) -> None:
    console.sign_in(email)
    csrf = {"csrf_token": console.csrf()}
    base = f"/accounts/{console.account_id}/probe"
    assert (
        console.client.post(f"{base}/approve", data=csrf, follow_redirects=False).status_code
        == approve
    )
    assert (
        console.client.post(f"{base}/settings", data=csrf, follow_redirects=False).status_code
        == change
    )
    expected = [a for a, s in (("approve", approve), ("settings", change)) if s == 303]
    assert [call[0] for call in console.calls] == expected


def test_another_accounts_pages_are_not_found(console: Console) -> None:
    console.sign_in(VIEWER)
    client = console.client
    csrf = {"csrf_token": console.csrf()}
    theirs = client.get(f"/accounts/{console.other_account_id}/probe")
    nowhere = client.get("/accounts/999999/probe")
    assert theirs.status_code == nowhere.status_code == 404
    assert theirs.text == nowhere.text
    assert "Globex" not in theirs.text
    post = client.post(f"/accounts/{console.other_account_id}/probe/approve", data=csrf)
    assert post.status_code == 404
    assert console.calls == []


def test_the_switcher_lists_only_granted_accounts(console: Console) -> None:
    console.sign_in(ADMIN)
    page = console.client.get(f"/accounts/{console.account_id}/probe").text
    assert f'href="/accounts/{console.other_account_id}/overview"' in page
    console.client.cookies.clear()
    console.sign_in(VIEWER)
    page = console.client.get(f"/accounts/{console.account_id}/probe").text
    assert f'href="/accounts/{console.other_account_id}/overview"' not in page
    assert "Globex" not in page


def test_a_user_without_accounts_is_told_what_to_do(console: Console) -> None:
    console.sign_in(NOBODY)
    page = console.client.get("/")
    assert page.status_code == 200
    assert "adflywheel users grant" in page.text


def test_htmx_requests_without_a_session_are_redirected_whole(console: Console) -> None:
    response = console.client.get(
        f"/accounts/{console.account_id}/probe", headers={"HX-Request": "true"}
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=")


def test_pages_carry_the_security_headers_and_the_htmx_csrf_header(console: Console) -> None:
    console.sign_in(OTHER)
    page = console.client.get(f"/accounts/{console.other_account_id}/probe")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert (
        "hx-headers='{&#34;X-CSRF-Token&#34;" in page.text
        or 'hx-headers=\'{"X-CSRF-Token"' in page.text
    )


def test_bad_input_on_a_console_path_is_a_page_not_json(console: Console) -> None:
    console.sign_in(VIEWER)
    response = console.client.get("/accounts/not-a-number/probe")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    api = console.client.get("/api/ml/campaigns/x/y/z")
    assert api.headers["content-type"].startswith("application/json")


def test_no_password_or_token_reaches_the_log(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        console.sign_in(VIEWER)
        console.sign_in(VIEWER, password="a wrong one, logged?")
        console.client.get(f"/accounts/{console.account_id}/probe")
    text = "\n".join(record.getMessage() for record in caplog.records)
    token = console.client.cookies.get(SESSION_COOKIE) or "absent"
    for secret in (PASSWORD, "a wrong one, logged?", token):
        assert secret not in text


def test_error_pages_keep_the_sign_out_for_a_signed_in_user(console: Console) -> None:
    console.sign_in(VIEWER)
    page = console.client.get(f"/accounts/{console.other_account_id}/probe")
    assert page.status_code == 404
    assert 'action="/logout"' in page.text


def test_signing_in_purges_dead_sessions(console: Console) -> None:
    from sqlalchemy import func, select

    from adflywheel.store.models import ConsoleSession

    console.sign_in(VIEWER)
    console.clock.advance(timedelta(hours=13))  # the first session has expired
    console.client.cookies.clear()
    console.sign_in(APPROVER)
    with make_session_factory(console.engine)() as session:
        assert session.scalar(select(func.count()).select_from(ConsoleSession)) == 1


def test_passwords_are_stored_as_memory_hard_argon2id_hashes(console: Console) -> None:
    from argon2 import Type
    from argon2.profiles import RFC_9106_LOW_MEMORY

    from adflywheel.store import users

    production = users.PasswordHasher()
    assert production.type is Type.ID
    assert production.memory_cost >= RFC_9106_LOW_MEMORY.memory_cost  # 64 MiB
    with make_session_factory(console.engine)() as session:
        user = users.user_by_email(session, VIEWER)
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash


def test_an_older_weaker_hash_is_replaced_at_sign_in(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adflywheel.store import users

    stronger = users.PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    monkeypatch.setattr(users, "_hasher", stronger)
    assert console.sign_in(VIEWER).status_code == 303
    with make_session_factory(console.engine)() as session:
        user = users.user_by_email(session, VIEWER)
        assert user is not None and "m=2048,t=2" in user.password_hash
