"""The cycle runs page: each hour's report per step (status, seconds, error) from ``cycle_runs``,
newest first, a page of hours at a time; and "run now" / "dry run now" through the same runner
the API's ``POST /api/ml/self-learning-cycle`` uses (``cycle.scheduler.on_demand_runner``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import Clock
from adflywheel.core.settings import Settings
from adflywheel.cycle.context import CycleOptions
from adflywheel.cycle.scheduler import on_demand_runner
from adflywheel.platforms.registry import PlatformResolver
from adflywheel.store.models import CycleRun

PAGE_SIZE = 24


@dataclass(frozen=True, slots=True)
class StepRow:
    step: str
    loop: int | None
    status: str  # ok | failed | off
    seconds: float | None
    error: str | None
    note: str | None  # why an off step is off, when the installation cannot run it


@dataclass(frozen=True, slots=True)
class RunRow:
    hour: datetime
    status: str  # completed | partial | running | failed
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    steps: tuple[StepRow, ...]
    failed_steps: int


@dataclass(frozen=True, slots=True)
class CyclesView:
    runs: tuple[RunRow, ...]
    total: int
    page: int
    pages: int


def _steps(report: dict[str, Any]) -> tuple[StepRow, ...]:
    out = []
    for name, outcome in (report.get("loops") or {}).items():
        if not isinstance(outcome, dict):
            continue
        seconds = outcome.get("seconds")
        out.append(
            StepRow(
                step=str(name),
                loop=outcome.get("loop"),
                status=str(outcome.get("status", "?")),
                seconds=float(seconds) if isinstance(seconds, int | float) else None,
                error=outcome.get("error") or None,
                note=outcome.get("reason") if outcome.get("status") == "off" else None,
            )
        )
    return tuple(out)


def build(session: Session, account_id: int, *, page: int = 1) -> CyclesView:
    """A page of the account's hours, newest first (only that page's reports are read)."""
    total = int(
        session.scalar(
            select(func.count()).select_from(CycleRun).where(CycleRun.account_id == account_id)
        )
        or 0
    )
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    # Only the reports' steps and dry-run flag are read: a whole report carries every
    # campaign's decisions (tens of kB an hour on a large account).
    # The page's rows are picked before any report is parsed.
    shown = (
        select(CycleRun.id)
        .where(CycleRun.account_id == account_id)
        .order_by(CycleRun.hour_start.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    rows = session.execute(
        select(
            CycleRun.hour_start,
            CycleRun.status,
            CycleRun.started_at,
            CycleRun.finished_at,
            CycleRun.report["loops"],
            CycleRun.report["dry_run"],
        )
        .where(CycleRun.id.in_(shown.scalar_subquery()))
        .order_by(CycleRun.hour_start.desc())
    ).all()
    runs = []
    for hour_start, status, started_at, finished_at, loops, dry_run in rows:
        steps = _steps({"loops": loops if isinstance(loops, dict) else {}})
        seconds = (finished_at - started_at).total_seconds() if finished_at else None
        runs.append(
            RunRow(
                hour=hour_start,
                status=status,
                dry_run=bool(dry_run),
                started_at=started_at,
                finished_at=finished_at,
                seconds=seconds,
                steps=steps,
                failed_steps=sum(1 for s in steps if s.status == "failed"),
            )
        )
    return CyclesView(tuple(runs), total, page, pages)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a "run now" did, in a sentence for the page's flash."""

    ok: bool
    message: str


def run_now(
    settings: Settings,
    factory: sessionmaker[Session],
    clock: Clock,
    platforms: PlatformResolver,
    account_id: int,
    *,
    dry_run: bool,
) -> dict[str, Any]:
    """Run the account's current hour now (the API's cycle, same runner and lock). A busy
    account raises the runner's ``BusyError`` (409) for the caller to say so."""
    runner = on_demand_runner(settings, factory, clock, platforms)
    return runner.run(account_id, CycleOptions(dry_run=dry_run))


def summary(report: dict[str, Any]) -> RunOutcome:
    """The flash after a run: its status, and the failing steps if any."""
    kind = "Dry run" if report.get("dry_run") else "Run"
    hour = report.get("hour_start", "")
    if report.get("skipped"):
        return RunOutcome(True, f"This hour ({hour}) has already run; its report is below.")
    failed = [n for n, o in (report.get("loops") or {}).items() if o.get("status") == "failed"]
    if failed:
        return RunOutcome(False, f"{kind} of {hour}: {report.get('status')}; failed: "
                          + ", ".join(failed))  # fmt: skip
    return RunOutcome(True, f"{kind} of {hour}: {report.get('status')}.")
