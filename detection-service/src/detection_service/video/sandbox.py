"""FFmpeg reads uploaded videos in a child process that holds nothing worth taking (ADR 0040).

A video upload is parsed by FFmpeg's demuxers and decoded by its decoders, code with a long
history of memory-safety flaws reached by crafted files. In the service's own process a flaw
would run with the database URL, the service-token secret and the storage in reach. So the
probe at upload and the decoding of a video job run in `python -m
detection_service.video.sandbox`, a child started with none of the service's settings in its
environment (no secret is inherited), which limits itself before it opens the file: address space
(VIDEO_SANDBOX_MEMORY_MB), CPU time (VIDEO_SANDBOX_CPU_SECONDS, so a file that makes a decoder
loop ends), no core files and no file it may create or grow. A crash, a limit hit or a hang of
the child fails that one upload or job with a clear reason; the service goes on.

The child speaks through its stdout in messages (sandbox/channel.py): a JSON header and, for
a frame, the raw BGR pixels and the JPEG sent to the model. The parent checks every size
against the probed frame before it reads the bytes, so a child taken over can lie about
frames but not reach into the service.
"""

import json
import logging
import math
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import av.error
import numpy as np

from detection_service.sandbox import channel
from detection_service.sandbox.confinement import confine
from detection_service.sandbox.limits import SandboxLimits
from detection_service.video.decoding import DecodedFrame, FrameReader
from detection_service.video.probe import (
    Sampling,
    VideoContainer,
    VideoLimits,
    VideoProbe,
    probe,
)
from objectvision_common.errors import (
    DomainError,
    InvalidArgument,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

_MODULE = "detection_service.video.sandbox"


class VideoDecodeError(Exception):
    """The video could not be opened or stopped decoding; the message says so to its owner."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _request(path: Path, container: VideoContainer, sampling: Sampling) -> dict[str, Any]:
    return {"path": str(path), "container": container.value, "sampling": sampling.to_json()}


def probe_in_sandbox(
    path: Path,
    container: VideoContainer,
    limits: VideoLimits,
    sampling: Sampling,
    sandbox: SandboxLimits,
) -> VideoProbe:
    """`probe` in a child (blocking: call in a thread). Raises the child's refusal, or
    InvalidArgument when the child crashed or hit a limit on this file."""
    child = channel.start(
        _MODULE,
        "probe",
        {**_request(path, container, sampling), "video_limits": asdict(limits)},
        sandbox,
    )
    assert child.stdout is not None
    with child.stdout:
        header = channel.read_header(child.stdout)
    ended = channel.how_it_ended(child)
    if header is not None and "error" in header:
        refusal = channel.refusal(header["error"])
        if refusal is not None:
            raise refusal
    found = header.get("probe") if header is not None else None
    if isinstance(found, dict):
        try:
            return VideoProbe.from_file_fields(found, sampled_frames=int(found["sampled_frames"]))
        except (KeyError, TypeError, ValueError):
            pass
    raise InvalidArgument(f"the {container.name} file could not be read: {ended}")


class SandboxedFrameReader:
    """The sampled frames of one video, decoded by a child one at a time (blocking: call in a
    thread). Frames arrive in presentation order; the pipe holds the child back while the
    job is busy, so at most one frame waits in it."""

    def __init__(
        self,
        path: Path,
        container: VideoContainer,
        sampling: Sampling,
        *,
        width: int,
        height: int,
        sandbox: SandboxLimits,
    ) -> None:
        self._width, self._height = width, height
        self._child = channel.start(_MODULE, "frames", _request(path, container, sampling), sandbox)
        # `close` may come from another thread while `next_sampled` waits on the pipe.
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        """The child's process id, for whoever watches it (an operator, a test)."""
        return self._child.pid

    def next_sampled(self) -> DecodedFrame | None:
        """The next frame the sampling picks; None at the end of the video. VideoDecodeError
        when the video cannot be opened or stops decoding, or the child crashes or lies."""
        with self._lock:
            stdout = self._child.stdout
            assert stdout is not None
            header = channel.read_header(stdout)
            if header is None:
                raise VideoDecodeError(
                    f"the video stopped decoding: {channel.how_it_ended(self._child)}"
                )
            if header.get("end") is True:
                return None
            error = header.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                raise VideoDecodeError(error["message"])
            return self._frame(stdout, header.get("frame"))

    def _frame(self, stdout: IO[bytes], frame: object) -> DecodedFrame:
        if not isinstance(frame, dict):
            raise VideoDecodeError("the video decoder answered nonsense")
        try:
            index, seconds = int(frame["index"]), float(frame["seconds"])
            width, height = int(frame["width"]), int(frame["height"])
            jpeg_bytes = int(frame["jpeg_bytes"])
        except (KeyError, TypeError, ValueError):
            raise VideoDecodeError("the video decoder answered nonsense") from None
        pixels = self._width * self._height
        if (width, height) != (self._width, self._height) or not 0 < jpeg_bytes <= 3 * pixels:
            raise VideoDecodeError(
                f"the video changes its frame size to {width}x{height} at frame {index}; only"
                f" videos of one frame size ({self._width}x{self._height}) are supported"
            )
        if not math.isfinite(seconds):
            raise VideoDecodeError(f"frame {index} of the video has no usable time")
        bgr = channel.read_exactly(stdout, 3 * pixels)
        jpeg = channel.read_exactly(stdout, jpeg_bytes)
        if bgr is None or jpeg is None:
            raise VideoDecodeError(
                f"the video stopped decoding: {channel.how_it_ended(self._child)}"
            )
        image = np.frombuffer(bgr, dtype=np.uint8).reshape(height, width, 3)
        return DecodedFrame(index, seconds, image, jpeg)

    def close(self) -> None:
        """Stop the child (at once: what it would still decode is not wanted) and reap it."""
        self._child.kill()
        self._child.wait()
        with self._lock:
            for stream in (self._child.stdout, self._child.stdin):
                if stream is not None:
                    stream.close()


# ---- the child ------------------------------------------------------------------------------


def _child_probe(request: Mapping[str, Any], out: IO[bytes]) -> None:
    container = VideoContainer(request["container"])
    try:
        found = probe(
            Path(request["path"]),
            container,
            VideoLimits(**request["video_limits"]),
            Sampling(**request["sampling"]),
        )
    except DomainError as error:
        channel.send(out, {"error": {"code": error.code, "message": error.message}})
        return
    channel.send(out, {"probe": {**found.file_fields(), "sampled_frames": found.sampled_frames}})


def _child_frames(request: Mapping[str, Any], out: IO[bytes]) -> None:
    try:
        reader = FrameReader(
            Path(request["path"]),
            VideoContainer(request["container"]),
            Sampling(**request["sampling"]),
        )
    except av.error.FFmpegError as error:
        channel.send(out, {"error": {"message": f"the video cannot be opened: {error.strerror}"}})
        return
    try:
        while True:
            try:
                frame = reader.next_sampled()
            except av.error.FFmpegError as error:
                channel.send(
                    out, {"error": {"message": f"the video stopped decoding: {error.strerror}"}}
                )
                return
            if frame is None:
                channel.send(out, {"end": True})
                return
            height, width = frame.bgr.shape[:2]
            header = {
                "frame": {
                    "index": frame.index,
                    "seconds": frame.seconds,
                    "width": width,
                    "height": height,
                    "jpeg_bytes": len(frame.jpeg),
                }
            }
            channel.send(out, header, np.ascontiguousarray(frame.bgr).tobytes(), frame.jpeg)
    finally:
        reader.close()


def main() -> None:
    """`python -m detection_service.video.sandbox probe|frames`, the request on stdin."""
    mode = sys.argv[1]
    request = json.loads(sys.stdin.buffer.read())
    channel.limit_self(request["limits"])
    confinement = confine(Path(request["path"]))
    out = sys.stdout.buffer
    if request["limits"]["require_confinement"] and not confinement.complete:
        print(f"video sandbox: {confinement.describe()}", file=sys.stderr)
        sys.exit(channel.UNCONFINED_EXIT)
    try:
        if mode == "probe":
            _child_probe(request, out)
        else:
            _child_frames(request, out)
    except BrokenPipeError:
        pass  # the parent closed the reader: nothing more is wanted
    except MemoryError:
        message = "the video needs more memory than its decoder may use (VIDEO_SANDBOX_MEMORY_MB)"
        channel.send(out, {"error": {"code": InvalidArgument.code, "message": message}})


if __name__ == "__main__":
    main()
