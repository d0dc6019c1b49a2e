"""Creative DNA's cycle step: DNA for new creatives (from their features and text; videos arrive
by upload)."""

from __future__ import annotations

from typing import Any

from adflywheel.core.loops import Loop
from adflywheel.cycle.context import CycleContext, CycleStep
from adflywheel.services.dna.service import ensure_dna
from adflywheel.store.engine import transaction


def creative_dna(ctx: CycleContext) -> dict[str, Any]:
    with transaction(ctx.deps.factory) as session:
        added = ensure_dna(session, ctx.account_id, ctx.now)
    return {"extracted": added}


STEP = CycleStep.of(Loop.DNA, creative_dna)
