"""Winner memory's cycle step: new winners into the account's memory (FAISS), lapsed ones
marked."""

from __future__ import annotations

from typing import Any

from adflywheel.core.loops import Loop
from adflywheel.cycle.context import CycleContext, CycleStep
from adflywheel.services.memory.service import qualify_and_index


def winner_memory(ctx: CycleContext) -> dict[str, Any]:
    counts = qualify_and_index(
        ctx.deps.factory, ctx.deps.settings, ctx.account_id, ctx.now, redis=ctx.deps.redis
    )
    counts["indexed"] = int(counts.get("qualified", 0)) + int(counts.get("requalified", 0))
    return counts


STEP = CycleStep.of(Loop.MEMORY, winner_memory)
