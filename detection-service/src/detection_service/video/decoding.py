"""Decoding one video's sampled frames with PyAV: what the sandbox child runs (ADR 0040).

Only `detection_service.video.sandbox`'s child process runs it, so FFmpeg's decoders never
run on an upload inside the service's own process.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from detection_service.pipeline.annotate import encode_jpeg
from detection_service.video.probe import Sampling, VideoContainer

# Frames go to the model as JPEG: near-lossless, a few hundred KB for a 1080p frame.
_FRAME_JPEG_QUALITY = 95


@dataclass(frozen=True)
class DecodedFrame:
    index: int
    seconds: float
    bgr: np.ndarray
    jpeg: bytes


class FrameReader:
    """The sampled frames of one video, decoded one at a time (blocking: call in a thread).

    A lock keeps `close` from freeing the decoder while a cancelled caller's thread is still
    inside `next_sampled` (cancelling an awaited executor call does not stop its thread).
    """

    def __init__(self, path: Path, container: VideoContainer, sampling: Sampling) -> None:
        self._lock = threading.Lock()
        self._container = av.open(str(path), mode="r", format=container.demuxer)
        stream = self._container.streams.video[0]
        self._rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        self._frames = self._container.decode(stream)
        self._sampler = sampling.sampler()
        self._index = -1
        self._start: float | None = None

    def next_sampled(self) -> DecodedFrame | None:
        """The next frame the sampling picks; None at the end of the video."""
        with self._lock:
            return self._next_sampled()

    def _next_sampled(self) -> DecodedFrame | None:
        for frame in self._frames:
            self._index += 1
            if frame.time is not None:
                if self._start is None:
                    self._start = frame.time
                seconds = frame.time - self._start
            else:
                seconds = self._index / self._rate if self._rate else 0.0
            if not self._sampler.take(self._index, seconds):
                continue
            bgr = frame.to_ndarray(format="bgr24")
            return DecodedFrame(
                self._index, round(seconds, 6), bgr, encode_jpeg(bgr, _FRAME_JPEG_QUALITY)
            )
        return None

    def close(self) -> None:
        with self._lock:
            self._container.close()
