"""The cycle's steps in the order it runs them: the foundation, then each loop's step (declared
in ``services/<loop>/step.py``) in the loop registry's order.

Every step takes the ``CycleContext`` and returns a small JSON-able dict for the report. Steps do
their own transactions, so a failing step leaves nothing half-written behind it.
"""

from __future__ import annotations

from adflywheel.core.loops import REGISTRY
from adflywheel.cycle import foundation
from adflywheel.cycle.context import CycleStep
from adflywheel.services.bandit import step as bandit
from adflywheel.services.compound import step as compound
from adflywheel.services.crosslearn import step as crosslearn
from adflywheel.services.dna import step as dna
from adflywheel.services.memory import step as memory
from adflywheel.services.monitor import step as monitor
from adflywheel.services.promoter import step as promoter

_BY_LOOP = {
    s.loop: s
    for s in (
        bandit.STEP,
        compound.STEP,
        crosslearn.STEP,
        dna.STEP,
        memory.STEP,
        monitor.STEP,
        promoter.STEP,
    )
}
assert set(_BY_LOOP) == {info.loop for info in REGISTRY}, "every loop declares one step"

STEPS: tuple[CycleStep, ...] = (
    *foundation.STEPS,
    *(_BY_LOOP[info.loop] for info in REGISTRY),
)
