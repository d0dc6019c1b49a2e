"""Plain feedback on long commands (issue #20 item 7): money in the account's currency, times on
its clock, a progress bar only on a terminal, one table of retrains instead of a line each."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from adflywheel.cli.feedback import (
    collected_warnings,
    local_time,
    money,
    progress_bar,
    render_flags,
    retrain_rows,
)
from tests.factories.cli import cli

HOURLY = str(Path(__file__).parents[1] / "fixtures" / "ads_manager_hourly.csv")


def test_money_uses_the_currencys_minor_unit() -> None:
    assert money(123_456, "EUR") == "1,234.56 EUR"
    assert money(5, "USD") == "0.05 USD"
    assert money(123_456, "JPY") == "123,456 JPY"  # no minor unit: the amount is whole yen


def test_times_are_shown_on_the_accounts_clock() -> None:
    assert local_time("2026-01-15T07:00:00+00:00", "Europe/Berlin") == "2026-01-15 08:00 CET"
    assert local_time("2026-07-15T07:00:00+00:00", "Europe/Berlin") == "2026-07-15 09:00 CEST"
    # A stored naive time is UTC.
    assert local_time("2026-07-15T23:30:00", "America/New_York") == "2026-07-15 19:30 EDT"


def test_the_progress_bar_stays_off_a_non_terminal() -> None:
    sink = io.StringIO()
    with progress_bar(Console(file=sink, force_terminal=False), "rows imported") as progress:
        task = progress.add_task("importing", total=10)
        progress.advance(task, 10)
    assert sink.getvalue() == ""


def test_retrains_are_grouped_with_their_reasons() -> None:
    short = {"status": "insufficient_data", "gate": {"reason": "the slice has 0 clicks"}}
    triggers = [
        SimpleNamespace(account_id=1, reason="accuracy", status="not_retrained", result=short),
        SimpleNamespace(account_id=2, reason="accuracy", status="not_retrained", result=short),
        *(
            SimpleNamespace(account_id=a, reason="accuracy", status="blocked_cooldown", result={})
            for a in (1, 2, 1)
        ),
        SimpleNamespace(account_id=3, reason="drift", status="failed", result={"error": "E: x"}),
    ]
    assert retrain_rows(triggers) == [
        {
            "trigger": "accuracy",
            "outcome": "blocked_cooldown",
            "why": "within the cooldown after the last retrain",
            "times": 3,
            "accounts": 2,
        },
        {
            "trigger": "accuracy",
            "outcome": "not_retrained",
            "why": "the slice has 0 clicks",
            "times": 2,
            "accounts": 2,
        },
        {"trigger": "drift", "outcome": "failed", "why": "E: x", "times": 1, "accounts": 1},
    ]


def test_warnings_are_held_for_the_summary_and_errors_still_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = logging.getLogger("adflywheel.services.monitor.service")
    with collected_warnings() as warnings:
        log.warning("%s: %s", "retrain", "retrain (accuracy) did not train")
        log.warning("%s: %s", "drift", "CTR drifted [ad a1]")
        log.error("a step failed")
    assert capsys.readouterr().err.strip() == "a step failed"
    sink = io.StringIO()
    retrains = [{"trigger": "accuracy", "outcome": "x", "why": "y", "times": 1, "accounts": 1}]
    render_flags(Console(file=sink, width=200), retrains, warnings)
    shown = sink.getvalue()
    assert "Retrains" in shown and "drift: CTR drifted [ad a1]" in shown  # not read as markup
    assert "did not train" not in shown  # the retrain line is the table's row, not repeated
    assert logging.getLogger("adflywheel").propagate is True  # restored


@pytest.mark.db
@pytest.mark.slow
def test_import_csv_keeps_stdout_json_and_summarises_on_stderr(tmp_path: Path) -> None:
    env = {"ADFLYWHEEL_DATA_DIR": str(tmp_path / "data"), "ADFLYWHEEL_DATABASE_URL": ""}
    cli("db", "upgrade", env=env)
    args = ("import-csv", HOURLY, "--account", "shop", "--create", "--timezone", "Europe/Berlin")
    done = cli(*args, env=env)
    output = json.loads(done.stdout)  # the whole of stdout is the one JSON object
    assert output["hourly"]["inserted"] == 6 and output["timezone"] == "Europe/Berlin"
    # The export's hours are on the account's clock (08:00 and 09:00 in Berlin, 07:00 and 08:00
    # UTC in the JSON's terms): the summary shows them as the advertiser wrote them.
    assert "hours 2026-01-15 08:00 CET to 2026-01-15 09:00 CET" in done.stderr
    assert "USD" in done.stderr and "6 hourly rows (6 new" in done.stderr
