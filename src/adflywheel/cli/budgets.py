"""``adflywheel budgets``: the budget-change log, and a person's approve / dismiss of the
reallocation's recommendations and rollback of an applied change (issue #18)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from adflywheel.cli.actions import (
    AccountOpt,
    ActorOpt,
    JsonOpt,
    actor_of,
    echo_lines,
    factory_of,
    platform_of,
    run,
    zone_of,
)
from adflywheel.cli.common import account_id_of, fail, out

budgets_app = typer.Typer(
    help="Budget changes: the log, approve or dismiss a recommendation, roll back.",
    no_args_is_help=True,
)

ChangeId = Annotated[int, typer.Argument(min=1, help="The change's id (see `budgets log`).")]


@budgets_app.command("log")
def budgets_log(
    ctx: typer.Context,
    account: AccountOpt,
    mode: Annotated[
        str | None,
        typer.Option(help="recommended (approvable now), applied, expired, dismissed, ..."),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="thompson, promoter:promote, ...")] = None,
    campaign: Annotated[str | None, typer.Option(help="One campaign's platform id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="ISO 8601 time with a UTC offset: changes from then.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Newest changes to show.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The account's budget changes, newest first; the table shows times on the account's
    clock, the JSON in UTC with the evidence."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.services.bandit.recommendations import budget_change_log

    start = _instant(since)
    account_id = account_id_of(ctx, account)
    factory = factory_of(ctx)
    with factory() as session:
        rows = budget_change_log(
            session,
            account_id,
            now=SystemClock().now(),
            mode=mode,
            reason=reason,
            campaign_external_id=campaign,
            since=start,
            limit=limit,
        )
    if as_json:
        echo_lines(rows)
        return
    from adflywheel.cli.feedback import local_time

    zone = zone_of(factory, account_id)
    table = Table(title=f"budget changes of {account}")
    for column in ("id", "when", "campaign", "ad set", "old", "new", "mode", "reason", "who"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["change_id"]),
            local_time(r["created_at"], zone),
            r["campaign_id"],
            r["ad_set_id"],
            "" if r["old_budget_minor"] is None else str(r["old_budget_minor"]),
            str(r["new_budget_minor"]),
            r["mode"],
            r["reason"],
            r["decided_by"] or r["actor"],
        )
    out().print(table)


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise fail(f"--since {text!r} is not an ISO 8601 time") from error
    if when.tzinfo is None:
        raise fail("--since needs a UTC offset, e.g. 2026-12-06T14:00Z")
    return when


@budgets_app.command("approve")
def budgets_approve(
    ctx: typer.Context, account: AccountOpt, change_id: ChangeId, actor: ActorOpt = None
) -> None:
    """Apply one recommended change through the platform, during the hour it was made."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.services.bandit.approvals import approve_change

    account_id, factory = account_id_of(ctx, account), factory_of(ctx)
    platform = platform_of(ctx, factory, account_id)
    run(
        lambda: approve_change(
            factory, platform, account_id, change_id, now=SystemClock().now(), actor=actor_of(actor)
        )
    )


@budgets_app.command("dismiss")
def budgets_dismiss(
    ctx: typer.Context, account: AccountOpt, change_id: ChangeId, actor: ActorOpt = None
) -> None:
    """Turn a recommendation down (nothing is written; the log says who)."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.services.bandit.recommendations import dismiss_change

    account_id, factory = account_id_of(ctx, account), factory_of(ctx)
    run(
        lambda: dismiss_change(
            factory, account_id, change_id, now=SystemClock().now(), actor=actor_of(actor)
        )
    )


@budgets_app.command("rollback")
def budgets_rollback(
    ctx: typer.Context, account: AccountOpt, change_id: ChangeId, actor: ActorOpt = None
) -> None:
    """Restore the budget an applied reallocation change replaced (its own audited change)."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.services.bandit.approvals import rollback_change

    account_id, factory = account_id_of(ctx, account), factory_of(ctx)
    platform = platform_of(ctx, factory, account_id)
    run(
        lambda: rollback_change(
            factory, platform, account_id, change_id, now=SystemClock().now(), actor=actor_of(actor)
        )
    )
