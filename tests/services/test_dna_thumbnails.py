"""A video's representative frame: taken by the DNA extractor, stored through fsspec keyed by
account and variant, recorded in the DNA document, kept when DNA is later re-read from features,
and stored by the API's video upload."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adflywheel.core.settings import Settings
from adflywheel.loops.dna.fingerprint import DNA_VERSION
from adflywheel.platforms.base import PlatformAd
from adflywheel.services.dna import service as dna_service
from adflywheel.services.dna.thumbnails import Thumbnail, ThumbnailStore, frame_time
from adflywheel.sim.market.render import plan_clip, render_clip
from adflywheel.store.catalog import variant_by_external
from adflywheel.store.dna import CreativeDnaRow
from adflywheel.store.engine import make_session_factory, transaction
from tests.factories.catalog import store_single_ad_set
from tests.factories.clock import T0
from tests.factories.helpers import auth, new_account, small_catalog


@pytest.fixture(scope="module")
def clip() -> bytes:
    genes = {"duration_s": 8.0, "cuts_per_10s": 2, "time_to_first_cut_s": 2.0, "brightness": 0.6}
    return render_clip(plan_clip(genes, caption="Still struggling?", seed=2), width=96).data


def test_the_frame_is_the_end_of_the_hook_or_the_middle_of_a_short_clip() -> None:
    times = np.arange(0.0, 10.0, 1 / 6)
    assert times[frame_time(times, 10.0)] == pytest.approx(3.0, abs=0.1)
    short = np.arange(0.0, 2.0, 1 / 6)
    assert short[frame_time(short, 2.0)] == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ValueError):
        frame_time(np.array([]), 1.0)


def test_extract_video_keeps_a_jpeg_frame_of_the_clip(clip: bytes) -> None:
    extracted = dna_service.extract_video(clip, "Still struggling with dry skin?")
    thumb = extracted.thumbnail
    assert extracted.dna == dna_service.extract_from_video(clip, "Still struggling with dry skin?")
    assert thumb.jpeg[:3] == b"\xff\xd8\xff"  # a JPEG
    image = cv2.imdecode(np.frombuffer(thumb.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[1] == thumb.width == 96 and image.shape[0] == thumb.height
    assert thumb.at_s == pytest.approx(3.0, abs=1.0)  # the decoded frame nearest 3 s


@pytest.mark.parametrize("url", ["local", "memory://thumbs-test"])
def test_the_store_round_trips_and_never_crosses_accounts(url: str, tmp_path: Path) -> None:
    store = ThumbnailStore(str(tmp_path) if url == "local" else url)
    thumb = Thumbnail(b"\xff\xd8\xff-fake-jpeg", 1.5, 4, 2)
    recorded = store.write(7, 42, thumb)
    assert recorded["key"] == "thumbnails/account-7/variant-42.jpg"
    assert recorded["at_s"] == 1.5 and len(recorded["sha256"]) == 64
    assert store.read(7, 42) == thumb.jpeg
    assert store.read(8, 42) is None and store.read(7, 43) is None
    store.write(7, 42, Thumbnail(b"\xff\xd8\xff-newer", 2.0, 4, 2))
    assert store.read(7, 42) == b"\xff\xd8\xff-newer"
    if url == "local":
        assert (tmp_path / "thumbnails/account-7/variant-42.jpg").exists()
        assert not list(tmp_path.glob("thumbnails/account-7/*.tmp-*"))


def test_store_dna_records_the_frame_and_features_keep_it(
    engine: Engine, settings: Settings, clip: bytes
) -> None:
    account_id, _ = new_account(engine, "acme", T0)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        store_single_ad_set(session, account_id, [PlatformAd("a1", "s1", "c1", "A1")], T0)
    extracted = dna_service.extract_video(clip, "")
    url = settings.resolved_artifacts_url
    with transaction(factory) as session:
        variant = variant_by_external(session, account_id, "a1")
        assert variant is not None
        dna_service.store_dna(
            session, account_id, variant, extracted.dna, "video", T0,
            thumbnail=extracted.thumbnail, artifacts_url=url,
        )  # fmt: skip
        variant_id = variant.id
    store = ThumbnailStore(url)
    assert store.read(account_id, variant_id) == extracted.thumbnail.jpeg
    with factory() as session:
        document = session.scalar(
            select(CreativeDnaRow.document).where(CreativeDnaRow.variant_id == variant_id)
        )
    assert document is not None and document["thumbnail"]["at_s"] == extracted.thumbnail.at_s
    with transaction(factory) as session:  # DNA again, from features: the frame stays known
        variant = variant_by_external(session, account_id, "a1")
        assert variant is not None
        dna = dna_service.extract_from_features({"hook_type": "question"})
        dna_service.store_dna(session, account_id, variant, dna, "features", T0)
    with factory() as session:
        row = session.scalar(select(CreativeDnaRow).where(CreativeDnaRow.variant_id == variant_id))
        assert row is not None and row.source == "features" and row.dna_version == DNA_VERSION
        assert row.document["thumbnail"]["key"].endswith(f"variant-{variant_id}.jpg")


def test_the_api_video_upload_stores_the_frame(
    engine: Engine, client: TestClient, settings: Settings, clip: bytes
) -> None:
    account_id, key = new_account(engine, "acme", T0)
    assert client.put("/api/ml/catalog", json=small_catalog(), headers=auth(key)).status_code == 200
    got = client.post(
        "/api/ml/variants/a1/dna",
        files={"video": ("clip.mp4", clip, "video/mp4")},
        headers=auth(key),
    )
    assert got.status_code == 200, got.text
    assert "thumbnail" not in got.json()  # the API's answer is unchanged
    with make_session_factory(engine)() as session:
        variant = variant_by_external(session, account_id, "a1")
        assert variant is not None
        variant_id = variant.id
    jpeg = ThumbnailStore(settings.resolved_artifacts_url).read(account_id, variant_id)
    assert jpeg is not None and jpeg[:3] == b"\xff\xd8\xff"
