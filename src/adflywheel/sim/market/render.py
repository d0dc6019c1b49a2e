"""Render a simulated ad as a real short video (synthetic data) whose pixels and sound carry its
genes, so the Creative DNA extractor is tested end to end on files it has to decode.

``plan_clip`` turns genes into a ``ClipPlan`` (pure: shots, cut times, colours, face, on-screen
text, motion, audio kind), and ``render_clip`` draws and encodes it as H.264 + AAC in MP4 with
PyAV, in memory. The plan plus the measures taken on the raw frames before encoding are the
ground truth that recovery tests compare the extractor's output with.
"""

from __future__ import annotations

import io
import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import av
import cv2
import numpy as np
import pyloudnorm
from numpy.typing import NDArray

AUDIO_RATE = 22_050
MIN_SHOT_S = 0.5
FaceBox = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class ClipPlan:
    """What a clip shows, shot by shot. Times are seconds from the start."""

    duration_s: float
    cut_times: tuple[float, ...]
    brightness: float  # target mean luma in [0, 1]
    chroma: float  # chroma amplitude (0..110) of the background colours
    hues: tuple[float, ...]  # one hue (degrees) per shot
    face: tuple[bool, ...]  # a face-like element per shot
    text: tuple[bool, ...]  # on-screen text per shot
    speed: tuple[float, ...]  # moving element speed per shot, frame widths per second
    caption: str
    has_audio: bool
    has_music: bool
    speech: bool
    lead_silence_s: float
    loudness_lufs: float
    tempo_bpm: float
    seed: int

    @property
    def shots(self) -> list[tuple[float, float]]:
        edges = [0.0, *self.cut_times, self.duration_s]
        return list(itertools.pairwise(edges))

    def share(self, flags: tuple[bool, ...]) -> float:
        """Fraction of the clip's time covered by shots whose flag is set."""
        covered = sum(b - a for (a, b), on in zip(self.shots, flags, strict=True) if on)
        return covered / self.duration_s

    def early(self, flags: tuple[bool, ...], within_s: float = 3.0) -> bool:
        return any(on and a < within_s for (a, _), on in zip(self.shots, flags, strict=True))


@dataclass(frozen=True, slots=True)
class RenderedClip:
    """An encoded clip and its truth (the plan, plus measures of the raw frames)."""

    data: bytes
    plan: ClipPlan
    width: int
    height: int
    fps: int
    raw_brightness: float
    raw_colourfulness: float
    extra: dict[str, float] = field(default_factory=dict)


def _num(genes: Mapping[str, float | str], name: str, default: float) -> float:
    value = genes.get(name, default)
    return float(value) if not isinstance(value, str) else default


def plan_clip(
    genes: Mapping[str, float | str],
    *,
    caption: str = "",
    max_duration_s: float = 4.0,
    seed: int = 0,
) -> ClipPlan:
    """Map genes (the simulator's names) to a clip plan; a clip longer than ``max_duration_s``
    is cut short, keeping its pace (cuts per 10 s) and its opening."""
    rng = random.Random(seed)
    duration = round(min(_num(genes, "duration_s", 15.0), max_duration_s), 3)
    hook = str(genes.get("hook_type", ""))
    rate = max(_num(genes, "cuts_per_10s", 3.0), 0.0)
    n_cuts = min(round(rate * duration / 10.0), int(duration / MIN_SHOT_S) - 1)
    cuts: list[float] = []
    if n_cuts > 0:
        first = min(max(_num(genes, "time_to_first_cut_s", 2.0), MIN_SHOT_S), duration / 2)
        rest = (duration - first) / n_cuts
        cuts = [first + k * rest for k in range(n_cuts)]
    n_shots = len(cuts) + 1
    start_hue = rng.uniform(0.0, 360.0)
    hues = tuple((start_hue + 137.5 * s) % 360.0 for s in range(n_shots))
    face_share = _num(genes, "face_share", 0.4)
    early_face = _num(genes, "early_face", 0.0) >= 0.5
    face = tuple(early_face if s == 0 else rng.random() < face_share for s in range(n_shots))
    text_share = _num(genes, "text_share", 0.25)
    text = tuple(rng.random() < min(1.0, 2.0 * text_share) for _ in range(n_shots))
    fast_open = hook == "pattern_interrupt"
    speed = tuple(
        (0.9 if fast_open and s == 0 else rng.uniform(0.05, 0.35)) for s in range(n_shots)
    )
    has_music = _num(genes, "has_music", 1.0) >= 0.5
    speech = _num(genes, "speech_share", 0.5) >= 0.5
    return ClipPlan(
        duration_s=duration,
        cut_times=tuple(round(c, 3) for c in cuts),
        brightness=float(np.clip(_num(genes, "brightness", 0.5), 0.08, 0.92)),
        chroma=float(np.clip(_num(genes, "colourfulness", 45.0), 0.0, 120.0) * 0.5),
        hues=hues,
        face=face,
        text=text,
        speed=speed,
        caption=caption or "Watch this",
        has_audio=has_music or speech,
        has_music=has_music,
        speech=speech,
        lead_silence_s=rng.choice((0.0, 0.0, 0.5, 1.0)),
        loudness_lufs=float(np.clip(_num(genes, "loudness_lufs", -16.0), -30.0, -10.0)),
        tempo_bpm=rng.choice((90.0, 100.0, 110.0, 120.0, 128.0, 140.0)),
        seed=seed,
    )


# -- pictures ---------------------------------------------------------------------------------


def _background(plan: ClipPlan, shot: int, width: int, height: int) -> NDArray[np.uint8]:
    """Two colour fields of opposite hue, one lighter and one darker than the planned luma:
    brightness sets the mean luma, colourfulness the chroma amplitude. Shots alternate a
    horizontal and a vertical split and swap which field is lighter, so every cut changes half
    the frame even when the colours are grey."""
    y = plan.brightness * 255.0
    offset = min(35.0, y - 4.0, 251.0 - y)
    ycrcb = np.empty((height, width, 3), np.float32)
    first: tuple[slice, slice] = (slice(0, height // 2), slice(None))
    second: tuple[slice, slice] = (slice(height // 2, None), slice(None))
    if shot % 2:
        first, second = (slice(None), slice(0, width // 2)), (slice(None), slice(width // 2, None))
    sign = 1.0 if (shot // 2) % 2 == 0 else -1.0
    for region, hue, luma in (
        (first, plan.hues[shot], y + sign * offset),
        (second, plan.hues[shot] + 180.0, y - sign * offset),
    ):
        h = math.radians(hue)
        ycrcb[region[0], region[1], 0] = luma
        ycrcb[region[0], region[1], 1] = 128.0 + plan.chroma * math.cos(h)
        ycrcb[region[0], region[1], 2] = 128.0 + plan.chroma * math.sin(h)
    ycrcb = np.clip(ycrcb, 0, 255).astype(np.uint8)
    out: NDArray[np.uint8] = np.asarray(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR), np.uint8)
    return out


def draw_face(img: NDArray[np.uint8], cx: int, cy: int, r: int) -> None:
    """A cartoon head: framed by dark hair, light skin, shaded eye sockets, brows, nose and mouth,
    the light/dark layout that a Haar frontal-face cascade responds to."""
    dark = (35, 45, 60)
    aa = cv2.LINE_AA
    cv2.ellipse(
        img,
        (cx, cy + int(r * 1.5)),
        (int(r * 1.3), int(r * 0.7)),
        0,
        180,
        360,
        (70, 60, 50),
        -1,
        aa,
    )
    cv2.ellipse(img, (cx, cy - int(r * 0.1)), (r, int(r * 1.15)), 0, 0, 360, dark, -1, aa)
    cv2.ellipse(
        img, (cx, cy + int(r * 0.05)), (int(r * 0.78), r), 0, 0, 360, (150, 180, 225), -1, aa
    )
    cv2.ellipse(
        img, (cx, cy - int(r * 0.62)), (int(r * 0.8), int(r * 0.42)), 0, 180, 360, dark, -1, aa
    )
    ey, ex = cy - int(r * 0.12), int(r * 0.34)
    for s in (-1, 1):
        x = cx + s * ex
        cv2.ellipse(img, (x, ey), (int(r * 0.2), int(r * 0.12)), 0, 0, 360, (90, 100, 130), -1, aa)
        cv2.ellipse(
            img, (x, ey), (int(r * 0.14), int(r * 0.07)), 0, 0, 360, (235, 235, 235), -1, aa
        )
        cv2.circle(img, (x, ey), max(1, int(r * 0.065)), (30, 25, 25), -1, aa)
        brow = max(1, int(r * 0.07))
        cv2.line(
            img,
            (x - int(r * 0.2), ey - int(r * 0.2)),
            (x + int(r * 0.18), ey - int(r * 0.22)),
            dark,
            brow,
            aa,
        )
    cv2.ellipse(
        img,
        (cx, cy + int(r * 0.2)),
        (int(r * 0.1), int(r * 0.06)),
        0,
        0,
        360,
        (110, 130, 180),
        -1,
        aa,
    )
    cv2.ellipse(
        img,
        (cx, cy + int(r * 0.5)),
        (int(r * 0.26), int(r * 0.09)),
        0,
        0,
        360,
        (70, 70, 150),
        -1,
        aa,
    )


def draw_caption(img: NDArray[np.uint8], caption: str) -> None:
    """Up to two lines of white captions with a black outline in the lower third."""
    height, width = img.shape[:2]
    scale = max(width, 160) / 420.0
    thick = max(1, round(scale * 2))
    words, lines, line = caption.split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        (tw, _), _ = cv2.getTextSize(trial, cv2.FONT_HERSHEY_DUPLEX, scale, thick)
        if tw > width * 0.9 and line:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    (_, th), _ = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_DUPLEX, scale, thick)
    y = int(height * 0.78)
    for text in lines[:2]:
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, thick)
        x = max(2, (width - tw) // 2)
        cv2.putText(
            img, text, (x, y), cv2.FONT_HERSHEY_DUPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA
        )
        cv2.putText(
            img, text, (x, y), cv2.FONT_HERSHEY_DUPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA
        )
        y += int(th * 2.0)


def _shot_still(plan: ClipPlan, shot: int, width: int, height: int) -> NDArray[np.uint8]:
    img = _background(plan, shot, width, height)
    if plan.face[shot]:
        r = int(min(width, height) * 0.24)
        cx = width // 2 if height >= width else int(width * 0.3)  # clear of the captions
        draw_face(img, cx, int(height * 0.42), r)
    if plan.text[shot]:
        draw_caption(img, plan.caption)
    return img


def _draw_mover(img: NDArray[np.uint8], plan: ClipPlan, shot: int, t: float) -> None:
    """A disc of the complementary colour sliding back and forth near the top."""
    height, width = img.shape[:2]
    travel = (plan.speed[shot] * t) % 2.0
    x = int(width * (0.1 + 0.8 * (travel if travel <= 1.0 else 2.0 - travel)))
    r = max(3, int(min(width, height) * 0.06))
    colour = tuple(int(255 - c) for c in img[height // 8, x])
    cv2.circle(img, (x, height // 8), r, colour, -1, cv2.LINE_AA)


def frames(
    plan: ClipPlan, width: int, height: int, fps: int, grain: float = 0.0
) -> list[NDArray[np.uint8]]:
    """Every frame of the clip, BGR. ``grain`` (luma sd) adds camera-like noise from a few
    cycled noise fields, so a benchmark clip has a realistic bitrate."""
    stills = [_shot_still(plan, s, width, height) for s in range(len(plan.hues))]
    edges = [0.0, *plan.cut_times]
    noise = [
        np.random.default_rng([plan.seed, k])
        .normal(0.0, grain, (height, width, 1))
        .astype(np.int16)
        for k in range(7 if grain > 0 else 0)
    ]
    out = []
    for i in range(round(plan.duration_s * fps)):
        t = i / fps
        shot = max(k for k, a in enumerate(edges) if t >= a - 1e-9)
        img = stills[shot].copy()
        _draw_mover(img, plan, shot, t - edges[shot])
        if noise:
            img = np.clip(img + noise[i % len(noise)], 0, 255).astype(np.uint8)
        out.append(img)
    return out


# -- sound ------------------------------------------------------------------------------------


def audio(plan: ClipPlan, rate: int = AUDIO_RATE) -> NDArray[np.float32]:
    """Mono audio at ``rate``: leading silence, then music (a chord with a kick on every beat),
    speech-like babble (voiced syllables at ~4 Hz with pauses between words), or both, at the
    planned integrated loudness."""
    n = round(plan.duration_s * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(plan.seed)
    y = np.zeros(n)
    if plan.has_music:
        chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3.0
        beat = 60.0 / plan.tempo_bpm
        phase = t % beat
        kick = np.exp(-phase / 0.03) * np.sin(2 * np.pi * 60.0 * phase)
        y += 0.4 * chord + 0.5 * kick
    if plan.speech:
        pitch = 150.0 + 30.0 * np.sin(2 * np.pi * 0.7 * t)
        voice = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / rate) / k for k in range(1, 8))
        syllable = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 2
        word = (t % 1.1) < 0.8  # a pause after each word
        y += (0.5 if plan.has_music else 1.0) * voice * syllable * word
        y += 0.02 * rng.normal(size=n) * syllable * word  # breath and fricatives
    y[: round(plan.lead_silence_s * rate)] = 0.0
    if not plan.has_audio or not np.any(y):
        return np.zeros(n, np.float32)
    meter = pyloudnorm.Meter(rate)
    measured = meter.integrated_loudness(y[round(plan.lead_silence_s * rate) :])
    y = y * 10 ** ((plan.loudness_lufs - measured) / 20.0)
    out: NDArray[np.float32] = np.clip(y, -1.0, 1.0).astype(np.float32)
    return out


# -- encoding ---------------------------------------------------------------------------------


def colourfulness(img: NDArray[np.uint8]) -> float:
    """Hasler–Süsstrunk M3 of one BGR frame (duplicated here so the truth does not depend on
    the extractor under test)."""
    b, g, r = (img[..., k].astype(np.float64) for k in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def encode(
    pictures: list[NDArray[np.uint8]],
    sound: NDArray[np.float32] | None,
    fps: int,
    *,
    preset: str = "veryfast",
    crf: int = 23,
) -> bytes:
    """H.264 (yuv420p) + AAC mono in MP4, written to memory."""
    height, width = pictures[0].shape[:2]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": preset, "crf": str(crf)}
        stream = None
        if sound is not None:
            stream = container.add_stream("aac", rate=AUDIO_RATE)
            stream.layout = "mono"
        for img in pictures:
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if stream is not None and sound is not None:
            for start in range(0, sound.shape[0], 1024):
                chunk = np.ascontiguousarray(sound[None, start : start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = AUDIO_RATE, start
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return buffer.getvalue()


def render_clip(
    plan: ClipPlan,
    *,
    width: int = 160,
    height: int = 284,
    fps: int = 12,
    preset: str = "veryfast",
    grain: float = 0.0,
) -> RenderedClip:
    """Draw and encode ``plan``; dimensions must be even (yuv420p)."""
    if width % 2 or height % 2:
        raise ValueError("width and height must be even")
    pictures = frames(plan, width, height, fps, grain)
    sound = audio(plan) if plan.has_audio else None
    step = max(1, len(pictures) // 24)
    sample = pictures[::step]
    luma = [float(cv2.cvtColor(p, cv2.COLOR_BGR2GRAY).mean()) / 255.0 for p in sample]
    return RenderedClip(
        data=encode(pictures, sound, fps, preset=preset),
        plan=plan,
        width=width,
        height=height,
        fps=fps,
        raw_brightness=float(np.mean(luma)),
        raw_colourfulness=float(np.mean([colourfulness(p) for p in sample])),
    )
