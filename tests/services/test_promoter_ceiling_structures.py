"""The account ceiling counts campaign budgets (CBO): Meta spends them as it spends ad set
budgets, so a raise elsewhere must leave room for them (issue #16)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.services.promoter.service import _account_total
from adflywheel.store.engine import make_session_factory
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account


@pytest.mark.db
def test_campaign_budgets_count_toward_the_account_total(
    engine: Engine, client: TestClient
) -> None:
    account_id, key = new_account(engine, "ceiling", T0)
    catalog = {
        "campaigns": [
            # ABO: the campaign's own figure is its ad sets' sum, not a second budget.
            {"id": "abo", "daily_budget_minor": 10_000},
            {"id": "cbo", "daily_budget_minor": 7_000},
        ],
        "ad_sets": [
            {"id": "abo-s1", "campaign_id": "abo", "daily_budget_minor": 4_000},
            {"id": "abo-s2", "campaign_id": "abo", "daily_budget_minor": 6_000},
            {"id": "cbo-s1", "campaign_id": "cbo"},
        ],
        "ads": [
            {"id": "a1", "ad_set_id": "abo-s1", "campaign_id": "abo"},
            {"id": "a2", "ad_set_id": "abo-s2", "campaign_id": "abo"},
            {"id": "a3", "ad_set_id": "cbo-s1", "campaign_id": "cbo"},
        ],
    }
    assert client.put("/api/ml/catalog", json=catalog, headers=auth(key)).is_success
    with make_session_factory(engine)() as session:
        assert _account_total(session, account_id) == 4_000 + 6_000 + 7_000
