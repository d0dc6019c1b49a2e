"""The Creative DNA endpoints: JSON and video extraction, scoring, patterns, storing, and every
kind of bad upload refused with a message and nothing stored.

Until the lead adds the migration and registers the router, this module creates the
``creative_dna`` table itself and mounts the router on the app it tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.api.app import create_app
from adflywheel.api.routers import dna as dna_router
from adflywheel.core.clock import ManualClock
from adflywheel.core.settings import Settings
from adflywheel.loops.dna.fingerprint import DNA_VERSION
from adflywheel.services.dna import service as dna_service
from adflywheel.services.dna.service import ensure_dna
from adflywheel.sim.market.render import plan_clip, render_clip
from adflywheel.store.dna import CreativeDnaRow
from adflywheel.store.engine import make_session_factory
from adflywheel.store.models import Base, Variant
from tests.factories.clock import T0
from tests.factories.helpers import auth, count_rows, new_account, row
from tests.factories.video import synthetic_video

TEXT = "Still struggling with dry skin?\nGlowLab helps."


@pytest.fixture(scope="module")
def video() -> bytes:
    genes = {"duration_s": 3.0, "cuts_per_10s": 4, "time_to_first_cut_s": 1.0,
             "early_face": 1, "face_share": 1, "text_share": 1, "has_music": 1}  # fmt: skip
    return render_clip(plan_clip(genes, caption="Still struggling?", seed=1)).data


@pytest.fixture
def api(engine: Engine, settings: Settings, clock: ManualClock) -> Iterator[TestClient]:
    Base.metadata.create_all(engine, tables=[CreativeDnaRow.__table__])  # type: ignore[list-item]
    app = create_app(settings.model_copy(update={"max_request_bytes": 2_000_000}), clock=clock)
    if not any(getattr(r, "path", "") == "/api/ml/creative-dna/extract" for r in app.routes):
        app.include_router(dna_router.router)
    with TestClient(app) as client:
        yield client


def ads_catalog(n: int) -> dict[str, Any]:
    hooks = ["Why is your skin dull?", "Last chance: 40% off tonight.", "Stop over-washing."]
    return {
        "campaigns": [{"id": "c1", "name": "Spring"}],
        "ad_sets": [{"id": f"s{i}", "campaign_id": "c1"} for i in range(n)],
        "ads": [
            {
                "id": f"a{i}",
                "ad_set_id": f"s{i}",
                "campaign_id": "c1",
                "primary_text": hooks[i % 3] + "\nGlowLab.",
            }
            for i in range(n)
        ],
    }


@pytest.fixture
def key(engine: Engine, api: TestClient) -> str:
    _, key = new_account(engine, "acme", T0)
    assert api.put("/api/ml/catalog", json=ads_catalog(9), headers=auth(key)).status_code == 200
    return key


def add_history(api: TestClient, key: str) -> None:
    """Question hooks do best, offers worst: 9 ads, 3 hours of 1,000 impressions each."""
    clicks = {0: 30, 1: 8, 2: 15}
    rows = []
    for i in range(9):
        for h in range(3):
            hour = (T0 - timedelta(hours=h + 1)).isoformat()
            c = clicks[i % 3] + i % 2
            rows.append(row(f"a{i}", hour, clicks=c, link_clicks=c // 2, conversions=c // 10))
    assert api.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key)).status_code == 200


def stored(engine: Engine) -> int:
    return count_rows(engine, CreativeDnaRow)


def test_extract_from_json_features(api: TestClient, key: str) -> None:
    body = {"features": {"hook_type": "question", "brightness": 0.6, "colourfulness": 40,
                         "duration_s": 15, "cuts_per_10s": 3}, "text": TEXT}  # fmt: skip
    got = api.post("/api/ml/creative-dna/extract", json=body, headers=auth(key))
    assert got.status_code == 200, got.text
    out = got.json()
    assert out["dna_version"] == DNA_VERSION and out["source"] == "features"
    assert out["hook_dna"]["hook_type"] == "question"
    assert out["visual_dna"]["brightness"] == 0.6 and out["visual_dna"]["colorfulness"] == 40
    assert out["win_probability"] is None and out["win_reason"].startswith("no history")
    flat = api.post("/api/ml/creative-dna/extract", json={"hook": "ugc"}, headers=auth(key))
    assert flat.json()["genes"]["hook_type"] == "testimonial_ugc"


def test_extract_from_a_video_upload(api: TestClient, key: str, video: bytes) -> None:
    got = api.post(
        "/api/ml/creative-dna/extract",
        files={"video": ("../../etc/passwd", video, "application/octet-stream")},
        data={"text": TEXT},
        headers=auth(key),
    )
    assert got.status_code == 200, got.text
    out = got.json()
    assert out["hook_dna"]["hook_type"] == "question"
    v, a = out["visual_dna"], out["audio_dna"]
    assert (v["width"], v["height"], v["shot_count"]) == (160, 284, 2)
    assert isinstance(v["duration_s"], float) and isinstance(v["colorfulness"], float)
    assert a["has_audio"] is True and isinstance(a["loudness_lufs"], float)
    assert len(out["vector"]) == 38 and out["win_probability"] is None


@pytest.mark.parametrize(
    ("files", "data", "code", "needle"),
    [
        ({"video": ("a.mp4", b"hello, not a video at all", "video/mp4")}, {}, 415, "container"),
        ({"video": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")}, {}, 415, ""),
        ({"video": ("a.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x07" * 900, "video/mp4")}, {},
         422, "could not be decoded"),
        ({"video": ("a.mp4", b"", "video/mp4")}, {}, 400, "empty"),
        ({"clip": ("a.mp4", b"\x00" * 64, "video/mp4")}, {}, 400, "'video'"),
        ({"video": ("a.mp4", b"\x00" * 64, "video/mp4")}, {"text": "x" * 5001}, 422, "text"),
    ],
)  # fmt: skip
def test_bad_uploads_are_refused_and_nothing_is_stored(
    api: TestClient,
    key: str,
    engine: Engine,
    files: dict[str, Any],
    data: dict[str, str],
    code: int,
    needle: str,
) -> None:
    for url in ("/api/ml/creative-dna/extract", "/api/ml/variants/a1/dna"):
        got = api.post(url, files=files, data=data, headers=auth(key))
        assert got.status_code == code, got.text
        assert needle in str(got.json()["detail"])  # a 422 lists its errors
    assert stored(engine) == 0


def test_truncated_video_and_oversized_upload(api: TestClient, key: str, video: bytes) -> None:
    half = api.post(
        "/api/ml/variants/a1/dna",
        files={"video": ("v.mp4", video[: len(video) // 3], "video/mp4")},
        headers=auth(key),
    )
    assert half.status_code == 422 and half.json()["detail"]
    big = api.post(
        "/api/ml/creative-dna/extract",
        files={"video": ("v.mp4", video + b"\x00" * 2_100_000, "video/mp4")},
        headers=auth(key),
    )
    assert big.status_code == 413


@pytest.mark.parametrize(
    ("clip", "limit", "needle"),
    [
        ({"video": False, "audio_s": 1.0}, {}, "no video stream"),
        ({"seconds": 2.0}, {"MAX_DURATION_S": 1.0}, "longer than 1 s"),
        ({}, {"MAX_PIXELS": 32 * 32}, "unsupported frame size 64x48"),
        ({"seconds": 2.0}, {"MAX_SAMPLED_FRAMES": 5}, "more than 5 sampled frames"),
    ],
)
def test_videos_over_the_limits_are_422_and_nothing_is_stored(
    api: TestClient,
    key: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    clip: dict[str, Any],
    limit: dict[str, float],
    needle: str,
) -> None:
    data = synthetic_video(**clip)
    for name, value in limit.items():
        monkeypatch.setattr(dna_service, name, value)
    for url in ("/api/ml/creative-dna/extract", "/api/ml/variants/a1/dna"):
        got = api.post(url, files={"video": ("v.mp4", data, "video/mp4")}, headers=auth(key))
        assert got.status_code == 422, got.text
        assert needle in str(got.json()["detail"])
    assert stored(engine) == 0


def test_a_missing_content_type_is_415(api: TestClient, key: str, engine: Engine) -> None:
    for url in ("/api/ml/creative-dna/extract", "/api/ml/variants/a1/dna"):
        got = api.post(url, content=b'{"brightness": 0.5}', headers=auth(key))
        assert got.status_code == 415, got.text
        assert "no Content-Type" in got.json()["detail"]
    assert stored(engine) == 0


def test_zero_clicks_give_a_null_win_probability_with_a_reason(api: TestClient, key: str) -> None:
    """History without a single click cannot tell winners from the rest: null, not ~0.99."""
    rows = [
        row(f"a{i}", (T0 - timedelta(hours=h + 1)).isoformat(), clicks=0, link_clicks=0)
        for i in range(9)
        for h in range(3)
    ]
    assert api.post("/api/ml/actuals", json={"rows": rows}, headers=auth(key)).status_code == 200
    for text in ("Why is your skin dull?", "Last chance: 40% off tonight."):
        got = api.post("/api/ml/creative-dna/score", json={"text": text}, headers=auth(key))
        assert got.status_code == 200, got.text
        out = got.json()
        assert out["win_probability"] is None and out["win_model"] is None
        assert "has a click" in out["win_reason"]


def test_other_bad_requests(api: TestClient, key: str) -> None:
    url = "/api/ml/creative-dna/extract"
    plain = {**auth(key), "content-type": "text/plain"}
    assert api.post(url, content=b"x", headers=plain).status_code == 415
    as_json = {**auth(key), "content-type": "application/json"}
    assert api.post(url, content=b"{", headers=as_json).status_code == 400
    assert api.post(url, json=[1, 2], headers=auth(key)).status_code == 422
    wrong = api.post(url, json={"features": {"brightness": 7}}, headers=auth(key))
    assert wrong.status_code == 422 and "brightness" in str(wrong.json()["detail"])
    assert api.post(url, json={}).status_code == 401


def test_store_a_variants_dna_then_score_and_explain(
    api: TestClient, key: str, engine: Engine, video: bytes
) -> None:
    up = api.post(
        "/api/ml/variants/a0/dna", files={"video": ("v.mp4", video, "video/mp4")}, headers=auth(key)
    )
    assert up.status_code == 200, up.text
    assert up.json()["stored"] and up.json()["hook_dna"]["hook_type"] == "question"
    again = api.post("/api/ml/variants/a1/dna", json={}, headers=auth(key))  # text only
    assert again.status_code == 200 and again.json()["genes"]["hook_type"] == "offer_urgency"
    assert stored(engine) == 2
    api.post("/api/ml/variants/a1/dna", json={}, headers=auth(key))
    assert stored(engine) == 2  # replaced, not duplicated

    add_history(api, key)
    scored = api.post("/api/ml/creative-dna/score", json={"ad_id": "a0"}, headers=auth(key))
    assert scored.status_code == 200, scored.text
    good = scored.json()
    offer = api.post(
        "/api/ml/creative-dna/score", json={"text": "Last chance: 40% off."}, headers=auth(key)
    ).json()
    assert 0.0 < offer["win_probability"] < good["win_probability"] < 1.0
    assert good["contributions"][0]["gene"] == "hook_type"
    assert good["win_model"]["n_ads"] == 9

    patterns = api.get("/api/ml/creative-dna/patterns", headers=auth(key))
    assert patterns.status_code == 200, patterns.text
    ctr = patterns.json()["ctr"]
    top = ctr["effects"][0]
    assert (top["gene"], top["level"]) in {
        ("hook_type", "question"),
        ("hook_type", "offer_urgency"),
    }
    assert {"lift", "lift_low", "lift_high", "n_ads", "impressions", "evidence"} <= set(top)
    assert patterns.json()["cvr"]["events"] > 0


def test_accounts_cannot_reach_each_others_ads(api: TestClient, key: str, engine: Engine) -> None:
    _, other = new_account(engine, "rival", T0)
    got = api.post("/api/ml/variants/a0/dna", json={}, headers=auth(other))
    assert got.status_code == 404
    scored = api.post("/api/ml/creative-dna/score", json={"ad_id": "a0"}, headers=auth(other))
    assert scored.status_code == 404
    assert api.get("/api/ml/creative-dna/patterns", headers=auth(other)).json()["n_ads"] == 0


def test_the_cycle_step_stores_dna_for_new_creatives_once(
    api: TestClient, key: str, engine: Engine
) -> None:
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        account_id = session.scalars(select(Variant.account_id)).first()
        assert account_id is not None
        assert ensure_dna(session, account_id, T0) == 9
    with factory() as session, session.begin():
        assert ensure_dna(session, account_id, T0) == 0
    assert stored(engine) == 9
