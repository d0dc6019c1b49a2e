"""Small video files made with PyAV, for the DNA extractor and its endpoint."""

from __future__ import annotations

import io

import av
import numpy as np


def synthetic_video(
    *,
    seconds: float = 1.0,
    size: tuple[int, int] = (64, 48),
    fps: int = 6,
    audio_s: float = 0.0,
    video: bool = True,
    fmt: str = "mp4",
) -> bytes:
    """A small file made with PyAV: grey frames (H.264) and/or a 440 Hz tone (AAC)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        vstream = None
        if video:
            vstream = container.add_stream("libx264", rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = size[0], size[1], "yuv420p"
            vstream.options = {"preset": "ultrafast"}
        astream = None
        if audio_s > 0:
            astream = container.add_stream("aac", rate=22_050)
            astream.layout = "mono"
        if vstream is not None:
            for i in range(round(seconds * fps)):
                img = np.full((size[1], size[0], 3), (i * 37) % 256, np.uint8)
                for packet in vstream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                    container.mux(packet)
            for packet in vstream.encode():
                container.mux(packet)
        if astream is not None:
            n = int(audio_s * 22_050)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 22_050)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = np.ascontiguousarray(tone[None, start : start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 22_050, start
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return buffer.getvalue()
