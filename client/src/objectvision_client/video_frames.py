"""A video's frames as JPEGs, for a live stream (ADR 0059): a recording, or anything FFmpeg
opens, sent frame by frame as a camera would send them.

Read and encoded with PyAV, the client's optional `video` extra
(`pip install 'objectvision-client[video]'`), so that the client itself stays two small
dependencies: FFmpeg's own MJPEG encoder turns each decoded frame into a JPEG without
Pillow or OpenCV. Only the command's `live --video` imports this module.
"""

from collections.abc import Iterator
from fractions import Fraction
from types import TracebackType
from typing import Self

import av
import av.container
import av.video

# FFmpeg's quantiser range for the JPEGs (2 best, 31 worst): near the source's detail, about
# 60 KB a 640x480 frame; the model sees 640 pixels, so finer costs bandwidth for nothing.
_JPEG_QMIN, _JPEG_QMAX = 2, 4
# The encoder's clock; MJPEG frames stand alone, so it only has to exist.
_TIME_BASE = Fraction(1, 1000)


class VideoUnreadable(Exception):
    """The source could not be opened or decoded as a video; the message says why."""


class VideoFrames:
    """The frames of `source`'s first video stream, every `every`-th from the first, each
    as one JPEG's bytes; `indices` holds the index in the video of each frame given so far,
    in order (the n-th frame sent is `indices[n - 1]`)."""

    def __init__(self, source: str, *, every: int = 1) -> None:
        if every < 1:
            raise ValueError("every is at least 1")
        self.source = source
        self.every = every
        self.indices: list[int] = []
        try:
            self._container: av.container.InputContainer = av.open(source, mode="r")
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoUnreadable(f"{source}: cannot open it as a video: {exc}") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoUnreadable(f"{source}: has no video stream")
        self._stream: av.video.VideoStream = self._container.streams.video[0]

    @property
    def frame_rate(self) -> float | None:
        """Frames a second of what is sent (the video's rate over `every`); None when the
        container does not say."""
        rate = self._stream.average_rate or self._stream.guessed_rate
        return float(rate) / self.every if rate else None

    def __iter__(self) -> Iterator[bytes]:
        encoder: av.VideoCodecContext | None = None
        try:
            for index, frame in enumerate(self._container.decode(self._stream)):
                if index % self.every:
                    continue
                if encoder is None:
                    encoder = av.CodecContext.create("mjpeg", "w")
                    encoder.width, encoder.height = frame.width, frame.height
                    encoder.pix_fmt = "yuvj420p"
                    encoder.time_base = _TIME_BASE
                    encoder.options = {"qmin": str(_JPEG_QMIN), "qmax": str(_JPEG_QMAX)}
                    encoder.open()
                packets = encoder.encode(frame.reformat(format="yuvj420p"))
                self.indices.append(index)
                yield b"".join(bytes(packet) for packet in packets)
        except av.error.FFmpegError as exc:
            raise VideoUnreadable(f"{self.source}: cannot decode it: {exc}") from None

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
