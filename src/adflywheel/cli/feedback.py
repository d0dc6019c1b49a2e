"""What long commands tell a person: a progress bar on standard error, money and times as the
account keeps them, and one table of what the service flagged instead of a line per alert.

Only the human output changes: JSON stays in minor units and UTC. The progress bar is drawn only
on a terminal, so CI logs and ``--json`` pipes stay clean.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from adflywheel.core.domain import minor_to_major
from adflywheel.platforms.base import minor_unit_exponent


def money(minor: int, currency: str) -> str:
    """``123456, "EUR"`` -> ``1,234.56 EUR``; ``1234, "JPY"`` -> ``1,234 JPY`` (Meta's digits)."""
    digits = minor_unit_exponent(currency)
    return f"{minor_to_major(minor, digits):,.{digits}f} {currency}"


def local_time(when: datetime | str, zone: str) -> str:
    """A UTC instant (or its ISO text) as the account's wall clock, with the zone's abbreviation."""
    instant = datetime.fromisoformat(when) if isinstance(when, str) else when
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def progress_bar(console: Console, unit: str) -> Progress:
    """A bar counting ``unit`` (e.g. "simulated hours"), drawn only where ``console`` is a
    terminal and cleared when done."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


class _Collector(logging.Handler):
    """Keeps warnings for the summary; errors still go to standard error as they happen."""

    def __init__(self, warnings: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.warnings = warnings
        self.errors = logging.StreamHandler()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors.handle(record)
        else:
            self.warnings.append(record)


@contextmanager
def collected_warnings(logger: str = "adflywheel") -> Iterator[list[logging.LogRecord]]:
    """The package's warnings during the block, held back for a summary instead of streamed."""
    target = logging.getLogger(logger)
    warnings: list[logging.LogRecord] = []
    handler, propagate = _Collector(warnings), target.propagate
    target.addHandler(handler)
    target.propagate = False
    try:
        yield warnings
    finally:
        target.removeHandler(handler)
        target.propagate = propagate


# Why a wanted retrain did not run, by the status the validation loop recorded.
_BLOCKED = {
    "blocked_cooldown": "within the cooldown after the last retrain",
    "blocked_breaker": "the circuit breaker holds the account",
    "blocked_no_retrainer": "no retrain function is configured",
}


@dataclass(slots=True)
class _Row:
    times: int = 0
    accounts: set[int] = field(default_factory=set)


def retrain_rows(triggers: Sequence[Any]) -> list[dict[str, Any]]:
    """Retrain triggers grouped by what set them off, what became of them and why: one row each,
    most frequent first. ``triggers`` have ``account_id``, ``reason``, ``status``, ``result``."""
    groups: dict[tuple[str, str, str], _Row] = defaultdict(_Row)
    for trigger in triggers:
        result = trigger.result or {}
        why = (
            (result.get("gate") or {}).get("reason")
            or result.get("reason")
            or result.get("error")
            or _BLOCKED.get(trigger.status)
            or result.get("status")
            or "-"
        )
        group = groups[(trigger.reason, trigger.status, str(why))]
        group.times += 1
        group.accounts.add(trigger.account_id)
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1].times, kv[0]))
    rows = []
    for (trigger, outcome, why), group in ordered:
        accounts = len(group.accounts)
        rows.append(
            {
                "trigger": trigger,
                "outcome": outcome,
                "why": why,
                "times": group.times,
                "accounts": accounts,
            }
        )
    return rows


def simulation_retrains(database: Path) -> list[dict[str, Any]]:
    """The retrain rows of a simulation's SQLite database (empty when it has none)."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from adflywheel.store.monitoring import RetrainTrigger

    if not database.exists():
        return []
    engine = create_engine(f"sqlite:///{database}")
    try:
        with Session(engine) as session:
            return retrain_rows(session.scalars(select(RetrainTrigger)).all())
    finally:
        engine.dispose()


def render_flags(
    console: Console, retrains: list[dict[str, Any]], warnings: Sequence[logging.LogRecord]
) -> None:
    """One table of the retrains the validation loop wanted and what became of them, and the
    other warnings counted by message (the retrain alerts are the table's rows)."""
    if retrains:
        table = Table(title="Retrains the validation loop (6) asked for, all accounts")
        for column in ("trigger", "outcome", "why", "times", "accounts"):
            table.add_column(column, justify="right" if column in ("times", "accounts") else "left")
        for row in retrains:
            cells = (row["trigger"], row["outcome"], row["why"], row["times"], row["accounts"])
            table.add_row(*(escape(str(cell)) for cell in cells))
        console.print(table)
    others: dict[str, int] = defaultdict(int)
    for record in warnings:
        message = record.getMessage()
        if not (retrains and message.startswith("retrain:")):
            others[message] += 1
    if others:
        table = Table(title="Other warnings during the run")
        table.add_column("warning")
        table.add_column("times", justify="right")
        for message, times in sorted(others.items(), key=lambda kv: -kv[1]):
            table.add_row(escape(message), str(times))
        console.print(table)
    if not retrains and not others:
        console.print("no retrain was asked for and nothing was flagged during the run")
