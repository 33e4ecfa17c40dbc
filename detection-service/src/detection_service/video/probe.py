"""What an uploaded video is, judged before a single frame is decoded.

Like images (imaging/formats.py), a video is refused from its bytes first: the container from
its first bytes (ISO BMFF `ftyp` brands for MP4 and MOV, the EBML DocType for WebM), never
from the name or content type. Only then is it opened, with FFmpeg's demuxer forced to that
container (a file cannot talk FFmpeg into another demuxer by its contents), and its video
stream's codec, frame size and duration are read from the container's headers. Finally every
packet of the video stream is read without decoding it: that proves the file is complete
(truncated uploads fail here, not halfway through the job), gives the exact frame count and
duration, and so the number of frames the sampling will pick, which is the job's total.

Everything here blocks: call it in a worker thread.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import av
import av.error

from detection_service.signatures import Signature, recognise
from objectvision_common.errors import InvalidArgument, PayloadTooLarge, UnsupportedMediaType

SUPPORTED_CONTAINERS = "MP4, MOV or WebM"
# Codec id names (as FFmpeg names the codec, not the decoder) and how people call them.
SUPPORTED_CODECS: dict[str, str] = {
    "h264": "H.264",
    "hevc": "HEVC (H.265)",
    "vp8": "VP8",
    "vp9": "VP9",
    "av1": "AV1",
    "mpeg4": "MPEG-4 Part 2",
}
# Enough of the file's start to tell the container (the WebM DocType sits in the EBML header).
SNIFF_BYTES = 4096
# A sampled timestamp within this of the next sampling instant counts as on time (float noise).
_EPSILON_SECONDS = 1e-6


class VideoContainer(StrEnum):
    MP4 = "mp4"
    MOV = "mov"
    WEBM = "webm"

    @property
    def demuxer(self) -> str:
        """The only FFmpeg demuxer this file is opened with."""
        return "webm" if self is VideoContainer.WEBM else "mov"

    @property
    def content_type(self) -> str:
        return {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}[self.value]


# ISO BMFF brands that are still images or audio, not video: named so the caller knows.
_NOT_VIDEO_BRANDS = {
    b"heic": "a HEIC image",
    b"heix": "a HEIC image",
    b"mif1": "a HEIF image",
    b"msf1": "a HEIF image sequence",
    b"avif": "an AVIF image",
    b"M4A ": "M4A audio",
}
# Classic QuickTime files may start with one of these atoms instead of `ftyp`.
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
# Formats we recognise but do not take, named in the error.
_OTHER_SIGNATURES = (
    Signature(0, b"\xff\xd8\xff", "a JPEG image"),
    Signature(0, b"\x89PNG", "a PNG image"),
    Signature(0, b"GIF8", "a GIF"),
    Signature(0, b"FLV", "FLV video"),
    Signature(0, b"\x00\x00\x01\xba", "MPEG program stream video"),
    Signature(0, b"OggS", "Ogg"),
    Signature(0, b"ID3", "MP3 audio"),
    Signature(0, b"%PDF", "a PDF"),
)


def sniff_container(head: bytes) -> VideoContainer:
    """The container from the file's first bytes; UnsupportedMediaType names anything else."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _NOT_VIDEO_BRANDS:
            raise UnsupportedMediaType(
                f"the file is {_NOT_VIDEO_BRANDS[brand]}, not a video; send {SUPPORTED_CONTAINERS}"
            )
        return VideoContainer.MOV if brand == b"qt  " else VideoContainer.MP4
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return VideoContainer.MOV
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # The EBML header's DocType element (0x4282) says webm or matroska.
        doc_type = head[:64]
        if b"\x42\x82" in doc_type and b"webm" in doc_type:
            return VideoContainer.WEBM
        raise UnsupportedMediaType(
            f"Matroska (MKV) video is not supported; send {SUPPORTED_CONTAINERS}"
        )
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        raise UnsupportedMediaType(f"AVI video is not supported; send {SUPPORTED_CONTAINERS}")
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        raise UnsupportedMediaType(
            f"MPEG transport stream video is not supported; send {SUPPORTED_CONTAINERS}"
        )
    name = recognise(head, _OTHER_SIGNATURES)
    if name is not None:
        raise UnsupportedMediaType(
            f"the file is {name}, not a supported video; send {SUPPORTED_CONTAINERS}"
        )
    raise UnsupportedMediaType(f"the file is not a video; send {SUPPORTED_CONTAINERS}")


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int
    max_seconds: float
    max_frame_pixels: int
    max_fps: float


@dataclass(frozen=True)
class Sampling:
    """At most `fps` frames a second (the first frame, then the first at or after each
    1/fps step), or every `every`-th frame counting from the first. Exactly one is set."""

    fps: float | None = None
    every: int | None = None

    def sampler(self) -> "Sampler":
        return Sampler(self)

    def to_json(self) -> dict[str, float | int | None]:
        return {"fps": self.fps, "every": self.every}


class Sampler:
    """Decides frame by frame, in presentation order, whether a frame is sampled."""

    def __init__(self, sampling: Sampling) -> None:
        self._sampling = sampling
        self._next_seconds = 0.0

    def take(self, index: int, seconds: float) -> bool:
        if self._sampling.every is not None:
            return index % self._sampling.every == 0
        assert self._sampling.fps is not None
        if seconds + _EPSILON_SECONDS < self._next_seconds:
            return False
        period = 1.0 / self._sampling.fps
        # The next instant after this frame, on the grid 0, 1/fps, 2/fps...
        self._next_seconds = (math.floor(seconds / period + _EPSILON_SECONDS) + 1) * period
        return True


def sampling_from(*, fps: float, every: int, default_fps: float, limits: VideoLimits) -> Sampling:
    """A request's sampling (zeros: the default fps), validated."""
    if fps and every:
        raise InvalidArgument("give fps or every, not both")
    if every:
        if every < 1:
            raise InvalidArgument("every must be at least 1 (every frame)")
        return Sampling(every=every)
    chosen = fps or default_fps
    if math.isnan(chosen) or not 0 < chosen <= limits.max_fps:
        raise InvalidArgument(f"fps must be above 0 and at most {limits.max_fps:g}")
    return Sampling(fps=chosen)


# What a probe found about the file itself besides its container: a video_jobs column and a
# VideoInfo field of the same name each.
_FILE_FIELDS = ("codec", "width", "height", "duration_seconds", "frame_rate", "frame_count")


@dataclass(frozen=True)
class VideoProbe:
    container: VideoContainer
    codec: str
    width: int
    height: int
    duration_seconds: float
    frame_rate: float
    frame_count: int
    sampled_frames: int

    def file_fields(self) -> dict[str, Any]:
        """What was found about the file, the container by its name, keyed as the video_jobs
        columns and the VideoInfo reply both spell it, so that storing and answering copy the
        same fields. Without `sampled_frames`: that follows the sampling, and the job's total
        keeps it."""
        return {
            "container": self.container.value,
            **{name: getattr(self, name) for name in _FILE_FIELDS},
        }

    @classmethod
    def from_file_fields(cls, fields: Mapping[str, Any], *, sampled_frames: int) -> "VideoProbe":
        """The probe again from what `file_fields` gave (a stored video_jobs row)."""
        return cls(
            container=VideoContainer(fields["container"]),
            sampled_frames=sampled_frames,
            **{name: fields[name] for name in _FILE_FIELDS},
        )


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} minutes"


def probe(
    path: Path, container: VideoContainer, limits: VideoLimits, sampling: Sampling
) -> VideoProbe:
    """Open the file with its container's demuxer only, check the video stream, read every
    packet without decoding. Raises the domain error that says what is wrong."""
    try:
        with av.open(str(path), mode="r", format=container.demuxer) as opened:
            return _probe(opened, container, limits, sampling)
    except av.error.FFmpegError as error:
        raise InvalidArgument(
            f"the {container.name} file is corrupt or truncated and cannot be read"
            f" ({error.strerror or type(error).__name__})"
        ) from None


def _probe(
    opened: av.container.InputContainer,
    container: VideoContainer,
    limits: VideoLimits,
    sampling: Sampling,
) -> VideoProbe:
    if not opened.streams.video:
        raise UnsupportedMediaType(f"the {container.name} file has no video stream")
    stream = opened.streams.video[0]
    codec = stream.codec_context.codec.canonical_name if stream.codec_context else ""
    if codec not in SUPPORTED_CODECS:
        raise UnsupportedMediaType(
            f"the video codec {codec or 'unknown'} is not supported; send"
            f" {', '.join(SUPPORTED_CODECS.values())} video in {SUPPORTED_CONTAINERS}"
        )
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise InvalidArgument(f"the {container.name} file does not say the video's frame size")
    if width * height > limits.max_frame_pixels:
        raise PayloadTooLarge(
            f"the video's frames are {width}x{height} = {width * height} pixels; at most"
            f" {limits.max_frame_pixels} pixels per frame are accepted"
        )
    if opened.duration is not None and opened.duration / 1_000_000 > limits.max_seconds + 1:
        raise PayloadTooLarge(
            f"the video is {_seconds(opened.duration / 1_000_000)} long; at most"
            f" {_seconds(limits.max_seconds)} are accepted"
        )
    time_base = stream.time_base
    assert time_base is not None
    # Presentation times of every packet (decode order), then sorted: frames leave the
    # decoder in presentation order. Packets only: nothing is decoded here.
    times: list[int] = []
    end: int | None = None
    lowest: int | None = None
    for packet in opened.demux(stream):
        if packet.size == 0:
            continue
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None:
            raise InvalidArgument(f"the {container.name} file has video frames without timestamps")
        times.append(stamp)
        finish = stamp + (packet.duration or 0)
        end = finish if end is None else max(end, finish)
        lowest = stamp if lowest is None else min(lowest, stamp)
        if float((stamp - lowest) * time_base) > limits.max_seconds + 1:
            raise PayloadTooLarge(
                f"the video is longer than {_seconds(limits.max_seconds)}, the most accepted"
            )
    if not times:
        raise InvalidArgument(f"the {container.name} file has no video frames")
    times.sort()
    start = times[0]
    duration = float((max(end or start, times[-1]) - start) * time_base)
    if duration > limits.max_seconds:
        raise PayloadTooLarge(
            f"the video is {_seconds(duration)} long; at most {_seconds(limits.max_seconds)}"
            " are accepted"
        )
    sampler = sampling.sampler()
    sampled = sum(
        sampler.take(index, float((stamp - start) * time_base)) for index, stamp in enumerate(times)
    )
    rate = stream.average_rate or stream.guessed_rate
    frame_rate = float(rate) if rate else (len(times) / duration if duration else 0.0)
    return VideoProbe(
        container=container,
        codec=codec,
        width=width,
        height=height,
        duration_seconds=round(duration, 6),
        frame_rate=round(frame_rate, 6),
        frame_count=len(times),
        sampled_frames=sampled,
    )
