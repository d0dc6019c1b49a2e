"""Answers of the holdout route (loop 2's proof on the account's own campaigns)."""

from __future__ import annotations

from typing import Literal

from adflywheel.api.schemas.base import Answer


class HoldoutSourcesOut(Answer):
    """Where each rate was read from: clicks from hourly actuals; conversions from daily actuals
    when the account has them (``conversion_days``: first and last account-local day), else
    hourly."""

    clicks_per_dollar: str
    conversions_per_dollar: str
    conversion_days: list[str] | None


class HoldoutArmOut(Answer):
    """One arm's totals. Money in minor units; rates per major unit (per dollar).
    ``campaigns`` counts the campaigns that spent (the ones compared)."""

    campaigns: int
    campaigns_without_spend: int
    clicks: int
    spend_minor: int
    clicks_per_dollar: float | None
    conversions: int
    conversion_spend_minor: int
    conversions_per_dollar: float | None


class HoldoutLiftOut(Answer):
    """``ratio`` = managed / held-out rate, with its confidence interval (upper ``null`` =
    unbounded). The verdict names a winner only when the interval excludes 1."""

    metric: Literal["clicks_per_dollar", "conversions_per_dollar"]
    managed: float | None
    held: float | None
    ratio: float | None
    interval: list[float | None] | None
    verdict: Literal["managed_better", "held_better", "no_detectable_difference", "insufficient"]
    reason: str | None


class HoldoutOut(Answer):
    """The holdout report of the caller's account over the last ``days`` days."""

    enabled: bool
    source: Literal["stored actuals"]
    share: float
    days: int
    since: str
    until: str
    currency: str
    managed_campaigns: list[str]
    held_out_campaigns: list[str]
    note: str
    sources: HoldoutSourcesOut | None
    managed: HoldoutArmOut | None
    held_out: HoldoutArmOut | None
    clicks_per_dollar: HoldoutLiftOut | None
    conversions_per_dollar: HoldoutLiftOut | None
    confidence: float
    method: str | None
    held_out_budget_changes: list[str]
