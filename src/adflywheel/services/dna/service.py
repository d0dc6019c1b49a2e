"""The Creative DNA shell: decode uploaded bytes with PyAV, run the pure cores, store results.

Uploads never touch the file system: PyAV reads from memory. The content is sniffed before it
is decoded, decoding is bounded (duration, resolution, frames), and any failure becomes an
``UnreadableVideoError`` with a message a caller can act on. Nothing is stored unless
extraction succeeded. PyAV and OpenCV are the ``[dna]`` extra, imported only to analyse a video:
without them an upload is answered 503 with the reason, and DNA from features still works.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.core.errors import InvalidInputError, UnavailableError, UnsupportedFormatError
from adflywheel.core.loops import Loop, unavailable
from adflywheel.loops.crosslearn.prior import win_prior
from adflywheel.loops.dna import audio as audio_core
from adflywheel.loops.dna import patterns, win
from adflywheel.loops.dna import video as video_core
from adflywheel.loops.dna.fingerprint import (
    DNA_VERSION,
    Dna,
    build_dna,
    dna_from_document,
    dna_from_features,
)
from adflywheel.loops.dna.video import FrameSample
from adflywheel.services.dna.thumbnails import Thumbnail, ThumbnailStore, take_thumbnail
from adflywheel.store.crosslearn import prior_for_account
from adflywheel.store.dna import CreativeDnaRow
from adflywheel.store.models import Variant
from adflywheel.store.queries import variant_totals

AUDIO_RATE = 22_050
MAX_DURATION_S = 180.0
MAX_PIXELS = 4096 * 4096
# Every sampled frame is kept until analysis: 1,100 covers 180 s at 6 a second, and 90 M pixels
# (270 MB as BGR) covers 180 s of 16:9 or about 80 s of 9:16 at the 320-pixel analysis width.
MAX_SAMPLED_FRAMES = 1_100
MAX_SAMPLED_PIXELS = 90_000_000
# The hook window keeps the full sampling rate; past it a long clip is sampled more sparsely
# (down to MIN_LATE_FPS) so that it fits the budget, rather than being refused.
HOOK_WINDOW_S = 3.0
MIN_LATE_FPS = 1.0
DETECT_SIDE = 144


class UnreadableVideoError(InvalidInputError):
    """The bytes are not a video this service can decode; the message says why."""


class UnsupportedMediaError(UnreadableVideoError, UnsupportedFormatError):
    """The bytes are not in any video container this service reads (not even a broken one)."""


class VideoStackMissingError(UnavailableError):
    """This installation has no video stack (the ``[dna]`` extra): videos cannot be analysed."""


def require_video_stack() -> None:
    """Raise, with the reason, where the ``[dna]`` extra is not installed."""
    reason = unavailable(Loop.DNA)
    if reason is not None:
        raise VideoStackMissingError(f"video analysis is off: {reason}")


class InvalidFeaturesError(InvalidInputError):
    """Features given for a creative that the DNA parser refuses; the message says which."""


# Container signatures: ISO BMFF (MP4/MOV/M4V: 'ftyp' at offset 4), Matroska/WebM (EBML), AVI.
def sniff(data: bytes) -> str:
    """The container family from the first bytes, or raise: an upload is never trusted by its
    name or declared type."""
    if len(data) < 12:
        raise UnsupportedMediaError("the file is too short to be a video")
    if data[4:8] == b"ftyp":
        return "mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "avi"
    raise UnsupportedMediaError(
        "the file is not a supported video container (MP4/MOV, WebM/MKV or AVI)"
    )


@dataclass(frozen=True, slots=True)
class Decoded:
    sample: FrameSample
    audio: NDArray[np.float32] | None
    audio_rate: int
    container: str


def decode(
    data: bytes,
    *,
    sample_fps: float = 6.0,
    analysis_width: int = 320,
    threads: int = 1,
    max_duration_s: float | None = None,
    skip_nonref: bool = True,
) -> Decoded:
    """Decode the frames other frames depend on (with ``skip_nonref``, non-reference frames are
    not decoded at all) and convert only ``sample_fps`` frames a second, scaled to
    ``analysis_width``; audio is resampled to mono float at 22.05 kHz.

    Bounded: at most ``max_duration_s`` (default ``MAX_DURATION_S``) of video, frames of at
    most ``MAX_PIXELS``, at most ``MAX_SAMPLED_FRAMES`` kept frames and ``MAX_SAMPLED_PIXELS``
    kept pixels in all (past the first 3 s a long clip is sampled more sparsely to fit, down to
    one frame a second; refused up front only when even that does not fit), and audio
    decoded only as far as the video goes (its declared duration, else ``max_duration_s``), then
    cut to the video's duration: a short clip carrying hours of sound decodes seconds of it.
    The limits are read when called, so a test can lower them."""
    limit_s = MAX_DURATION_S if max_duration_s is None else max_duration_s
    kind = sniff(data)
    require_video_stack()
    import av

    try:
        with av.open(io.BytesIO(data), mode="r", format=None) as container:
            vstream = _video_stream(container, threads, skip_nonref)
            width, height = vstream.codec_context.width, vstream.codec_context.height
            plan = _plan(vstream, width, height, limit_s, sample_fps, analysis_width)
            astream = container.streams.audio[0] if container.streams.audio else None
            video = _FrameSampler(plan)
            sound = _SoundReader(plan) if astream is not None else None
            for packet in container.demux(*[s for s in (vstream, astream) if s is not None]):
                if packet.stream is vstream:
                    video.take(packet)
                elif sound is not None:
                    sound.take(packet)
            if sound is not None:
                sound.flush()
            duration = _duration(container, vstream, video.last_t, sample_fps)
    except UnreadableVideoError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError) as error:
        raise UnreadableVideoError(f"the video could not be decoded: {error}") from error
    if not video.frames:
        raise UnreadableVideoError("no video frame could be decoded")
    sample = FrameSample(video.frames, np.asarray(video.times), width, height, duration)
    audio = sound.cut_to(duration) if sound is not None else None
    return Decoded(sample, audio, AUDIO_RATE, kind)


def _video_stream(container: Any, threads: int, skip_nonref: bool) -> Any:
    """The first video stream, its decoder threaded as asked."""
    if not container.streams.video:
        raise UnreadableVideoError("the file has no video stream")
    vstream = container.streams.video[0]
    vstream.thread_type = "AUTO" if threads != 1 else "SLICE"
    vstream.codec_context.thread_count = threads
    if skip_nonref:  # frames no other frame needs: skipping them cannot corrupt others
        vstream.codec_context.skip_frame = "NONREF"
    return vstream


@dataclass(frozen=True, slots=True)
class _SamplingPlan:
    """What to keep of a clip: frames scaled to ``width`` x ``height``, ``sample_fps`` a second
    in the hook window and ``late_fps`` after it, video up to ``limit_s``, sound up to
    ``audio_cap_s`` (``audio_cap`` samples, with a little slack)."""

    limit_s: float
    width: int
    height: int
    sample_fps: float
    late_fps: float
    audio_cap_s: float
    audio_cap: int


def _plan(
    vstream: Any, width: int, height: int, limit_s: float, sample_fps: float, analysis_width: int
) -> _SamplingPlan:
    """Refuse a frame size or a declared duration past the limits; else plan the sampling."""
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise UnreadableVideoError(
            f"unsupported frame size {width}x{height} (at most {MAX_PIXELS} pixels)"
        )
    declared = _declared_duration(vstream)
    if declared is not None and declared > limit_s + 0.5:
        raise UnreadableVideoError(f"the video is longer than {limit_s:.0f} s")
    out_w = min(analysis_width, width) // 2 * 2
    out_h = max(2, round(height * out_w / width) // 2 * 2)
    late_fps = sample_fps
    if declared is not None:
        late_fps = _late_rate(declared, sample_fps, out_w, out_h)
    audio_cap_s = min(limit_s, declared) if declared is not None else limit_s
    audio_cap = int(audio_cap_s * AUDIO_RATE) + AUDIO_RATE // 10
    return _SamplingPlan(limit_s, out_w, out_h, sample_fps, late_fps, audio_cap_s, audio_cap)


class _FrameSampler:
    """Keeps the frames due by the plan's rates, converted to BGR at the analysis size."""

    def __init__(self, plan: _SamplingPlan) -> None:
        self.plan = plan
        self.frames: list[NDArray[np.uint8]] = []
        self.times: list[float] = []
        self.next_t, self.last_t = 0.0, 0.0

    def take(self, packet: Any) -> None:
        import av

        p = self.plan
        for frame in packet.decode():
            if not isinstance(frame, av.VideoFrame):
                continue
            t = float(frame.time) if frame.time is not None else self.last_t
            self.last_t = max(self.last_t, t)
            if t > p.limit_s:
                raise UnreadableVideoError(f"the video is longer than {p.limit_s:.0f} s")
            if t + 1e-6 >= self.next_t:
                _check_sample_budget(len(self.frames) + 1, p.width, p.height, p.sample_fps)
                img = frame.reformat(width=p.width, height=p.height, format="bgr24")
                self.frames.append(np.asarray(img.to_ndarray(), np.uint8))
                self.times.append(t)
                rate = p.sample_fps if t + 1e-6 < HOOK_WINDOW_S else p.late_fps
                self.next_t = (np.floor(t * rate + 1e-6) + 1) / rate


class _SoundReader:
    """Decodes sound to mono float at ``AUDIO_RATE`` until the plan's cap; no further."""

    def __init__(self, plan: _SamplingPlan) -> None:
        self.plan = plan
        self.chunks: list[NDArray[np.float32]] = []
        self.samples = 0
        import av

        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)

    def take(self, packet: Any) -> None:
        p = self.plan
        if self.samples >= p.audio_cap:
            return
        base, pts = packet.time_base, packet.pts
        if pts is not None and base is not None and float(pts * base) > p.audio_cap_s:
            self.samples = p.audio_cap  # past the video: decode no more sound
            return
        for aframe in packet.decode():
            for res in self.resampler.resample(aframe):
                chunk = res.to_ndarray().reshape(-1).astype(np.float32)
                self.chunks.append(chunk)
                self.samples += chunk.size

    def flush(self) -> None:
        if self.samples < self.plan.audio_cap:
            for res in self.resampler.resample(None):
                self.chunks.append(res.to_ndarray().reshape(-1).astype(np.float32))

    def cut_to(self, duration: float) -> NDArray[np.float32]:
        """The sound of the video, not of whatever the container carries."""
        sound = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        return sound[: int(min(duration, self.plan.audio_cap_s) * AUDIO_RATE)]


def _declared_duration(stream: Any) -> float | None:
    """The video stream's own declared duration in seconds, when it has one."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _late_rate(declared_s: float, fps: float, width: int, height: int) -> float:
    """Frames a second past the hook window that keep a clip of ``declared_s`` inside the
    sample budget: ``fps`` when it fits, else lower, down to ``MIN_LATE_FPS``; a clip that does
    not fit even then is refused (422) before anything is decoded."""
    allowed = min(MAX_SAMPLED_FRAMES, MAX_SAMPLED_PIXELS // (width * height))
    early = int(min(declared_s, HOOK_WINDOW_S) * fps) + 1
    late_s = max(declared_s - HOOK_WINDOW_S, 0.0)
    if early + late_s * fps + 1 <= allowed:
        return fps
    # 5% headroom for the rounding of sample times; +2 for the samples either end.
    rate = 0.95 * (allowed - early - 2) / late_s if late_s > 0 else 0.0
    if rate < MIN_LATE_FPS:
        _check_sample_budget(int(early + late_s * MIN_LATE_FPS) + 2, width, height, fps)
        return MIN_LATE_FPS  # within the budget at the lowest rate after all
    return min(fps, rate)


def _check_sample_budget(count: int, width: int, height: int, fps: float) -> None:
    """Refuse (422) before keeping more sampled frames than the budget allows."""
    if count > MAX_SAMPLED_FRAMES or count * width * height > MAX_SAMPLED_PIXELS:
        most = min(MAX_SAMPLED_FRAMES, MAX_SAMPLED_PIXELS // (width * height))
        raise UnreadableVideoError(
            f"the video needs more than {most} sampled frames of {width}x{height} "
            f"({most / fps:.0f} s at {fps:g} frames a second); send a shorter clip"
        )


def _duration(container: Any, stream: Any, last_t: float, fps: float) -> float:
    """The video stream's duration; else the container's, which covers every stream, so it is
    capped a second past the last decoded frame (sound longer than the picture must not
    stretch the video); else the last frame's time plus a sampling interval."""
    declared = _declared_duration(stream)
    if declared is not None:
        return declared
    if container.duration is not None:
        return min(float(container.duration) / 1_000_000.0, last_t + 1.0 / fps + 1.0)
    return last_t + 1.0 / fps


class HaarFaces:
    """OpenCV's bundled frontal-face Haar cascade (opencv-python-headless < 5 ships the XML)."""

    def __init__(self) -> None:
        import cv2

        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"the face cascade could not be loaded from {path}")

    def __call__(self, gray: NDArray[np.uint8]) -> list[tuple[int, int, int, int]]:
        """Faces at least 15% of the frame's short side, found on a copy whose short side is
        ``DETECT_SIDE`` pixels (cost grows with area; ad faces that matter are large)."""
        import cv2

        h, w = gray.shape[:2]
        scale = min(1.0, DETECT_SIDE / min(h, w))
        small = gray if scale == 1.0 else cv2.resize(gray, (round(w * scale), round(h * scale)))
        side = max(20, int(min(small.shape[:2]) * 0.15))
        found = self._cascade.detectMultiScale(
            small, scaleFactor=1.15, minNeighbors=5, minSize=(side, side)
        )
        return [
            (int(x / scale), int(y / scale), int(fw / scale), int(fh / scale))
            for x, y, fw, fh in found
        ]


@lru_cache(maxsize=1)
def face_detector() -> HaarFaces:
    return HaarFaces()


@dataclass(frozen=True, slots=True)
class VideoExtract:
    """A video's DNA and its representative frame (see ``thumbnails``)."""

    dna: Dna
    thumbnail: Thumbnail


def extract_video(
    data: bytes, text: str = "", *, sample_fps: float = 6.0, skip_nonref: bool = True
) -> VideoExtract:
    """The full DNA of a video file (bytes) and its ad text, with one frame of it as JPEG."""
    require_video_stack()
    decoded = decode(data, sample_fps=sample_fps, skip_nonref=skip_nonref)
    visual = video_core.analyse(decoded.sample, face_detector())
    sound = audio_core.analyse(decoded.audio, decoded.audio_rate)
    dna = build_dna(visual.visual, visual.hook, sound, text)
    return VideoExtract(dna, take_thumbnail(decoded.sample))


def extract_from_video(
    data: bytes, text: str = "", *, sample_fps: float = 6.0, skip_nonref: bool = True
) -> Dna:
    """The full DNA of a video file (bytes) and its ad text."""
    return extract_video(data, text, sample_fps=sample_fps, skip_nonref=skip_nonref).dna


def extract_from_features(features: Mapping[str, Any], text: str = "") -> Dna:
    """The DNA of a creative described by a caller. The parser raises ``ValueError`` only about
    the values it was given, so here each one is the caller's to fix."""
    try:
        return dna_from_features(features, text)
    except ValueError as error:
        raise InvalidFeaturesError(str(error)) from error


def store_dna(
    session: Session,
    account_id: int,
    variant: Variant,
    dna: Dna,
    source: str,
    now: datetime,
    *,
    thumbnail: Thumbnail | None = None,
    artifacts_url: str | None = None,
) -> CreativeDnaRow:
    """Insert or replace the variant's DNA for this DNA version. With a ``thumbnail`` and the
    ``artifacts_url`` the frame is stored and the document records it (``thumbnail``); DNA
    from features keeps the frame an earlier video extraction stored."""
    row = session.scalar(
        select(CreativeDnaRow).where(
            CreativeDnaRow.variant_id == variant.id,
            CreativeDnaRow.dna_version == dna.dna_version,
        )
    )
    if row is None:
        row = CreativeDnaRow(account_id=account_id, variant_id=variant.id)
        session.add(row)
    kept = (row.document or {}).get("thumbnail")
    if thumbnail is not None and artifacts_url is not None:
        kept = ThumbnailStore(artifacts_url).write(account_id, variant.id, thumbnail)
    row.dna_version = dna.dna_version
    row.source = source
    row.genes = dna.genes
    row.document = {**dna.as_dict(), **({"thumbnail": kept} if kept else {})}
    row.vector = list(dna.vector)
    row.extracted_at = now
    session.flush()
    return row


# -- history, scores and patterns ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdHistory:
    variant_id: int
    ad_id: str
    dna: Dna
    impressions: int
    clicks: int
    link_clicks: int
    conversions: int


def variant_dna(session: Session, variant: Variant) -> Dna:
    """The variant's stored DNA of the current version, else DNA from the features and text it
    came with (a features dict, possibly empty: then the hook type from the text alone)."""
    row = session.scalar(
        select(CreativeDnaRow).where(
            CreativeDnaRow.variant_id == variant.id, CreativeDnaRow.dna_version == DNA_VERSION
        )
    )
    if row is not None:
        return dna_from_document(row.document)
    return _features_dna(variant)


def _features_dna(variant: Variant) -> Dna:
    return features_dna(variant.observed_features, variant.primary_text)


def features_dna(features: dict[str, Any] | None, text: str) -> Dna:
    """An ad's DNA from the features and text it came with (the text alone when its features
    are refused): what an ad without stored DNA is scored on."""
    try:
        return dna_from_features(dict(features or {}), text)
    except ValueError:
        return dna_from_features({}, text)


def stored_documents(session: Session, account_id: int) -> dict[int, dict[str, Any]]:
    """The stored DNA documents of the account's ads (current version), by variant id: one
    query for the whole account."""
    rows = session.execute(
        select(CreativeDnaRow.variant_id, CreativeDnaRow.document).where(
            CreativeDnaRow.account_id == account_id, CreativeDnaRow.dna_version == DNA_VERSION
        )
    )
    return {int(vid): dict(document) for vid, document in rows}


def account_history(session: Session, account_id: int) -> list[AdHistory]:
    """Every ad of the account with its DNA and its totals so far."""
    totals = {t.variant_id: t for t in variant_totals(session, account_id)}
    variants = session.scalars(select(Variant).where(Variant.account_id == account_id))
    stored = stored_documents(session, account_id)
    out = []
    for variant in variants:
        t = totals.get(variant.id)
        if t is None:
            continue
        document = stored.get(variant.id)
        out.append(
            AdHistory(
                variant.id,
                variant.external_id,
                dna_from_document(document) if document is not None else _features_dna(variant),
                t.impressions,
                t.clicks,
                t.link_clicks,
                t.conversions,
            )
        )
    return out


def fit_win_model(
    session: Session,
    account_id: int,
    history: list[AdHistory],
    *,
    winner_ctr: float | None = None,
) -> tuple[win.Fitted, dict[str, Any]]:
    """The account's win model from its history (and its niche's published prior), with what
    prior was used: fitted once, it scores any number of creatives (``win.WinModel.predict``
    and ``interval``)."""
    examples = [win.Example(h.dna.vector, h.impressions, h.clicks) for h in history]
    prior, prior_level = prior_for_account(session, account_id)
    published = win_prior(prior, prior_level) if prior is not None else None
    fitted = win.fit_hierarchy_explained(examples, fixed_ctr=winner_ctr, published=published)
    prior_used = (
        {"level": prior_level, "name": published.name, "accounts": prior.accounts}
        if published is not None and prior is not None
        else {"level": "none", "name": "no published niche pattern"}
    )
    return fitted, prior_used


def score(
    session: Session, account_id: int, dna: Dna, *, winner_ctr: float | None = None
) -> dict[str, Any]:
    """Win probability from the account's history, with per-gene contributions (logit) and the
    matching account patterns. A thin account (fewer than 4 ads with 500 impressions) is
    answered from its niche's published cross-account pattern (loop 3; else the average of all
    published niches), shrunk toward its own few ads; ``prior_used`` says which. So is an
    account whose credible ads have no contrast (no clicks at all, no winner, or all winners).
    Null, with the reason, when neither its history nor a published prior can say what makes a
    winner: never a probability that is the same for every creative."""
    history = account_history(session, account_id)
    fitted, prior_used = fit_win_model(session, account_id, history, winner_ctr=winner_ctr)
    model = fitted.model
    if model is None:
        return {
            "win_probability": None,
            "win_reason": fitted.reason,
            "win_model": None,
            "prior_used": prior_used,
            "contributions": [],
            "gene_lifts": [],
        }
    found = patterns.gene_patterns(
        [patterns.AdOutcome(h.dna.genes, h.impressions, h.clicks) for h in history]
    )
    if model.level == "account":
        source = f"logistic model on {model.n_ads} ads of this account, {model.n_winners} winners"
    elif fitted.note:
        source = f"{model.level} prior ({fitted.note})"
    else:
        source = (
            f"{model.level} prior (only {model.n_ads} ads of this account with 500 impressions)"
        )
    return {
        "win_probability": round(model.predict(dna.vector), 4),
        "win_reason": (
            f"{source} ({model.threshold_rule}); coefficients shrunk toward: {model.prior}"
        ),
        "win_model": {
            "threshold_ctr": model.threshold_ctr,
            "threshold_rule": model.threshold_rule,
            "level": model.level,
            "n_ads": model.n_ads,
            "n_winners": model.n_winners,
            "baseline_probability": round(model.baseline(), 4),
            "prior": model.prior,
        },
        "prior_used": prior_used,
        "contributions": model.contributions(dna.vector),
        "gene_lifts": patterns.contributions(found, dna.genes) if found.n_ads else [],
    }


def account_patterns(session: Session, account_id: int, *, limit: int = 25) -> dict[str, Any]:
    """Why the account's ads win: CTR effects, and CVR effects when there are conversions."""
    return history_patterns(account_history(session, account_id), limit=limit)


def history_patterns(
    history: list[AdHistory], *, limit: int = 25, metrics: tuple[str, ...] = ("ctr", "cvr")
) -> dict[str, Any]:
    """``account_patterns`` of a history already read (the console reads it once a page), for
    ``metrics`` only."""
    outcomes = [
        patterns.AdOutcome(h.dna.genes, h.impressions, h.clicks, h.link_clicks, h.conversions)
        for h in history
    ]
    result: dict[str, Any] = {"dna_version": DNA_VERSION, "n_ads": len(history)}
    for metric in metrics:
        found = patterns.gene_patterns(outcomes, metric)
        if metric == "cvr" and found.events == 0:
            result["cvr"] = None
            continue
        result[metric] = {
            "baseline": round(found.baseline, 6),
            "n_ads": found.n_ads,
            "exposure": found.exposure,
            "events": found.events,
            "between_ad_sd": round(found.between_ad_sd, 4),
            "tau": {k: round(v, 4) for k, v in found.tau.items()},
            "genes": [g.as_dict() for g in found.genes],
            "effects": [e.as_dict() for e in found.effects[:limit]],
        }
    return result


def ensure_dna(session: Session, account_id: int, now: datetime) -> int:
    """The cycle step "DNA for new creatives": store DNA of the current version for every ad of
    the account that has none, from the features and text the platform gave it (videos are
    extracted when uploaded to ``POST /api/ml/variants/{id}/dna``). Returns how many were added."""
    have = set(
        session.scalars(
            select(CreativeDnaRow.variant_id).where(
                CreativeDnaRow.account_id == account_id, CreativeDnaRow.dna_version == DNA_VERSION
            )
        )
    )
    added = 0
    for variant in session.scalars(select(Variant).where(Variant.account_id == account_id)):
        if variant.id in have:
            continue
        store_dna(session, account_id, variant, variant_dna(session, variant), "features", now)
        added += 1
    return added
