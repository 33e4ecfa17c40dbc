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

The child speaks through its stdout in messages: four bytes of length, a JSON header, and for
a frame the raw BGR pixels and the JPEG sent to the model. The parent never unpickles or
evaluates what the child says, and checks every size against the probed frame before it reads
the bytes, so a child taken over can lie about frames but not reach into the service.
"""

import asyncio
import json
import logging
import math
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import av.error
import numpy as np

from detection_service.video.confinement import Confinement, Layer, confine
from detection_service.video.decoding import DecodedFrame, FrameReader
from detection_service.video.probe import (
    Sampling,
    VideoContainer,
    VideoLimits,
    VideoProbe,
    probe,
)
from detection_service.video.sandbox_limits import SandboxLimits
from objectvision_common.errors import (
    DomainError,
    InvalidArgument,
    PayloadTooLarge,
    UnsupportedMediaType,
)

if TYPE_CHECKING:
    from prometheus_client import Gauge

logger = logging.getLogger(__name__)

_MODULE = "detection_service.video.sandbox"
_LENGTH = struct.Struct(">I")
# A header is a few numbers and a message; anything longer is not one.
_MAX_HEADER_BYTES = 64 * 1024
# What the child may tell the parent went wrong with the file, by the error code it names.
_REFUSALS: Mapping[str, type[DomainError]] = {
    error.code: error for error in (InvalidArgument, PayloadTooLarge, UnsupportedMediaType)
}
# How long a child that stopped answering has to exit before it is killed.
_EXIT_WAIT_S = 5.0
# Only what a Python interpreter needs to start: no secret of the service's environment.
_PASSED_ENVIRONMENT = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ")
# The child's exit status when VIDEO_SANDBOX_REQUIRE_CONFINEMENT is on and the kernel could
# not confine it: it has not opened the video.
_UNCONFINED_EXIT = 78


class VideoDecodeError(Exception):
    """The video could not be opened or stopped decoding; the message says so to its owner."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _environment() -> dict[str, str]:
    return {name: os.environ[name] for name in _PASSED_ENVIRONMENT if name in os.environ}


def _start(mode: str, request: dict[str, Any], limits: SandboxLimits) -> "subprocess.Popen[bytes]":
    """The child, its request written and its stdin closed; its stderr is the service's, so
    FFmpeg's own complaints reach the service log."""
    child = subprocess.Popen(
        [sys.executable, "-m", _MODULE, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=_environment(),
        close_fds=True,
    )
    assert child.stdin is not None
    try:
        child.stdin.write(json.dumps({**request, "limits": asdict(limits)}).encode())
        child.stdin.close()
    except BrokenPipeError:
        pass  # the child died at once; reading its answer says so
    return child


def _request(path: Path, container: VideoContainer, sampling: Sampling) -> dict[str, Any]:
    return {"path": str(path), "container": container.value, "sampling": sampling.to_json()}


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def _read_header(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message's header; None at the end of the child's output or for one that is
    not a header (the child is then treated as crashed)."""
    prefix = _read_exactly(stream, _LENGTH.size)
    if prefix is None:
        return None
    (length,) = _LENGTH.unpack(prefix)
    if length > _MAX_HEADER_BYTES:
        return None
    body = _read_exactly(stream, length)
    if body is None:
        return None
    try:
        header = json.loads(body)
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def _how_it_ended(child: "subprocess.Popen[bytes]") -> str:
    """Why the child stopped answering, once it has exited; one that is still running (it
    said something that is not a message, or closed its output and hung) is stopped."""
    try:
        code = child.wait(timeout=_EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return "the decoder stopped answering and was stopped"
    if code == -signal.SIGXCPU:
        return "the decoder used up its CPU time (VIDEO_SANDBOX_CPU_SECONDS)"
    if code == _UNCONFINED_EXIT:
        return "the decoder could not be confined (VIDEO_SANDBOX_REQUIRE_CONFINEMENT)"
    if code < 0:
        return f"the decoder was stopped by {signal.Signals(-code).name}"
    return f"the decoder exited with status {code}"


def _refusal(error: object) -> DomainError | None:
    if not isinstance(error, dict):
        return None
    kind, message = _REFUSALS.get(str(error.get("code"))), error.get("message")
    return kind(message) if kind is not None and isinstance(message, str) else None


def probe_in_sandbox(
    path: Path,
    container: VideoContainer,
    limits: VideoLimits,
    sampling: Sampling,
    sandbox: SandboxLimits,
) -> VideoProbe:
    """`probe` in a child (blocking: call in a thread). Raises the child's refusal, or
    InvalidArgument when the child crashed or hit a limit on this file."""
    child = _start(
        "probe", {**_request(path, container, sampling), "video_limits": asdict(limits)}, sandbox
    )
    assert child.stdout is not None
    with child.stdout:
        header = _read_header(child.stdout)
    ended = _how_it_ended(child)
    if header is not None and "error" in header:
        refusal = _refusal(header["error"])
        if refusal is not None:
            raise refusal
    found = header.get("probe") if header is not None else None
    if isinstance(found, dict):
        try:
            return VideoProbe.from_file_fields(found, sampled_frames=int(found["sampled_frames"]))
        except (KeyError, TypeError, ValueError):
            pass
    raise InvalidArgument(f"the {container.name} file could not be read: {ended}")


@dataclass(frozen=True)
class ConfinementCheck:
    """What a child confined as a video child is found it could still do: the layers the
    kernel applied, and the attempts (named as in `_ATTEMPTS`) that were not refused."""

    confinement: Confinement
    still_allowed: tuple[str, ...]

    def holds(self, layer: Layer) -> bool:
        """The layer was applied and refused every attempt it is there to refuse."""
        return self.confinement.applied(layer) and not any(
            _ATTEMPTS[name][0] is layer for name in self.still_allowed
        )

    @property
    def sound(self) -> bool:
        return all(self.holds(layer) for layer in Layer) and not self.still_allowed

    def describe(self) -> str:
        allowed = ", ".join(self.still_allowed) or "nothing it tried"
        return f"{self.confinement.describe()}; still allowed: {allowed}"


def check_confinement(limits: SandboxLimits, *, protected: Path) -> ConfinementCheck:
    """Start a child that confines itself as every video child does, then tries what a decoder
    taken over would: open a socket, read `protected` (the storage directory), create a file
    beside it, start a program and a process, signal the service (blocking: call in a
    thread). Run once at start, so that an operator sees what this kernel enforces."""
    child = _start("check", {"path": __file__, "protected": str(protected)}, limits)
    assert child.stdout is not None
    with child.stdout:
        header = _read_header(child.stdout)
    ended = _how_it_ended(child)
    try:
        assert header is not None
        found = header["confinement"]
        return ConfinementCheck(
            confinement=Confinement(
                syscalls_filtered=bool(found["syscalls_filtered"]),
                landlock_abi=int(found["landlock_abi"]),
            ),
            still_allowed=tuple(
                name for name in map(str, header["still_allowed"]) if name in _ATTEMPTS
            ),
        )
    except (AssertionError, KeyError, TypeError, ValueError):
        raise RuntimeError(f"the video sandbox check did not answer: {ended}") from None


async def check_video_sandbox(
    limits: SandboxLimits, *, protected: Path, confined: "Gauge"
) -> ConfinementCheck:
    """At start: find out what this kernel lets the video child give up, log it and export it
    per layer (1: applied and holding); with `limits.require_confinement`, RuntimeError where
    it does not hold, so that the service does not start."""
    check = await asyncio.to_thread(check_confinement, limits, protected=protected)
    for layer in Layer:
        confined.labels(layer=layer.value).set(int(check.holds(layer)))
    if check.sound:
        logger.info("video decoder confined: %s", check.describe())
    elif limits.require_confinement:
        raise RuntimeError(
            "VIDEO_SANDBOX_REQUIRE_CONFINEMENT is on and this kernel does not confine the"
            f" video decoder: {check.describe()}"
        )
    else:
        logger.warning(
            "video decoder not fully confined; videos are read with the rest of the sandbox"
            " (ADR 0040, 0041): %s",
            check.describe(),
        )
    return check


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
        self._child = _start("frames", _request(path, container, sampling), sandbox)
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
            header = _read_header(stdout)
            if header is None:
                raise VideoDecodeError(f"the video stopped decoding: {_how_it_ended(self._child)}")
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
        bgr = _read_exactly(stdout, 3 * pixels)
        jpeg = _read_exactly(stdout, jpeg_bytes)
        if bgr is None or jpeg is None:
            raise VideoDecodeError(f"the video stopped decoding: {_how_it_ended(self._child)}")
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


def _limit_self(limits: Mapping[str, Any]) -> None:
    """Before the file is opened: at most this much memory and CPU, no core file, no file
    written (the child only reads its one video and writes to its pipe)."""
    memory, cpu = int(limits["memory_bytes"]), int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # SIGXCPU at the limit (reported as such), SIGKILL a little later if that is ignored.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _send(out: IO[bytes], header: Mapping[str, Any], *payloads: bytes) -> None:
    body = json.dumps(header).encode()
    out.write(_LENGTH.pack(len(body)) + body)
    for payload in payloads:
        out.write(payload)
    out.flush()


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
        _send(out, {"error": {"code": error.code, "message": error.message}})
        return
    _send(out, {"probe": {**found.file_fields(), "sampled_frames": found.sampled_frames}})


def _child_frames(request: Mapping[str, Any], out: IO[bytes]) -> None:
    try:
        reader = FrameReader(
            Path(request["path"]),
            VideoContainer(request["container"]),
            Sampling(**request["sampling"]),
        )
    except av.error.FFmpegError as error:
        _send(out, {"error": {"message": f"the video cannot be opened: {error.strerror}"}})
        return
    try:
        while True:
            try:
                frame = reader.next_sampled()
            except av.error.FFmpegError as error:
                _send(out, {"error": {"message": f"the video stopped decoding: {error.strerror}"}})
                return
            if frame is None:
                _send(out, {"end": True})
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
            _send(out, header, np.ascontiguousarray(frame.bgr).tobytes(), frame.jpeg)
    finally:
        reader.close()


def _refused(attempt: Callable[[Path], object], protected: Path) -> bool:
    """Whether the kernel refused the attempt (EPERM or EACCES), as confinement does."""
    try:
        attempt(protected)
    except PermissionError:
        return True
    except OSError:
        return False  # got past the refusal (to a missing file, say): not refused
    return False


def _read(protected: Path) -> None:
    if protected.is_dir():
        os.listdir(protected)
    else:
        protected.read_bytes()


def _create_beside(protected: Path) -> None:
    directory = protected if protected.is_dir() else protected.parent
    created = directory / f".sandbox-check-{os.getpid()}"
    os.close(os.open(created, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    created.unlink()


def _start_process(_protected: Path) -> None:
    if os.fork() == 0:
        os._exit(0)
    os.wait()


def _start_program(_protected: Path) -> None:
    # A program that does not exist: refused means the filter stopped the call before the
    # kernel looked for it (FileNotFoundError would mean it got that far).
    os.execv("/nonexistent/program", ["program"])  # noqa: S606 (no shell: the call is the test)


def _open_socket(_protected: Path) -> None:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()


def _signal_parent(_protected: Path) -> None:
    # Signal 0 only asks whether the parent may be signalled.
    os.kill(os.getppid(), 0)


# What a decoder taken over would try, each given the protected path, and the layer that is
# there to refuse it.
_ATTEMPTS: Mapping[str, tuple[Layer, Callable[[Path], object]]] = {
    "network": (Layer.SYSCALL_FILTER, _open_socket),
    "reading the storage": (Layer.FILE_RULES, _read),
    "creating a file": (Layer.FILE_RULES, _create_beside),
    "starting a program": (Layer.SYSCALL_FILTER, _start_program),
    "starting a process": (Layer.SYSCALL_FILTER, _start_process),
    "signalling the service": (Layer.SYSCALL_FILTER, _signal_parent),
}


def _child_check(request: Mapping[str, Any], confinement: Confinement, out: IO[bytes]) -> None:
    protected = Path(request["protected"])
    still_allowed = [
        name for name, (_layer, attempt) in _ATTEMPTS.items() if not _refused(attempt, protected)
    ]
    _send(out, {"confinement": asdict(confinement), "still_allowed": still_allowed})


def main() -> None:
    """`python -m detection_service.video.sandbox probe|frames|check`, the request on stdin."""
    mode = sys.argv[1]
    request = json.loads(sys.stdin.buffer.read())
    _limit_self(request["limits"])
    confinement = confine(Path(request["path"]))
    out = sys.stdout.buffer
    if mode == "check":
        _child_check(request, confinement, out)
        return
    if request["limits"]["require_confinement"] and not confinement.complete:
        print(f"video sandbox: {confinement.describe()}", file=sys.stderr)
        sys.exit(_UNCONFINED_EXIT)
    try:
        if mode == "probe":
            _child_probe(request, out)
        else:
            _child_frames(request, out)
    except BrokenPipeError:
        pass  # the parent closed the reader: nothing more is wanted
    except MemoryError:
        message = "the video needs more memory than its decoder may use (VIDEO_SANDBOX_MEMORY_MB)"
        _send(out, {"error": {"code": InvalidArgument.code, "message": message}})


if __name__ == "__main__":
    main()
