"""Power levels: which of the seven learning loops run for an account.

The deployment's default is ``Settings.loops``; an account may choose its own set (stored in
``account_loops``), and a caller of one cycle (the harness, a replay) may narrow it further.
Fetching the catalogue and the actuals is the foundation and always runs: without it no loop has
anything to learn from. Loop 6's switch is about what it learns from them (validation, drift,
retraining).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.store.models import CycleRun
from adflywheel.store.power import load_loops


@dataclass(frozen=True, slots=True)
class Loop:
    number: int
    name: str
    what: str


LOOPS: tuple[Loop, ...] = (
    Loop(1, "winner_memory", "remember every winner (FAISS) and find similar past winners"),
    Loop(2, "thompson", "move budget toward what works with Thompson sampling"),
    Loop(3, "cross_account", "share anonymous, noised gene patterns within a niche (opt-in)"),
    Loop(4, "creative_dna", "extract what each creative is made of and why ads win"),
    Loop(5, "compound", "three CTR predictors voting with learned weights; model registry"),
    Loop(6, "validation", "score past predictions, detect drift, retrain through the gate"),
    Loop(7, "promoter", "promote significant winners within guardrails"),
)
LOOP_NUMBERS = frozenset(loop.number for loop in LOOPS)


def parse_loops(spec: str) -> frozenset[int]:
    """``"all"``, ``"none"`` or a comma list such as ``"1,2,3"``; anything else is an error."""
    text = spec.strip().lower()
    if text == "all":
        return LOOP_NUMBERS
    if text in ("", "none"):
        return frozenset()
    try:
        numbers = frozenset(int(part) for part in text.split(","))
    except ValueError as error:
        raise ValueError(
            f"loops must be 'all', 'none' or numbers like '1,2,3', not {spec!r}"
        ) from (error)
    validate_loops(numbers)
    return numbers


def validate_loops(numbers: Iterable[int]) -> None:
    unknown = sorted(set(numbers) - LOOP_NUMBERS)
    if unknown:
        raise ValueError(f"unknown loops {unknown}: loops are numbered 1 to 7")


def active_loops(
    session: Session,
    account_id: int,
    default: Iterable[int],
    narrowed_to: frozenset[int] | None = None,
) -> frozenset[int]:
    """The account's own choice (else the default), intersected with a caller's narrowing."""
    chosen = load_loops(session, account_id)
    loops = frozenset(chosen if chosen is not None else default)
    return loops & narrowed_to if narrowed_to is not None else loops


def power_report(session: Session, account_id: int, loops: frozenset[int]) -> dict[str, Any]:
    """Each loop: on or off, and what its last recorded run did (from the cycle reports)."""
    runs = session.scalars(
        select(CycleRun)
        .where(CycleRun.account_id == account_id, CycleRun.finished_at.is_not(None))
        .order_by(CycleRun.hour_start.desc())
        .limit(48)
    ).all()
    out: list[dict[str, Any]] = []
    for loop in LOOPS:
        last: dict[str, Any] | None = None
        for run in runs:
            for step, outcome in (run.report.get("loops") or {}).items():
                if outcome.get("loop") == loop.number and outcome.get("status") != "off":
                    last = {
                        "hour": run.hour_start.isoformat(),
                        "step": step,
                        "status": outcome.get("status"),
                        "seconds": outcome.get("seconds"),
                        "error": outcome.get("error"),
                    }
                    break
            if last is not None:
                break
        out.append(
            {
                "loop": loop.number,
                "name": loop.name,
                "what": loop.what,
                "active": loop.number in loops,
                "last_run": last,
            }
        )
    return {"power_level": len(loops), "loops": out}
