"""``adflywheel users``: the people who sign in to the console, and their roles per account.

A password is never a command-line argument (it would show in ``ps`` and the shell's history):
it is read from standard input with ``--password-stdin``, typed at a hidden prompt, or, when
neither is possible, generated and printed once on standard output.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from adflywheel.cli.common import account_id_of, checked_engine, err, fail, out

if TYPE_CHECKING:
    from adflywheel.store.users import Role

users_app = typer.Typer(help="Console users and their roles per account.", no_args_is_help=True)

Email = Annotated[str, typer.Argument(help="The user's email (how they sign in).")]
ROLE_HELP = "viewer (looks), approver (also approves, rolls back, runs), admin (also settings)."


def _password(password_stdin: bool, generate: bool) -> tuple[str, bool]:
    """The new password and whether it was generated (then it must be shown once)."""
    from adflywheel.store.users import generate_password

    if password_stdin and generate:
        raise fail("choose one of --password-stdin and --generate")
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise fail("--password-stdin read no password")
        return line, False
    if generate or not sys.stdin.isatty():
        return generate_password(), True
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return str(password), False


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first stdin line.")
]
Generate = Annotated[
    bool,
    typer.Option(
        "--generate",
        help="Generate a password and print it once (the default without a terminal).",
    ),
]


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    email: Email,
    password_stdin: PasswordStdin = False,
    generate: Generate = False,
    account: Annotated[
        str | None, typer.Option(help="Grant a role on this account (its name) at once.")
    ] = None,
    role: Annotated[str, typer.Option(help=ROLE_HELP)] = "viewer",
) -> None:
    """Add a user. The password is read, prompted for (hidden) or generated: never an argument."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.core.errors import AdflywheelError
    from adflywheel.store.engine import make_session_factory, transaction
    from adflywheel.store.users import create_user, grant

    chosen_role = _role(role)
    account_id = account_id_of(ctx, account) if account is not None else None
    password, generated = _password(password_stdin, generate)
    engine = checked_engine(ctx)
    now = SystemClock().now()
    try:
        with transaction(make_session_factory(engine)) as session:
            user = create_user(session, email, password, now)
            if account_id is not None and chosen_role is not None:
                grant(session, user.email, account_id, chosen_role, now)
            address = user.email
    except (AdflywheelError, ValueError) as error:
        raise fail(str(error)) from error
    granted = f", {chosen_role} on {account!r}" if account_id is not None else ""
    err.print(f"user {address!r} added{granted}")
    if generated:
        err.print("its password (shown this once only):")
        typer.echo(password)


def _role(text: str) -> Role | None:
    from adflywheel.store.users import Role

    if text == "none":
        return None
    try:
        return Role(text)
    except ValueError as error:
        raise fail(f"unknown role {text!r}: viewer, approver, admin (or none)") from error


@users_app.command("grant")
def users_grant(
    ctx: typer.Context,
    email: Email,
    account: Annotated[str, typer.Argument(help="The account's name.")],
    role: Annotated[str, typer.Option(help=ROLE_HELP + " 'none' takes access away.")],
) -> None:
    """Give a user a role on an account (replacing the one it had), or take it away."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.core.errors import AdflywheelError
    from adflywheel.store.engine import make_session_factory, transaction
    from adflywheel.store.users import grant

    chosen = _role(role)
    account_id = account_id_of(ctx, account)
    try:
        with transaction(make_session_factory(checked_engine(ctx))) as session:
            grant(session, email, account_id, chosen, SystemClock().now())
    except AdflywheelError as error:
        raise fail(str(error)) from error
    what = f"is {chosen} on" if chosen is not None else "has no access to"
    err.print(f"{email.strip().lower()} {what} {account!r}")


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """Every user with its accounts and roles (never a password or hash)."""
    from rich.table import Table

    from adflywheel.store.engine import make_session_factory
    from adflywheel.store.users import list_users

    with make_session_factory(checked_engine(ctx))() as session:
        users = list_users(session)
    if not users:
        err.print("no users yet: add one with 'adflywheel users add <email>'")
        return
    table = Table("email", "accounts (role)", "created (UTC)", "disabled")
    for user in users:
        grants = ", ".join(f"{g.account_name} ({g.role})" for g in user.grants) or "—"
        disabled = f"{user.disabled_at:%Y-%m-%d %H:%M}" if user.disabled_at else ""
        table.add_row(user.email, grants, f"{user.created_at:%Y-%m-%d %H:%M}", disabled)
    out().print(table)


@users_app.command("remove")
def users_remove(ctx: typer.Context, email: Email) -> None:
    """Delete a user, its roles and its sessions (signed-in browsers are out at once). The
    audit log keeps naming it as ``user:<email>``."""
    from adflywheel.core.errors import AdflywheelError
    from adflywheel.store.engine import make_session_factory, transaction
    from adflywheel.store.users import remove_user

    try:
        with transaction(make_session_factory(checked_engine(ctx))) as session:
            remove_user(session, email)
    except AdflywheelError as error:
        raise fail(str(error)) from error
    err.print(f"user {email.strip().lower()!r} removed")


@users_app.command("set-password")
def users_set_password(
    ctx: typer.Context,
    email: Email,
    password_stdin: PasswordStdin = False,
    generate: Generate = False,
) -> None:
    """Replace a user's password; its sessions end."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.core.errors import AdflywheelError
    from adflywheel.store.engine import make_session_factory, transaction
    from adflywheel.store.users import set_password

    password, generated = _password(password_stdin, generate)
    try:
        with transaction(make_session_factory(checked_engine(ctx))) as session:
            set_password(session, email, password, SystemClock().now())
    except AdflywheelError as error:
        raise fail(str(error)) from error
    err.print(f"password of {email.strip().lower()!r} replaced; its sessions ended")
    if generated:
        err.print("the new password (shown this once only):")
        typer.echo(password)
