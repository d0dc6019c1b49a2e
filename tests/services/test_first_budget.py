"""Which ad sets get a first budget free of the step rules (issue #15): those whose ads have not
delivered, or delivered only in the last ``FIRST_BUDGET_HOURS``, and appeared lately."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update

from adflywheel.platforms.base import PlatformAd, PlatformAdSet, PlatformCampaign
from adflywheel.services.bandit.edits import FIRST_BUDGET_HOURS, NEW_AD_SET_DAYS, new_ad_sets
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import make_session_factory, transaction
from adflywheel.store.models import AdSet, Variant
from tests.factories.catalog import store_hour
from tests.factories.helpers import new_account

pytestmark = pytest.mark.db
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_new_ad_sets_are_the_undelivered_and_the_just_started_after_onboarding(
    engine: Engine,
) -> None:
    account_id, _ = new_account(engine, "first-budget", NOW - timedelta(days=30))
    names = ("silent", "started", "running", "old")
    with transaction(make_session_factory(engine)) as session:
        # What the first sync finds may have run for months: never new.
        sync_catalog(
            session,
            account_id,
            [PlatformCampaign("c1", "C")],
            [PlatformAdSet("s-onboarded", "c1", "onboarded", daily_budget_minor=5_000)],
            [PlatformAd("ad-onboarded", "s-onboarded", "c1", "onboarded")],
            NOW - timedelta(days=20),
        )
        assert new_ad_sets(session, account_id, NOW - timedelta(days=20)) == set()
        sync_catalog(
            session,
            account_id,
            [PlatformCampaign("c1", "C")],
            [
                PlatformAdSet(f"s-{n}", "c1", n, daily_budget_minor=5_000)
                for n in ("onboarded", *names)
            ],
            [PlatformAd(f"ad-{n}", f"s-{n}", "c1", n) for n in ("onboarded", *names)],
            NOW - timedelta(days=2),
        )
        # "old" appeared after onboarding but before the look-back: not new, even without
        # delivery of its own here.
        session.execute(
            update(Variant)
            .where(Variant.external_id == "ad-old")
            .values(created_at=NOW - timedelta(days=NEW_AD_SET_DAYS + 1))
        )
        started = NOW - timedelta(hours=FIRST_BUDGET_HOURS - 1)
        running = NOW - timedelta(hours=FIRST_BUDGET_HOURS + 1)
        store_hour(session, account_id, started, {"ad-started": (500, 5)}, NOW)
        store_hour(session, account_id, running, {"ad-running": (500, 5)}, NOW)
        # An hour of zero impressions is not delivery.
        store_hour(session, account_id, running, {"ad-silent": (0, 0)}, NOW)
        found = new_ad_sets(session, account_id, NOW)
        by_id = dict(session.execute(select(AdSet.id, AdSet.name)).all())
    assert {by_id[i] for i in found} == {"silent", "started"}
