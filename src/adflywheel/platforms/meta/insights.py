"""Reading ``/act_X/insights`` at ad level: windows shrink on demand, big ranges go async.

A range is read in windows of whole account-local days (``max_window_days``). When Meta answers
"reduce the amount of data" (or a sync timeout), the window is halved and the same days are asked
again; a single day that is still too big goes through an async report run, as Meta advises.
Ranges longer than ``async_after_days`` go async from the start. A window's rows are only handed
on once all its pages arrived, so a retried window never yields a row twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adflywheel.platforms.meta.client import GraphClient
from adflywheel.platforms.meta.errors import (
    MetaApiError,
    MetaReduceDataError,
    MetaReportFailedError,
)
from adflywheel.platforms.meta.parse import DEFAULT_CONVERSION_ACTIONS, HOURLY_BREAKDOWN

# On-Meta metrics only: Meta drops off-Meta actions from hourly ("Type 1") breakdowns.
HOURLY_FIELDS: tuple[str, ...] = (
    "ad_id",
    "impressions",
    "clicks",
    "inline_link_clicks",
    "spend",
    "ctr",
    "cpm",
    "actions",
    "video_play_actions",
    "video_thruplay_watched_actions",
)
DAILY_FIELDS: tuple[str, ...] = (
    *HOURLY_FIELDS,
    "frequency",
    "reach",
    "action_values",
)
DONE, FAILED = "Job Completed", frozenset({"Job Failed", "Job Skipped"})


@dataclass(frozen=True, slots=True)
class InsightsOptions:
    page_size: int = 500
    max_window_days: int = 7
    async_after_days: int = 31
    poll_interval_s: float = 5.0
    max_poll_s: float = 3600.0
    conversion_actions: tuple[str, ...] = DEFAULT_CONVERSION_ACTIONS

    def __post_init__(self) -> None:
        if self.page_size < 1 or self.max_window_days < 1 or self.async_after_days < 1:
            raise ValueError("page_size, max_window_days and async_after_days must be >= 1")
        if self.poll_interval_s <= 0 or self.max_poll_s <= 0:
            raise ValueError("poll_interval_s and max_poll_s must be positive")


@dataclass(slots=True)
class InsightsStats:
    windows: int = 0
    shrinks: int = 0
    async_runs: int = 0
    rows: int = 0


class InsightsReader:
    """Raw insight rows of one ad account (``act_<id>``), day windows in account-local dates."""

    def __init__(self, client: GraphClient, account: str, options: InsightsOptions) -> None:
        self.client, self.account, self.options = client, account, options
        self.stats = InsightsStats()

    def rows(self, since: dt.date, until: dt.date, *, hourly: bool) -> Iterator[dict[str, Any]]:
        """Rows for local days ``since..until`` (inclusive), one per ad and day (and hour)."""
        if until < since:
            return
        if (until - since).days + 1 > self.options.async_after_days:
            yield from self._counted(self._async(since, until, hourly))
            return
        window = self.options.max_window_days
        start = since
        while start <= until:
            stop = min(until, start + dt.timedelta(days=window - 1))
            try:
                batch = list(
                    self.client.paginate(
                        f"{self.account}/insights", self._params(start, stop, hourly)
                    )
                )
            except MetaReduceDataError:
                if window > 1:
                    window = max(1, window // 2)
                    self.stats.shrinks += 1
                    continue
                batch = self._async(start, stop, hourly)
            self.stats.windows += 1
            yield from self._counted(batch)
            start = stop + dt.timedelta(days=1)

    def _counted(self, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in batch:
            if not isinstance(row, dict):
                raise MetaApiError(f"{self.account}/insights: a row is not an object: {row!r}")
            self.stats.rows += 1
            yield row

    def _params(self, since: dt.date, until: dt.date, hourly: bool) -> dict[str, Any]:
        params: dict[str, Any] = {
            "level": "ad",
            "fields": ",".join(HOURLY_FIELDS if hourly else DAILY_FIELDS),
            "time_range": {"since": since.isoformat(), "until": until.isoformat()},
            "time_increment": 1,
            "limit": self.options.page_size,
        }
        if hourly:
            params["breakdowns"] = HOURLY_BREAKDOWN
        return params

    def _async(self, since: dt.date, until: dt.date, hourly: bool) -> list[dict[str, Any]]:
        """POST the query as a report run, poll it to completion, read its pages."""
        self.stats.async_runs += 1
        params = self._params(since, until, hourly)
        limit = params.pop("limit")
        created = self.client.post(f"{self.account}/insights", params)
        run_id = created.get("report_run_id")
        if not isinstance(run_id, str | int) or not str(run_id):
            raise MetaReportFailedError(f"no report_run_id in {created!r}")
        timer, waited = self.client.timer, 0.0
        while True:
            status = self.client.get(
                str(run_id), {"fields": "async_status,async_percent_completion,error_message"}
            )
            state = status.get("async_status")
            if state == DONE:
                break
            if state in FAILED:
                raise MetaReportFailedError(
                    f"report run {run_id} for {since}..{until}: {state}"
                    + (f": {status['error_message']}" if status.get("error_message") else "")
                )
            if waited >= self.options.max_poll_s:
                raise MetaReportFailedError(
                    f"report run {run_id} still {state!r} "
                    f"({status.get('async_percent_completion')}%) after {waited:.0f} s"
                )
            timer.sleep(self.options.poll_interval_s)
            waited += self.options.poll_interval_s
        return list(self.client.paginate(f"{run_id}/insights", {"limit": limit}))
