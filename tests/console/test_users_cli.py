"""``adflywheel users add|list|remove|grant|set-password`` (issue #18): passwords never as
arguments, a generated one shown once, no hash in any listing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import Engine
from typer.testing import CliRunner

from adflywheel.cli.app import app
from adflywheel.store import users
from adflywheel.store.engine import make_session_factory
from adflywheel.store.users import authenticate_user, grants_of, user_by_email
from tests.console.signin import CHEAP_HASHER
from tests.factories.clock import T0
from tests.factories.helpers import new_account

Cli = Callable[..., Result]


@pytest.fixture
def cli(engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setattr(users, "_hasher", CHEAP_HASHER)  # the production cost: test_auth.py
    new_account(engine, "acme", T0)
    monkeypatch.setenv("ADFLYWHEEL_DATABASE_URL", database_url)
    monkeypatch.setenv("ADFLYWHEEL_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=stdin)

    return invoke


def signs_in(engine: Engine, email: str, password: str) -> bool:
    with make_session_factory(engine)() as session:
        return authenticate_user(session, email, password) is not None


def test_add_reads_the_password_from_stdin_and_grants_a_role(cli: Cli, engine: Engine) -> None:
    password = "a long enough secret"
    added = cli(
        "users", "add", "Ann@Example.com", "--password-stdin", "--account", "acme",
        "--role", "approver", stdin=password + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert password not in added.output
    assert signs_in(engine, "ann@example.com", password)
    with make_session_factory(engine)() as session:
        user = user_by_email(session, "ann@example.com")
        assert user is not None
        assert [(g.account_name, g.role) for g in grants_of(session, user.id)] == [
            ("acme", "approver")
        ]


def test_without_a_terminal_a_password_is_generated_and_printed_once(
    cli: Cli, engine: Engine
) -> None:
    added = cli("users", "add", "bob@example.com")
    assert added.exit_code == 0, added.output
    password = added.stdout.strip()
    assert len(password) >= 16 and "\n" not in password
    assert signs_in(engine, "bob@example.com", password)
    listing = cli("users", "list")
    assert "bob@example.com" in listing.stdout
    assert password not in listing.output and "argon2" not in listing.output


def test_grant_changes_and_removes_a_role(cli: Cli, engine: Engine) -> None:
    cli("users", "add", "cy@example.com", "--generate")
    assert cli("users", "grant", "cy@example.com", "acme", "--role", "admin").exit_code == 0
    assert "acme (admin)" in cli("users", "list").stdout
    assert cli("users", "grant", "cy@example.com", "acme", "--role", "none").exit_code == 0
    assert "acme (" not in cli("users", "list").stdout
    for wrong in (
        ("users", "grant", "cy@example.com", "acme", "--role", "owner"),
        ("users", "grant", "cy@example.com", "nowhere", "--role", "viewer"),
        ("users", "grant", "nobody@example.com", "acme", "--role", "viewer"),
    ):
        assert cli(*wrong).exit_code == 2


def test_bad_passwords_emails_and_duplicates_are_refused(cli: Cli) -> None:
    short = cli("users", "add", "dee@example.com", "--password-stdin", stdin="short\n")
    assert short.exit_code == 2 and "at least 12" in short.output
    assert cli("users", "add", "not-an-email", "--generate").exit_code == 2
    assert cli("users", "add", "dee@example.com", "--generate").exit_code == 0
    again = cli("users", "add", "DEE@example.com", "--generate")
    assert again.exit_code == 2 and "exists" in again.output
    assert cli("users", "add", "eve@example.com", "--password-stdin", stdin="").exit_code == 2


def test_remove_and_set_password(cli: Cli, engine: Engine) -> None:
    first = cli("users", "add", "fay@example.com").stdout.strip()
    new = "another long secret"
    changed = cli("users", "set-password", "fay@example.com", "--password-stdin", stdin=new)
    assert changed.exit_code == 0, changed.output
    assert not signs_in(engine, "fay@example.com", first)
    assert signs_in(engine, "fay@example.com", new)
    assert cli("users", "remove", "fay@example.com").exit_code == 0
    assert not signs_in(engine, "fay@example.com", new)
    assert cli("users", "remove", "fay@example.com").exit_code == 2


def test_there_is_no_password_option(cli: Cli) -> None:
    result = cli("users", "add", "gus@example.com", "--password", "visible in ps")
    assert result.exit_code == 2
