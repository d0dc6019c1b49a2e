"""``adflywheel accounts set-meta-token|clear-meta-token|rotate-token-key``: an account's own Meta
token, encrypted at rest (``platforms/meta/tokens.py``, docs/security.md).

The token is read from standard input (or a hidden prompt), never from the command line, where
``ps`` and shell histories would show it; it is checked with Graph (``debug_token``, and a read of
the ad account) before it is stored, and nothing prints it: listings show its fingerprint.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import Annotated

import typer

from adflywheel.cli.common import account_id_of, checked_engine, err, fail, settings_of


def _read_token() -> str:
    """One token from standard input (piped) or a prompt that does not echo it."""
    if sys.stdin.isatty():
        text = getpass.getpass("Meta access token (not shown): ")
    else:
        text = sys.stdin.read()
    token = text.strip()
    if not token or any(c.isspace() for c in token):
        raise fail("give exactly one token on standard input")
    return token


def set_meta_token(
    ctx: typer.Context,
    account: Annotated[str, typer.Option("--account", help="Account name.")],
    ad_account: Annotated[
        str | None,
        typer.Option(help="Connect the account to this ad account (act_<digits>) with the token."),
    ] = None,
) -> None:
    """Store an account's own Meta token (read from stdin), encrypted; checked with Graph first.

    The account must be connected to Meta already, or be connected here with --ad-account. Needs
    ADFLYWHEEL_TOKEN_ENCRYPTION_KEYS: a token is never stored in plain text."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.platforms.base import PlatformError
    from adflywheel.platforms.meta import MetaPlatform
    from adflywheel.platforms.meta.connection import connect_meta_account, meta_client
    from adflywheel.platforms.meta.tokens import TokenCipher, fingerprint, parse_debug_token
    from adflywheel.services.monitor.token_check import token_warning
    from adflywheel.store.engine import make_session_factory, transaction
    from adflywheel.store.fetching import meta_connection, record_token_check, store_meta_token

    settings = settings_of(ctx)
    try:
        cipher = TokenCipher(settings.token_encryption_keys)
    except PlatformError as error:
        raise fail(str(error)) from error
    account_id = account_id_of(ctx, account)
    factory = make_session_factory(checked_engine(ctx))
    with factory() as session:
        row = meta_connection(session, account_id)
        target = ad_account or (row.ad_account_id if row is not None else None)
    if target is None:
        raise fail(f"{account!r} is not connected to Meta: give --ad-account act_<digits>")
    token, clock = _read_token(), SystemClock()
    try:
        with meta_client(settings, token=token) as client:
            status = parse_debug_token(client.debug_token())
            now = clock.now()
            if not status.valid or (status.expires_at is not None and status.expires_at <= now):
                raise fail("Graph says this token is not valid (or has expired): nothing stored")
            platform = MetaPlatform(client, target)
            if ad_account is not None:
                connect_meta_account(factory, account_id, platform, clock)
            else:
                platform.account()  # the token may read the connected ad account
    except (PlatformError, ValueError) as error:
        raise fail(str(error)) from error
    with transaction(factory) as session:
        store_meta_token(session, account_id, cipher.encrypt(token), fingerprint(token))
        record_token_check(
            session, account_id, now, valid=status.valid, expires_at=status.expires_at
        )
    warning = token_warning(status, now, settings.meta_token_warn_days)
    if warning:
        err.print(f"[yellow]warning:[/yellow] this token {warning}")
    line = {
        "account": account,
        "ad_account_id": platform.path,
        "fingerprint": fingerprint(token),
        **status.as_dict(),
        "warning": warning,
    }
    typer.echo(json.dumps(line))


def clear_meta_token(
    ctx: typer.Context,
    account: Annotated[str, typer.Option("--account", help="Account name.")],
) -> None:
    """Forget an account's own Meta token: it goes back to --token-env or the deployment's."""
    from adflywheel.store.engine import make_session_factory, transaction
    from adflywheel.store.fetching import meta_connection, store_meta_token

    account_id = account_id_of(ctx, account)
    with transaction(make_session_factory(checked_engine(ctx))) as session:
        row = meta_connection(session, account_id)
        if row is None or row.token_ciphertext is None:
            raise fail(f"{account!r} has no token of its own")
        store_meta_token(session, account_id, None, None)
    err.print(f"account {account!r}: its own Meta token is deleted")


def rotate_token_key(ctx: typer.Context) -> None:
    """Re-encrypt every stored Meta token with the first key of ADFLYWHEEL_TOKEN_ENCRYPTION_KEYS
    (all or none); afterwards the other keys may be removed."""
    from adflywheel.platforms.base import PlatformError
    from adflywheel.platforms.meta.tokens import TokenCipher
    from adflywheel.store.engine import make_session_factory, transaction
    from adflywheel.store.fetching import encrypted_tokens

    try:
        cipher = TokenCipher(settings_of(ctx).token_encryption_keys)
        with transaction(make_session_factory(checked_engine(ctx))) as session:
            rows = encrypted_tokens(session)
            for row in rows:
                assert row.token_ciphertext is not None
                row.token_ciphertext = cipher.rotate(
                    row.token_ciphertext, owner=f"of account {row.account_id}"
                )
    except PlatformError as error:
        raise fail(f"{error}; nothing was re-encrypted") from error
    err.print(
        f"{len(rows)} token(s) re-encrypted with the first key; keys other than the first may "
        "now be removed"
    )
    typer.echo(json.dumps({"rotated": len(rows), "keys": cipher.key_count}))
