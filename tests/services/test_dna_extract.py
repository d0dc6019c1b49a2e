"""Creative DNA from real (rendered) video files: every gene recovered from what was put in."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adflywheel.loops.dna.fingerprint import VECTOR_LENGTH, Dna, dna_from_features
from adflywheel.loops.dna.video import aspect_class, colourfulness
from adflywheel.services.dna import service as dna_service
from adflywheel.services.dna.service import UnreadableVideoError, decode, extract_from_video
from adflywheel.sim.market.render import RenderedClip, plan_clip, render_clip
from tests.factories.video import synthetic_video

pytestmark = pytest.mark.slow

BASE: dict[str, Any] = {"duration_s": 20.0, "loudness_lufs": -16.0, "speech_share": 0.0}
CLIPS: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[int, int]]] = {
    # name: (genes, plan overrides, (width, height))
    "calm": (
        {"cuts_per_10s": 0, "brightness": 0.3, "colourfulness": 8, "face_share": 0,
         "early_face": 0, "text_share": 0, "has_music": 1, "loudness_lufs": -22},
        {"tempo_bpm": 120.0, "lead_silence_s": 0.0},
        (160, 284),
    ),
    "busy": (
        {"cuts_per_10s": 10, "time_to_first_cut_s": 0.5, "brightness": 0.8,
         "colourfulness": 95, "face_share": 1, "early_face": 1, "text_share": 1,
         "has_music": 0, "speech_share": 0.9, "loudness_lufs": -14},
        {"lead_silence_s": 1.0},
        (160, 284),
    ),
    "mid": (
        {"cuts_per_10s": 5, "time_to_first_cut_s": 1.5, "brightness": 0.55,
         "colourfulness": 45, "face_share": 0, "early_face": 0, "text_share": 1,
         "has_music": 1, "speech_share": 0.8},
        {"face": (False, True, False), "lead_silence_s": 0.5},
        (284, 160),
    ),
    "silent": (
        {"hook_type": "pattern_interrupt", "cuts_per_10s": 2.5, "time_to_first_cut_s": 2.0,
         "brightness": 0.45, "colourfulness": 30, "face_share": 0, "early_face": 0,
         "text_share": 0, "has_music": 0, "speech_share": 0.0},
        {},
        (200, 200),
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[RenderedClip, Dna]]:
    """Render each clip once (cached as files for the module) and extract its DNA."""
    folder: Path = tmp_path_factory.mktemp("clips")
    out = {}
    for i, (name, (genes, overrides, (w, h))) in enumerate(CLIPS.items()):
        plan = plan_clip({**BASE, **genes}, caption="Still struggling with dry skin?", seed=i)
        clip = render_clip(dataclasses.replace(plan, **overrides), width=w, height=h)
        (folder / f"{name}.mp4").write_bytes(clip.data)
        data = (folder / f"{name}.mp4").read_bytes()
        out[name] = (clip, extract_from_video(data, "Still struggling with dry skin?"))
    return out


@pytest.mark.parametrize("name", list(CLIPS))
def test_cuts_are_found_at_the_rendered_times(
    clips: dict[str, tuple[RenderedClip, Dna]], name: str
) -> None:
    clip, dna = clips[name]
    truth = clip.plan.cut_times
    found = dna.visual_dna["cut_times_s"]
    assert dna.visual_dna["shot_count"] == len(truth) + 1
    assert len(found) == len(truth)
    for t, f in zip(truth, found, strict=True):
        assert -0.01 <= f - t <= 1 / 6 + 0.05  # at most one sampling interval late
    first = dna.hook_dna["time_to_first_cut_s"]
    assert first == (found[0] if found else None)
    assert dna.visual_dna["cuts_per_10s"] == pytest.approx(10 * len(truth) / 4.0, abs=0.01)


def test_brightness_and_colourfulness_follow_the_rendered_truth(
    clips: dict[str, tuple[RenderedClip, Dna]],
) -> None:
    for measure, truth in (("brightness", "raw_brightness"), ("colorfulness", "raw_colourfulness")):
        pairs = sorted((getattr(c, truth), d.visual_dna[measure]) for c, d in clips.values())
        got = [p[1] for p in pairs]
        assert got == sorted(got), measure
    calm, busy = clips["calm"], clips["busy"]
    assert calm[1].visual_dna["brightness"] == pytest.approx(calm[0].raw_brightness, abs=0.03)
    assert busy[1].visual_dna["colorfulness"] == pytest.approx(busy[0].raw_colourfulness, rel=0.15)
    assert 0.0 < calm[1].visual_dna["contrast"] < busy[1].visual_dna["contrast"] + 0.2


def test_faces_are_found_where_they_were_drawn(
    clips: dict[str, tuple[RenderedClip, Dna]],
) -> None:
    assert clips["busy"][1].visual_dna["face_share"] > 0.8
    assert clips["busy"][1].hook_dna["early_face"] is True
    for name in ("calm", "silent"):
        assert clips[name][1].visual_dna["face_share"] == 0.0
        assert clips[name][1].hook_dna["early_face"] is False
    mid = clips["mid"][1]  # a face only in the second shot (1.5 s to 2.75 s)
    assert 0.1 < mid.visual_dna["face_share"] < 0.6
    assert mid.hook_dna["early_face"] is True


def test_on_screen_text_is_found_without_a_model(
    clips: dict[str, tuple[RenderedClip, Dna]],
) -> None:
    for name in ("busy", "mid"):
        assert clips[name][1].visual_dna["text_share"] > 0.8
        assert clips[name][1].hook_dna["early_text"] is True
    for name in ("calm", "silent"):
        assert clips[name][1].visual_dna["text_share"] == 0.0
        assert clips[name][1].hook_dna["early_text"] is False


def test_container_facts(clips: dict[str, tuple[RenderedClip, Dna]]) -> None:
    expected = {"calm": "9:16", "busy": "9:16", "mid": "16:9", "silent": "1:1"}
    for name, (clip, dna) in clips.items():
        v = dna.visual_dna
        assert (v["width"], v["height"]) == (clip.width, clip.height)
        assert v["duration_s"] == pytest.approx(4.0, abs=0.1)
        assert v["aspect_ratio"] == expected[name]
        assert len(v["palette"]) == 3
    assert aspect_class(1080, 1350) == "4:5"
    assert aspect_class(1000, 300) == "other"


def test_motion_early_and_overall(clips: dict[str, tuple[RenderedClip, Dna]]) -> None:
    jolt = clips["silent"][1]  # pattern interrupt: the element races across the first shot
    calm = clips["calm"][1]
    assert jolt.hook_dna["early_motion"] > 2 * calm.hook_dna["early_motion"] > 0
    assert jolt.visual_dna["motion_energy"] > calm.visual_dna["motion_energy"]


def test_audio_music_speech_silence_and_loudness(
    clips: dict[str, tuple[RenderedClip, Dna]],
) -> None:
    calm, busy, mid, silent = (clips[n] for n in ("calm", "busy", "mid", "silent"))
    assert calm[1].audio_dna["sound_type"] == "music"
    assert calm[1].audio_dna["tempo_bpm"] == pytest.approx(120.0, rel=0.06)
    assert calm[1].audio_dna["onset_rate"] > 1.0
    assert busy[1].audio_dna["sound_type"] == "speech"
    assert mid[1].audio_dna["sound_type"] in ("mixed", "speech")
    for clip, dna in (calm, busy, mid):
        assert dna.audio_dna["has_audio"] is True
        assert dna.audio_dna["loudness_lufs"] == pytest.approx(clip.plan.loudness_lufs, abs=1.5)
        assert dna.audio_dna["leading_silence_s"] == pytest.approx(
            clip.plan.lead_silence_s, abs=0.1
        )
        assert dna.hook_dna["time_to_first_sound_s"] == dna.audio_dna["leading_silence_s"]
    assert silent[1].audio_dna["has_audio"] is False
    assert silent[1].audio_dna["loudness_lufs"] is None
    assert silent[1].genes["has_music"] is False


def test_hook_genes_and_the_vector(clips: dict[str, tuple[RenderedClip, Dna]]) -> None:
    for _, dna in clips.values():
        assert dna.hook_dna["hook_type"] == "question"
        assert dna.hook_dna["opening_line"] == "Still struggling with dry skin?"
        assert len(dna.vector) == VECTOR_LENGTH
        assert all(-1.0 <= v <= 1.0 for v in dna.vector)
        assert dna.missing == () or set(dna.missing) <= {"loudness_lufs", "tempo_bpm"}


def test_the_same_file_gives_the_same_dna(clips: dict[str, tuple[RenderedClip, Dna]]) -> None:
    clip, dna = clips["mid"]
    assert extract_from_video(clip.data, "Still struggling with dry skin?") == dna


def test_hasler_susstrunk_is_the_published_signed_formula() -> None:
    img = np.zeros((2, 2, 3), np.uint8)
    img[0] = (0, 0, 255)  # BGR red
    img[1] = (0, 255, 0)  # green
    # rg = ±255 (mean 0, sd 255); yb = 127.5 everywhere: C = 255 + 0.3·127.5
    assert colourfulness(img) == pytest.approx(293.25, abs=0.01)


def test_undecodable_bytes_are_refused() -> None:
    with pytest.raises(UnreadableVideoError, match="not a supported video container"):
        decode(b"GIF89a" + b"\x00" * 100)
    with pytest.raises(UnreadableVideoError):
        decode(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)


def test_features_dict_maps_to_the_same_genes() -> None:
    observed = {
        "hook_type": "before_after",
        "aspect_ratio": "9:16",
        "duration_s": 18.2,
        "cuts_per_10s": 3.4,
        "time_to_first_cut_s": 1.2,
        "brightness": 0.61,
        "colourfulness": 52.0,
        "face_share": 0.5,
        "early_face": 1.0,
        "text_share": 0.2,
        "has_music": 0.0,
        "speech_share": 0.7,
        "loudness_lufs": -15.0,
    }
    dna = dna_from_features(observed, "Before: dull skin. After: glow.")
    assert dna.genes["hook_type"] == "before_after"
    assert dna.genes["colorfulness"] == 52.0
    assert dna.genes["early_face"] is True and dna.genes["has_music"] is False
    assert dna.genes["has_audio"] is True
    assert dna.visual_dna["shot_count"] == 7
    assert len(dna.vector) == VECTOR_LENGTH and "motion_energy" in dna.missing
    nested = dna_from_features(
        {"hook_dna": {"hook": "UGC"}, "visual_dna": {"aspect": 0.5625, "pace": 2}}, ""
    )
    assert nested.genes["hook_type"] == "testimonial_ugc"
    assert nested.genes["aspect_ratio"] == "9:16"
    assert nested.genes["cuts_per_10s"] == 2.0
    from_text = dna_from_features({}, "Stop skipping sunscreen.")
    assert from_text.genes["hook_type"] == "negative_warning"
    assert from_text.hook_dna["hook_source"] == "text"


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({"brightness": 3.0}, "brightness must be within"),
        ({"duration_s": "long"}, "duration_s must be a finite number"),
        ({"duration_s": float("nan")}, "finite"),
        ({"hook_type": "telepathy"}, "unknown hook_type"),
        ({"aspect_ratio": "wide"}, "aspect_ratio"),
        ({"early_face": "yes"}, "early_face"),
    ],
)
def test_bad_features_are_refused_with_a_message(features: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dna_from_features(features)


def test_sound_longer_than_the_picture_is_cut_to_the_video() -> None:
    """A 1 s video carrying 20 s of AAC: only about the first second of sound is decoded."""
    decoded = decode(synthetic_video(seconds=1.0, audio_s=20.0))
    assert decoded.sample.duration_s == pytest.approx(1.0, abs=0.2)
    assert decoded.audio is not None and 0 < decoded.audio.size <= 1.0 * 22_050


def test_no_video_stream_is_refused() -> None:
    with pytest.raises(UnreadableVideoError, match="no video stream"):
        decode(synthetic_video(video=False, audio_s=1.0))


@pytest.mark.parametrize("fmt", ["mp4", "matroska"])  # declared duration / none: checked live
def test_too_long_and_too_many_sampled_frames_are_refused(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = synthetic_video(seconds=2.0, fmt=fmt)
    assert decode(clip).sample.duration_s == pytest.approx(2.0, abs=0.4)
    with pytest.raises(UnreadableVideoError, match="longer than 1 s"):
        decode(clip, max_duration_s=1.0)
    monkeypatch.setattr(dna_service, "MAX_SAMPLED_FRAMES", 5)
    with pytest.raises(UnreadableVideoError, match="more than 5 sampled frames of 64x48"):
        decode(clip)
    monkeypatch.setattr(dna_service, "MAX_SAMPLED_FRAMES", 1_000)
    monkeypatch.setattr(dna_service, "MAX_SAMPLED_PIXELS", 64 * 48 * 4)
    with pytest.raises(UnreadableVideoError, match="more than 4 sampled frames"):
        decode(clip)


def test_a_long_clip_is_sampled_more_sparsely_after_the_hook_window_to_fit_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip = synthetic_video(seconds=10.0, fps=12)
    monkeypatch.setattr(dna_service, "MAX_SAMPLED_FRAMES", 40)  # 10 s at 6 a second needs 61
    sample = decode(clip).sample
    times = sample.times
    assert len(times) <= 40
    early, late = times[times < 3.0], times[times > 3.1]
    assert np.diff(early).max() == pytest.approx(1 / 6, abs=0.01)  # the hook keeps its rate
    assert np.diff(late).min() > 1 / 6 + 0.05  # sparser after it
    assert late.max() > 9.0  # and still covers the whole clip
    assert sample.duration_s == pytest.approx(10.0, abs=0.4)
    monkeypatch.setattr(dna_service, "MAX_SAMPLED_FRAMES", 20)  # not even 1 a second fits
    with pytest.raises(UnreadableVideoError, match="more than 20 sampled frames"):
        decode(clip)


def test_a_frame_too_large_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dna_service, "MAX_PIXELS", 32 * 32)
    with pytest.raises(UnreadableVideoError, match="unsupported frame size 64x48"):
        decode(synthetic_video())


def test_features_width_height_shots_and_audio() -> None:
    nested = dna_from_features(
        {"visual_dna": {"width": 1080.0, "height": 1920, "shot_count": 4.0, "duration_s": 15}}
    )
    v = nested.visual_dna
    assert (v["width"], v["height"], v["shot_count"]) == (1080, 1920, 4)
    assert isinstance(v["width"], int) and isinstance(v["shot_count"], int)
    assert nested.genes["cuts_per_10s"] == pytest.approx(2.0)  # 10 * (4 - 1) / 15
    top = dna_from_features({"width": 720, "height": 1280.0, "cuts_per_10s": 3, "shot_count": 9})
    assert (top.visual_dna["width"], top.visual_dna["height"]) == (720, 1280)
    assert top.visual_dna["shot_count"] == 9 and top.genes["cuts_per_10s"] == 3.0  # as sent
    # has_audio is always a bool: False when nothing says there is sound (and listed missing).
    silent = dna_from_features({"brightness": 0.5})
    assert silent.audio_dna["has_audio"] is False and "has_audio" in silent.missing
    assert silent.vector == dna_from_features({"brightness": 0.5, "has_audio": False}).vector
    assert dna_from_features({"tempo_bpm": 120}).audio_dna["has_audio"] is True
    assert dna_from_features({"has_audio": 1}).audio_dna["has_audio"] is True
    assert dna_from_features({"loudness_lufs": -14}).genes["has_audio"] is True


@pytest.mark.parametrize(
    "features",
    [{"width": 1080.5}, {"height": "1920"}, {"width": 0}, {"visual_dna": {"shot_count": -1}},
     {"width": True}, {"height": float("inf")}],
)  # fmt: skip
def test_bad_sizes_and_shot_counts_are_refused(features: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be a whole number"):
        dna_from_features(features)
