"""``adflywheel promotions``: the promoter's actions (loop 7): list them, approve or dismiss one
that waits for a person, roll one back (issue #18)."""

from __future__ import annotations

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
from adflywheel.cli.common import account_id_of, out

promotions_app = typer.Typer(
    help="Promotions (loop 7): list, approve, dismiss, roll back.", no_args_is_help=True
)

ActionId = Annotated[int, typer.Argument(min=1, help="The action's id (see `promotions list`).")]


@promotions_app.command("list")
def promotions_list(
    ctx: typer.Context,
    account: AccountOpt,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only those awaiting approval now.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Newest actions to show.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The promoter's actions, newest first (raises, ramp steps, funding, rollbacks)."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.services.promoter.actions import awaiting_approval, history

    account_id = account_id_of(ctx, account)
    factory = factory_of(ctx)
    with factory() as session:
        if pending:
            rows = awaiting_approval(session, account_id, now=SystemClock().now())[:limit]
        else:
            rows = history(session, account_id, limit=limit)
    if as_json:
        echo_lines(rows)
        return
    from adflywheel.cli.feedback import local_time

    zone = zone_of(factory, account_id)
    table = Table(title=f"promotions of {account}")
    for column in ("id", "when", "variant", "ad set", "old", "new", "mode", "reason", "who"):
        table.add_column(column)
    for r in rows:
        evidence = r["evidence"]
        table.add_row(
            str(r["action_id"]),
            local_time(r["created_at"], zone),
            str(r["variant"] or ""),
            r["ad_set_id"],
            "" if r["old_budget_minor"] is None else str(r["old_budget_minor"]),
            str(r["new_budget_minor"]),
            r["mode"],
            r["reason"],
            str(evidence.get("approved_by") or evidence.get("dismissed_by") or r["actor"]),
        )
    out().print(table)


def _act(ctx: typer.Context, account: str, action_id: int, actor: str | None, what: str) -> None:
    from adflywheel.core.clock import SystemClock
    from adflywheel.services.promoter import actions

    account_id, factory = account_id_of(ctx, account), factory_of(ctx)
    platform = platform_of(ctx, factory, account_id)
    on_action = {
        "approve": actions.approve,
        "rollback": actions.rollback,
        "dismiss": actions.dismiss,
    }[what]
    run(
        lambda: on_action(
            factory, platform, account_id, action_id, now=SystemClock().now(), actor=actor_of(actor)
        )
    )


@promotions_app.command("approve")
def promotions_approve(
    ctx: typer.Context, account: AccountOpt, action_id: ActionId, actor: ActorOpt = None
) -> None:
    """Apply a promotion that waits for approval, if the guardrails still allow it."""
    _act(ctx, account, action_id, actor, "approve")


@promotions_app.command("rollback")
def promotions_rollback(
    ctx: typer.Context, account: AccountOpt, action_id: ActionId, actor: ActorOpt = None
) -> None:
    """Restore the budget a promotion replaced, through the platform."""
    _act(ctx, account, action_id, actor, "rollback")


@promotions_app.command("dismiss")
def promotions_dismiss(
    ctx: typer.Context, account: AccountOpt, action_id: ActionId, actor: ActorOpt = None
) -> None:
    """Turn down a promotion that waits for approval (nothing is written)."""
    _act(ctx, account, action_id, actor, "dismiss")
