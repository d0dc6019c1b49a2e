"""``adflywheel accounts``: accounts, their API keys and their own Meta tokens (``meta_tokens``)."""

from __future__ import annotations

from typing import Annotated

import typer

from adflywheel.cli import meta_tokens
from adflywheel.cli.common import account_id_of, checked_engine, err, fail, settings_of

accounts_app = typer.Typer(help="Accounts, API keys and Meta tokens.", no_args_is_help=True)
accounts_app.command("set-meta-token")(meta_tokens.set_meta_token)
accounts_app.command("clear-meta-token")(meta_tokens.clear_meta_token)
accounts_app.command("rotate-token-key")(meta_tokens.rotate_token_key)

Name = Annotated[str, typer.Argument(help="The account's name.")]


@accounts_app.command("create")
def accounts_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name no other account has.")],
    currency: Annotated[
        str, typer.Option(help="ISO 4217 code of the ad account's money (e.g. USD, EUR, JPY).")
    ] = "USD",
    timezone: Annotated[
        str, typer.Option(help="The ad account's time zone (IANA, e.g. Europe/Berlin).")
    ] = "UTC",
    category: Annotated[
        str | None,
        typer.Option(help="What the account sells (its niche for cross-account learning)."),
    ] = None,
    admin: Annotated[bool, typer.Option(help="The key may act for every account.")] = False,
) -> None:
    """Create an account and print its API key (shown this once only)."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.services.promoter.settings import new_account_settings, store_settings
    from adflywheel.store.accounts import AccountExistsError, create_account, issue_key
    from adflywheel.store.engine import make_session_factory, transaction

    engine = checked_engine(ctx)
    try:
        now = SystemClock().now()
        with transaction(make_session_factory(engine)) as session:
            account = create_account(
                session, name, now, currency=currency, timezone=timezone, category=category
            )
            initial = new_account_settings(settings_of(ctx))
            store_settings(session, account.id, initial, now=now, actor="cli:accounts create")
            key = issue_key(session, account, now, admin=admin)
    except (AccountExistsError, ValueError) as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    err.print(f"account {key.account_name!r} created (id {key.account_id}); its API key:")
    typer.echo(key.key)


@accounts_app.command("mode")
def accounts_mode(
    ctx: typer.Context,
    name: Name,
    mode: Annotated[str, typer.Argument(help="recommend (nothing written) or autopilot.")],
) -> None:
    """Switch an account between recommend and autopilot (autopilot needs an account ceiling)."""
    from adflywheel.core.domain import AccountMode

    try:
        wanted = AccountMode(mode)
    except ValueError as error:
        raise fail(f"mode must be recommend or autopilot, not {mode!r}") from error
    _change_guardrails(ctx, name, {"mode": wanted.value}, "accounts mode")


@accounts_app.command("guardrails")
def accounts_guardrails(
    ctx: typer.Context,
    name: Name,
    account_ceiling: Annotated[
        int | None, typer.Option(min=0, help="Daily ceiling over all ad sets (minor units).")
    ] = None,
    campaign_ceiling: Annotated[
        int | None, typer.Option(min=0, help="Daily ceiling per campaign (minor units).")
    ] = None,
    variant_ceiling: Annotated[
        int | None, typer.Option(min=0, help="Daily ceiling per ad set (minor units).")
    ] = None,
    approval_over: Annotated[
        int | None,
        typer.Option(min=0, help="Increases above this (minor units a day) wait for approval."),
    ] = None,
    campaign_growth: Annotated[
        bool | None,
        typer.Option(
            "--campaign-growth/--no-campaign-growth",
            help="May a promotion grow its campaign's total (else it is funded inside it)?",
        ),
    ] = None,
    kill_switch: Annotated[
        bool | None, typer.Option("--kill-switch/--no-kill-switch", help="Stop every write.")
    ] = None,
) -> None:
    """Show an account's guardrails, or change the ones given (the others are kept)."""
    changes = {
        "max_account_budget_minor": account_ceiling,
        "max_campaign_budget_minor": campaign_ceiling,
        "max_variant_budget_minor": variant_ceiling,
        "approval_threshold_minor": approval_over,
        "campaign_growth": campaign_growth,
        "kill_switch": kill_switch,
    }
    _change_guardrails(
        ctx, name, {k: v for k, v in changes.items() if v is not None}, "accounts guardrails"
    )


def _change_guardrails(
    ctx: typer.Context, name: str, changes: dict[str, object], command: str
) -> None:
    """Apply the changes to the account's stored guardrails (all or nothing), recorded in the
    settings audit under the caller's login (``audit list``), and print them."""
    import json

    from adflywheel.cli.actions import actor_of
    from adflywheel.core.clock import SystemClock
    from adflywheel.core.errors import AdflywheelError
    from adflywheel.services.account_settings import update_guardrails
    from adflywheel.services.promoter.settings import load_settings
    from adflywheel.store.engine import make_session_factory, transaction

    del command  # the audit names who, not which command
    account_id = account_id_of(ctx, name)
    with transaction(make_session_factory(checked_engine(ctx))) as session:
        if not changes:
            updated = load_settings(session, account_id)
        else:
            try:
                updated = update_guardrails(
                    session, account_id, changes, actor=actor_of(None), now=SystemClock().now()
                )
            except AdflywheelError as error:
                raise fail(str(error)) from error
    typer.echo(json.dumps(updated.guardrails.to_dict(), sort_keys=True))


@accounts_app.command("power")
def accounts_power(
    ctx: typer.Context,
    name: Name,
    loops: Annotated[
        str | None, typer.Argument(help="Loops to run: a comma list (1,2,7), all or none.")
    ] = None,
) -> None:
    """Show which loops run for an account, or choose them (recorded in the settings audit)."""
    import json

    from adflywheel.cli.actions import actor_of
    from adflywheel.core.clock import SystemClock
    from adflywheel.core.errors import AdflywheelError
    from adflywheel.core.loops import parse_loops
    from adflywheel.cycle.power import active_loops, power_report
    from adflywheel.services.account_settings import set_loops
    from adflywheel.store.engine import make_session_factory, transaction

    account_id = account_id_of(ctx, name)
    with transaction(make_session_factory(checked_engine(ctx))) as session:
        if loops is not None:
            try:
                chosen = parse_loops(loops)
                set_loops(
                    session,
                    account_id,
                    [int(loop) for loop in chosen],
                    actor=actor_of(None),
                    now=SystemClock().now(),
                )
            except (AdflywheelError, ValueError) as error:
                raise fail(str(error)) from error
        active = active_loops(session, account_id, settings_of(ctx).loops)
        report = power_report(session, account_id, active)
    typer.echo(json.dumps(report, sort_keys=True))


@accounts_app.command("list")
def accounts_list(ctx: typer.Context) -> None:
    """Every account with its mode, its keys' first characters (never a key), its Meta
    token's source, fingerprint and expiry (never the token) and each active campaign's budget
    structure (where its money is set): JSON lines."""
    import json

    from adflywheel.core.clock import SystemClock
    from adflywheel.services.monitor.token_check import token_summary
    from adflywheel.services.promoter.settings import load_settings
    from adflywheel.store.accounts import account_keys
    from adflywheel.store.engine import make_session_factory
    from adflywheel.store.models import Account
    from adflywheel.store.queries import campaign_structures

    now, warn_days = SystemClock().now(), settings_of(ctx).meta_token_warn_days
    with make_session_factory(checked_engine(ctx))() as session:
        from sqlalchemy import select

        for account in session.scalars(select(Account).order_by(Account.id)):
            keys = account_keys(session, account.id)
            line = {
                "id": account.id,
                "name": account.name,
                "currency": account.currency,
                "timezone": account.timezone,
                "mode": load_settings(session, account.id).guardrails.mode.value,
                "keys": [
                    {
                        "prefix": k.prefix,
                        "admin": k.is_admin,
                        "created_at": k.created_at.isoformat(),
                        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                    }
                    for k in keys
                ],
                "meta_token": token_summary(session, account.id, now, warn_days),
                "campaigns": [
                    {"campaign_id": campaign, "structure": structure.value}
                    for campaign, structure in campaign_structures(session, account.id).items()
                ],
            }
            typer.echo(json.dumps(line, sort_keys=True))


@accounts_app.command("rotate-key")
def accounts_rotate_key(
    ctx: typer.Context,
    name: Name,
    admin: Annotated[bool, typer.Option(help="The new key may act for every account.")] = False,
) -> None:
    """Issue a new key and revoke every other key of the account, in one transaction; the new
    key is printed this once only."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.store.accounts import issue_key, revoke_keys
    from adflywheel.store.engine import make_session_factory, transaction
    from adflywheel.store.models import Account

    account_id = account_id_of(ctx, name)
    now = SystemClock().now()
    with transaction(make_session_factory(checked_engine(ctx))) as session:
        revoked = revoke_keys(session, account_id, now)
        account = session.get(Account, account_id)
        assert account is not None
        key = issue_key(session, account, now, admin=admin)
    err.print(f"account {name!r}: {revoked} key(s) revoked; its new API key:")
    typer.echo(key.key)


@accounts_app.command("revoke-key")
def accounts_revoke_key(
    ctx: typer.Context,
    name: Name,
    prefix: Annotated[
        str | None, typer.Option(help="Revoke the active keys starting with this (see list).")
    ] = None,
    all_keys: Annotated[bool, typer.Option("--all", help="Revoke every active key.")] = False,
) -> None:
    """Revoke one key (by the first characters `accounts list` shows) or all of them."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.store.accounts import KEY_PREFIX, revoke_keys
    from adflywheel.store.engine import make_session_factory, transaction

    if all_keys == (prefix is not None):
        raise fail("give --prefix PREFIX or --all")
    if prefix is not None and (not prefix.startswith(KEY_PREFIX) or len(prefix) < 8):
        raise fail(f"a prefix starts with {KEY_PREFIX!r} and has at least 8 characters")
    account_id = account_id_of(ctx, name)
    with transaction(make_session_factory(checked_engine(ctx))) as session:
        revoked = revoke_keys(session, account_id, SystemClock().now(), prefix=prefix)
    if revoked == 0:
        raise fail(f"no active key of {name!r} matches")
    err.print(f"account {name!r}: {revoked} key(s) revoked")
