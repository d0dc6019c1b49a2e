"""The foundation of every cycle, always on: the catalogue and the actuals the loops learn from."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from adflywheel.cycle.context import CycleContext, CycleStep
from adflywheel.services.bandit.edits import record_external_edits, stored_budgets
from adflywheel.services.monitor.fetch import fetch_account_actuals
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import transaction
from adflywheel.store.models import Account

NO_PLATFORM = "no connected ad platform: actuals arrive by POST /api/ml/actuals"


def sync_catalogue(ctx: CycleContext) -> dict[str, Any]:
    platform = ctx.deps.platform
    if platform is None:
        return {"skipped": NO_PLATFORM}
    campaigns, ad_sets, ads = (
        platform.list_campaigns(),
        platform.list_ad_sets(),
        platform.list_ads(),
    )
    with transaction(ctx.deps.factory) as session:
        before = stored_budgets(session, ctx.account_id)
        counts = sync_catalog(
            session, ctx.account_id, campaigns, ad_sets, ads, ctx.now, complete=True
        )
        by_hand = record_external_edits(session, ctx.account_id, before, ctx.now, ctx.hour)
    return {
        "campaigns": counts.campaigns,
        "ad_sets": counts.ad_sets,
        "ads": counts.ads,
        "budgets_changed_by_hand": by_hand,
    }


def fetch_actuals(ctx: CycleContext) -> dict[str, Any]:
    """Re-pull the hours that may still change and upsert them (idempotent, freshness kept)."""
    deps, platform = ctx.deps, ctx.deps.platform
    if platform is None:
        return {"skipped": NO_PLATFORM}
    lookback = ctx.options.actuals_lookback_hours
    if lookback is None:
        report = fetch_account_actuals(
            deps.factory, platform, ctx.account_id, ctx.now, ctx.clock, alerts=deps.alert
        )
        return {
            "window": report.get("window"),
            **{k: v for k, v in (report.get("hourly") or {}).items()},
            "daily": report.get("daily"),
            "restatement": report.get("restatement"),
        }
    start = ctx.hour - timedelta(hours=lookback)
    rows = platform.fetch_insights(start, ctx.hour)
    with transaction(deps.factory) as session:
        result = upsert_actuals(session, ctx.account_id, rows, source=platform.name, now=ctx.now)
        account = session.get(Account, ctx.account_id)
        assert account is not None
        if rows:
            newest = max(r.hour_start for r in rows) + timedelta(hours=1)
            if account.actuals_fresh_until is None or newest > account.actuals_fresh_until:
                account.actuals_fresh_until = newest
    return {
        "received": result.received,
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
    }


STEPS = (
    CycleStep("sync_catalog", None, sync_catalogue),
    CycleStep("fetch_actuals", None, fetch_actuals),
)
