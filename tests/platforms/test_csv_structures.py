"""Issue #16: a CSV export's budget columns tell where each campaign's money is set — campaign
budget columns (Advantage campaign budget), ad set budget columns, daily or lifetime — and the
campaigns listing of the API shows the structure per campaign."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.platforms.csv import CsvImportError, CsvPlatform
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account

HEADER = (
    "Reporting starts,Campaign ID,Ad set ID,Ad ID,Impressions,Clicks (all),Amount spent (USD),"
    "Campaign budget,Campaign budget type,Ad set budget,Ad set budget type"
)


def export(*rows: str, header: str = HEADER) -> CsvPlatform:
    return CsvPlatform("\r\n".join([header, *rows]), account_external_id="act_1")


def test_both_levels_in_one_export_each_campaign_as_its_rows_say() -> None:
    platform = export(
        '2026-01-14,c1,s1,a1,100,3,1.00,"1,200.00",Daily,'
        "Using campaign budget,Using campaign budget",
        "2026-01-14,c2,s2,a2,100,3,1.00,3000.00,Lifetime,,",
        "2026-01-14,c3,s3,a3,100,3,1.00,,,25.50,Daily",
        "2026-01-14,c3,s4,a4,100,3,1.00,-,-,400.00,Lifetime",
    )
    assert platform.budget_levels() == {"campaign", "ad_set"}
    campaigns = {c.external_id: c for c in platform.list_campaigns()}
    assert (campaigns["c1"].daily_budget_minor, campaigns["c1"].lifetime_budget_minor) == (
        120_000,
        None,
    )
    assert (campaigns["c2"].daily_budget_minor, campaigns["c2"].lifetime_budget_minor) == (
        None,
        300_000,
    )
    assert campaigns["c3"].daily_budget_minor is campaigns["c3"].lifetime_budget_minor is None
    ad_sets = {
        s.external_id: (s.daily_budget_minor, s.lifetime_budget_minor)
        for s in platform.list_ad_sets()
    }
    assert ad_sets == {
        "s1": (None, None),  # "Using campaign budget": no budget of its own
        "s2": (None, None),
        "s3": (2_550, None),
        "s4": (None, 40_000),
    }


def test_the_latest_row_gives_the_budget_and_a_bad_amount_names_its_cell() -> None:
    platform = export(
        "2026-01-14,c1,s1,a1,100,3,1.00,,,20.00,Daily",
        "2026-01-15,c1,s1,a1,100,3,1.00,,,900.00,Lifetime",  # the advertiser switched it
    )
    (ad_set,) = platform.list_ad_sets()
    assert (ad_set.daily_budget_minor, ad_set.lifetime_budget_minor) == (None, 90_000)
    with pytest.raises(CsvImportError) as error:
        export("2026-01-14,c1,s1,a1,100,3,1.00,lots,Lifetime,,")
    assert error.value.row == 2 and error.value.column == "Campaign budget"


def test_an_export_without_budget_columns_cannot_tell_the_structure() -> None:
    bare = (
        "Reporting starts,Campaign ID,Ad set ID,Ad ID,Impressions,Clicks (all),Amount spent (USD)"
    )
    platform = export("2026-01-14,c1,s1,a1,100,3,1.00", header=bare)
    assert platform.budget_levels() == frozenset()
    # An amount without its type column says nothing about daily or lifetime either.
    half = bare + ",Campaign budget"
    assert export("2026-01-14,c1,s1,a1,100,3,1.00,50.00", header=half).budget_levels() == set()


@pytest.mark.db
def test_the_campaigns_listing_shows_each_active_campaigns_structure(
    engine: Engine, client: TestClient
) -> None:
    _, key = new_account(engine, "listing", T0)
    catalog = {
        "campaigns": [
            {"id": "abo"},
            {"id": "cbo", "lifetime_budget_minor": 250_000},
            {"id": "off", "status": "PAUSED", "daily_budget_minor": 5_000},
        ],
        "ad_sets": [
            {"id": "s1", "campaign_id": "abo", "lifetime_budget_minor": 70_000},
            {"id": "s2", "campaign_id": "cbo"},
            {"id": "s3", "campaign_id": "off"},
        ],
        "ads": [
            {"id": "a1", "ad_set_id": "s1", "campaign_id": "abo"},
            {"id": "a2", "ad_set_id": "s2", "campaign_id": "cbo"},
            {"id": "a3", "ad_set_id": "s3", "campaign_id": "off"},
        ],
    }
    assert client.put("/api/ml/catalog", json=catalog, headers=auth(key)).is_success
    listed = client.get("/api/ml/campaigns", headers=auth(key)).json()["campaigns"]
    got = {
        c["id"]: (c["structure"], c["daily_budget_minor"], c["lifetime_budget_minor"])
        for c in listed
    }
    assert got == {
        "abo": ("ad_set_budgets", None, None),
        "cbo": ("campaign_budget", None, 250_000),
        "off": (None, 5_000, None),  # not active: nothing is moved in it
    }
