"""Power levels: which of the seven learning loops run for an account.

The deployment's default is ``Settings.loops``; an account may choose its own set (stored in
``account_loops``), and a caller of one cycle (the harness, a replay) may narrow it further.
Fetching the catalogue and the actuals is the foundation and always runs: without it no loop has
anything to learn from. Validation's switch is about what it learns from them (scoring, drift,
retraining). A loop whose extra is not installed (loop 4 without ``adflywheel[dna]``) is off
whatever was chosen, and says why: off, never failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.core.loops import INFO, Loop, available_loops, unavailable, validate_loops
from adflywheel.store.models import CycleRun
from adflywheel.store.power import load_loops

NOT_CHOSEN = "not among the account's loops (PUT /api/ml/power), else the deployment's default"


def active_loops(
    session: Session,
    account_id: int,
    default: Iterable[int],
    narrowed_to: frozenset[Loop] | None = None,
) -> frozenset[Loop]:
    """The account's own choice (else the default), intersected with a caller's narrowing and
    with what this installation can run."""
    chosen = load_loops(session, account_id)
    loops = validate_loops(chosen if chosen is not None else default) & available_loops()
    return loops & narrowed_to if narrowed_to is not None else loops


def off_note(loop: Loop | None) -> dict[str, str]:
    """What an off step adds to the cycle's report: the reason when the installation cannot run
    its loop (nothing when the loop was simply not chosen, as before)."""
    reason = unavailable(loop) if loop is not None else None
    return {"reason": reason} if reason is not None else {}


def power_report(session: Session, account_id: int, loops: frozenset[Loop]) -> dict[str, Any]:
    """Each loop: on or off, and what its last recorded run did (from the cycle reports)."""
    # Only the last 48 reports' steps are read (a whole report carries every campaign's
    # decisions), and the rows are picked before any report is parsed.
    newest = (
        select(CycleRun.id)
        .where(CycleRun.account_id == account_id, CycleRun.finished_at.is_not(None))
        .order_by(CycleRun.hour_start.desc())
        .limit(48)
    )
    runs = session.execute(
        select(CycleRun.hour_start, CycleRun.report["loops"])
        .where(CycleRun.id.in_(newest.scalar_subquery()))
        .order_by(CycleRun.hour_start.desc())
    ).all()
    out: list[dict[str, Any]] = []
    for loop in sorted(Loop):
        info = INFO[loop]
        last: dict[str, Any] | None = None
        for hour_start, steps in runs:
            for step, outcome in (steps or {}).items():
                if outcome.get("loop") == loop and outcome.get("status") != "off":
                    last = {
                        "hour": hour_start.isoformat(),
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
                "loop": int(loop),
                "name": info.power_name,
                "what": info.what,
                "active": loop in loops,
                "off_reason": None if loop in loops else unavailable(loop) or NOT_CHOSEN,
                "last_run": last,
            }
        )
    return {"power_level": len(loops), "loops": out}
