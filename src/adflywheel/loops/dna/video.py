"""Visual and hook measures from sampled, decoded frames (pure: arrays in, numbers out).

Frames arrive as BGR ``uint8`` arrays already scaled down for analysis, with their timestamps;
decoding is the shell's job (``dna_service``). Sampling a few frames per second is enough: a cut
is a large change between consecutive samples, and light, colour, faces and text change slowly.
OpenCV is the ``[dna]`` extra: it is imported inside the functions that analyse frames, so the
rest (``aspect_class``, ``FrameSample``) serves a lean install.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Frame = NDArray[np.uint8]
EARLY_S = 3.0
# Cut score (mean absolute HSV change, 0..255) a sample pair must reach, and how far it must
# stand above the median score of its neighbours (an adaptive test, robust to fast motion).
CUT_THRESHOLD = 20.0
CUT_RATIO = 3.0
# Stroke edges a row of caption text crosses per letter-height of width.
STROKES_PER_HEIGHT = 0.9


class FaceDetector(Protocol):
    def __call__(self, gray: Frame) -> list[tuple[int, int, int, int]]: ...


@dataclass(frozen=True, slots=True)
class FrameSample:
    """Sampled frames (BGR, analysis size), their times (s), and the source's metadata."""

    frames: Sequence[Frame]
    times: NDArray[np.float64]
    width: int
    height: int
    duration_s: float


def colourfulness(frame: Frame) -> float:
    """Hasler & Süsstrunk (2003) M3: σ_rgyb + 0.3·μ_rgyb with rg = R − G and
    yb = ½(R + G) − B, signed (the published formula, not the absolute-value variant)."""
    b, g, r = (frame[..., k].astype(np.float32) for k in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = float(np.hypot(rg.std(), yb.std()))
    mu = float(np.hypot(rg.mean(), yb.mean()))
    return sigma + 0.3 * mu


def cut_scores(frames: Sequence[Frame]) -> NDArray[np.float64]:
    """Mean absolute change of H, S and V between consecutive samples (PySceneDetect's content
    score; hue difference taken on the circle). Element i compares samples i and i + 1."""
    import cv2

    if len(frames) < 2:
        return np.zeros(0)
    hsv = [cv2.cvtColor(_small(f), cv2.COLOR_BGR2HSV).astype(np.int16) for f in frames]
    out = np.empty(len(hsv) - 1)
    for i in range(len(hsv) - 1):
        d = np.abs(hsv[i + 1] - hsv[i])
        dh = np.minimum(d[..., 0], 180 - d[..., 0]) * 2  # OpenCV hue is 0..179
        out[i] = (dh.mean() + d[..., 1].mean() + d[..., 2].mean()) / 3.0
    return out


def detect_cuts(scores: NDArray[np.float64], times: NDArray[np.float64]) -> list[float]:
    """Cut times: the first sample after a change whose score passes ``CUT_THRESHOLD`` and is
    ``CUT_RATIO`` times the median of the four scores around it (so a cut is placed at most one
    sampling interval late)."""
    cuts = []
    for i, s in enumerate(scores):
        around = np.concatenate([scores[max(0, i - 2) : i], scores[i + 1 : i + 3]])
        local = float(np.median(around)) if around.size else 0.0
        if s >= CUT_THRESHOLD and s >= CUT_RATIO * local:
            cuts.append(round(float(times[i + 1]), 3))
    return cuts


def motion_per_second(
    frames: Sequence[Frame], times: NDArray[np.float64], cut_pairs: set[int]
) -> NDArray[np.float64]:
    """Mean absolute luma change per second (0..1 scale) between consecutive samples, NaN across
    a cut (a cut is editing, not motion)."""
    import cv2

    gray = [cv2.cvtColor(_small(f), cv2.COLOR_BGR2GRAY).astype(np.float32) for f in frames]
    out = np.full(max(len(gray) - 1, 0), np.nan)
    for i in range(len(gray) - 1):
        if i in cut_pairs:
            continue
        dt = max(float(times[i + 1] - times[i]), 1e-3)
        out[i] = float(np.abs(gray[i + 1] - gray[i]).mean()) / 255.0 / dt
    return out


def text_boxes(frame: Frame) -> list[tuple[int, int, int, int]]:
    """Caption-like regions without a model: morphological gradient, Otsu, a horizontal closing
    that joins letters into lines, then boxes that are wide, of letter height, and striped: rows
    through the middle of a line of letters cross many strokes (at least ``STROKES_PER_HEIGHT``
    edges per box-height of width), where shapes and outlines cross two or four."""
    import cv2

    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    grad = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    _, binary = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    if float(binary.mean()) > 0.5 * 255:  # a gradient everywhere is texture, not text
        return []
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, width // 25), 1))
    joined = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel)
    contours, _ = cv2.findContours(joined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thin = cv2.Canny(gray, 60, 160)  # one-pixel edges keep small letters' strokes apart
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if h < max(5, height // 80) or h > height // 3 or w < 2.0 * h or w < width // 6:
            continue
        fill = float(binary[y : y + h, x : x + w].mean()) / 255.0
        if not 0.2 <= fill <= 0.85:
            continue
        rows = thin[y + h // 4 : y + max(h // 4 + 1, 3 * h // 4), x : x + w]
        edges = float((rows > 0).sum(axis=1).mean())
        line_h = min(h, max(5, height // 30))
        if edges * line_h / w >= STROKES_PER_HEIGHT:
            boxes.append((x, y, w, h))
    return boxes


def palette(frames: Sequence[Frame], k: int = 3) -> list[dict[str, float | str]]:
    """The ``k`` most common colours: pixels binned on a 4-level-per-channel cube (64 bins),
    each bin reported by its mean colour and share. Deterministic, unlike k-means."""
    pixels = np.concatenate([_small(f, 48).reshape(-1, 3) for f in frames]).astype(np.int32)
    bins = (pixels[:, 0] // 64) * 16 + (pixels[:, 1] // 64) * 4 + pixels[:, 2] // 64
    counts = np.bincount(bins, minlength=64)
    out: list[dict[str, float | str]] = []
    for b in np.argsort(-counts, kind="stable")[:k]:
        if counts[b] == 0:
            break
        bgr = pixels[bins == b].mean(axis=0)
        hexcode = "#{:02x}{:02x}{:02x}".format(*(round(v) for v in bgr[::-1]))
        out.append({"hex": hexcode, "share": round(float(counts[b]) / len(bins), 4)})
    return out


def aspect_class(width: int, height: int) -> str:
    """The nearest of Meta's video shapes, or ``other`` when none is within 8%."""
    ratio = width / height if height else 0.0
    shapes = {"9:16": 9 / 16, "4:5": 4 / 5, "1:1": 1.0, "16:9": 16 / 9}
    name, value = min(shapes.items(), key=lambda kv: abs(np.log(ratio / kv[1])) if ratio else 9)
    return name if ratio and abs(ratio / value - 1.0) <= 0.08 else "other"


@dataclass(frozen=True, slots=True)
class VisualResult:
    visual: dict[str, object]
    hook: dict[str, object]


def _checkpoints(times: NDArray[np.float64], step_s: float, early_step_s: float) -> list[int]:
    """Indices of the first sample at or after each ``step_s`` tick (``early_step_s`` inside the
    first 3 s): faces and text change slowly, and the face detector is the costly part."""
    picked: list[int] = []
    next_t = 0.0
    for i, t in enumerate(times):
        if t + 1e-6 >= next_t:
            picked.append(i)
            step = early_step_s if t < EARLY_S else step_s
            next_t = (np.floor(t / step + 1e-6) + 1) * step
    return picked


def analyse(
    sample: FrameSample,
    faces: FaceDetector | None,
    step_s: float = 1.0,
    early_step_s: float = 0.34,
) -> VisualResult:
    """Visual DNA and the visual part of hook DNA. Faces and text are looked for once per
    ``step_s`` (every ``early_step_s`` in the first 3 s)."""
    import cv2

    frames, times = sample.frames, sample.times
    n = len(frames)
    if n == 0:
        raise ValueError("no frames were decoded")
    small = [_small(f) for f in frames]
    scores = cut_scores(small)
    cuts = detect_cuts(scores, times)
    mids = [round(float(times[i + 1]), 3) for i in range(len(scores))]
    motion = motion_per_second(small, times, {i for i, m in enumerate(mids) if m in cuts})
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in small]
    luma = np.array([g.mean() for g in gray]) / 255.0
    spread = np.array([g.std() for g in gray]) / 255.0
    colour = np.array([colourfulness(f) for f in small])

    checked = _checkpoints(times, step_s, early_step_s)
    face_on = np.zeros(n, bool)
    face_area = np.zeros(n)
    text_on = np.zeros(n, bool)
    text_area = np.zeros(n)
    for i in checked:
        frame = frames[i]
        area = float(frame.shape[0] * frame.shape[1])
        if faces is not None:
            found = faces(np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), np.uint8))
            face_on[i] = bool(found)
            face_area[i] = sum(w * h for _, _, w, h in found) / area
        boxes = text_boxes(frame)
        text_on[i] = bool(boxes)
        text_area[i] = sum(w * h for _, _, w, h in boxes) / area
    idx = np.array(checked)
    early_idx = idx[times[idx] < EARLY_S]
    early_pairs = np.array([i for i in range(len(motion)) if times[i + 1] <= EARLY_S + 1e-6])
    duration = max(sample.duration_s, float(times[-1]) if n else 0.0, 1e-6)

    def _mean(values: NDArray[np.float64]) -> float:
        finite = values[np.isfinite(values)]
        return float(finite.mean()) if finite.size else 0.0

    visual: dict[str, object] = {
        "duration_s": round(float(duration), 3),
        "width": int(sample.width),
        "height": int(sample.height),
        "aspect_ratio": aspect_class(sample.width, sample.height),
        "shot_count": len(cuts) + 1,
        "cut_times_s": cuts,
        "cuts_per_10s": round(10.0 * len(cuts) / duration, 4),
        "mean_shot_s": round(duration / (len(cuts) + 1), 4),
        "brightness": round(float(luma.mean()), 4),
        "contrast": round(float(spread.mean()), 4),
        "colorfulness": round(float(colour.mean()), 3),
        "palette": palette([frames[i] for i in np.linspace(0, n - 1, min(n, 8)).astype(int)]),
        "motion_energy": round(_mean(motion), 5),
        "face_share": round(float(face_on[idx].mean()), 4) if faces is not None else None,
        "face_area": round(float(face_area[idx].mean()), 4) if faces is not None else None,
        "text_share": round(float(text_on[idx].mean()), 4),
        "text_area": round(float(text_area[idx].mean()), 4),
    }
    first_cut = cuts[0] if cuts else None
    hook: dict[str, object] = {
        "time_to_first_cut_s": first_cut,
        "cuts_in_first_3s": sum(1 for c in cuts if c < EARLY_S),
        "early_motion": round(_mean(motion[early_pairs]), 5) if early_pairs.size else 0.0,
        "early_face": bool(face_on[early_idx].any()) if faces is not None else None,
        "early_text": bool(text_on[early_idx].any()),
    }
    return VisualResult(visual=visual, hook=hook)


def _small(frame: Frame, width: int = 96) -> Frame:
    """A copy at most ``width`` pixels wide for whole-frame statistics (cheap and enough)."""
    import cv2

    h, w = frame.shape[:2]
    if w <= width:
        return frame
    out: Frame = np.asarray(
        cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA),
        np.uint8,
    )
    return out
