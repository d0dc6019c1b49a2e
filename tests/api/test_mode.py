"""The account's mode over HTTP: recommend by default, autopilot only with a ceiling (409)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from adflywheel.core.clock import ManualClock
from tests.factories.helpers import auth, new_account

pytestmark = pytest.mark.db
MODE, GUARDRAILS = "/api/ml/accounts/me/mode", "/api/ml/accounts/me/guardrails"


def test_a_new_account_recommends_and_autopilot_needs_a_ceiling(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "acme", clock.now(), guardrails=None)
    h = auth(key)
    got = client.get(MODE, headers=h)
    assert got.status_code == 200
    assert got.json() == {
        "mode": "recommend",
        "autopilot_ready": False,
        "autopilot_missing": got.json()["autopilot_missing"],
    }
    assert "max_account_budget_minor" in got.json()["autopilot_missing"]
    refused = client.put(MODE, json={"mode": "autopilot"}, headers=h)
    assert refused.status_code == 409
    assert "account-wide daily ceiling" in refused.json()["detail"]
    assert client.get(MODE, headers=h).json()["mode"] == "recommend"  # nothing changed

    ceiling = client.put(GUARDRAILS, json={"max_account_budget_minor": 100_000}, headers=h)
    assert ceiling.status_code == 200 and ceiling.json()["mode"] == "recommend"
    on = client.put(MODE, json={"mode": "autopilot"}, headers=h)
    assert on.status_code == 200 and on.json()["mode"] == "autopilot"
    # A PUT of the guardrails keeps the mode, and cannot take autopilot's ceiling away.
    kept = client.put(GUARDRAILS, json={"max_account_budget_minor": 90_000}, headers=h)
    assert kept.status_code == 200 and kept.json()["mode"] == "autopilot"
    removed = client.put(GUARDRAILS, json={}, headers=h)
    assert removed.status_code == 409
    assert client.get(GUARDRAILS, headers=h).json()["max_account_budget_minor"] == 90_000
    off = client.put(MODE, json={"mode": "recommend"}, headers=h)
    assert off.status_code == 200 and off.json()["mode"] == "recommend"


@pytest.mark.parametrize(
    "body", [{}, {"mode": "yolo"}, {"mode": None}, {"mode": "autopilot", "extra": 1}, []]
)
def test_a_bad_mode_is_a_422_and_changes_nothing(
    client: TestClient, engine: Engine, clock: ManualClock, body: object
) -> None:
    _, key = new_account(engine, "acme", clock.now(), guardrails=None)
    assert client.put(MODE, json=body, headers=auth(key)).status_code == 422
    assert client.get(MODE, headers=auth(key)).json()["mode"] == "recommend"


def test_guardrails_carry_the_safety_fields_and_validate_them(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    _, key = new_account(engine, "acme", clock.now(), guardrails=None)
    h = auth(key)
    defaults = client.get(GUARDRAILS, headers=h).json()
    assert defaults["max_edit_step"] == 0.2 and defaults["edit_dead_band"] == 0.05
    assert defaults["campaign_growth"] is False and defaults["approval_threshold_minor"] == 5_000
    window = {"start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00Z", "campaign": "c1"}
    ok = client.put(
        GUARDRAILS,
        json={"freeze_windows": [window], "excluded_campaigns": ["c2"], "holdout_share": 0.2},
        headers=h,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["freeze_windows"][0]["campaign"] == "c1"
    for bad in (
        {"freeze_windows": [{**window, "end": window["start"]}]},
        {"freeze_windows": [{"start": "2026-12-24T00:00:00", "end": "2026-12-25T00:00:00"}]},
        {"holdout_share": 1.0},
        {"max_edit_step": 0},
        {"edit_dead_band": 1.5},
        {"max_account_budget_minor": 2**60},
    ):
        assert client.put(GUARDRAILS, json=bad, headers=h).status_code == 422, bad
    assert client.get(GUARDRAILS, headers=h).json()["holdout_share"] == 0.2
