"""One representative frame of an ad's video, kept when its DNA is extracted from the video.

The frame is the one nearest the end of the hook window (3 s) or the middle of a shorter clip:
what a viewer has seen by the time they decide to stay. It is taken from the frames the
extractor already decoded (no second decode), encoded as JPEG with OpenCV, and stored through
fsspec under the artifacts URL (a local folder by default, ``s3://``/``gs://`` by URL), keyed by
account and variant: ``<artifacts>/thumbnails/account-<id>/variant-<id>.jpg``. A write goes to a
temporary name first and is moved into place, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np

from adflywheel.loops.dna.video import FrameSample

THUMBNAIL_QUALITY = 80
HOOK_END_S = 3.0
MAX_THUMBNAIL_BYTES = 2_000_000  # a frame at the analysis width is a few tens of kB


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """A JPEG frame and the time (s) in the clip it was taken at."""

    jpeg: bytes
    at_s: float
    width: int
    height: int


def frame_time(times: np.ndarray[Any, Any], duration_s: float) -> int:
    """The index of the sampled frame nearest the end of the hook window, or the middle of a
    clip shorter than two hook windows."""
    if len(times) == 0:
        raise ValueError("no frames to choose from")
    target = min(HOOK_END_S, duration_s / 2.0)
    return int(np.argmin(np.abs(np.asarray(times, float) - target)))


def take_thumbnail(sample: FrameSample, quality: int = THUMBNAIL_QUALITY) -> Thumbnail:
    """Encode the representative frame of a decoded sample as JPEG (OpenCV: the ``[dna]`` extra,
    present whenever a video could be decoded at all)."""
    import cv2

    index = frame_time(sample.times, sample.duration_s)
    frame = sample.frames[index]
    ok, encoded = cv2.imencode(".jpg", frame, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("the frame could not be encoded as JPEG")
    height, width = frame.shape[:2]
    return Thumbnail(bytes(encoded.tobytes()), round(float(sample.times[index]), 3), width, height)


class ThumbnailStore:
    """Thumbnails of every account under one artifacts URL."""

    def __init__(self, artifacts_url: str) -> None:
        fs, root = fsspec.core.url_to_fs(artifacts_url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = f"{root.rstrip('/')}/thumbnails"

    def key(self, account_id: int, variant_id: int) -> str:
        """The path relative to the artifacts root (what the DNA document records)."""
        return f"thumbnails/account-{int(account_id)}/variant-{int(variant_id)}.jpg"

    def _path(self, account_id: int, variant_id: int) -> str:
        return f"{self.root}/account-{int(account_id)}/variant-{int(variant_id)}.jpg"

    def write(self, account_id: int, variant_id: int, thumbnail: Thumbnail) -> dict[str, Any]:
        """Store the frame (replacing an older one) and answer what the DNA document records."""
        path = self._path(account_id, variant_id)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with self.fs.open(temporary, "wb") as handle:
            handle.write(thumbnail.jpeg)
        self.fs.mv(temporary, path)
        return {
            "key": self.key(account_id, variant_id),
            "sha256": hashlib.sha256(thumbnail.jpeg).hexdigest(),
            "at_s": thumbnail.at_s,
            "width": thumbnail.width,
            "height": thumbnail.height,
        }

    def read(self, account_id: int, variant_id: int) -> bytes | None:
        """The stored JPEG, or None when there is none (never another account's: the path is
        built from the account id the caller was granted)."""
        try:
            data = bytes(self.fs.cat_file(self._path(account_id, variant_id)))
        except FileNotFoundError:
            return None
        return data if 0 < len(data) <= MAX_THUMBNAIL_BYTES else None
