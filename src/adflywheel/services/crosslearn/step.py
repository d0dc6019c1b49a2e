"""Cross-account learning's cycle step: contribute noised, clipped gene statistics to the niche
(opted-in accounts), and once a day, with winner memory on, refresh the shared winner index."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adflywheel.core.loops import Loop
from adflywheel.cycle.context import CycleContext, CycleStep
from adflywheel.services.crosslearn.service import contribute_and_publish, privacy_from_settings
from adflywheel.services.memory.service import sync_shared_index
from adflywheel.store.crosslearn import CrossLearnSettings


def cross_account(ctx: CycleContext) -> dict[str, Any]:
    report = contribute_and_publish(
        ctx.deps.factory,
        ctx.account_id,
        ctx.now,
        privacy=privacy_from_settings(ctx.deps.settings),
    )
    out: dict[str, Any] = {
        k: report[k] for k in ("contributed", "niche", "reason", "published") if k in report
    }
    if ctx.hour.hour == 0 and Loop.MEMORY in ctx.loops and report.get("contributed"):
        out["shared_index"] = _sync_shared_memory(ctx)
    return out


def _sync_shared_memory(ctx: CycleContext) -> dict[str, Any]:
    """The shared, anonymised winner index of the opted-in accounts."""
    with ctx.deps.factory() as session:
        opted = list(
            session.scalars(
                select(CrossLearnSettings.account_id).where(CrossLearnSettings.opted_in.is_(True))
            )
        )
    result = sync_shared_index(
        ctx.deps.factory, ctx.deps.settings, opted, now=ctx.now, redis=ctx.deps.redis
    )
    return {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool))}


STEP = CycleStep.of(Loop.CROSSLEARN, cross_account)
