"""The seven learning loops: one enum and one registry that every layer reads.

Inside the code a loop has one name, the name of its core (``loops/<name>``), its service
package (``services/<name>``) and its router (``api/routers/<name>.py``). What users already rely
on — the loop numbers in settings and reports, the power table's names, the report's step names
and the HTTP paths — is declared here once, as each loop's public aliases.

The registry's order is the cycle's: after the foundation (catalogue and actuals), validate
past predictions, read new creatives, predict, reallocate, promote, share, remember.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum


class Loop(IntEnum):
    """A loop by its number (the number users set in ``ADFLYWHEEL_LOOPS`` and see in reports)."""

    MEMORY = 1
    BANDIT = 2
    CROSSLEARN = 3
    DNA = 4
    COMPOUND = 5
    MONITOR = 6
    PROMOTER = 7


@dataclass(frozen=True, slots=True)
class LoopInfo:
    loop: Loop
    power_name: str  # its name in the power table (GET /api/ml/power)
    step_name: str  # its step in the cycle's report
    api_prefix: str  # where its own routes live
    what: str


# In the cycle's order.
REGISTRY: tuple[LoopInfo, ...] = (
    LoopInfo(
        Loop.MONITOR,
        "validation",
        "validate_predictions",
        "/api/ml",
        "score past predictions, detect drift, retrain through the gate",
    ),
    LoopInfo(
        Loop.DNA,
        "creative_dna",
        "creative_dna",
        "/api/ml",
        "extract what each creative is made of and why ads win",
    ),
    LoopInfo(
        Loop.COMPOUND,
        "compound",
        "compound",
        "/api/ml/compound",
        "three CTR predictors voting with learned weights; model registry",
    ),
    LoopInfo(
        Loop.BANDIT,
        "thompson",
        "reallocate_budgets",
        "/api/ml",
        "move budget toward what works with Thompson sampling",
    ),
    LoopInfo(
        Loop.PROMOTER,
        "promoter",
        "auto_promote",
        "/api/ml",
        "promote significant winners within guardrails",
    ),
    LoopInfo(
        Loop.CROSSLEARN,
        "cross_account",
        "cross_account",
        "/api/ml/cross-learning",
        "share anonymous, noised gene patterns within a niche (opt-in)",
    ),
    LoopInfo(
        Loop.MEMORY,
        "winner_memory",
        "winner_memory",
        "/api/ml/rag",
        "remember every winner (FAISS) and find similar past winners",
    ),
)
INFO: dict[Loop, LoopInfo] = {info.loop: info for info in REGISTRY}
ALL_LOOPS: frozenset[Loop] = frozenset(Loop)


def validate_loops(numbers: Iterable[int]) -> frozenset[Loop]:
    """The loops named by these numbers; an unknown number is an error."""
    wanted = set(numbers)
    unknown = sorted(wanted - {int(loop) for loop in Loop})
    if unknown:
        raise ValueError(f"unknown loops {unknown}: loops are numbered 1 to 7")
    return frozenset(Loop(number) for number in wanted)


def parse_loops(spec: str) -> frozenset[Loop]:
    """``"all"``, ``"none"`` or a comma list such as ``"1,2,3"``; anything else is an error."""
    text = spec.strip().lower()
    if text == "all":
        return ALL_LOOPS
    if text in ("", "none"):
        return frozenset()
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError as error:
        raise ValueError(
            f"loops must be 'all', 'none' or numbers like '1,2,3', not {spec!r}"
        ) from error
    return validate_loops(numbers)
