"""The creatives page, one ad's page, its thumbnail, scoring a clip before launch and the winner
memory's gallery: views on seeded data (synthetic), pages through the test client signed in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from adflywheel.console.views import creative_detail, creatives, memory
from adflywheel.core import loops as loops_module
from adflywheel.core.clock import ManualClock
from adflywheel.core.loops import DNA_EXTRA
from adflywheel.core.settings import Settings
from adflywheel.services.dna import service as dna_service
from adflywheel.store.catalog import variant_by_external
from adflywheel.store.engine import make_session_factory, transaction
from tests.conftest import Snapshots
from tests.console.pages_b_world import World, open_world, rendered_clip
from tests.console.signin import ADMIN, APPROVER, OTHER, VIEWER
from tests.factories.catalog import store_hour
from tests.factories.clock import T0
from tests.factories.video import synthetic_video


@pytest.fixture
def world(
    snapshots: Snapshots, engine: Engine, settings: Settings, clock: ManualClock
) -> Iterator[World]:
    with open_world(snapshots, engine, settings, clock) as opened:
        yield opened


@pytest.fixture
def clip() -> bytes:
    return rendered_clip()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


# -- views --------------------------------------------------------------------------------------


def test_the_view_scores_every_ad_once_with_intervals(world: World, engine: Engine) -> None:
    with make_session_factory(engine)() as session:
        view = creatives.build(session, world.console.account_id)
    assert view.total_ads == 12 and len(view.ads) == 12 and view.pages == 1
    impressions = [a.impressions for a in view.ads]
    assert impressions == sorted(impressions, reverse=True)  # most seen first
    for ad in view.ads:
        assert ad.ctr is not None and ad.ctr.low <= ad.ctr.value <= ad.ctr.high
        assert ad.win is not None and 0 <= ad.win.low <= ad.win.value <= ad.win.high <= 1
        assert dict(ad.genes)["Hook"] and "unknown" not in dict(ad.genes).values()
    framed = [a for a in view.ads if a.thumbnail]
    assert [a.ad_id for a in framed] == ["a0"] and framed[0].dna_source == "video"
    assert all(a.dna_source == "features" for a in view.ads if a.ad_id != "a0")
    assert view.effects and all(e.low <= e.lift <= e.high for e in view.effects)
    assert "ads of this account" in view.win_note and view.memory_winners == 1


def test_the_view_pages_and_filters(world: World, engine: Engine) -> None:
    with make_session_factory(engine)() as session:
        first = creatives.build(session, world.console.account_id, page=1)
        none = creatives.build(session, world.console.account_id, campaign="nope")
        other = creatives.build(session, world.console.other_account_id)
    assert first.page == 1 and none.total_ads == 0 and none.ads == ()
    assert other.total_ads == 0 and other.effects == () and other.memory_winners == 0
    assert other.win_note.startswith("no history")


def test_an_ads_detail_and_a_clip_scored_before_launch(
    world: World, engine: Engine, settings: Settings, clip: bytes
) -> None:
    factory = make_session_factory(engine)
    account = world.console.account_id
    detail = creative_detail.ad_detail(factory, settings, account, "a1")
    assert detail.card.ad_id == "a1" and detail.panel.win is not None
    assert detail.panel.predicted is None  # loaded after the page
    with factory() as session:
        predicted = creative_detail.ad_prediction(session, account, "a1", T0)
        with pytest.raises(LookupError):
            creative_detail.ad_prediction(session, world.console.other_account_id, "a1", T0)
    assert predicted.ctr is not None and predicted.ctr.low <= predicted.ctr.value
    assert detail.panel.reasons and detail.panel.genes
    assert [s.ad_id for s in detail.panel.similar] == ["a0"]  # the one winner kept
    with pytest.raises(LookupError):
        creative_detail.ad_detail(factory, settings, world.console.other_account_id, "a1")
    scored = creative_detail.score_clip(
        factory, settings, account, clip, "Why so dry?", "c.mp4", T0
    )
    assert scored.thumbnail_src.startswith("data:image/jpeg;base64,/9j/")
    genes = dict(scored.panel.genes)
    assert genes["Hook"] == "question" and genes["Shape"] == "9:16"
    assert scored.panel.win is not None and scored.panel.predicted.ctr is not None


def test_the_gallery_and_find_similar(world: World, engine: Engine, settings: Settings) -> None:
    factory = make_session_factory(engine)
    view = memory.build(factory, settings, world.console.account_id)
    assert [t.ad_id for t in view.tiles] == ["a0"] and view.tiles[0].thumbnail
    assert view.by_status == {"qualified": 1} and view.like is None
    like = memory.build(factory, settings, world.console.account_id, like="a3")
    assert [t.ad_id for t in like.tiles] == ["a0"] and like.tiles[0].similarity is not None
    alone = memory.build(factory, settings, world.console.account_id, like="a0")
    assert alone.tiles == () and alone.like_note
    with pytest.raises(LookupError):
        memory.build(factory, settings, world.console.other_account_id, like="a0")


# -- pages --------------------------------------------------------------------------------------


def test_the_page_shows_frames_placeholders_and_the_chart(world: World) -> None:
    console = world.console
    console.sign_in(VIEWER)
    page = console.client.get(f"/accounts/{console.account_id}/creatives")
    assert page.status_code == 200
    html = page.text
    assert html.count('data-testid="creative-card"') == 12
    assert html.count('data-testid="creative-thumbnail"') == 1
    assert html.count('data-testid="creative-placeholder"') == 11 and "No video for this ad" in html
    assert f'src="/accounts/{console.account_id}/creatives/a0/thumbnail.jpg"' in html
    assert "Why ads win" in html and "<svg" in html and 'role="img"' in html
    assert 'data-testid="score-form"' in html and 'enctype="multipart/form-data"' in html
    assert page.headers["cache-control"] == "no-store"


def test_the_thumbnail_is_served_cached_and_only_to_its_account(world: World) -> None:
    console = world.console
    console.sign_in(ADMIN)  # admin of Acme, viewer of Globex
    url = f"/accounts/{console.account_id}/creatives/a0/thumbnail.jpg"
    got = console.client.get(url)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.content[:3] == b"\xff\xd8\xff" and "max-age" in got.headers["cache-control"]
    again = console.client.get(url, headers={"If-None-Match": got.headers["etag"]})
    assert again.status_code == 304
    assert console.client.get(url.replace("a0", "a1")).status_code == 404  # no frame
    assert console.client.get(url.replace("a0", "zz")).status_code == 404  # no such ad
    other = f"/accounts/{console.other_account_id}/creatives/a0/thumbnail.jpg"
    assert console.client.get(other).status_code == 404  # Globex has no ad a0


def test_another_accounts_user_sees_none_of_it(world: World) -> None:
    console = world.console
    console.sign_in(OTHER)
    paths = ("creatives", "creatives/a0", "creatives/a0/thumbnail.jpg", "creatives/a0/prediction")
    for path in (*paths, "memory"):
        got = console.client.get(f"/accounts/{console.account_id}/{path}")
        assert got.status_code == 404, path
        assert "a0" not in got.text or path == "creatives/a0"


def test_an_ad_page_and_the_gallery(world: World) -> None:
    console = world.console
    console.sign_in(VIEWER)
    ad = console.client.get(f"/accounts/{console.account_id}/creatives/a0")
    assert ad.status_code == 200
    assert 'data-testid="dna-genes"' in ad.text and "Win probability" in ad.text
    loader = re.search(r'hx-get="([^"]+)"', ad.text)
    assert loader is not None and loader.group(1).endswith("/creatives/a0/prediction")
    fragment = console.client.get(loader.group(1))
    assert fragment.status_code == 200 and 'data-testid="predicted-ctr"' in fragment.text
    assert "<html" not in fragment.text
    assert console.client.get(f"/accounts/{console.account_id}/creatives/nope").status_code == 404
    gallery = console.client.get(f"/accounts/{console.account_id}/memory")
    assert gallery.status_code == 200 and gallery.text.count('data-testid="memory-tile"') == 1
    similar = console.client.get(f"/accounts/{console.account_id}/memory?like=a5")
    assert similar.status_code == 200 and "Most similar to" in similar.text
    missing = console.client.get(f"/accounts/{console.account_id}/memory?like=nope")
    assert missing.status_code == 404


def test_upload_a_clip_and_see_its_dna(world: World, clip: bytes) -> None:
    console = world.console
    console.sign_in(VIEWER)
    page = console.client.get(f"/accounts/{console.account_id}/creatives")
    token = csrf_of(page.text)
    url = f"/accounts/{console.account_id}/creatives/score"
    got = console.client.post(
        url,
        data={"csrf_token": token, "text": "Still struggling with dry skin?"},
        files={"video": ("launch.mp4", clip, "video/mp4")},
    )
    assert got.status_code == 200, got.text
    assert 'data-testid="score-thumbnail"' in got.text and "data:image/jpeg;base64," in got.text
    assert "question" in got.text and "9:16" in got.text and "Predicted CTR" in got.text


@pytest.mark.parametrize(
    ("files", "code", "needle"),
    [
        ({"video": ("a.mp4", b"hello, not a video at all", "video/mp4")}, 415, "container"),
        ({"video": ("a.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x07" * 900, "video/mp4")}, 422,
         "could not be decoded"),
        ({"video": ("a.mp4", b"", "video/mp4")}, 400, "empty"),
        ({"other": ("a.mp4", b"\x00" * 64, "video/mp4")}, 400, "Choose a video"),
    ],
)  # fmt: skip
def test_a_bad_file_is_a_4xx_page(
    world: World, files: dict[str, tuple[str, bytes, str]], code: int, needle: str
) -> None:
    console = world.console
    console.sign_in(VIEWER)
    token = csrf_of(console.client.get(f"/accounts/{console.account_id}/creatives").text)
    got = console.client.post(
        f"/accounts/{console.account_id}/creatives/score", data={"csrf_token": token}, files=files
    )
    assert got.status_code == code and needle in got.text
    assert got.headers["content-type"].startswith("text/html")


def test_scoring_without_the_csrf_token_is_refused(world: World) -> None:
    console = world.console
    console.sign_in(VIEWER)
    video = synthetic_video(seconds=1.0)
    got = console.client.post(
        f"/accounts/{console.account_id}/creatives/score",
        data={"csrf_token": "forged"},
        files={"video": ("a.mp4", video, "video/mp4")},
    )
    assert got.status_code == 403


def test_without_the_video_stack_the_page_works_and_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch, clip: bytes
) -> None:
    monkeypatch.setattr(
        loops_module, "missing_modules", lambda extra: extra.modules if extra is DNA_EXTRA else ()
    )
    console = world.console
    console.sign_in(VIEWER)
    page = console.client.get(f"/accounts/{console.account_id}/creatives")
    assert page.status_code == 200
    assert 'data-testid="video-off"' in page.text and "adflywheel[dna]" in page.text
    assert 'data-testid="score-form"' not in page.text
    assert page.text.count('data-testid="creative-card"') == 12  # ads are still scored
    got = console.client.post(
        f"/accounts/{console.account_id}/creatives/score",
        data={"csrf_token": csrf_of(page.text)},
        files={"video": ("a.mp4", clip, "video/mp4")},
    )
    assert got.status_code == 503 and "adflywheel[dna]" in got.text


def test_the_cached_state_follows_new_dna_and_actuals(
    world: World, engine: Engine, settings: Settings, clip: bytes
) -> None:
    factory = make_session_factory(engine)
    account = world.console.account_id
    with factory() as session:
        before = creatives.build(session, account)
        again = creatives.build(session, account)
    assert again.ads == before.ads  # served from the cache
    extracted = dna_service.extract_video(clip, "")
    with transaction(factory) as session:
        variant = variant_by_external(session, account, "a1")
        assert variant is not None
        dna_service.store_dna(
            session, account, variant, extracted.dna, "video", T0 + timedelta(minutes=5),
            thumbnail=extracted.thumbnail, artifacts_url=settings.resolved_artifacts_url,
        )  # fmt: skip
        store_hour(session, account, T0, {"a1": (10_000, 900)}, T0)
    with factory() as session:
        after = creatives.build(session, account)
    a1 = next(a for a in after.ads if a.ad_id == "a1")
    assert a1.thumbnail and a1.dna_source == "video"
    old = next(a for a in before.ads if a.ad_id == "a1")
    assert a1.impressions == old.impressions + 10_000


def test_an_approver_uploads_an_ads_video_and_sees_its_frame(world: World, clip: bytes) -> None:
    console = world.console
    console.sign_in(APPROVER)
    base = f"/accounts/{console.account_id}/creatives/a2"
    page = console.client.get(base)
    assert (
        'data-testid="ad-video-form"' in page.text
        and 'data-testid="creative-placeholder"' in page.text
    )
    token = csrf_of(page.text)
    got = console.client.post(
        f"{base}/video",
        data={"csrf_token": token},
        files={"video": ("a2.mp4", clip, "video/mp4")},
        follow_redirects=False,
    )
    assert got.status_code == 303 and got.headers["location"] == base
    page = console.client.get(base)
    assert "Video read: its DNA is stored" in page.text
    assert 'data-testid="creative-thumbnail"' in page.text
    assert console.client.get(f"{base}/thumbnail.jpg").status_code == 200
    bad = console.client.post(
        f"{base}/video",
        data={"csrf_token": token},
        files={"video": ("x.mp4", b"nope" * 5, "video/mp4")},
    )
    assert bad.status_code == 415
    missing = console.client.post(
        f"/accounts/{console.account_id}/creatives/zz/video",
        data={"csrf_token": token},
        files={"video": ("a.mp4", clip, "video/mp4")},
    )
    assert missing.status_code == 404


def test_a_viewer_cannot_upload_an_ads_video(world: World, clip: bytes) -> None:
    console = world.console
    console.sign_in(VIEWER)
    base = f"/accounts/{console.account_id}/creatives/a2"
    page = console.client.get(base)
    assert 'data-testid="ad-video-form"' not in page.text
    got = console.client.post(
        f"{base}/video", data={"csrf_token": csrf_of(page.text)},
        files={"video": ("a2.mp4", clip, "video/mp4")},
    )  # fmt: skip
    assert got.status_code == 403
    console.sign_in(APPROVER)
    assert (
        console.client.post(
            f"{base}/video", files={"video": ("a.mp4", clip, "video/mp4")}
        ).status_code
        == 403
    )
